"""Flax from_pretrained / save_pretrained against the files transformers 4.57.1 wrote (tests/assets/flax_v4), our
PyTorch checkpoints and the real MiniLM checkpoint."""
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from flax.traverse_util import flatten_dict
from safetensors.numpy import load_file

import warmstart as W
from warmstart.checkpoint import flax_io
from warmstart.flax.loading import FlaxLoadingError
from warmstart.storage.files import CheckpointError

ROOT = Path(__file__).parent.parent / "assets" / "flax_v4"
CASES = sorted(p.name for p in ROOT.iterdir() if p.is_dir())
SEQ = ROOT / "bert_sequence_classification"


def _class(folder: Path) -> type:
    return getattr(W, json.loads((folder / "tree.json").read_text())["model_class"])


def _flat(tree) -> dict:
    return {"/".join(k): np.asarray(v) for k, v in flatten_dict(dict(tree)).items()}


def _assert_same_params(params, reference: dict):
    flat = _flat(params)
    assert set(flat) == set(reference)
    for key, value in reference.items():
        assert flat[key].dtype == value.dtype and np.array_equal(flat[key], value), key


def _seq_logits(model, folder=SEQ):
    exp = load_file(folder / "expected.safetensors")
    out = model(exp["inputs.input_ids"], attention_mask=exp["inputs.attention_mask"],
                token_type_ids=exp["inputs.token_type_ids"])
    return np.asarray(out.logits), exp["outputs.logits"]


@pytest.mark.parametrize("name", CASES)
def test_every_v4_file_loads_exactly(name):
    folder = ROOT / name
    model, info = _class(folder).from_pretrained(folder, output_loading_info=True)
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": [], "error_msgs": []}
    _assert_same_params(model.params, _flat(flax_io.read_flax_weights(folder)))


@pytest.mark.parametrize("name", ["bert_masked_lm", "gpt2_lm_head"])
def test_pytorch_safetensors_convert_to_v4s_params(name):
    # v4 converted these PyTorch files from the msgpack; converting back must give the very same params.
    folder = ROOT / name
    model = _class(folder).from_pretrained(folder / "pt")
    _assert_same_params(model.params, _flat(flax_io.read_flax_weights(folder)))


@pytest.mark.parametrize("sub", ["sharded", "safetensors"])
def test_other_v4_layouts_give_the_same_logits(sub):
    model = W.FlaxBertForSequenceClassification.from_pretrained(SEQ / sub)
    got, want = _seq_logits(model)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_bf16_params_stay_bf16():
    model = W.FlaxBertForSequenceClassification.from_pretrained(SEQ / "bf16")
    assert {str(v.dtype) for v in _flat(model.params).values()} == {"bfloat16"}
    got, want = _seq_logits(model, SEQ / "bf16")
    assert got.dtype == np.float32
    # Same bf16 weights, fp32 compute in both; only summation order differs.
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


def test_save_writes_v4s_files_byte_for_byte(tmp_path):
    model = W.FlaxBertForSequenceClassification.from_pretrained(SEQ)
    model.save_pretrained(tmp_path / "one")
    assert (tmp_path / "one" / "flax_model.msgpack").read_bytes() == (SEQ / "flax_model.msgpack").read_bytes()
    config = json.loads((tmp_path / "one" / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"] and len(config["id2label"]) == 3
    model.save_pretrained(tmp_path / "sharded", max_shard_size="30KB")
    for f in (SEQ / "sharded").iterdir():
        if f.name != "config.json":
            assert (tmp_path / "sharded" / f.name).read_bytes() == f.read_bytes(), f.name
    model.save_pretrained(tmp_path / "safe", safe_serialization=True)
    assert (tmp_path / "safe" / "model.safetensors").read_bytes() == \
        (SEQ / "safetensors" / "model.safetensors").read_bytes()
    for sub in ("one", "sharded", "safe"):
        back = W.FlaxBertForSequenceClassification.from_pretrained(tmp_path / sub)
        _assert_same_params(back.params, _flat(model.params))


def test_save_of_given_params_and_fresh_model_round_trip(tmp_path):
    cfg = W.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                       intermediate_size=37, num_labels=2)
    model = W.FlaxBertForSequenceClassification(cfg, seed=3)
    model.save_pretrained(tmp_path, params=model.to_bf16(model.params))
    back = W.FlaxBertForSequenceClassification.from_pretrained(tmp_path)
    assert {str(v.dtype) for v in _flat(back.params).values()} == {"bfloat16"}
    with pytest.raises(ValueError, match="lack 1 parameter"):
        params = dict(model.params)
        params["classifier"] = {"kernel": params["classifier"]["kernel"]}
        model.save_pretrained(tmp_path / "bad", params=params)


def test_backbone_into_head_and_head_into_backbone(caplog):
    base = ROOT / "bert_model"
    head, info = W.FlaxBertForSequenceClassification.from_pretrained(base, output_loading_info=True)
    assert sorted(info["missing_keys"]) == ["classifier/bias", "classifier/kernel"]
    _assert_same_params(head.params["bert"], _flat(flax_io.read_flax_weights(base)))
    with caplog.at_level(logging.INFO, logger="warmstart"):
        bare, info = W.FlaxBertModel.from_pretrained(SEQ, output_loading_info=True)
    assert sorted(info["unexpected_keys"]) == ["classifier/bias", "classifier/kernel"]
    assert "not used" in caplog.text
    _assert_same_params(bare.params, _flat(flax_io.read_flax_weights(SEQ)["bert"]))


def test_missing_backbone_parameters_are_an_error():
    with pytest.raises(FlaxLoadingError, match=r"lacks .* parameter\(s\).*encoder/layer/2/"):
        W.FlaxBertModel.from_pretrained(ROOT / "bert_model", num_hidden_layers=3)


def test_a_warm_started_decoder_gets_fresh_cross_attention():
    model, info = W.FlaxBertForCausalLM.from_pretrained(ROOT / "bert_model", is_decoder=True,
                                                      add_cross_attention=True, output_loading_info=True)
    assert info["missing_keys"] and all("crossattention" in k or k.startswith("cls/") for k in info["missing_keys"])


def test_size_mismatch_error_or_fresh_head():
    with pytest.raises(FlaxLoadingError, match=r"classifier/kernel is \(32, 3\) in the checkpoint but \(32, 5\)"):
        W.FlaxBertForSequenceClassification.from_pretrained(SEQ, num_labels=5)
    model, info = W.FlaxBertForSequenceClassification.from_pretrained(
        SEQ, num_labels=5, ignore_mismatched_sizes=True, output_loading_info=True)
    assert sorted(k for k, _, _ in info["mismatched_keys"]) == ["classifier/bias", "classifier/kernel"]
    assert model.params["classifier"]["kernel"].shape == (32, 5)


def test_do_init_false_returns_model_and_params():
    model, params = W.FlaxBertForSequenceClassification.from_pretrained(SEQ, _do_init=False)
    with pytest.raises(ValueError, match="_do_init=False"):
        model.params
    got = model(np.ones((1, 4), np.int32), params=params).logits
    assert got.shape == (1, 3)
    model, params = W.FlaxBertForSequenceClassification.from_pretrained(ROOT / "bert_model", _do_init=False)
    assert "classifier" not in params
    full = model.init_weights(model.key, model.input_shape, params)
    assert full["classifier"]["kernel"].shape == (32, 3 if model.config.num_labels == 3 else model.config.num_labels)


def _tiny_pt_mlm():
    torch.manual_seed(0)
    cfg = W.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                       intermediate_size=37, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return W.BertForMaskedLM(cfg).eval()


@pytest.mark.parametrize("safe", [True, False])
def test_our_pytorch_checkpoints_load_into_flax(tmp_path, safe):
    pt = _tiny_pt_mlm()
    pt.save_pretrained(tmp_path, safe_serialization=safe)
    if not safe:
        with pytest.raises(FileNotFoundError, match="from_pt=True"):
            W.FlaxBertForMaskedLM.from_pretrained(tmp_path)
    fx = W.FlaxBertForMaskedLM.from_pretrained(tmp_path, from_pt=not safe)
    ids = np.array([[5, 6, 7, 8, 9]], np.int32)
    with torch.no_grad():
        want = pt(torch.tensor(ids, dtype=torch.long)).logits.numpy()
    np.testing.assert_allclose(np.asarray(fx(ids).logits), want, atol=1e-5, rtol=0)


def test_minilm_loads_with_our_pytorch_outputs(minilm_dir):
    tok = W.AutoTokenizer.from_pretrained(minilm_dir)
    texts = ["warm starting a sequence model", "a short one"]
    fx = W.FlaxBertModel.from_pretrained(minilm_dir)
    pt = W.BertModel.from_pretrained(minilm_dir)
    batch = tok(texts, padding=True, return_tensors="jax")
    got = fx(**batch)
    with torch.no_grad():
        want = pt(**tok(texts, padding=True, return_tensors="pt"))
    mask = np.asarray(batch["attention_mask"])[..., None]
    diff = np.abs((np.asarray(got.last_hidden_state) - want.last_hidden_state.numpy()) * mask).max()
    assert diff <= 1e-5, diff
    np.testing.assert_allclose(np.asarray(got.pooler_output), want.pooler_output.numpy(), atol=1e-5, rtol=0)


def test_auto_classes_pick_the_flax_class():
    model = W.FlaxAutoModelForSequenceClassification.from_pretrained(SEQ)
    assert type(model).__name__ == "FlaxBertForSequenceClassification"
    assert type(W.FlaxAutoModel.from_pretrained(ROOT / "gpt2_model")).__name__ == "FlaxGPT2Model"
    with pytest.raises(ValueError, match="no 'sequence-classification' model for 'flax'"):
        W.FlaxAutoModelForSequenceClassification.from_pretrained(ROOT / "gpt2_model")


def test_truncated_file_is_named(tmp_path):
    shutil.copy(SEQ / "config.json", tmp_path)
    raw = (SEQ / "flax_model.msgpack").read_bytes()
    (tmp_path / "flax_model.msgpack").write_bytes(raw[:-1000])
    with pytest.raises(CheckpointError, match="flax_model.msgpack.*truncated or corrupt"):
        W.FlaxBertForSequenceClassification.from_pretrained(tmp_path)


def test_a_failed_save_leaves_the_old_folder(tmp_path, monkeypatch):
    model = W.FlaxBertForSequenceClassification.from_pretrained(SEQ)
    model.save_pretrained(tmp_path)
    (tmp_path / "README.md").write_text("mine")
    before = (tmp_path / "flax_model.msgpack").read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(flax_io, "write_flax_weights", boom)
    with pytest.raises(OSError, match="disk full"):
        model.save_pretrained(tmp_path)
    assert (tmp_path / "flax_model.msgpack").read_bytes() == before
    assert (tmp_path / "README.md").read_text() == "mine"
