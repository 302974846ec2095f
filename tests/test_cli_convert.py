"""`warmstart convert`: google-research TF1 folders and v4 TF / Flax folders become folders transformers loads,
with the same outputs (transformers 5.23 is the oracle) and tokenizer files with the right casing."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

sys.path.insert(0, str(Path(__file__).parent / "tf"))
from support import bert_config, random_pt  # noqa: E402  (tests/tf/support.py)
from tf1_writer import google_names, seq2seq_names, with_adam, write_tf1  # noqa: E402

import warmstart as ws  # noqa: E402
from warmstart.checkpoint.pretrained import export_state_dict  # noqa: E402
from warmstart.cli import main  # noqa: E402

transformers = pytest.importorskip("transformers")
ASSETS = Path(__file__).parent / "assets"
GOOGLE_FIELDS = ("attention_probs_dropout_prob", "hidden_act", "hidden_dropout_prob", "hidden_size",
                 "initializer_range", "intermediate_size", "max_position_embeddings", "num_attention_heads",
                 "num_hidden_layers", "type_vocab_size", "vocab_size")
IDS = torch.tensor([[2, 5, 7, 9, 11, 3], [2, 8, 13, 3, 0, 0]])
MASK = (IDS != 0).long()


def _vocab(cased: bool) -> list[str]:
    words = ["the", "cat", "sat", "on", "mat", "dog", "ran", "is", "it"]
    if cased:
        words += ["The", "Cat"]
    pieces = [chr(97 + i) for i in range(26)] + ["##" + chr(97 + i) for i in range(26)]
    vocab = ["[PAD]", "[unused0]", "[CLS]", "[SEP]", "[MASK]", "[UNK]", ".", ","] + words + pieces
    return (vocab + [f"w{i}" for i in range(99)])[:99]


def _google_folder(root: Path, name: str, model, *, cased=False, adam=True, shards=1, arrays=None) -> Path:
    folder = root / name
    folder.mkdir()
    names = arrays if arrays is not None else google_names(export_state_dict(model))
    write_tf1(str(folder / "bert_model.ckpt"), with_adam(names) if adam else names, shards=shards)
    config = {k: v for k, v in model.config.to_dict().items() if k in GOOGLE_FIELDS}
    (folder / "bert_config.json").write_text(json.dumps(config))
    (folder / "vocab.txt").write_text("\n".join(_vocab(cased)) + "\n")
    return folder


@pytest.fixture(scope="module")
def google(tmp_path_factory):
    """google-research folders written with TensorFlow, and the models they were made from."""
    pytest.importorskip("tensorflow")
    root = tmp_path_factory.mktemp("google")
    models = {"pretraining": random_pt("BertForPreTraining", bert_config(), seed=1),
              "classifier": random_pt("BertForSequenceClassification", bert_config(num_labels=3), seed=2),
              "squad": random_pt("BertForQuestionAnswering", bert_config(), seed=3)}
    folders = {"pretraining": _google_folder(root, "uncased_L-2_H-32", models["pretraining"], shards=2),
               "classifier": _google_folder(root, "cased_classifier", models["classifier"], cased=True),
               "squad": _google_folder(root, "squad", models["squad"], adam=False)}
    enc = random_pt("BertGenerationEncoder", ws.BertGenerationConfig(**_generation_fields()), seed=4)
    dec = random_pt("BertGenerationDecoder", ws.BertGenerationConfig(**_generation_fields(), is_decoder=True,
                                                                      add_cross_attention=True), seed=5)
    with torch.no_grad():  # a bundle has one embedding table, and no output bias (it starts at zero)
        dec.bert.embeddings.load_state_dict(enc.embeddings.state_dict())
        dec.lm_head.bias.zero_()
    bundle = seq2seq_names(export_state_dict(enc), export_state_dict(dec))
    folders["seq2seq"] = _google_folder(root, "bertseq2seq", enc, adam=False, arrays=bundle)
    (folders["seq2seq"] / "bert_config.json").unlink()  # TF-Hub modules ship none: --config names one
    models["seq2seq"] = (enc.eval(), dec.eval())
    return folders, {k: (v if isinstance(v, tuple) else v.eval()) for k, v in models.items()}


def _generation_fields() -> dict:
    return {k: v for k, v in bert_config().to_dict().items() if k in GOOGLE_FIELDS and k != "type_vocab_size"}


def _convert(capsys, *args) -> str:
    main(["convert", *map(str, args), "--no-progress"])
    return capsys.readouterr().out


def _close(a, b, what, atol=1e-5):
    d = float((torch.as_tensor(np.asarray(a, np.float64)) - torch.as_tensor(np.asarray(b, np.float64))).abs().max())
    assert d <= atol, f"{what}: max abs diff {d:.3g}"


def test_google_pretraining_folder_without_tensorflow(google, tmp_path):
    folders, models = google
    out = tmp_path / "converted"
    script = textwrap.dedent(f"""
        import sys
        sys.modules["tensorflow"] = None; sys.modules["jax"] = None  # importing either now fails
        from warmstart.cli import main
        main(["convert", {str(folders["pretraining"])!r}, {str(out)!r}, "--no-progress"])
        loaded = [m for m, v in sys.modules.items() if v is not None and m.split(".")[0] in ("tensorflow", "jax")]
        assert not loaded, loaded
        """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "as BertForPreTraining" in run.stdout and "newly initialised (train before use): none" in run.stdout
    assert "skipped: 93 (optimizer state or step counter)" in run.stdout, run.stdout
    assert "do_lower_case=True (from the vocabulary)" in run.stdout
    theirs = transformers.BertForPreTraining.from_pretrained(out).eval()
    with torch.no_grad():
        a, b = theirs(IDS, attention_mask=MASK), models["pretraining"](IDS, attention_mask=MASK)
    _close(a.prediction_logits, b.prediction_logits, "prediction_logits", 1e-6)
    _close(a.seq_relationship_logits, b.seq_relationship_logits, "seq_relationship_logits", 1e-6)
    tok = transformers.AutoTokenizer.from_pretrained(out)
    oracle = transformers.BertTokenizer(str(folders["pretraining"] / "vocab.txt"), do_lower_case=True)
    text = "The Cat sat on the mat, a dog ran."
    assert tok(text)["input_ids"] == oracle(text)["input_ids"]
    assert tok.tokenize("The Cat")[:2] == ["the", "cat"]


def test_cased_classifier_and_squad_heads(google, tmp_path, capsys):
    folders, models = google
    printed = _convert(capsys, folders["classifier"], tmp_path / "cls")
    assert "as BertForSequenceClassification" in printed and "do_lower_case=False" in printed
    theirs = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "cls").eval()
    assert theirs.config.num_labels == 3  # read off output_weights
    with torch.no_grad():
        _close(theirs(IDS, attention_mask=MASK).logits, models["classifier"](IDS, attention_mask=MASK).logits,
               "classifier logits", 1e-6)
    tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "cls")
    assert tok.tokenize("The Cat")[:2] == ["The", "Cat"]

    printed = _convert(capsys, folders["squad"] / "bert_model.ckpt.index", tmp_path / "qa")
    assert "as BertForQuestionAnswering" in printed
    theirs = transformers.BertForQuestionAnswering.from_pretrained(tmp_path / "qa").eval()
    with torch.no_grad():
        a, b = theirs(IDS, attention_mask=MASK), models["squad"](IDS, attention_mask=MASK)
    _close(a.start_logits, b.start_logits, "start_logits", 1e-6)
    _close(a.end_logits, b.end_logits, "end_logits", 1e-6)


def test_architecture_override_and_lowercase_flag(google, tmp_path, capsys):
    folders, models = google
    printed = _convert(capsys, folders["classifier"], tmp_path / "tok", "--architecture",
                       "BertForTokenClassification", "--lowercase")
    assert "as BertForTokenClassification" in printed and "do_lower_case=True (as asked)" in printed
    # The label count read off output_weights serves any head whose layer is `classifier`.
    assert "newly initialised (train before use): none" in printed
    theirs = transformers.BertForTokenClassification.from_pretrained(tmp_path / "tok").eval()
    with torch.no_grad():
        want = models["classifier"].classifier(models["classifier"].bert(IDS, attention_mask=MASK)[0])
        _close(theirs(IDS, attention_mask=MASK).logits, want, "token logits", 1e-6)
    assert transformers.AutoTokenizer.from_pretrained(tmp_path / "tok").tokenize("The")[0] == "the"


def test_bertseq2seq_bundle_with_config(google, tmp_path, capsys):
    folders, models = google
    config = tmp_path / "bert_config.json"
    config.write_text(json.dumps(_generation_fields()))
    with pytest.raises(SystemExit):
        _convert(capsys, folders["seq2seq"], tmp_path / "no_config")
    assert "--config" in capsys.readouterr().err
    printed = _convert(capsys, folders["seq2seq"], tmp_path / "s2s", "--config", config)
    assert "as EncoderDecoderModel" in printed and "newly initialised (train before use): decoder.lm_head" in printed
    theirs = transformers.EncoderDecoderModel.from_pretrained(tmp_path / "s2s").eval()
    assert type(theirs.encoder).__name__ == "BertGenerationEncoder"
    enc, dec = models["seq2seq"]
    dec_ids = IDS[:, :4]
    with torch.no_grad():
        hidden = enc(IDS, attention_mask=MASK).last_hidden_state
        want = dec(dec_ids, encoder_hidden_states=hidden, encoder_attention_mask=MASK).logits
        got = theirs(input_ids=IDS, attention_mask=MASK, decoder_input_ids=dec_ids).logits
    _close(got, want, "bertseq2seq logits", 1e-6)


@pytest.mark.parametrize("case, kind", [("tf_v4/bert_masked_lm", "tf_model.h5"),
                                        ("flax_v4/bert_sequence_classification", "flax_model.msgpack"),
                                        ("flax_v4/bert_sequence_classification", "safetensors/model.safetensors")])
def test_v4_tf_and_flax_folders(case, kind, tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("config.json", kind):
        shutil.copyfile(ASSETS / case / name, src / Path(name).name)
    printed = _convert(capsys, src, tmp_path / "out")
    if kind.startswith("safetensors"):  # v4's Flax save_pretrained(safe_serialization=True) layout
        assert "(flax_safetensors)" in printed
    tree = json.loads((ASSETS / case / "tree.json").read_text())
    cls = tree["model_class"].removeprefix("TF").removeprefix("Flax")
    assert f"as {cls}" in printed
    expected = load_file(str(ASSETS / case / "expected.safetensors"))
    inputs = {k[len("inputs."):]: torch.from_numpy(v) for k, v in expected.items()
              if k.startswith("inputs.") and k[len("inputs."):] not in tree.get("label_inputs", [])}
    theirs = getattr(transformers, cls).from_pretrained(tmp_path / "out").eval()
    with torch.no_grad():
        _close(theirs(**inputs).logits, expected["outputs.logits"], f"{case} logits")


def test_v4_encoder_decoder_h5(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("config.json", "generation_config.json", "tf_model.h5"):
        shutil.copyfile(ASSETS / "tf_v4/bert2bert" / name, src / name)
    assert "as EncoderDecoderModel" in _convert(capsys, src, tmp_path / "out")
    expected = load_file(str(ASSETS / "tf_v4/bert2bert/expected.safetensors"))
    theirs = transformers.EncoderDecoderModel.from_pretrained(tmp_path / "out").eval()
    with torch.no_grad():
        got = theirs(**{k: torch.from_numpy(expected["inputs." + k]).long() for k in (
            "input_ids", "attention_mask", "decoder_input_ids", "decoder_attention_mask")}).logits
    _close(got, expected["outputs.logits"], "bert2bert logits")
    assert (tmp_path / "out" / "generation_config.json").is_file()


def test_clear_errors(google, tmp_path, capsys):
    folders, _ = google
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    with pytest.raises(SystemExit) as stop:
        _convert(capsys, folders["squad"], tmp_path / "full")
    assert stop.value.code == 2
    assert "exists and is not empty" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit):
        _convert(capsys, tmp_path / "empty", tmp_path / "out")
    err = capsys.readouterr().err
    assert "empty" in err and "TF1 checkpoint" in err
    with pytest.raises(SystemExit):
        _convert(capsys, folders["squad"], tmp_path / "out2", "--architecture", "NoSuchModel")
    assert "unknown architecture 'NoSuchModel'" in capsys.readouterr().err
    printed = _convert(capsys, folders["squad"], tmp_path / "full", "--overwrite")
    assert "as BertForQuestionAnswering" in printed and (tmp_path / "full" / "model.safetensors").is_file()


def test_casing_rules(tmp_path):
    from warmstart.convert import _casing, vocab_is_cased

    def folder(name, tokens):
        f = tmp_path / name
        f.mkdir()
        (f / "vocab.txt").write_text("\n".join(["[PAD]", "[CLS]", "[SEP]", "<s>", *tokens]) + "\n")
        return f

    uncased = folder("mine", ["the", "cat", "ℝ", "##ℝ"] + [f"w{i}" for i in range(3000)])
    assert not vocab_is_cased(uncased / "vocab.txt")  # "ℝ" is upper case to Unicode but has no lower case
    assert _casing(uncased, None) == (True, "from the vocabulary")
    assert _casing(uncased, False) == (False, "as asked")
    assert _casing(folder("cased_vocab", ["The", "Cat", "the"]), None) == (False, "from the vocabulary")
    # google's released folder names decide before the vocabulary does, as its tokenization.py checks
    assert _casing(folder("cased_L-12_H-768_A-12", ["the"]), None) == (False, "google's cased_L-12_H-768_A-12")
    assert _casing(folder("chinese_L-12_H-768_A-12", ["The"]), None)[0] is True
