"""TFEncoderDecoderModel against transformers 4.57.1's own files (tests/assets/tf_v4/bert2bert, bert2gpt2; see the
README there): v4's tf_model.h5 loads with v4's outputs, loss and generated tokens (eager, and v4's XLA tokens
where v4's own XLA agreed with its eager run), saves back byte for byte, and a fresh model has v4's names."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")
from safetensors.numpy import load_file  # noqa: E402

import warmstart.tf as wtf  # noqa: E402

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "tf_v4"
CASES = ("bert2bert", "bert2gpt2")
ATOL = 1e-5


@pytest.fixture(scope="module", params=CASES)
def case(request):
    folder = ASSETS / request.param
    return (folder, json.loads((folder / "tree.json").read_text()), load_file(str(folder / "expected.safetensors")),
            wtf.TFEncoderDecoderModel.from_pretrained(folder))


def _close(a, b, what):
    d = float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())
    assert d <= ATOL, f"{what}: max abs diff {d:.3g}"


def test_outputs_and_loss(case):
    _, tree, x, model = case
    call = {k: x["inputs." + k] for k in ("input_ids", "attention_mask", "decoder_input_ids",
                                          "decoder_attention_mask")}
    out = model(**call)
    _close(out.logits, x["outputs.logits"], "logits")
    _close(out.encoder_last_hidden_state, x["outputs.encoder_last_hidden_state"], "encoder states")
    _close(model(**call, labels=x["inputs.labels"]).loss, x["outputs.loss"], "loss")
    # v4's labels-only call attends to the pad that -100 became; ours hides it (see the README): with v4's
    # shifted labels and no decoder mask the logits are v4's
    shifted = model(input_ids=x["inputs.input_ids"], attention_mask=x["inputs.attention_mask"],
                    decoder_input_ids=x["inputs.shifted_labels"])
    _close(shifted.logits, x["outputs.logits_from_labels"], "logits from v4's shifted labels")
    np.testing.assert_array_equal(model.prepare_decoder_input_ids_from_labels(x["inputs.labels"]).numpy(),
                                  x["inputs.shifted_labels"])


def test_generated_tokens(case):
    _, tree, x, model = case
    g = tree["generate"]
    common = dict(attention_mask=x["inputs.attention_mask"], decoder_start_token_id=g["decoder_start_token_id"],
                  max_new_tokens=g["max_new_tokens"])
    ids = x["inputs.input_ids"]
    np.testing.assert_array_equal(model.generate(ids, **common).numpy(), x["generate.greedy"])
    np.testing.assert_array_equal(model.generate(ids, **common, **g["beam_settings"]).numpy(), x["generate.beam"])
    eos = g["greedy_eos"]["eos_token_id"]
    np.testing.assert_array_equal(model.generate(ids, **common, eos_token_id=eos).numpy(), x["generate.greedy_eos"])
    if "generate.greedy_eos_xla" in x:  # v4's XLA pads to max_length; ours cuts as eagerly
        want = x["generate.greedy_eos_xla"]
        got = model.generate(ids, **common, eos_token_id=eos, jit_compile=True).numpy()
        np.testing.assert_array_equal(got, want[:, :got.shape[1]])
        assert (want[:, got.shape[1]:] == 0).all()


def test_saves_v4s_file_and_names(case, tmp_path):
    folder, tree, _, model = case
    model.save_pretrained(tmp_path)
    assert (tmp_path / "tf_model.h5").read_bytes() == (folder / "tf_model.h5").read_bytes()
    fresh = wtf.TFEncoderDecoderModel(model.config)
    names = [f"{tree['model_name']}/{n}:0" for n in fresh.named_weights()]
    assert names == list(tree["model_weights"])
    fresh.save_pretrained(tmp_path / "fresh")
    with h5py.File(tmp_path / "fresh" / "tf_model.h5") as f:
        layers = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["layer_names"]]
    assert layers == tree["h5"]["root_attrs"]["layer_names"]["value"]
