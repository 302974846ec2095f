"""from_pretrained / save_pretrained of the TF models beyond v4's own files (those are test_v4_fixtures.py):
base <-> head prefixes both ways, PyTorch checkpoints (safetensors and .bin), strictness, shape mismatches,
safetensors in TF names, config overrides, broken files, atomic saves, the Auto classes and lazy imports."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")
from safetensors import safe_open  # noqa: E402
from safetensors.numpy import load_file, save_file  # noqa: E402

import warmstart.tf as wtf  # noqa: E402
from warmstart.checkpoint import tf_io  # noqa: E402
from warmstart.storage.files import CheckpointError  # noqa: E402
from warmstart.tf.loading import TFLoadingError  # noqa: E402

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "tf_v4"
BERT = ASSETS / "bert_model"  # TFBertModel, 2 layers
MLM = ASSETS / "bert_masked_lm"  # TFBertForMaskedLM, 2 layers; pt/ is its PyTorch BertForMaskedLM
SEQ = ASSETS / "bert_sequence_classification"  # 1 layer, num_labels=3
PT_BARE = BERT / "from_pt"  # a PyTorch BertModel (no "bert." prefix)
QUERY = "bert/encoder/layer_._0/attention/self/query/kernel"


def _inputs(case: Path = BERT) -> dict:
    expected = load_file(str(case / "expected.safetensors"))
    return {k[len("inputs."):]: v for k, v in expected.items()
            if k.startswith("inputs.") and k[len("inputs."):] in ("input_ids", "attention_mask", "token_type_ids")}


def _same_backbone(a, b, prefix: str = "bert/") -> None:
    wa, wb = a.named_weights(), b.named_weights()
    shared = [n for n in wa if n.startswith(prefix) and n in wb]
    assert shared
    for name in shared:
        np.testing.assert_array_equal(wa[name].numpy(), wb[name].numpy(), err_msg=name)


_LOADED: dict[str, object] = {}


def _bert_model():
    """v4's TFBertModel fixture, loaded once for the module."""
    if "bert" not in _LOADED:
        _LOADED["bert"] = wtf.TFBertModel.from_pretrained(BERT)
    return _LOADED["bert"]


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("pt", "from_pt", "sharded", "expected.safetensors",
                                                            "tree.json"))
    return dst


# ---- base <-> head -------------------------------------------------------------------------------------------
def test_base_folder_into_a_head_reports_the_new_head():
    """A TFBertModel folder into a classifier, with a config override (num_labels=5) on the way."""
    model, info = wtf.TFBertForSequenceClassification.from_pretrained(BERT, num_labels=5, output_loading_info=True)
    assert sorted(info["missing_keys"]) == ["classifier/bias", "classifier/kernel"]
    assert info["unexpected_keys"] == [] and info["mismatched_keys"] == []
    assert model.config.num_labels == 5 and model.named_weights()["classifier/kernel"].shape == (32, 5)
    _same_backbone(model, _bert_model())
    logits = np.asarray(model(_inputs()).logits)
    assert logits.shape == (2, 5) and np.isfinite(logits).all()


def test_head_folder_into_the_base_model_drops_the_head_and_allows_the_pooler():
    model, info = wtf.TFBertModel.from_pretrained(MLM, output_loading_info=True)
    assert sorted(info["missing_keys"]) == ["bert/pooler/dense/bias", "bert/pooler/dense/kernel"]
    assert info["unexpected_keys"] and all(k.startswith("mlm___cls/") for k in info["unexpected_keys"])
    assert "mlm___cls/predictions/bias" in info["unexpected_keys"]
    mlm = wtf.TFBertForMaskedLM.from_pretrained(MLM)
    _same_backbone(model, mlm)
    out = model(_inputs(MLM))
    assert np.asarray(out.pooler_output).shape == (2, 32)


def test_bare_pytorch_bert_model_into_a_tf_head():
    model, info = wtf.TFBertForTokenClassification.from_pretrained(PT_BARE, num_labels=4, output_loading_info=True)
    assert sorted(info["missing_keys"]) == ["classifier/bias", "classifier/kernel"]
    assert all(k.startswith("pooler.") for k in info["unexpected_keys"])  # token classification has no pooler
    tf_base = wtf.TFBertModel.from_pretrained(PT_BARE)
    _same_backbone(model, tf_base)
    assert np.asarray(model(_inputs()).logits).shape == (2, 7, 4)


def test_pytorch_head_into_the_tf_base_model():
    model, info = wtf.TFBertModel.from_pretrained(MLM / "pt", output_loading_info=True)
    assert sorted(info["missing_keys"]) == ["bert/pooler/dense/bias", "bert/pooler/dense/kernel"]
    assert info["unexpected_keys"] and all(k.startswith("cls.") for k in info["unexpected_keys"])
    _same_backbone(model, wtf.TFBertForMaskedLM.from_pretrained(MLM))


# ---- pytorch_model.bin -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bin_folder(tmp_path_factory):
    torch = pytest.importorskip("torch")
    folder = tmp_path_factory.mktemp("bin")
    shutil.copy(PT_BARE / "config.json", folder / "config.json")
    state = {k: torch.from_numpy(v) for k, v in load_file(str(PT_BARE / "model.safetensors")).items()}
    torch.save(state, folder / "pytorch_model.bin")
    return folder


def test_pytorch_bin_needs_from_pt(bin_folder):
    with pytest.raises((OSError, ValueError)) as e:
        wtf.TFBertModel.from_pretrained(bin_folder)
    assert "from_pt" in str(e.value)


def test_pytorch_bin_loads_with_from_pt(bin_folder, monkeypatch):
    import torch

    seen = []
    real = torch.load

    def spy(*args, **kwargs):
        seen.append(kwargs.get("weights_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    model = wtf.TFBertModel.from_pretrained(bin_folder, from_pt=True)
    assert seen and all(w is True for w in seen)  # the safe loader: no pickle code runs
    _same_backbone(model, wtf.TFBertModel.from_pretrained(PT_BARE), prefix="")


# ---- strictness ------------------------------------------------------------------------------------------------
def test_h5_lacking_a_backbone_weight_is_an_error_naming_it(tmp_path):
    folder = _copy(BERT, tmp_path / "m")
    with h5py.File(folder / "tf_model.h5", "r+") as f:
        group = f["bert"]
        full = f"tf_bert_model/{QUERY}:0"
        names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
        assert full in names
        del group[full]
        group.attrs["weight_names"] = np.array([n for n in names if n != full], dtype=h5py.string_dtype("ascii"))
    with pytest.raises(TFLoadingError, match=QUERY):
        wtf.TFBertModel.from_pretrained(folder)


def test_h5_listing_a_weight_it_lacks_is_an_error_naming_it(tmp_path):
    folder = _copy(BERT, tmp_path / "m")
    with h5py.File(folder / "tf_model.h5", "r+") as f:
        del f["bert"][f"tf_bert_model/{QUERY}:0"]
    with pytest.raises((TFLoadingError, CheckpointError), match=QUERY):
        wtf.TFBertModel.from_pretrained(folder)


def test_pytorch_state_lacking_a_backbone_weight_is_an_error_naming_it(tmp_path):
    folder = tmp_path / "pt"
    folder.mkdir()
    shutil.copy(PT_BARE / "config.json", folder / "config.json")
    state = load_file(str(PT_BARE / "model.safetensors"))
    del state["encoder.layer.1.output.dense.weight"]
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(TFLoadingError, match="bert/encoder/layer_._1/output/dense/kernel"):
        wtf.TFBertModel.from_pretrained(folder)


def test_shape_mismatch_is_an_error_naming_the_key_unless_ignored():
    with pytest.raises(TFLoadingError, match="classifier/kernel") as e:
        wtf.TFBertForSequenceClassification.from_pretrained(SEQ, num_labels=2)
    assert "ignore_mismatched_sizes" in str(e.value)
    model, info = wtf.TFBertForSequenceClassification.from_pretrained(SEQ, num_labels=2, ignore_mismatched_sizes=True,
                                                                      output_loading_info=True)
    mismatched = {k: (got, want) for k, got, want in info["mismatched_keys"]}
    assert mismatched == {"classifier/kernel": ((32, 3), (32, 2)), "classifier/bias": ((3,), (2,))}
    assert model.named_weights()["classifier/kernel"].shape == (32, 2)
    _same_backbone(model, wtf.TFBertForSequenceClassification.from_pretrained(SEQ))
    assert np.asarray(model(_inputs(SEQ)).logits).shape == (2, 2)


# ---- other formats out and in --------------------------------------------------------------------------------
def test_safe_serialization_writes_tf_named_safetensors_that_load_back(tmp_path):
    model = _bert_model()
    model.save_pretrained(tmp_path, safe_serialization=True)
    assert not (tmp_path / "tf_model.h5").exists()
    with safe_open(str(tmp_path / "model.safetensors"), "np") as f:
        assert f.metadata() == {"format": "tf"}
        keys = set(f.keys())
    assert keys == {n + ":0" for n in model.named_weights()}
    back = wtf.TFBertModel.from_pretrained(tmp_path)
    _same_backbone(back, model)
    np.testing.assert_allclose(np.asarray(back(_inputs()).last_hidden_state),
                               np.asarray(model(_inputs()).last_hidden_state), atol=1e-6)


def test_saved_config_names_the_architecture_without_tf(tmp_path):
    wtf.TFBertForSequenceClassification.from_pretrained(SEQ).save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == ["BertForSequenceClassification"]


def test_a_new_save_drops_stale_weight_files_of_other_layouts(tmp_path):
    model = wtf.TFBertForSequenceClassification.from_pretrained(SEQ)
    model.save_pretrained(tmp_path, max_shard_size="20KB")
    (tmp_path / "README.md").write_text("mine")
    assert (tmp_path / tf_io.TF_INDEX).exists()
    model.save_pretrained(tmp_path)  # single file now: the shards and their index go
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "config.json", "tf_model.h5"]
    model.save_pretrained(tmp_path, safe_serialization=True)  # safetensors: the stale h5 must not shadow it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "config.json", "tf_model.h5"]


# ---- broken files ----------------------------------------------------------------------------------------------
def test_truncated_h5_is_an_error_naming_the_file(tmp_path):
    folder = _copy(BERT, tmp_path / "m")
    data = (folder / "tf_model.h5").read_bytes()
    (folder / "tf_model.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises((CheckpointError, TFLoadingError)) as e:
        wtf.TFBertModel.from_pretrained(folder)
    assert "tf_model.h5" in str(e.value)


def test_non_hdf5_file_is_an_error_naming_the_file(tmp_path):
    folder = _copy(BERT, tmp_path / "m")
    (folder / "tf_model.h5").write_bytes(b"this is not an HDF5 file at all\n" * 8)
    with pytest.raises(CheckpointError, match="tf_model.h5") as e:
        wtf.TFBertModel.from_pretrained(folder)
    assert "HDF5" in str(e.value)


def test_failed_save_leaves_the_old_folder_intact(tmp_path, monkeypatch):
    model = _bert_model()
    target = tmp_path / "out"
    model.save_pretrained(target)
    (target / "README.md").write_text("mine")
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    calls = {"n": 0}
    real_put = tf_io._put

    def put_then_fail(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 5:
            raise OSError("disk full (simulated)")
        return real_put(*args, **kwargs)

    monkeypatch.setattr(tf_io, "_put", put_then_fail)
    with pytest.raises(OSError, match="simulated"):
        model.save_pretrained(target)
    assert calls["n"] > 5  # it failed midway through the h5, not before writing
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    # no temporary or old folder left beside it (the per-folder lock file stays, by design)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".ws-lock")) == ["out"]


# ---- Auto classes, lazy imports ------------------------------------------------------------------------------
def test_auto_classes_pick_the_class():
    # a head folder into TFAutoModel gives the base class; the masked-LM auto class follows model_type (roberta)
    assert type(wtf.TFAutoModel.from_pretrained(MLM)) is wtf.TFBertModel
    assert type(wtf.TFAutoModelForMaskedLM.from_pretrained(ASSETS / "roberta_masked_lm")) is wtf.TFRobertaForMaskedLM


def test_import_warmstart_does_not_import_tensorflow():
    code = ("import sys, warmstart\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'eager tensorflow import'\n"
            "assert 'TFBertModel' not in vars(warmstart) and 'TFBertModel' in dir(warmstart)\n"
            "print('ok')\n")
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")


def test_top_level_tf_names_resolve_lazily():
    import warmstart
    import warmstart.tf.bert

    assert warmstart.TFBertModel is warmstart.tf.bert.TFBertModel is wtf.TFBertModel
    assert warmstart.TFAutoModelForMaskedLM is wtf.TFAutoModelForMaskedLM
