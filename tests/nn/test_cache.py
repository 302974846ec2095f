"""KVCache housekeeping beyond what decoding exercises: crop and reset."""
import torch

from warmstart.nn import KVCache


def _kv(t, fill):
    return torch.full((1, 2, t, 4), float(fill)), torch.full((1, 2, t, 4), -float(fill))


def test_crop_forgets_later_positions_and_writes_over_them():
    cache = KVCache(1)
    cache.update(0, *_kv(5, 1))
    cache.crop(3)
    assert cache.get_seq_length() == 3
    k, _ = cache.update(0, *_kv(1, 2))
    assert k.shape[2] == 4 and torch.equal(k[:, :, 3], torch.full((1, 2, 4), 2.0))


def test_reset_empties_self_and_cross_attention():
    cache = KVCache(2)
    for layer in range(2):
        cache.update(layer, *_kv(3, 1))
        cache.set_cross(layer, *_kv(7, 1))
    cache.reset()
    assert len(cache) == 2 and cache.get_seq_length() == 0 and not cache.has_cross(1)
    assert [len(layer) for layer in cache.to_legacy_cache()] == [2, 2]  # no cross K/V left
    assert cache.to_legacy_cache()[0][0].shape[2] == 0
