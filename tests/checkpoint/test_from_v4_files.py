"""PyTorch classes on transformers 4.57.1's own TF and Flax files (tests/assets/tf_v4, flax_v4, flax_v4_seq2seq):
``from_pretrained(from_tf=True)`` reads v4's tf_model.h5 and ``from_flax=True`` its flax_model.msgpack (single,
sharded, bfloat16, and FlaxEncoderDecoderModel / TFEncoderDecoderModel composites) with v4's outputs within 1e-5.
A few are loaded again in a subprocess where TensorFlow and JAX cannot be imported (other tests of the session
import them here, so this process cannot show it)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

import warmstart as ws

pytest.importorskip("h5py")

ASSETS = Path(__file__).resolve().parents[1] / "assets"
ATOL = 1e-5
SKIPPED_OUTPUTS = ("outputs.loss", "outputs.cached_logits")  # v4's labelled / cached calls, tested elsewhere
COMPOSITES = [f"tf_v4/{n}" for n in ("bert2bert", "bert2gpt2")] + \
    [f"flax_v4_seq2seq/{p.name}" for p in sorted((ASSETS / "flax_v4_seq2seq").iterdir()) if p.is_dir()]
SINGLES = [f"{kind}/{p.name}" for kind in ("tf_v4", "flax_v4") for p in sorted((ASSETS / kind).iterdir())
           if (p / "tree.json").is_file() and f"{kind}/{p.name}" not in COMPOSITES]
# Other layouts of bert_sequence_classification's weights, checked against that case's outputs (bf16: its own).
EXTRAS = ["tf_v4/bert_sequence_classification/sharded", "flax_v4/bert_sequence_classification/sharded",
          "flax_v4/bert_sequence_classification/bf16", "flax_v4/bert_sequence_classification/safetensors"]
# v4's PyTorch name where it is not the TF / Flax name without its prefix.
PT_NAMES = {"BertForCausalLM": "BertLMHeadModel"}


def _flag(case: str) -> dict:
    return {"from_tf": True} if case.startswith("tf_v4/") else {"from_flax": True}


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array.astype(np.int64) if array.dtype.kind in "iu" else array)


def _ready(model):
    for module in model.modules():  # v4 computed the padded positions too
        if hasattr(module, "skip_padding"):
            module.skip_padding = False
    return model.eval()


def _diff(got, want) -> float:
    got = got.detach().float().numpy()
    assert got.shape == want.shape, f"shape {got.shape} vs v4's {want.shape}"
    return float(np.abs(got.astype(np.float64) - want).max())


def _load(cls, folder: Path, case: str, flag: dict | None = None):
    model, info = cls.from_pretrained(folder, output_loading_info=True, **(_flag(case) if flag is None else flag))
    assert info["missing_keys"] == info["unexpected_keys"] == info["mismatched_keys"] == [], info
    return _ready(model)


def single_diffs(case: str, flag: dict | None = None) -> dict[str, float]:
    """Max abs diff of every output field v4 stored (hidden states, attentions... entry by entry); ``flag``:
    from_pretrained's from_tf / from_flax (by default the one the case's folder needs)."""
    folder = ASSETS / case
    fixture = folder if (folder / "tree.json").is_file() and (folder / "expected.safetensors").is_file() \
        else folder.parent  # sharded/, safetensors/: the parent case's tree and outputs
    tree = json.loads((fixture / "tree.json").read_text())
    expected = load_file(folder / "expected.safetensors" if (folder / "expected.safetensors").is_file()
                         else fixture / "expected.safetensors")
    name = tree["model_class"].removeprefix("TF").removeprefix("Flax")
    model = _load(getattr(ws, PT_NAMES.get(name, name)), folder, case, flag)
    labels = set(tree.get("label_inputs", ()))  # fed only to v4's second, labelled call
    inputs = {k[len("inputs."):]: _tensor(v) for k, v in expected.items()
              if k.startswith("inputs.") and k[len("inputs."):] not in labels}
    with torch.no_grad():
        out = model(**inputs, output_hidden_states=True, output_attentions=True)
    diffs = {}
    for key, want in expected.items():
        if not key.startswith("outputs.") or key in SKIPPED_OUTPUTS or ".past_key_values." in key:
            continue
        field, *index = key[len("outputs."):].split(".")
        got = out[field][int(index[0])] if index else out[field]
        diffs[key] = _diff(got, want)
    assert diffs, f"{case}: no outputs compared"
    return diffs


def composite_diffs(case: str, folder: Path | None = None, flag: dict | None = None) -> dict[str, float]:
    """logits and encoder states (and TF's loss) against v4's; ``folder``: the case's weights in another layout."""
    expected = load_file(ASSETS / case / "expected.safetensors")
    model = _load(ws.EncoderDecoderModel, folder or ASSETS / case, case, flag)
    call = {k: _tensor(expected["inputs." + k])
            for k in ("input_ids", "attention_mask", "decoder_input_ids", "decoder_attention_mask")}
    # v4 numbered positions 0, 1, 2... for every family (RoBERTa's padding-aware ids are not what Flax v4 fed)
    call["position_ids"] = torch.arange(call["input_ids"].shape[1]).expand_as(call["input_ids"])
    call["decoder_position_ids"] = torch.arange(call["decoder_input_ids"].shape[1]).expand_as(
        call["decoder_input_ids"])
    with torch.no_grad():
        out = model(**call)
        diffs = {f"outputs.{f}": _diff(out[f], expected[f"outputs.{f}"])
                 for f in ("logits", "encoder_last_hidden_state")}
        if "inputs.labels" in expected:  # TF v4: the same call with labels (mean over labels != -100)
            loss = model(**call, labels=_tensor(expected["inputs.labels"])).loss
            diffs["outputs.loss"] = _diff(loss.reshape(1), expected["outputs.loss"])
    return diffs


def _assert_close(diffs: dict[str, float], case: str) -> None:
    worst = max(diffs, key=diffs.get)
    assert diffs[worst] <= ATOL, f"{case}: {worst} max abs diff {diffs[worst]:.3g} (> {ATOL})"


@pytest.mark.parametrize("case", SINGLES + EXTRAS)
def test_single_model_has_v4s_outputs(case):
    diffs = single_diffs(case)
    _assert_close(diffs, case)
    if case in SINGLES:  # every layer's states and attentions, not only the head's output
        assert {"outputs.hidden_states.0", "outputs.hidden_states.1", "outputs.attentions.0"} <= set(diffs)


def test_flax_named_safetensors_load_without_from_flax():
    """v4's Flax save_pretrained(safe_serialization=True) file (metadata format "flax"): v4's PyTorch
    from_pretrained converted it unasked."""
    _assert_close(single_diffs("flax_v4/bert_sequence_classification/safetensors", flag={}), "safetensors")


@pytest.mark.parametrize("flag", [{}, {"from_tf": True}])
def test_tf_named_safetensors_load_with_or_without_from_tf(tmp_path, flag):
    """v4's TF save_pretrained(safe_serialization=True) layout (metadata format "tf", names relative to the model
    with ":0"), here made from v4's own tf_model.h5: v4's PyTorch from_pretrained converted it unasked."""
    from safetensors.numpy import save_file

    from warmstart.checkpoint.tf_io import read_tf_weights

    case = ASSETS / "tf_v4/bert_masked_lm"
    arrays, _ = read_tf_weights(case)
    for name in ("config.json", "tree.json", "expected.safetensors"):
        shutil.copyfile(case / name, tmp_path / name)
    save_file({f"{k}:0": np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp_path / "model.safetensors"),
              metadata={"format": "tf"})
    _assert_close(single_diffs(str(tmp_path), flag=flag), "TF-named safetensors")


@pytest.mark.parametrize("kind", ["tf_v4", "flax_v4"])
def test_warm_start_from_v4_single_model_files(kind):
    """from_encoder_decoder_pretrained with encoder_from_* / decoder_from_*: each side has v4's outputs."""
    flag = "from_tf" if kind == "tf_v4" else "from_flax"
    dec = "bert_lm_head" if kind == "tf_v4" else "bert_causal_lm"
    model = _ready(ws.EncoderDecoderModel.from_encoder_decoder_pretrained(
        ASSETS / kind / "bert_model", ASSETS / kind / dec, **{f"encoder_{flag}": True, f"decoder_{flag}": True}))
    enc_x, dec_x = (load_file(ASSETS / kind / n / "expected.safetensors") for n in ("bert_model", dec))
    with torch.no_grad():
        states = model.encoder(**{k: _tensor(enc_x[f"inputs.{k}"])
                                  for k in ("input_ids", "attention_mask", "token_type_ids")}).last_hidden_state
        logits = model.decoder(**{k: _tensor(dec_x[f"inputs.{k}"]) for k in (
            "input_ids", "attention_mask", "token_type_ids", "encoder_hidden_states", "encoder_attention_mask")}).logits
    _assert_close({"last_hidden_state": _diff(states, enc_x["outputs.last_hidden_state"]),
                   "logits": _diff(logits, dec_x["outputs.logits"])}, kind)


@pytest.mark.parametrize("case", COMPOSITES)
def test_encoder_decoder_has_v4s_outputs(case):
    _assert_close(composite_diffs(case), case)


def test_flax_named_safetensors_of_an_encoder_decoder(tmp_path):
    from warmstart.checkpoint.flax_io import read_flax_weights, write_flax_safetensors

    case = "flax_v4_seq2seq/bert2gpt2"  # has enc_to_dec_proj
    write_flax_safetensors(read_flax_weights(ASSETS / case), tmp_path / "model.safetensors")
    shutil.copy(ASSETS / case / "config.json", tmp_path)
    _assert_close(composite_diffs(case, tmp_path, flag={}), case)


def test_single_model_classes_cover_every_v4_case():
    names = {json.loads((ASSETS / c / "tree.json").read_text())["model_class"] for c in SINGLES}
    assert {"TFBertLMHeadModel", "FlaxBertForCausalLM", "TFGPT2LMHeadModel", "FlaxRobertaModel"} <= names
    assert len(SINGLES) == 28 and len(COMPOSITES) == 5


SCRIPT = r'''
import importlib.util, json, sys
BLOCKED = ("tensorflow", "tf_keras", "keras", "jax", "jaxlib", "flax")
for name in BLOCKED:
    sys.modules[name] = None  # any import of them now raises ImportError
spec = importlib.util.spec_from_file_location("v4_files", sys.argv[1])
tests = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tests)
singles, composites = json.loads(sys.argv[2])
diffs = {c: tests.single_diffs(c) for c in singles}
diffs.update({c: tests.composite_diffs(c) for c in composites})
leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED and sys.modules[m] is not None)
assert not leaked, f"imported although blocked: {leaked}"
print(json.dumps(diffs))
'''


def test_loads_without_tensorflow_or_jax():
    singles = ["tf_v4/bert_pretraining", "tf_v4/bert_sequence_classification/sharded", "flax_v4/bert_causal_lm",
               "flax_v4/bert_sequence_classification/bf16", "flax_v4/gpt2_lm_head"]
    composites = ["tf_v4/bert2gpt2", "flax_v4_seq2seq/roberta2roberta"]
    done = subprocess.run([sys.executable, "-c", SCRIPT, __file__, json.dumps([singles, composites])],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    diffs = json.loads(done.stdout.strip().splitlines()[-1])
    assert sorted(diffs) == sorted(singles + composites)
    for case, got in diffs.items():
        _assert_close(got, case)
