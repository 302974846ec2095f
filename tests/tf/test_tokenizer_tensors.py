"""return_tensors="tf" on the framework-free tokenizers: int32 tf tensors (the dtype v4's TF models and their
serving signatures take), and pad() of tf tensors gives tf tensors back."""
import numpy as np
import tensorflow as tf

from warmstart import BertTokenizerFast


def _tokenizer(tmp_path):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "a", "b"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt"))


def test_return_tensors_tf(tmp_path):
    tok = _tokenizer(tmp_path)
    batch = tok(["hello world", "a"], padding=True, return_tensors="tf")
    assert tf.is_tensor(batch["input_ids"]) and batch["input_ids"].dtype == tf.int32
    want = tok(["hello world", "a"], padding=True, return_tensors="np")
    for key in want:
        np.testing.assert_array_equal(batch[key].numpy(), want[key])
    padded = tok.pad({"input_ids": [tf.constant([2, 5, 3]), tf.constant([2, 3])]})
    assert tf.is_tensor(padded["input_ids"])
    np.testing.assert_array_equal(padded["input_ids"].numpy(), [[2, 5, 3], [2, 3, 0]])
