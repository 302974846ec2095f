"""return_tensors="jax" in every tokenizer: int32 jax arrays (jax's default integer width), pad() keeping jax."""
import numpy as np
import pytest

jax = pytest.importorskip("jax")

import warmstart as W  # noqa: E402


@pytest.mark.parametrize("fast", [False, True])
def test_bert_tokenizer_returns_jax_arrays(minilm_dir, fast):
    tok = (W.BertTokenizerFast if fast else W.BertTokenizer).from_pretrained(minilm_dir)
    texts = ["hello world", "a somewhat longer sentence"]
    batch = tok(texts, padding=True, return_tensors="jax")
    want = tok(texts, padding=True, return_tensors="np")
    assert set(batch) == set(want)
    for key, value in batch.items():
        assert isinstance(value, jax.Array) and value.dtype == np.int32, key
        assert np.array_equal(np.asarray(value), want[key]), key


def test_pad_keeps_jax_and_ragged_rows_are_refused(minilm_dir):
    tok = W.AutoTokenizer.from_pretrained(minilm_dir)
    rows = [tok("hello world", return_tensors="jax")["input_ids"][0], tok("hi", return_tensors="jax")["input_ids"][0]]
    padded = tok.pad({"input_ids": rows})
    assert isinstance(padded["input_ids"], jax.Array) and padded["input_ids"].shape == (2, 4)
    with pytest.raises(ValueError, match="padding=True"):
        tok(["hello world", "hi"], return_tensors="jax")
