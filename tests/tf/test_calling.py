"""v4's TF calling convention: a dict (a tokenizer's BatchEncoding included), a list in call-signature order,
keywords; numpy, tf tensors and python lists; return_dict=False; inside a user's tf.function (XLA too); under
TF_USE_LEGACY_KERAS=1; unknown or doubled inputs are TypeErrors naming them."""
from __future__ import annotations

import atexit
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support import assert_close, bert_config, ids_and_mask, to_np  # noqa: E402

import warmstart.tf as wtf  # noqa: E402
from warmstart.tf.backend import tf  # noqa: E402

WORDS = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", "##s", "far"]
CHILD = r"""
import sys
from pathlib import Path
import numpy as np
import warmstart.tf as wtf
from warmstart.tf.backend import keras
assert keras.__version__.startswith("3."), keras.__version__
folder = Path(sys.argv[1])
model = wtf.TFBertForSequenceClassification.from_pretrained(folder / "model")
data = np.load(folder / "inputs.npz")
out = model({"input_ids": data["ids"], "attention_mask": data["mask"]})
np.save(folder / "child.npy", out.logits.numpy())
print("ok")
"""


def _start_legacy_child(folder: Path):
    """The TF_USE_LEGACY_KERAS=1 child, started once the model is saved, so its TensorFlow import (the slow part)
    overlaps the other tests of this file; the last test collects it. Killed at exit if still running."""
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2",
           "HF_HUB_OFFLINE": "1"}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(folder)], env=env,
                             cwd=str(Path(__file__).parents[2]), stdout=open(folder / "stdout.txt", "w"),
                             stderr=open(folder / "stderr.txt", "w"))  # files: a full pipe would block it

    def cleanup():
        if child.poll() is None:
            child.kill()
            child.wait()

    atexit.register(cleanup)
    return child


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny TF sequence classifier and its inputs; saved for the TF_USE_LEGACY_KERAS=1 child."""
    folder = tmp_path_factory.mktemp("legacy_keras")
    tf.random.set_seed(0)
    model = wtf.TFBertForSequenceClassification(bert_config(num_labels=3))
    ids, mask = ids_and_mask()
    types = np.zeros_like(ids)
    types[:, 4:] = 1
    model.save_pretrained(folder / "model")
    np.savez(folder / "inputs.npz", ids=ids, mask=mask)
    child = _start_legacy_child(folder)
    want = model(ids, attention_mask=mask, token_type_ids=types).logits.numpy()
    return {"model": model, "ids": ids, "mask": mask, "types": types, "want": want, "child": child,
            "folder": folder}


def _same(out, want, what):
    assert_close(out.logits if hasattr(out, "logits") else out[0], want, what, atol=1e-6)


def test_dict_list_and_keywords_agree(setup):
    m, ids, mask, types, want = (setup[k] for k in ("model", "ids", "mask", "types", "want"))
    _same(m({"input_ids": ids, "attention_mask": mask, "token_type_ids": types}), want, "dict")
    _same(m([ids, mask, types]), want, "list in call order")
    _same(m((ids, mask, types)), want, "tuple in call order")
    _same(m(ids, attention_mask=mask, token_type_ids=types), want, "keywords")
    _same(m(input_ids=ids, attention_mask=mask, token_type_ids=types), want, "all keywords")
    _same(m(ids, mask, types), want, "positional")
    _same(m({"input_ids": ids, "attention_mask": mask}, token_type_ids=types), want, "dict plus keyword")


@pytest.mark.parametrize("kind", ["int32", "int64", "tf", "tf-int64", "list"])
def test_array_kinds_agree(setup, kind):
    m, ids, mask, types, want = (setup[k] for k in ("model", "ids", "mask", "types", "want"))
    convert = {"int32": lambda x: x.astype(np.int32), "int64": lambda x: x.astype(np.int64),
               "tf": lambda x: tf.constant(x, tf.int32), "tf-int64": lambda x: tf.constant(x, tf.int64),
               "list": lambda x: x.tolist()}[kind]
    _same(m({"input_ids": convert(ids), "attention_mask": convert(mask), "token_type_ids": convert(types)}), want,
          kind)
    _same(m(convert(ids), attention_mask=convert(mask), token_type_ids=convert(types)), want, kind + " keywords")


@pytest.mark.parametrize("return_tensors", ["np", None], ids=["np", "lists"])
def test_tokenizer_batch_encoding(setup, tmp_path, return_tensors):
    import warmstart as ws

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS) + "\n")
    tok = ws.BertTokenizerFast(str(vocab))
    enc = tok(["the cat sat on the mat", "a dog ran"], ["far", "dogs"], padding=True, return_tensors=return_tensors)
    assert {"input_ids", "attention_mask", "token_type_ids"} <= set(enc.keys())
    m = setup["model"]
    got = m(enc)
    assert got.logits.shape == (2, 3)
    ids = np.asarray(enc["input_ids"])
    assert (np.asarray(enc["attention_mask"]) == 0).any(), "the batch should be padded"
    _same(got, m(ids, attention_mask=np.asarray(enc["attention_mask"]),
                 token_type_ids=np.asarray(enc["token_type_ids"])).logits.numpy(), "BatchEncoding")
    _same(m(**enc), got.logits.numpy(), "**BatchEncoding")
    _same(m(dict(enc)), got.logits.numpy(), "dict(BatchEncoding)")


def test_return_dict_false_and_output_access(setup):
    m, ids, mask, types, want = (setup[k] for k in ("model", "ids", "mask", "types", "want"))
    out = m(ids, attention_mask=mask, token_type_ids=types)
    assert_close(out[0], want, "out[0]")
    assert_close(out["logits"], want, "out['logits']")
    assert_close(out.logits, want, "out.logits")
    plain = m(ids, attention_mask=mask, token_type_ids=types, return_dict=False)
    assert type(plain) is tuple and len(plain) == 1
    assert_close(plain[0], want, "tuple[0]")
    labelled = m(ids, attention_mask=mask, token_type_ids=types, labels=np.array([2, 0]), return_dict=False,
                 output_hidden_states=True)
    assert type(labelled) is tuple and len(labelled) == 3  # loss, logits, hidden_states
    assert labelled[0].shape == (2,)
    assert_close(labelled[1], want, "tuple[1] with a loss")


@pytest.mark.parametrize("jit", [False, True], ids=["graph", "xla"])
def test_inside_a_users_tf_function(setup, jit):
    m, ids, mask, types, want = (setup[k] for k in ("model", "ids", "mask", "types", "want"))

    @tf.function(jit_compile=jit)
    def step(batch):
        return m(batch)

    out = step({"input_ids": tf.constant(ids), "attention_mask": tf.constant(mask),
                "token_type_ids": tf.constant(types)})
    assert type(out) is wtf.TFSequenceClassifierOutput
    assert_close(out.logits, want, "tf.function logits", atol=1e-5)
    if not jit:
        @tf.function
        def listed(i, a, t):
            return m([i, a, t], return_dict=False)

        res = listed(tf.constant(ids), tf.constant(mask), tf.constant(types))
        assert isinstance(res, tuple)
        assert_close(res[0], want, "tf.function list input", atol=1e-5)


def test_unknown_and_doubled_inputs_are_type_errors(setup):
    m, ids, mask = setup["model"], setup["ids"], setup["mask"]
    with pytest.raises(TypeError, match="attention_maks"):
        m({"input_ids": ids, "attention_maks": mask})
    with pytest.raises(TypeError, match="attention_mask"):
        m({"input_ids": ids, "attention_mask": mask}, attention_mask=mask)
    with pytest.raises(TypeError, match="input_ids"):
        m({"input_ids": ids}, input_ids=ids)
    with pytest.raises(TypeError):
        m(ids, attention_maks=mask)


def test_legacy_keras_child_gives_the_same_logits(setup):
    """Last in the file: collects the TF_USE_LEGACY_KERAS=1 child the fixture started."""
    child, folder = setup["child"], setup["folder"]
    try:
        child.wait(timeout=180)
    except subprocess.TimeoutExpired:
        child.kill()
        raise
    stdout, stderr = ((folder / name).read_text() for name in ("stdout.txt", "stderr.txt"))
    assert child.returncode == 0 and "ok" in stdout, stderr[-3000:]
    m, ids, mask = setup["model"], setup["ids"], setup["mask"]
    want = to_np(m({"input_ids": ids, "attention_mask": mask}).logits)
    assert_close(np.load(folder / "child.npy"), want, "TF_USE_LEGACY_KERAS=1 logits", atol=1e-6)
