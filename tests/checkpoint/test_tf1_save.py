"""Our TF1 checkpoint writer against TensorFlow's reader, and PyTorch -> TF1 -> PyTorch round trips."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "tf"))
from support import bert_config, random_pt  # noqa: E402  (tests/tf/support.py)
from tf1_writer import google_names  # noqa: E402

import warmstart as ws  # noqa: E402
from warmstart.checkpoint.pretrained import export_state_dict  # noqa: E402
from warmstart.checkpoint.tf1_bundle import TF1Checkpoint, read_tf1_checkpoint  # noqa: E402
from warmstart.checkpoint.tf1_save import pt_to_tf1, save_tf1_checkpoint, write_tf1_checkpoint  # noqa: E402

HEADS = ["BertModel", "BertForPreTraining", "BertForMaskedLM", "BertForSequenceClassification",
         "BertForQuestionAnswering", "BertForNextSentencePrediction"]


def _arrays() -> dict[str, np.ndarray]:
    """Enough tensors for several index blocks and restart points, in every numeric dtype we write."""
    rng = np.random.default_rng(0)
    out = {f"bert/encoder/layer_{i}/attention/self/query/kernel": rng.normal(size=(3, 5)).astype(np.float32)
           for i in range(300)}
    out.update({"f64": rng.normal(size=(4,)), "f16": rng.normal(size=(2, 2)).astype(np.float16),
                "i32": np.arange(7, dtype=np.int32), "i64": np.array(12345678901, np.int64),
                "u8": np.arange(5, dtype=np.uint8), "i8": np.array([-3, 4], np.int8), "b": np.array([True, False]),
                "empty": np.zeros((0, 3), np.float32), "big": rng.normal(size=(300, 1000)).astype(np.float32)})
    return out


def test_tensorflow_reads_what_we_write(tmp_path):
    tf = pytest.importorskip("tensorflow")
    arrays = _arrays()
    write_tf1_checkpoint(tmp_path / "model.ckpt", arrays)
    reader = tf.train.load_checkpoint(str(tmp_path / "model.ckpt"))
    assert sorted(reader.get_variable_to_shape_map()) == sorted(arrays)
    for name, want in arrays.items():
        got = reader.get_tensor(name)
        assert got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want), name


def test_we_read_back_what_we_write_and_the_index_has_several_blocks(tmp_path):
    arrays = _arrays()
    write_tf1_checkpoint(tmp_path / "model.ckpt", arrays)
    got, left = read_tf1_checkpoint(tmp_path / "model.ckpt")
    assert left == [] and sorted(got) == sorted(arrays)
    assert all(np.array_equal(got[n], arrays[n]) for n in arrays)
    assert (tmp_path / "model.ckpt.index").stat().st_size > 3 * 4096  # so block boundaries were crossed
    assert TF1Checkpoint(tmp_path / "model.ckpt").num_shards == 1
    assert not list(tmp_path.glob("*.tmp"))


def test_bfloat16_round_trip(tmp_path):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    a = np.array([1.5, -2.25, 3.0], dtype=ml_dtypes.bfloat16)
    write_tf1_checkpoint(tmp_path / "m", {"x": a})
    got, _ = read_tf1_checkpoint(tmp_path / "m")
    assert got["x"].dtype == a.dtype and np.array_equal(got["x"].astype(np.float32), a.astype(np.float32))


@pytest.mark.parametrize("name", HEADS)
def test_google_names_and_round_trip(tmp_path, name):
    labels = 3 if name == "BertForSequenceClassification" else 2  # a QA head has exactly 2 (start, end)
    model = random_pt(name, bert_config(num_labels=labels)).eval()
    state = {k: v.detach().numpy() for k, v in export_state_dict(model).items()}
    assert sorted(pt_to_tf1(state)) == sorted(google_names(export_state_dict(model)))  # an independent renaming
    files = save_tf1_checkpoint(model, tmp_path / "bert_model.ckpt")
    assert [f.name for f in files] == ["bert_model.ckpt.index", "bert_model.ckpt.data-00000-of-00001",
                                       "bert_config.json"]
    assert json.loads(files[2].read_text())["num_hidden_layers"] == 2
    again = getattr(ws, name).from_pretrained(tmp_path, from_tf=True, num_labels=labels)
    ids = torch.tensor([[2, 5, 7, 9, 11], [2, 8, 3, 0, 0]])
    with torch.no_grad():
        a, b = model(ids), again(ids)
    for key in a.keys():
        assert torch.equal(a[key], b[key]), key


def test_refusals(tmp_path):
    with pytest.raises(ValueError, match="at least one tensor"):
        write_tf1_checkpoint(tmp_path / "m", {})
    with pytest.raises(TypeError, match="'c'.*complex"):
        write_tf1_checkpoint(tmp_path / "m", {"c": np.array([1j])})
    with pytest.raises(TypeError, match="BERT models"):
        save_tf1_checkpoint(random_pt("GPT2Model", ws.GPT2Config(n_embd=32, n_layer=1, n_head=4, vocab_size=50)),
                            tmp_path / "g")
    assert not os.path.exists(tmp_path / "m.index")
