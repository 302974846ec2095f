"""The transformers v4 Flax fixture files (tests/assets/flax_v4) are complete and self-consistent.

These checks need no model code: they pin what the files written by transformers 4.57.1 look like
(the msgpack layout of FORMATS.md, the tree each v4 class writes, the shards, the Flax-named
safetensors, the bf16 encoding, the PyTorch conversion), so the model-level parity tests that read
them can trust every file. tests/assets/make_flax_fixtures.py wrote them.
"""
import json
from pathlib import Path

import ml_dtypes
import msgpack
import numpy as np
import pytest
from flax.serialization import msgpack_restore
from flax.traverse_util import flatten_dict
from safetensors import safe_open
from safetensors.numpy import load_file

ROOT = Path(__file__).parent.parent / "assets" / "flax_v4"

# folder -> (v4 class, number of encoder layers, has a cache / cross-attention)
CASES = {
    "bert_model": ("FlaxBertModel", 2, False),
    "bert_pretraining": ("FlaxBertForPreTraining", 1, False),
    "bert_causal_lm": ("FlaxBertForCausalLM", 2, True),
    "bert_masked_lm": ("FlaxBertForMaskedLM", 2, False),
    "bert_next_sentence": ("FlaxBertForNextSentencePrediction", 1, False),
    "bert_sequence_classification": ("FlaxBertForSequenceClassification", 1, False),
    "bert_multiple_choice": ("FlaxBertForMultipleChoice", 1, False),
    "bert_token_classification": ("FlaxBertForTokenClassification", 1, False),
    "bert_question_answering": ("FlaxBertForQuestionAnswering", 1, False),
    "roberta_model": ("FlaxRobertaModel", 2, False),
    "roberta_causal_lm": ("FlaxRobertaForCausalLM", 1, True),
    "roberta_masked_lm": ("FlaxRobertaForMaskedLM", 1, False),
    "gpt2_model": ("FlaxGPT2Model", 2, False),
    "gpt2_lm_head": ("FlaxGPT2LMHeadModel", 2, True),
}
EXTRAS = "bert_sequence_classification"
PT_CASES = ("bert_masked_lm", "gpt2_lm_head")
TOTAL_BYTES_CAP = 1_700_000  # the whole folder stays a small commit


def _decode_msgpack(path):
    """Decode flax_model.msgpack by FORMATS.md alone: nested maps, each array an ExtType code 1
    whose payload is msgpack of (shape, dtype name, raw C-order bytes)."""

    def ext_hook(code, payload):
        assert code == 1, f"{path}: unexpected msgpack ExtType code {code}"
        shape, dtype_name, buffer = msgpack.unpackb(payload)
        dtype = ml_dtypes.bfloat16 if dtype_name == "bfloat16" else np.dtype(dtype_name)
        return np.frombuffer(buffer, dtype=dtype).reshape(shape)

    return msgpack.unpackb(path.read_bytes(), ext_hook=ext_hook, strict_map_key=False)


def _flat(tree):
    return {"/".join(path): value for path, value in flatten_dict(tree).items()}


def _restore(path):
    return _flat(msgpack_restore(path.read_bytes()))


def _tree(folder):
    return json.loads((folder / "tree.json").read_text())


def _assert_tree_matches(folder, flat):
    tree = _tree(folder)["params"]
    assert list(tree) == list(flat), f"{folder}: tree.json paths or their order differ from the msgpack"
    for path, entry in tree.items():
        assert list(flat[path].shape) == entry["shape"], f"{folder}: {path}"
        assert str(flat[path].dtype) == entry["dtype"], f"{folder}: {path}"


def test_every_case_has_its_files():
    assert sorted(p.name for p in ROOT.iterdir() if p.is_dir()) == sorted(CASES)
    for name, (_, _, decoder) in CASES.items():
        folder = ROOT / name
        expected = {"config.json", "flax_model.msgpack", "expected.safetensors", "tree.json"}
        if decoder:
            expected.add("generation_config.json")
        assert expected <= {p.name for p in folder.iterdir() if p.is_file()}, name
    total = sum(p.stat().st_size for p in ROOT.rglob("*") if p.is_file())
    assert total < TOTAL_BYTES_CAP, f"tests/assets/flax_v4 grew to {total} bytes"


@pytest.mark.parametrize("name", sorted(CASES))
def test_msgpack_restores_and_matches_tree_json(name):
    folder = ROOT / name
    flat = _restore(folder / "flax_model.msgpack")
    _assert_tree_matches(folder, flat)
    # The format as FORMATS.md describes it decodes to the very same arrays.
    plain = _flat(_decode_msgpack(folder / "flax_model.msgpack"))
    assert list(plain) == list(flat)
    for path, value in flat.items():
        assert plain[path].dtype == value.dtype and np.array_equal(plain[path], value), path


@pytest.mark.parametrize("name", sorted(CASES))
def test_tree_and_config_describe_the_class(name):
    folder = ROOT / name
    model_class, layers, decoder = CASES[name]
    tree = _tree(folder)
    assert tree["model_class"] == model_class
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == [model_class[len("Flax"):]]  # v4 drops the prefix
    assert config["transformers_version"] == "4.57.1"
    assert config.get("num_hidden_layers", config.get("n_layer")) == layers
    paths = list(tree["params"])
    layer_root = "h" if name.startswith("gpt2") else "encoder/layer"
    present = {p.split(f"{layer_root}/")[1].split("/")[0] for p in paths if f"{layer_root}/" in p}
    assert present == {str(i) for i in range(layers)}
    assert any("crossattention" in p for p in paths) == decoder
    assert ("cache" in tree) == decoder
    # Tied heads multiply by the word embeddings: no decoder kernel of their own.
    assert not any("decoder" in p for p in paths)


@pytest.mark.parametrize("name", sorted(CASES))
def test_expected_holds_inputs_and_every_output_field(name):
    folder = ROOT / name
    tree = _tree(folder)
    expected = load_file(folder / "expected.safetensors")
    inputs = {k[len("inputs."):]: v for k, v in expected.items() if k.startswith("inputs.")}
    outputs = {k[len("outputs."):]: v for k, v in expected.items() if k.startswith("outputs.")}
    assert set(inputs) | set(outputs) == {k.split(".", 1)[1] for k in expected}
    assert inputs["input_ids"].dtype == np.int32 and inputs["attention_mask"].shape == inputs["input_ids"].shape
    assert inputs["attention_mask"].reshape(-1, inputs["input_ids"].shape[-1])[-1, -1] == 0  # right padding
    assert ("token_type_ids" in inputs) == (not name.startswith("gpt2"))
    fields = {k.split(".")[0] for k in outputs} - {"cached_logits"}
    assert fields == set(tree["output_fields"])
    _, layers, decoder = CASES[name]
    assert sum(k.startswith("hidden_states.") for k in outputs) == layers + 1
    assert sum(k.startswith("attentions.") for k in outputs) == layers
    if decoder:
        assert sum(k.startswith("cross_attentions.") for k in outputs) == layers
        np.testing.assert_allclose(outputs["cached_logits"], outputs["logits"], atol=1e-5, rtol=0)
    for key, value in outputs.items():
        assert value.dtype == np.float32 and np.isfinite(value).all(), key
        if key.startswith("attentions."):
            np.testing.assert_allclose(value.sum(-1), 1.0, atol=1e-5)


def test_sharded_save_is_the_same_weights():
    folder = ROOT / EXTRAS / "sharded"
    index = json.loads((folder / "flax_model.msgpack.index.json").read_text())
    files = sorted(set(index["weight_map"].values()))
    assert len(files) >= 2 and files == sorted(p.name for p in folder.glob("flax_model-*-of-*.msgpack"))
    whole = _restore(ROOT / EXTRAS / "flax_model.msgpack")
    assert set(index["weight_map"]) == set(whole)
    seen = {}
    for shard in files:
        part = _restore(folder / shard)
        assert all(index["weight_map"][path] == shard for path in part), shard
        seen.update(part)
    assert set(seen) == set(whole)
    assert all(np.array_equal(seen[p], whole[p]) for p in whole)
    assert index["metadata"]["total_size"] == sum(v.nbytes for v in whole.values())


def test_flax_safetensors_keeps_flax_names():
    path = ROOT / EXTRAS / "safetensors" / "model.safetensors"
    with safe_open(path, "np") as f:
        assert f.metadata() == {"format": "flax"}
    tensors = load_file(path)
    whole = _restore(ROOT / EXTRAS / "flax_model.msgpack")
    assert set(tensors) == {p.replace("/", ".") for p in whole}
    assert all(np.array_equal(tensors[p.replace("/", ".")], v) for p, v in whole.items())


def test_bf16_params_are_the_rounded_fp32_params():
    folder = ROOT / EXTRAS / "bf16"
    bf16 = _restore(folder / "flax_model.msgpack")
    _assert_tree_matches(folder, bf16)
    whole = _restore(ROOT / EXTRAS / "flax_model.msgpack")
    assert set(bf16) == set(whole)
    for path, value in bf16.items():
        assert value.dtype == ml_dtypes.bfloat16, path
        assert np.array_equal(value, whole[path].astype(ml_dtypes.bfloat16)), path
    plain = _flat(_decode_msgpack(folder / "flax_model.msgpack"))
    assert all(np.array_equal(plain[p], v) for p, v in bf16.items())
    expected = load_file(folder / "expected.safetensors")
    fp32 = load_file(ROOT / EXTRAS / "expected.safetensors")
    assert np.array_equal(expected["inputs.input_ids"], fp32["inputs.input_ids"])
    # Rounded weights move the logits, but only a little.
    diff = np.abs(expected["outputs.logits"] - fp32["outputs.logits"]).max()
    assert 0 < diff < 0.5


def _pt_name(flax_path):
    """The PyTorch name of a v4 Flax leaf (FORMATS.md's rule), and whether it is transposed."""
    parts = flax_path.split("/")
    leaf = parts[-1]
    if leaf == "kernel":
        return ".".join(parts[:-1] + ["weight"]), True
    if leaf in ("scale", "embedding"):
        return ".".join(parts[:-1] + ["weight"]), False
    return ".".join(parts), False


@pytest.mark.parametrize("name", PT_CASES)
def test_pytorch_copy_is_the_same_weights(name):
    folder = ROOT / name
    with safe_open(folder / "pt" / "model.safetensors", "np") as f:
        assert f.metadata() == {"format": "pt"}
    pt = load_file(folder / "pt" / "model.safetensors")
    flat = _restore(folder / "flax_model.msgpack")
    mapped = {}
    for path, value in flat.items():
        pt_name, transposed = _pt_name(path)
        mapped[pt_name] = value.T if transposed else value
    assert set(mapped) == set(pt)
    assert all(np.array_equal(pt[k], v) for k, v in mapped.items())
    config = json.loads((folder / "pt" / "config.json").read_text())
    assert config["architectures"] == [CASES[name][0][len("Flax"):]]
