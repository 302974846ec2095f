"""from_pretrained(from_tf=True) on TF1 checkpoints as google-research/bert and TF-Hub's bertseq2seq write them.

The checkpoints are written here with TensorFlow's own ops (tests/support/tf1_writer.py) from random PyTorch models
(pre-training with Adam slots and global_step in 2 shards, a 3-label classifier, SQuAD, a bertseq2seq bundle); all
of them are then loaded in ONE subprocess where TensorFlow and JAX cannot be imported, and its outputs are
compared here with the original models'. The error cases need no TensorFlow and run in this process.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import warmstart as ws
from warmstart.checkpoint.pretrained import LoadingError, export_state_dict
from warmstart.storage.files import CheckpointNotFoundError

ATOL = 1e-6
TESTS = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("tf_support_for_tf1", TESTS / "tf" / "support.py")
S = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(S)

PREFIX = "bert_model.ckpt"
# google-research's bert_config.json: BertConfig's fields, no model_type, no num_labels.
GOOGLE_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                 "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
                 "type_vocab_size", "initializer_range")
GEN = dict(S.TINY)  # BertGenerationConfig takes the same tiny sizes (it has no token types)


def _google_config(folder: Path) -> None:
    data = S.bert_config().to_dict()
    (folder / "bert_config.json").write_text(json.dumps({k: data[k] for k in GOOGLE_FIELDS}))


def _inputs():
    ids, mask = S.ids_and_mask()
    types = np.zeros_like(ids)
    types[:, 4:] = 1
    types[mask == 0] = 0
    states, smask = S.encoder_states()
    return {"ids": ids, "mask": mask, "types": types, "states": states, "smask": smask,
            "dec_ids": ids[:, :5].copy(), "dec_mask": mask[:, :5].copy()}


def _no_padding_skip(model):
    for module in model.modules():
        if hasattr(module, "skip_padding"):
            module.skip_padding = False
    return model.eval()


def _seq2seq_models():
    enc = S.random_pt("BertGenerationEncoder", ws.BertGenerationConfig(**GEN), seed=0)
    dec = S.random_pt("BertGenerationDecoder", ws.BertGenerationConfig(**GEN, is_decoder=True,
                                                                       add_cross_attention=True), seed=1)
    # A bertseq2seq bundle has one embedding table and no output bias: make the decoder what the bundle can hold
    # (a loaded decoder's new output bias is zeros).
    with torch.no_grad():
        dec_params = dict(dec.bert.named_parameters())
        for name, p in enc.named_parameters():
            if name.startswith("embeddings."):
                dec_params[name].copy_(p)
        dec.lm_head.bias.zero_()
    return enc, dec


def _shared_bundle(google_names, decoder_state) -> dict:
    """A TF-Hub module with one stack for both sides: a decoder's layers, encdec scopes included, as ``encoder``."""
    out = {}
    for name, array in google_names(decoder_state).items():
        name = name.replace("/crossattention/self/", "/attention/encdec/")
        out["module/" + name.replace("/crossattention/output/", "/attention/encdec_output/")] = array
    return out


@pytest.fixture(scope="module")
def google(tmp_path_factory):
    """Folders of TF1 checkpoints (written with TensorFlow) and the PyTorch models they were made from."""
    pytest.importorskip("tensorflow")
    from tf1_writer import google_names, seq2seq_names, with_adam, write_tf1

    root = tmp_path_factory.mktemp("google")
    models = {"pre": S.random_pt("BertForPreTraining", S.bert_config(), seed=0),
              "cls": S.random_pt("BertForSequenceClassification", S.bert_config(num_labels=3), seed=1),
              "qa": S.random_pt("BertForQuestionAnswering", S.bert_config(), seed=2)}
    for name, model in models.items():
        folder = root / name
        folder.mkdir()
        arrays = google_names(export_state_dict(model))
        if name == "pre":  # what run_pretraining.py leaves: Adam slots and the step, here in 2 data files
            write_tf1(str(folder / PREFIX), with_adam(arrays), shards=2)
        else:
            write_tf1(str(folder / PREFIX), arrays)
        if name != "qa":  # qa has no config at all: config= is needed
            _google_config(folder)
    enc, dec = _seq2seq_models()
    (root / "s2s").mkdir()
    write_tf1(str(root / "s2s" / "model.ckpt"),
              with_adam(seq2seq_names(export_state_dict(enc), export_state_dict(dec))))
    models["gen_enc"], models["gen_dec"] = enc, dec
    shared = S.random_pt("BertGenerationDecoder", dec.config, seed=3)
    with torch.no_grad():
        shared.lm_head.bias.zero_()
    (root / "shared").mkdir()
    write_tf1(str(root / "shared" / "model.ckpt"), _shared_bundle(google_names, export_state_dict(shared)))
    models["shared"] = shared
    return root, models


# ---- everything loaded in one TensorFlow-free process ----------------------------------------------------------
SCRIPT = r'''
import sys
BLOCKED = ("tensorflow", "tf_keras", "keras", "jax", "jaxlib", "flax")
for name in BLOCKED:
    sys.modules[name] = None  # any import of them now raises ImportError
import json, logging
from pathlib import Path
import numpy as np, torch
import warmstart as ws
from warmstart.checkpoint.pretrained import export_state_dict

spec = json.loads(sys.argv[1])
root, tiny, gen = Path(spec["root"]), spec["tiny"], spec["gen"]
x = dict(np.load(spec["inputs"]))
t = {k: torch.from_numpy(v) for k, v in x.items()}
outputs, info, messages = {}, {}, []

class Keep(logging.Handler):
    def emit(self, record):
        messages.append(record.getMessage())

logging.getLogger("warmstart").addHandler(Keep())
logging.getLogger("warmstart").setLevel(logging.INFO)

def ready(model):
    for module in model.modules():
        if hasattr(module, "skip_padding"):
            module.skip_padding = False
    return model.eval()

def load(tag, cls, path, **kw):
    messages.clear()
    model, got = getattr(ws, cls).from_pretrained(path, from_tf=True, output_loading_info=True, **kw)
    info[tag] = {"class": type(model).__name__, "log": list(messages),
                 **{k: [str(v) for v in got[k]] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")}}
    return ready(model)

def keep(tag, out):
    for k, v in out.items():
        if isinstance(v, torch.Tensor):
            outputs[f"{tag}.{k}"] = v.detach().numpy()

bert = dict(input_ids=t["ids"], attention_mask=t["mask"], token_type_ids=t["types"])
gen_dec = dict(input_ids=t["ids"], attention_mask=t["mask"], encoder_hidden_states=t["states"],
               encoder_attention_mask=t["smask"])
pair = dict(input_ids=t["ids"], attention_mask=t["mask"], decoder_input_ids=t["dec_ids"],
            decoder_attention_mask=t["dec_mask"])
with torch.no_grad():
    keep("pre", load("pre", "BertForPreTraining", root / "pre" / "bert_model.ckpt.index")(**bert))
    keep("bert", load("bert", "BertModel", root / "pre" / "bert_model.ckpt")(**bert))
    keep("auto", load("auto", "AutoModel", root / "pre")(**bert))
    load("auto_cls_from_pre", "AutoModelForSequenceClassification", root / "pre", num_labels=3)
    load("cls_from_pre", "BertForSequenceClassification", root / "pre" / "bert_model.ckpt.index", num_labels=3)
    keep("cls_kwarg", load("cls_kwarg", "BertForSequenceClassification", root / "cls" / "bert_model.ckpt.index",
                           num_labels=3)(**bert))
    keep("cls_config", load("cls_config", "BertForSequenceClassification", root / "cls",
                            config=ws.BertConfig(**tiny, num_labels=3))(**bert))
    keep("qa", load("qa", "BertForQuestionAnswering", root / "qa" / "bert_model.ckpt",
                    config=ws.BertConfig(**tiny))(**bert))
    enc_cfg = ws.BertGenerationConfig(**gen)
    dec_cfg = ws.BertGenerationConfig(**gen, is_decoder=True, add_cross_attention=True)
    keep("gen_enc", load("gen_enc", "BertGenerationEncoder", root / "s2s", config=enc_cfg)(
        input_ids=t["ids"], attention_mask=t["mask"]))
    keep("gen_dec", load("gen_dec", "BertGenerationDecoder", root / "s2s" / "model.ckpt.index",
                         config=dec_cfg)(**gen_dec))
    keep("shared_dec", load("shared_dec", "BertGenerationDecoder", root / "shared", config=dec_cfg)(**gen_dec))
    load("shared_enc", "BertGenerationEncoder", root / "shared", config=enc_cfg)
    config = ws.EncoderDecoderConfig.from_encoder_decoder_configs(enc_cfg, dec_cfg)
    keep("e2d", load("e2d", "EncoderDecoderModel", root / "s2s", config=config)(**pair))
    messages.clear()
    warm = ready(ws.EncoderDecoderModel.from_encoder_decoder_pretrained(
        root / "pre", root / "pre", encoder_from_tf=True, decoder_from_tf=True))
    info["warm"] = {"log": list(messages), "class": [type(warm.encoder).__name__, type(warm.decoder).__name__]}
    keep("warm.encoder", warm.encoder(**bert))
    for side in ("encoder", "decoder"):
        for k, v in export_state_dict(getattr(warm, side)).items():
            outputs[f"warm.state.{side}.{k}"] = v.detach().numpy()

np.savez(spec["outputs"], **outputs)
Path(spec["info"]).write_text(json.dumps(info))
leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED and sys.modules[m] is not None)
assert not leaked, f"imported although blocked: {leaked}"
'''


@pytest.fixture(scope="module")
def loaded(google, tmp_path_factory):
    root, _ = google
    work = tmp_path_factory.mktemp("tf_free")
    np.savez(work / "inputs.npz", **_inputs())
    spec = {"root": str(root), "tiny": S.TINY, "gen": GEN, "inputs": str(work / "inputs.npz"),
            "outputs": str(work / "outputs.npz"), "info": str(work / "info.json")}
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(spec)], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return dict(np.load(work / "outputs.npz")), json.loads((work / "info.json").read_text())


def _close(got, want, what):
    want = want.detach().numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} vs {want.shape}"
    diff = float(np.abs(got.astype(np.float64) - want).max())
    assert diff <= ATOL, f"{what}: max abs diff {diff:.3g}"


def _reference(model, **inputs):
    t = {k: torch.from_numpy(v) for k, v in _inputs().items()}
    bert = dict(input_ids=t["ids"], attention_mask=t["mask"], token_type_ids=t["types"])
    with torch.no_grad():
        return _no_padding_skip(model)(**(bert if not inputs else {k: t[v] for k, v in inputs.items()}))


def _same(outputs, tag, reference, fields):
    for f in fields:
        _close(outputs[f"{tag}.{f}"], reference[f], f"{tag}.{f}")


def test_pretraining_checkpoint_with_adam_slots_in_two_shards(google, loaded):
    _, models = google
    outputs, info = loaded
    _same(outputs, "pre", _reference(models["pre"]), ("prediction_logits", "seq_relationship_logits"))
    assert info["pre"]["missing_keys"] == info["pre"]["unexpected_keys"] == info["pre"]["mismatched_keys"] == []
    assert any("optimizer" in m and "adam_m" in m for m in info["pre"]["log"])


@pytest.mark.parametrize("tag", ["bert", "auto"])
def test_backbone_from_pretraining_checkpoint_reports_the_heads_unused(google, loaded, tag):
    _, models = google
    outputs, info = loaded
    assert info[tag]["class"] == "BertModel"
    _same(outputs, tag, _reference(models["pre"].bert), ("last_hidden_state", "pooler_output"))
    assert info[tag]["missing_keys"] == []
    assert info[tag]["unexpected_keys"] and all(k.startswith("cls.") for k in info[tag]["unexpected_keys"])
    assert {"cls.seq_relationship.weight", "cls.predictions.bias"} <= set(info[tag]["unexpected_keys"])


@pytest.mark.parametrize("tag", ["auto_cls_from_pre", "cls_from_pre"])
def test_classifier_is_reported_missing_when_loading_a_pretraining_checkpoint(loaded, tag):
    info = loaded[1][tag]
    assert info["class"] == "BertForSequenceClassification"
    assert sorted(info["missing_keys"]) == ["classifier.bias", "classifier.weight"]
    assert {"cls.seq_relationship.weight", "cls.predictions.bias"} <= set(info["unexpected_keys"])


@pytest.mark.parametrize("tag", ["cls_kwarg", "cls_config"])
def test_classifier_checkpoint(google, loaded, tag):
    outputs, info = loaded
    _same(outputs, tag, _reference(google[1]["cls"]), ("logits",))
    assert outputs[f"{tag}.logits"].shape == (2, 3)
    assert info[tag]["missing_keys"] == info[tag]["unexpected_keys"] == []


def test_squad_checkpoint_with_config_passed(google, loaded):
    outputs, info = loaded
    _same(outputs, "qa", _reference(google[1]["qa"]), ("start_logits", "end_logits"))
    assert info["qa"]["missing_keys"] == info["qa"]["unexpected_keys"] == []


def test_bertseq2seq_encoder_and_decoder_sides(google, loaded):
    _, models = google
    outputs, info = loaded
    _same(outputs, "gen_enc", _reference(models["gen_enc"], input_ids="ids", attention_mask="mask"),
          ("last_hidden_state",))
    assert info["gen_enc"]["missing_keys"] == info["gen_enc"]["unexpected_keys"] == []
    dec = _reference(models["gen_dec"], input_ids="ids", attention_mask="mask", encoder_hidden_states="states",
                     encoder_attention_mask="smask")
    _same(outputs, "gen_dec", dec, ("logits",))
    assert info["gen_dec"]["missing_keys"] == ["lm_head.bias"]  # the bundle has no output bias
    assert info["gen_dec"]["unexpected_keys"] == []


def test_bertseq2seq_module_with_one_shared_stack(google, loaded):
    """No decoder stack: both sides read the module's encoder stack; its encdec scopes are the decoder's
    cross-attention, which the encoder reports unused."""
    outputs, info = loaded
    dec = _reference(google[1]["shared"], input_ids="ids", attention_mask="mask", encoder_hidden_states="states",
                     encoder_attention_mask="smask")
    _same(outputs, "shared_dec", dec, ("logits",))
    assert info["shared_dec"]["missing_keys"] == ["lm_head.bias"] and info["shared_dec"]["unexpected_keys"] == []
    assert info["shared_enc"]["missing_keys"] == []
    unused = info["shared_enc"]["unexpected_keys"]
    assert len(unused) == 16 and all(".crossattention." in k for k in unused)


def test_encoder_decoder_model_from_bertseq2seq_bundle(google, loaded):
    _, models = google
    outputs, info = loaded
    pair = ws.EncoderDecoderModel(encoder=models["gen_enc"], decoder=models["gen_dec"])
    want = _reference(pair, input_ids="ids", attention_mask="mask", decoder_input_ids="dec_ids",
                      decoder_attention_mask="dec_mask")
    _same(outputs, "e2d", want, ("logits", "encoder_last_hidden_state"))
    assert info["e2d"]["class"] == "EncoderDecoderModel"
    assert info["e2d"]["missing_keys"] == ["decoder.lm_head.bias"]
    assert info["e2d"]["unexpected_keys"] == []


def test_encoder_decoder_warm_start_from_two_google_checkpoints(google, loaded):
    _, models = google
    outputs, info = loaded
    assert info["warm"]["class"] == ["BertModel", "BertLMHeadModel"]
    _same(outputs, "warm.encoder", _reference(models["pre"].bert), ("last_hidden_state",))
    theirs = export_state_dict(models["pre"])
    state = {k[len("warm.state."):]: v for k, v in outputs.items() if k.startswith("warm.state.")}
    for key, want in theirs.items():
        if key.startswith("bert.") and not key.startswith("bert.pooler."):
            _close(state[f"encoder.{key[len('bert.'):]}"], want, f"encoder {key}")
            _close(state[f"decoder.{key}"], want, f"decoder {key}")
        elif key.startswith("cls.predictions."):
            _close(state[f"decoder.{key}"], want, f"decoder {key}")
    cross = [k for k in state if ".crossattention." in k]
    assert cross and all(k.startswith("decoder.bert.encoder.layer.") for k in cross)
    assert any("crossattention" in m and "newly initialised" in m for m in info["warm"]["log"]), info["warm"]["log"]


# ---- errors (no TensorFlow needed) -----------------------------------------------------------------------------
def test_from_tf_on_a_folder_without_tf_weights_names_the_folder(tmp_path):
    S.bert_config().save_pretrained(tmp_path)
    with pytest.raises(CheckpointNotFoundError, match=str(tmp_path)) as err:
        ws.BertModel.from_pretrained(tmp_path, from_tf=True)
    assert "TF1 checkpoint" in str(err.value) and "config.json" in str(err.value)
    with pytest.raises(CheckpointNotFoundError, match=str(tmp_path)):
        ws.BertModel.from_pretrained(tmp_path, from_flax=True)


def test_tf1_checkpoint_without_config_asks_for_config(google):
    root, _ = google
    with pytest.raises(FileNotFoundError, match="pass config="):
        ws.BertForQuestionAnswering.from_pretrained(root / "qa", from_tf=True)


def test_encoder_decoder_from_tf1_checkpoint_without_config(google):
    root, _ = google
    for folder in ("s2s", "pre"):  # pre has google's bert_config.json: a single BERT's, not the pair's
        with pytest.raises(LoadingError, match="pass config=EncoderDecoderConfig"):
            ws.EncoderDecoderModel.from_pretrained(root / folder, from_tf=True)


def test_folder_with_several_checkpoints(google, tmp_path):
    """An Estimator's model_dir: the checkpoint TF's ``checkpoint`` file names, else an error saying so."""
    root, models = google
    for source, step in (("pre", 1000), ("cls", 2000)):
        for f in (root / source).glob(f"{PREFIX}.*"):
            shutil.copy(f, tmp_path / f.name.replace(PREFIX, f"model.ckpt-{step}"))
    shutil.copy(root / "pre" / "bert_config.json", tmp_path)
    with pytest.raises(OSError, match=r"several TF checkpoints .* pass the \.index file"):
        ws.BertModel.from_pretrained(tmp_path, from_tf=True)
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "/elsewhere/model.ckpt-2000"\n'
                                         'all_model_checkpoint_paths: "/elsewhere/model.ckpt-1000"\n')
    model = ws.BertModel.from_pretrained(tmp_path, from_tf=True)
    want = models["cls"].bert.get_input_embeddings().weight
    torch.testing.assert_close(model.get_input_embeddings().weight, want, rtol=0, atol=0)
    model = ws.BertModel.from_pretrained(tmp_path / "model.ckpt-1000.index", from_tf=True)
    want = models["pre"].bert.get_input_embeddings().weight
    torch.testing.assert_close(model.get_input_embeddings().weight, want, rtol=0, atol=0)


def test_wrong_num_labels_is_a_shape_mismatch(google, tmp_path):
    root, models = google
    mismatch = r"shape mismatch: .*classifier\.weight is \(3, 32\) in the checkpoint but \(5, 32\)"
    with pytest.raises(LoadingError, match=mismatch):
        ws.BertForSequenceClassification.from_pretrained(root / "cls", from_tf=True, num_labels=5)
    model, info = ws.BertForSequenceClassification.from_pretrained(
        root / "cls", from_tf=True, num_labels=5, ignore_mismatched_sizes=True, output_loading_info=True)
    assert {m[0] for m in info["mismatched_keys"]} == {"classifier.weight", "classifier.bias"}
    # the backbone still came from the checkpoint
    torch.testing.assert_close(model.bert.get_input_embeddings().weight,
                               models["cls"].bert.get_input_embeddings().weight, rtol=0, atol=0)
    # a copy without bert_config.json beside it needs config=
    shutil.copytree(root / "cls", tmp_path / "cls")
    (tmp_path / "cls" / "bert_config.json").unlink()
    with pytest.raises(FileNotFoundError, match="bert_config.json"):
        ws.BertForSequenceClassification.from_pretrained(tmp_path / "cls" / PREFIX, from_tf=True)
