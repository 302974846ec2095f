"""The PyTorch <-> TF (v4 Keras names) layout rules: name by name, then whole models against the files
transformers 4.57.1 wrote (tests/assets/tf_v4: tf_model.h5 and the PyTorch safetensors v4 converted them to)."""
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("h5py")

import warmstart  # noqa: E402
from warmstart.checkpoint import tf_io  # noqa: E402
from warmstart.checkpoint.flax_io import read_safetensors  # noqa: E402
from warmstart.checkpoint.pretrained import export_state_dict  # noqa: E402
from warmstart.checkpoint.tf_layout import (pt_to_tf, strip_model_name, tf_model_name, tf_to_pt,  # noqa: E402
                                            tf_to_pt_name)

ROOT = Path(__file__).parent.parent / "assets" / "tf_v4"
CASES = sorted(p.name for p in ROOT.iterdir() if (p / "tf_model.h5").is_file()) if ROOT.is_dir() else []
needs_fixtures = pytest.mark.skipif(not CASES, reason="tests/assets/tf_v4 fixtures not generated")


def _fixture(case):
    return tf_io.read_tf_h5(ROOT / case / "tf_model.h5")


# ---- names -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("tf_name, pt_name, transpose", [
    ("bert/embeddings/word_embeddings/weight", "bert.embeddings.word_embeddings.weight", False),
    ("bert/embeddings/position_embeddings/embeddings", "bert.embeddings.position_embeddings.weight", False),
    ("bert/embeddings/LayerNorm/gamma", "bert.embeddings.LayerNorm.weight", False),
    ("bert/embeddings/LayerNorm/beta", "bert.embeddings.LayerNorm.bias", False),
    ("bert/encoder/layer_._11/attention/self/query/kernel", "bert.encoder.layer.11.attention.self.query.weight", True),
    ("mlm___cls/predictions/transform/dense/kernel", "cls.predictions.transform.dense.weight", True),
    ("mlm___cls/predictions/bias", "cls.predictions.bias", False),
    ("nsp___cls/seq_relationship/kernel", "cls.seq_relationship.weight", True),
    ("lm_head/layer_norm/gamma", "lm_head.layer_norm.weight", False),
    ("transformer/h_._0/attn/c_attn/weight", "transformer.h.0.attn.c_attn.weight", False),  # Conv1D: (in, out)
    ("transformer/wpe/embeddings", "transformer.wpe.weight", False),
    ("qa_outputs/bias:0", "qa_outputs.bias", False),
])
def test_v4_name_rule(tf_name, pt_name, transpose):
    assert tf_to_pt_name(tf_name) == (pt_name, transpose)


def test_full_names_drop_the_model_component():
    full = "tf_bert_for_pre_training/mlm___cls/predictions/transform/LayerNorm/beta:0"
    assert tf_to_pt_name(full, has_model_name=True) == ("cls.predictions.transform.LayerNorm.bias", False)
    assert strip_model_name(full) == "mlm___cls/predictions/transform/LayerNorm/beta"
    with pytest.raises(ValueError):
        strip_model_name("kernel:0")


@pytest.mark.parametrize("cls, name", [
    ("TFBertModel", "tf_bert_model"), ("TFBertForSequenceClassification", "tf_bert_for_sequence_classification"),
    ("TFBertForPreTraining", "tf_bert_for_pre_training"), ("TFRobertaForCausalLM", "tf_roberta_for_causal_lm"),
    ("TFGPT2LMHeadModel", "tfgpt2lm_head_model"), ("TFGPT2Model", "tfgpt2_model"),
])
def test_keras_auto_model_names(cls, name):
    assert tf_model_name(cls) == name


@needs_fixtures
@pytest.mark.parametrize("case", CASES)
def test_model_name_matches_the_fixture(case):
    _, info = _fixture(case)
    cls = _class_of(case)
    if cls is not None:
        assert info.model_name == tf_model_name(cls)


def _class_of(case):
    import json
    tree = ROOT / case / "tree.json"
    if not tree.is_file():
        return None
    data = json.loads(tree.read_text())
    return data["model_class"]


# ---- PyTorch -> TF bookkeeping --------------------------------------------------------------------------------
def test_buffers_aliases_and_tied_projections_are_reported():
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    state = {"bert.embeddings.word_embeddings.weight": table, "bert.embeddings.position_ids": np.arange(4)[None],
             "cls.predictions.decoder.weight": table.copy(), "cls.predictions.decoder.bias": np.ones(4, "f4"),
             "cls.predictions.bias": np.ones(4, "f4"), "cls.extra.weight": np.zeros((2, 2), "f4")}
    conv = pt_to_tf(state, {"bert/embeddings/word_embeddings/weight": (4, 3), "mlm___cls/predictions/bias": (4,),
                            "classifier/kernel": (3, 2)})
    assert set(conv.arrays) == {"bert/embeddings/word_embeddings/weight", "mlm___cls/predictions/bias"}
    assert conv.origin["mlm___cls/predictions/bias"] == "cls.predictions.bias"
    assert set(conv.dropped) == {"bert.embeddings.position_ids", "cls.predictions.decoder.weight",
                                 "cls.predictions.decoder.bias"}
    assert "tied" in conv.dropped["cls.predictions.decoder.weight"]
    assert conv.missing == ["classifier/kernel"] and conv.unexpected == ["cls.extra.weight"]
    # An untied projection is not thrown away unless asked: the report shows it.
    state["cls.predictions.decoder.weight"] = table + 1
    assert pt_to_tf(state, ["mlm___cls/predictions/bias"]).unexpected.count("cls.predictions.decoder.weight") == 1
    assert "cls.predictions.decoder.weight" in pt_to_tf(state, ["x/bias"], tie_word_embeddings=True).dropped


def test_alias_alone_feeds_the_bias_and_legacy_names_load():
    state = {"lm_head.decoder.bias": np.ones(5, "f4"), "roberta.embeddings.LayerNorm.gamma": np.ones(3, "f4")}
    conv = pt_to_tf(state, ["lm_head/bias", "roberta/embeddings/LayerNorm/gamma"])
    assert conv.origin == {"lm_head/bias": "lm_head.decoder.bias",
                           "roberta/embeddings/LayerNorm/gamma": "roberta.embeddings.LayerNorm.gamma"}
    assert not conv.missing and not conv.unexpected


def test_shapes_are_aligned_or_reported():
    state = {"transformer.h.0.attn.c_attn.bias": np.arange(6, dtype="f4"),
             "transformer.h.0.attn.c_proj.weight": np.zeros((2, 2), "f4"), "classifier.weight": np.zeros((3, 4), "f4")}
    conv = pt_to_tf(state, {"transformer/h_._0/attn/c_attn/bias": (1, 6), "transformer/h_._0/attn/c_proj/weight":
                            (2, 2), "classifier/kernel": (4, 5)})
    assert conv.arrays["transformer/h_._0/attn/c_attn/bias"].shape == (1, 6)
    assert conv.mismatched == [("classifier/kernel", (4, 5), (3, 4))]
    assert "classifier/kernel" not in conv.missing and "classifier.weight" not in conv.unexpected


def test_bare_backbone_state_loads_into_prefixed_tf_names_and_back():
    bare = {"embeddings.word_embeddings.weight": np.ones((4, 3), "f4"), "pooler.dense.weight": np.eye(3, dtype="f4"),
            "pooler.dense.bias": np.zeros(3, "f4")}
    names = {"bert/embeddings/word_embeddings/weight": (4, 3), "bert/pooler/dense/kernel": (3, 3),
             "bert/pooler/dense/bias": (3,), "classifier/kernel": (3, 2)}
    conv = pt_to_tf(bare, names)
    assert conv.missing == ["classifier/kernel"] and not conv.unexpected
    assert set(tf_to_pt(conv.arrays, base_model=True)) == set(bare)
    assert set(tf_to_pt(conv.arrays, base_model=False)) == {"bert." + k for k in bare}


def test_tf_to_pt_transposes_kernels_and_flattens_conv1d_biases():
    kernel = np.arange(6, dtype="f4").reshape(2, 3)
    out = tf_to_pt({"classifier/kernel": kernel, "transformer/h_._0/mlp/c_fc/bias": np.ones((1, 3), "f4")},
                   base_model=False)
    assert np.array_equal(out["classifier.weight"], kernel.T) and out["classifier.weight"].flags.c_contiguous
    assert out["transformer.h.0.mlp.c_fc.bias"].shape == (3,)


# ---- whole models --------------------------------------------------------------------------------------------


@needs_fixtures
@pytest.mark.parametrize("case", CASES)
def test_fixture_round_trips_through_pytorch_names(case):
    weights, _ = _fixture(case)
    base = case.endswith("_model") and "lm_head" not in case
    pt = tf_to_pt(weights, base_model=base)
    conv = pt_to_tf(pt, {k: v.shape for k, v in weights.items()})
    assert not conv.missing and not conv.unexpected and not conv.mismatched and not conv.dropped
    for name, value in weights.items():
        assert conv.arrays[name].dtype == value.dtype and np.array_equal(conv.arrays[name], value), name


@pytest.mark.parametrize("case, pt_dir", [("bert_masked_lm", "pt"), ("gpt2_lm_head", "pt")])
def test_tf_to_pt_equals_v4s_conversion(case, pt_dir):
    folder = ROOT / case / pt_dir
    if not (folder / "model.safetensors").is_file():
        pytest.skip(f"{folder} not generated")
    weights, _ = _fixture(case)
    v4 = read_safetensors(folder / "model.safetensors")
    ours = tf_to_pt(weights, base_model=False)
    tied = {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias", "lm_head.weight"}
    assert set(ours) - tied == set(v4) - tied
    for key in set(ours) & set(v4):
        assert ours[key].shape == v4[key].shape and np.array_equal(ours[key], v4[key]), key
    # ... and v4's PyTorch weights go back into the TF names exactly.
    conv = pt_to_tf(v4, {k: v.shape for k, v in weights.items()})
    assert not conv.missing and not conv.unexpected and not conv.mismatched
    assert set(conv.dropped) <= tied
    for name, value in weights.items():
        assert np.array_equal(conv.arrays[name], value), name


# Our PyTorch class for each v4 TF class (the TF name without "TF").
@needs_fixtures
@pytest.mark.parametrize("case", CASES)
def test_our_pytorch_export_fills_every_v4_tf_weight(case):
    cls = _class_of(case)
    if cls == "TFEncoderDecoderModel":
        pytest.skip("a composite maps side by side (tests/tf/test_encoder_decoder.py, test_v4_seq2seq.py)")
    pt_cls = getattr(warmstart, cls[2:], None) if cls else None
    if pt_cls is None:
        pytest.skip(f"no PyTorch class for {cls}")
    config = warmstart.AutoConfig.from_pretrained(ROOT / case)
    hf = {k: v.detach().numpy() for k, v in export_state_dict(pt_cls(config)).items()}
    weights, _ = _fixture(case)
    conv = pt_to_tf(hf, {k: v.shape for k, v in weights.items()})
    assert not conv.missing, conv.missing
    assert not conv.unexpected and not conv.mismatched, (conv.unexpected, conv.mismatched)


@pytest.mark.skipif(not (ROOT / "bert_model" / "from_pt" / "model.safetensors").is_file(), reason="no from_pt fixture")
def test_bare_pytorch_bert_fills_v4s_tf_bert_model():
    """v4 loaded a PyTorch BertModel (no "bert." prefix) into TFBertModel (names all under "bert/")."""
    import json
    folder = ROOT / "bert_model" / "from_pt"
    state = read_safetensors(folder / "model.safetensors")
    assert not any(k.startswith("bert.") for k in state)
    names = {strip_model_name(k): tuple(v["shape"]) for k, v in
             json.loads((folder / "tree.json").read_text())["model_weights"].items()}
    conv = pt_to_tf(state, names)
    assert not conv.missing and not conv.unexpected and not conv.mismatched
    assert conv.origin["bert/embeddings/LayerNorm/gamma"] == "embeddings.LayerNorm.weight"
    assert np.array_equal(conv.arrays["bert/pooler/dense/kernel"], state["pooler.dense.weight"].T)
    back = tf_to_pt(conv.arrays, base_model=True)
    assert set(back) == set(state) - set(conv.dropped)
