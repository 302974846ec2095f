"""`warmstart train` and `warmstart generate` on tiny BERT checkpoints: the report, the saved folder, generation
from a file, a jsonl column and stdin (one output line per input), and bad input as a one-line error."""
import io
import json

import pytest
from tiny_seq2seq import one_thread, pairs, tiny_bert, write_jsonl

from warmstart.cli import main

single_thread = pytest.fixture(autouse=True, scope="module")(one_thread)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    bert = tiny_bert(root / "bert")
    train_file = write_jsonl(root / "train.jsonl", pairs(48, seed=0))
    valid = write_jsonl(root / "valid.jsonl", pairs(6, seed=1))
    args = ["train", "--encoder", str(bert), "--train-file", str(train_file), "--eval-file", str(valid),
            "--output-dir", str(root / "out"), "--max-steps", "12", "--batch-size", "8", "--learning-rate", "3e-3",
            "--eval-before", "--max-new-tokens", "6", "--no-progress", "--samples", "2", "--save-steps", "6"]
    return root, args


def test_train_reports_before_and_after_and_saves(trained, capsys):
    root, args = trained
    main(args)
    out = capsys.readouterr().out
    assert "ROUGE-L on 6 held-out examples:" in out and "before fine-tuning ->" in out and "after 12 steps" in out
    assert out.count("  generated: ") == 2 and out.count("  before:    ") == 2
    assert "eval loss" in out and "saved the model" in out
    folder = root / "out" / "model"
    files = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"} <= files
    assert json.loads((folder / "config.json").read_text())["decoder_start_token_id"] == 2
    assert sorted(p.name for p in (root / "out" / "checkpoints").iterdir() if p.name.startswith("step")) == [
        "step-00000006", "step-00000012"]


def test_generate_from_a_file_a_jsonl_column_and_stdin(trained, capsys, monkeypatch):
    root, _ = trained
    model = root / "out" / "model"
    if not model.exists():
        pytest.skip("needs the model of test_train_reports_before_and_after_and_saves")
    lines = ["red cat", "blue dog runs", "", "big old tree"]
    (root / "in.txt").write_text("\n".join(lines) + "\n")
    main(["generate", str(model), str(root / "in.txt"), "--batch-size", "3", "--max-new-tokens", "5"])
    from_file = capsys.readouterr().out.splitlines()
    assert len(from_file) == 4  # one line per input, the empty one included

    write_jsonl(root / "in.jsonl", [{"text": t, "other": 1} for t in lines])
    main(["generate", str(root / "out"), str(root / "in.jsonl"), "--column", "text", "--max-new-tokens", "5"])
    assert capsys.readouterr().out.splitlines() == from_file  # the output folder means its model/

    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    main(["generate", str(model), "--max-new-tokens", "5", "--num-beams", "2"])
    assert len(capsys.readouterr().out.splitlines()) == 4

    main(["generate", str(root / "out" / "checkpoints" / "step-00000012"), str(root / "in.txt"),
          "--max-new-tokens", "5"])
    assert capsys.readouterr().out.splitlines() == from_file  # the last checkpoint is the final model


def test_bad_input_is_a_one_line_error(trained, tmp_path, capsys):
    root, args = trained
    bad = [a if a != str(root / "train.jsonl") else str(tmp_path / "missing.jsonl") for a in args]
    bad[bad.index("--output-dir") + 1] = str(tmp_path / "o")
    with pytest.raises(SystemExit) as e:
        main(bad)
    assert e.value.code == 2
    assert "warmstart train: error: data file" in capsys.readouterr().err

    with pytest.raises(SystemExit):
        main(["generate", str(tmp_path), str(root / "valid.jsonl")])
    assert "holds no config.json" in capsys.readouterr().err

    with pytest.raises(SystemExit):
        main(["generate", str(root / "out" / "model"), str(root / "valid.jsonl"), "--column", "nope"])
    assert "no 'nope' column" in capsys.readouterr().err


def test_evaluate_prints_loss_and_rouge(trained, capsys):
    root, _ = trained
    if not (root / "out" / "model").exists():
        pytest.skip("needs the model of test_train_reports_before_and_after_and_saves")
    main(["evaluate", str(root / "out"), str(root / "valid.jsonl"), "--examples", "4", "--max-new-tokens", "5",
          "--no-repeat-ngram-size", "2"])
    out = capsys.readouterr().out
    assert out.startswith("4 examples of ") and "ROUGE-L" in out and "distinct outputs" in out


@pytest.fixture(scope="module")
def bert2bert(tmp_path_factory):
    """An untrained tiny bert2bert folder as `warmstart train` writes one (weights, config, tokenizer)."""
    from warmstart import BertTokenizerFast
    from warmstart.models.encoder_decoder import EncoderDecoderModel

    root = tmp_path_factory.mktemp("fast")
    bert = tiny_bert(root / "bert")
    model = EncoderDecoderModel.from_encoder_decoder_pretrained(bert, bert, decoder_start_token_id=2, pad_token_id=0)
    model.config.eos_token_id = 3
    model.save_pretrained(root / "model")
    BertTokenizerFast.from_pretrained(bert).save_pretrained(root / "model")
    write_jsonl(root / "valid.jsonl", pairs(2, seed=1))
    (root / "in.txt").write_text("red cat\nblue dog runs\n")
    return root


def test_generate_and_evaluate_in_fast_modes(bert2bert, capsys):
    root = bert2bert
    for flags in (["--quantize", "int8"], ["--dtype", "bfloat16"], ["--bf16", "--quantize", "int8"]):
        main(["generate", str(root / "model"), str(root / "in.txt"), "--max-new-tokens", "5", *flags])
        assert len(capsys.readouterr().out.splitlines()) == 2, flags
    main(["evaluate", str(root / "model"), str(root / "valid.jsonl"), "--max-new-tokens", "4", "--quantize", "int8"])
    assert "ROUGE-L" in capsys.readouterr().out
    for flags, message in ((["--bf16", "--dtype", "float32"], "contradicts --dtype float32"),
                           (["--quantize", "int8", "--device", "cuda"], "drop --device cuda"),
                           (["--quantize", "int4"], "invalid choice: 'int4'")):
        with pytest.raises(SystemExit) as e:
            main(["generate", str(root / "model"), str(root / "in.txt"), *flags])
        assert e.value.code == 2 and message in capsys.readouterr().err, flags
