"""BertLMHeadModel as a decoder: cached decoding equals the full forward; legacy tuples; beam reordering."""
import torch
import transformers as T

import warmstart as W
from parity import TINY, assert_close, spread_weights


def _decoder(tmp_path, cross=True):
    torch.manual_seed(0)
    hf = T.BertLMHeadModel(T.BertConfig(**TINY, is_decoder=True, add_cross_attention=cross))
    spread_weights(hf)
    hf.save_pretrained(tmp_path)
    return hf.eval(), W.BertLMHeadModel.from_pretrained(tmp_path)


def _step_by_step(model, ids, mask, enc, enc_mask, legacy=False):
    steps = []
    past = None
    with torch.no_grad():
        for t in range(ids.shape[1]):
            if legacy and past is not None:
                past = tuple(tuple(x.clone() for x in layer) for layer in past)  # plain tuples in
            o = model(ids[:, t:t + 1], attention_mask=mask[:, :t + 1], encoder_hidden_states=enc,
                      encoder_attention_mask=enc_mask, past_key_values=past, use_cache=True)
            past = o.past_key_values
            if legacy:
                assert isinstance(past, tuple) or t == 0
                past = past.to_legacy_cache() if not isinstance(past, tuple) else past
            steps.append(o.logits)
    return torch.cat(steps, 1), past


def test_cached_decoding_equals_full_forward_and_transformers(tmp_path):
    hf, ours = _decoder(tmp_path)
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(1, 99, (2, 8), generator=g)
    mask = torch.ones_like(ids)
    enc = torch.randn(2, 6, TINY["hidden_size"], generator=g)
    enc_mask = torch.tensor([[1] * 6, [1, 1, 1, 1, 0, 0]])
    with torch.no_grad():
        full = ours(ids, attention_mask=mask, encoder_hidden_states=enc, encoder_attention_mask=enc_mask).logits
        ref = hf(ids, attention_mask=mask, encoder_hidden_states=enc, encoder_attention_mask=enc_mask).logits
    assert_close(full, ref, "full forward vs transformers")
    cached, past = _step_by_step(ours, ids, mask, enc, enc_mask)
    assert_close(cached, full, "cached vs full")
    legacy, past_tuples = _step_by_step(ours, ids, mask, enc, enc_mask, legacy=True)
    assert_close(legacy, full, "legacy-tuple cache vs full")
    # v4 layout: per layer (k, v, cross_k, cross_v), each (B, H, T, D)
    assert len(past_tuples) == TINY["num_hidden_layers"] and len(past_tuples[0]) == 4
    assert past_tuples[0][0].shape == (2, TINY["num_attention_heads"], 8, TINY["hidden_size"] // 4)
    assert past_tuples[0][2].shape[2] == 6


def test_cache_with_left_padding_matches_full_forward(tmp_path):
    _, ours = _decoder(tmp_path, cross=False)
    ids = torch.randint(1, 99, (2, 7), generator=torch.Generator().manual_seed(5))
    mask = torch.ones_like(ids)
    mask[1, :2] = 0  # left padding, as batched generation with a decoder-only model uses
    pos = (mask.cumsum(1) - 1).clamp(min=0)
    with torch.no_grad():
        full = ours(ids, attention_mask=mask, position_ids=pos).logits
        first = ours(ids[:, :4], attention_mask=mask[:, :4], position_ids=pos[:, :4], use_cache=True)
        rest = ours(ids[:, 4:], attention_mask=mask, position_ids=pos[:, 4:],
                    past_key_values=first.past_key_values, use_cache=True)
    real = mask.bool()
    assert_close(torch.cat([first.logits, rest.logits], 1)[real], full[real], "left-padded continuation")


def test_reorder_cache_selects_beams(tmp_path):
    _, ours = _decoder(tmp_path, cross=False)
    ids = torch.randint(1, 99, (3, 5), generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        out = ours(ids, past_key_values=W.KVCache(), use_cache=True)  # a cache object in, the same one out
        cache = out.past_key_values
        order = torch.tensor([2, 2, 0])
        cache.reorder_cache(order)
        nxt = torch.tensor([[7], [8], [9]])
        step = ours(nxt, past_key_values=cache, use_cache=True).logits
        ref = ours(torch.cat([ids[order], nxt], 1)).logits[:, -1:]
    assert_close(step, ref, "reordered cache")


def test_training_with_labels_disables_cache(tmp_path):
    _, ours = _decoder(tmp_path, cross=False)
    ids = torch.randint(1, 99, (2, 5))
    out = ours(ids, labels=ids, use_cache=True)
    assert out.past_key_values is None and out.loss is not None
