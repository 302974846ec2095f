"""Every Flax class against transformers 4.57.1's outputs on its own files (tests/assets/flax_v4): the fresh tree
has v4's paths, shapes and dtypes; loaded, every output field (hidden states, attentions, cross-attentions) is
within 1e-5; decoders give the same logits through v4's cache, fed as v4 was."""
import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

import warmstart as W
from warmstart.checkpoint.flax_layout import flatten_tree
from warmstart.flax.roberta import roberta_positions

ROOT = Path(__file__).parent.parent / "assets" / "flax_v4"
CASES = sorted(p.name for p in ROOT.iterdir() if p.is_dir())
ATOL = 1e-5


def _case(name):
    folder = ROOT / name
    tree = json.loads((folder / "tree.json").read_text())
    expected = load_file(folder / "expected.safetensors")
    inputs = {k[len("inputs."):]: v for k, v in expected.items() if k.startswith("inputs.")}
    return folder, tree, getattr(W, tree["model_class"]), inputs, expected


def _field(out, key: str):
    name, *index = key.split(".")
    value = out[name]
    return value[int(index[0])] if index else value


@pytest.mark.parametrize("name", CASES)
def test_fresh_tree_is_v4s(name):
    folder, tree, cls, _, _ = _case(name)
    config = cls.config_class.from_json_file(folder / "config.json")
    shapes = flatten_tree(cls(config, _do_init=False).params_shape_tree)
    assert set(shapes) == set(tree["params"])
    for path, entry in tree["params"].items():
        assert list(shapes[path].shape) == entry["shape"] and str(shapes[path].dtype) == entry["dtype"], path


@pytest.mark.parametrize("name", CASES)
def test_outputs_match_v4(name):
    folder, tree, cls, inputs, expected = _case(name)
    out = cls.from_pretrained(folder)(**inputs, output_hidden_states=True, output_attentions=True)
    assert [f for f in tree["output_fields"]] == [f for f in out.keys() if f != "loss"]
    for key, want in expected.items():
        if key.startswith("outputs.") and key != "outputs.cached_logits":
            got = np.asarray(_field(out, key[len("outputs."):]))
            diff = float(np.abs(got - want).max())
            assert diff <= ATOL, f"{key}: max abs diff {diff:.3g}"


@pytest.mark.parametrize("name", [n for n in CASES if "causal" in n or n == "gpt2_lm_head"])
def test_cached_decoding_matches_v4(name):
    folder, tree, cls, inputs, expected = _case(name)
    model = cls.from_pretrained(folder)
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    if name.startswith("roberta"):
        positions = np.asarray(roberta_positions(ids, model.config.pad_token_id))
    else:
        positions = np.broadcast_to(np.arange(ids.shape[1]), ids.shape)
    cache = model.init_cache(*ids.shape)
    shapes = {k: list(np.shape(v)) for k, v in flatten_tree(cache).items()}
    assert shapes == {k: v["shape"] for k, v in tree["cache"].items()}
    encoder = {k: inputs[k] for k in ("encoder_hidden_states", "encoder_attention_mask")}
    logits = []
    for lo, hi in ((0, 4), (4, 5), (5, 6), (6, 7)):  # the first 4 tokens at once, then one at a time (v4's run)
        extra = {"token_type_ids": inputs["token_type_ids"][:, lo:hi]} if "token_type_ids" in inputs else {}
        out = model(ids[:, lo:hi], attention_mask=mask, position_ids=positions[:, lo:hi], past_key_values=cache,
                    **encoder, **extra)
        cache = out.past_key_values
        logits.append(np.asarray(out.logits))
    got = np.concatenate(logits, axis=1)
    assert float(np.abs(got - expected["outputs.cached_logits"]).max()) <= ATOL
    assert float(np.abs(got - expected["outputs.logits"]).max()) <= ATOL  # cached == uncached

