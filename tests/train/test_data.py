"""Reading seq2seq data files and their errors, fitting targets to the decoder, and the committed WordNet
definition-modeling task (its files, its split, and the script that builds it)."""
import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

import warmstart as W
from warmstart.models.encoder_decoder import EncoderDecoderConfig
from warmstart.train import (Seq2SeqExample, check_source_lengths, check_target_lengths, position_limit,
                             read_seq2seq, tokenize_seq2seq)

ROOT = Path(__file__).resolve().parents[2]
TASK = ROOT / "data" / "wordnet_defs"
SPLITS = ("train", "valid", "test")


@pytest.fixture(scope="module")
def tok(minilm_dir):
    return W.BertTokenizerFast.from_pretrained(minilm_dir)


def _write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


# ---- readers -----------------------------------------------------------------------------------------------
def test_reads_jsonl_csv_tsv_and_json_arrays(tmp_path):
    rows = [("cat", "a small feline"), ('say "hi", twice', "line one\nline two\u2028three")]
    # A byte-order mark, blank lines, and a raw U+2028 inside a JSON string (a line break to splitlines()).
    lines = [json.dumps({"source": s, "target": t, "id": i}, ensure_ascii=False) for i, (s, t) in enumerate(rows)]
    jsonl = _write(tmp_path, "d.jsonl", "\ufeff" + "\n\n".join(lines) + "\n\n")
    csv_ = _write(tmp_path, "d.csv", 'source,target\r\ncat,a small feline\r\n"say ""hi"", twice","line one\nline two\u2028three"\r\n')
    tsv = _write(tmp_path, "d.tsv", 'target\tsource\na small feline\tcat\n"quoted" text\t"x\n')
    array = _write(tmp_path, "d.json", json.dumps([{"source": s, "target": t} for s, t in rows]))
    for path in (jsonl, csv_, array):
        got = read_seq2seq(path)
        assert [(e.source, e.target) for e in got] == rows
    assert read_seq2seq(jsonl)[1].origin == f"{jsonl}:3"  # blank lines count in line numbers
    assert read_seq2seq(csv_)[0].origin == f"{csv_}:2"
    # TSV has no quoting: quotes are text.
    assert [(e.source, e.target) for e in read_seq2seq(tsv)] == [("cat", "a small feline"), ('"x', '"quoted" text')]


def test_custom_columns_and_explicit_format(tmp_path):
    path = _write(tmp_path, "pairs.txt", "word\tgloss\nx\ty\n")
    got = read_seq2seq(path, source_column="word", target_column="gloss", format="tsv")
    assert got == [Seq2SeqExample("x", "y", f"{path}:2")]


@pytest.mark.parametrize("name, content, match", [
    ("a.jsonl", '{"source": "x", "tgt": "y"}\n', r"a.jsonl:1 has no 'target' column; the columns found are \['source', 'tgt'\]"),
    ("a.csv", "src,target\nx,y\n", r"has no column 'source'; its header has \['src', 'target'\]"),
    ("a.tsv", "source\ttext\nx\ty\n", r"has no column 'target'; its header has \['source', 'text'\]"),
    ("a.jsonl", "", "is empty"),
    ("a.csv", " \n\n", "is empty"),
    ("a.csv", "source,target\n\n", "holds no examples, only a header row"),
    ("a.json", "[]", "holds no examples"),
    ("a.jsonl", b'{"source": "caf\xe9", "target": "y"}\n', r"is not UTF-8: byte 0xe9 at line 1"),
    ("a.csv", b"source,target\nok,fine\n\xff,y\n", r"is not UTF-8: byte 0xff at line 3"),
    ("a.jsonl", '{"source": "x", "target": "y"}\n{"source": "x", target: 1}\n', r"a.jsonl:2 is not a JSON object"),
    ("a.jsonl", '["x", "y"]\n', "must be a JSON object"),
    ("a.json", '[{"source": "x", "target": "y"}, 3]', "item 1 must be a JSON object"),
    ("a.jsonl", '{"source": "x", "target": null}\n', r"a.jsonl:1: 'target' must be text, got NoneType"),
    ("a.jsonl", '{"source": 12, "target": "y"}\n', r"'source' must be text, got int 12"),
    ("a.csv", "source,target\nx,y,z\n", r"a.csv:2 has 3 fields but the header has 2"),
    ("a.csv", "source,target,source\nx,y,z\n", r"names \['source'\] more than once"),
    ("a.parquet", "x", "cannot tell how to read"),
])
def test_reader_errors_name_the_problem(tmp_path, name, content, match):
    with pytest.raises(ValueError, match=match):
        read_seq2seq(_write(tmp_path, name, content))


def test_reader_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jsonl does not exist"):
        read_seq2seq(tmp_path / "nope.jsonl")
    (tmp_path / "dir.jsonl").mkdir()
    with pytest.raises(ValueError, match="is a directory"):
        read_seq2seq(tmp_path / "dir.jsonl")
    with pytest.raises(ValueError, match="format='xml'"):
        read_seq2seq(_write(tmp_path, "a.jsonl", "{}"), format="xml")


# ---- tokenizing and fitting the model ----------------------------------------------------------------------
def test_tokenize_and_check_target_lengths_names_the_longest(tok, tmp_path):
    path = _write(tmp_path, "d.jsonl", "\n".join(json.dumps({"source": f"w{i}", "target": "word " * n})
                                                 for i, n in enumerate([3, 30, 9, 12])))
    examples = read_seq2seq(path)
    features = tokenize_seq2seq(examples, tok)
    assert features[0] == {"input_ids": tok("w0")["input_ids"], "labels": tok("word " * 3)["input_ids"]}
    check_target_lengths(features, 32, examples)  # the longest, 30 words + [CLS] [SEP], fits exactly
    with pytest.raises(ValueError, match=rf"2 target\(s\) do not fit the decoder's 12 positions; the longest, "
                                         rf"{re.escape(str(path))}:2 \('word word .*\.\.\.\), has 32 tokens. "
                                         rf"Truncate with max_target_length<=12"):
        check_target_lengths(features, 12, examples)
    with pytest.raises(ValueError, match="the longest, example 1, has 32"):
        check_target_lengths(features, 12)
    truncated = tokenize_seq2seq(examples, tok, max_source_length=3, max_target_length=12)
    check_target_lengths(truncated, 12, examples)
    assert max(len(f["labels"]) for f in truncated) == 12 and max(len(f["input_ids"]) for f in truncated) == 3
    with pytest.raises(ValueError, match="source.*encoder's 2 positions.*max_source_length"):
        check_source_lengths(truncated, 2, examples)
    with pytest.raises(ValueError, match="max_target_length must be a positive int"):
        tokenize_seq2seq(examples, tok, max_target_length=0)
    with pytest.raises(ValueError, match="got 4 tokenized examples but 1 examples"):
        check_target_lengths(features, 12, examples[:1])


def test_position_limits_of_each_family(minilm_dir):
    bert = W.BertConfig.from_pretrained(minilm_dir)
    assert position_limit(bert) == 512
    assert position_limit(W.RobertaConfig(max_position_embeddings=514, pad_token_id=1)) == 512
    assert position_limit(W.GPT2Config(n_positions=64)) == 64
    assert position_limit(W.BertGenerationConfig(max_position_embeddings=128)) == 128
    pair = EncoderDecoderConfig.from_encoder_decoder_configs(bert, W.GPT2Config(n_positions=100))
    assert position_limit(pair) == 100 and position_limit(pair, side="encoder") == 512
    with pytest.raises(ValueError, match="side must be"):
        position_limit(bert, side="middle")


# ---- the committed WordNet task ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def splits():
    return {name: [json.loads(line) for line in open(TASK / f"{name}.jsonl", encoding="utf-8")] for name in SPLITS}


def test_wordnet_files_parse_with_the_expected_fields(splits):
    fields = {"source", "target", "word", "pos", "example", "synset"}
    for name, rows in splits.items():
        assert rows, name
        examples = read_seq2seq(TASK / f"{name}.jsonl")
        assert [(e.source, e.target) for e in examples] == [(r["source"], r["target"]) for r in rows]
        for r in rows:
            assert set(r) == fields
            assert r["pos"] in {"noun", "verb", "adj", "adv"}
            assert re.fullmatch(r"\d{8}-[nvasr]", r["synset"])
            assert r["source"] == (f"{r['word']}: {r['example']}" if r["example"] else r["word"])
            assert r["target"] and r["target"] == r["target"].strip() and '"' not in r["target"]
            assert "_" not in r["word"]
        assert len({(r["source"], r["target"]) for r in rows}) == len(rows)
    assert sum((TASK / f"{n}.jsonl").stat().st_size for n in SPLITS) <= 10 * 1024 * 1024


def test_wordnet_split_keeps_each_word_in_one_split(splits):
    words = {name: {r["word"].lower() for r in rows} for name, rows in splits.items()}
    assert not words["train"] & words["valid"]
    assert not words["train"] & words["test"]
    assert not words["valid"] & words["test"]


def test_wordnet_readme_counts_and_licence(splits):
    readme = (TASK / "README.md").read_text(encoding="utf-8")
    for name, rows in splits.items():
        with_example = sum(1 for r in rows if r["example"])
        assert f"| {name} | {len(rows)} | {with_example} |" in readme
    assert "python scripts/build_wordnet_task.py" in readme
    licence = (TASK / "LICENSE").read_text(encoding="utf-8")
    assert "WordNet 3.0 Copyright 2006 by Princeton University.  All rights reserved." in licence
    assert "Permission to use, copy, modify and distribute" in licence


def test_wordnet_targets_fit_minilm(tok, minilm_dir):
    examples = read_seq2seq(TASK / "test.jsonl")
    check_target_lengths(tokenize_seq2seq(examples, tok), position_limit(W.BertConfig.from_pretrained(minilm_dir)),
                         examples)


# ---- the build script --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def build():
    spec = importlib.util.spec_from_file_location("build_wordnet_task", ROOT / "scripts" / "build_wordnet_task.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the script loads
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.mark.parametrize("gloss, definition, examples", [
    ('a means of escape; "hard work was his escape"; "an escape route"', "a means of escape",
     ("hard work was his escape", "an escape route")),
    ("a separate and self-contained entity", "a separate and self-contained entity", ()),
    ('incapable of being changed; e.g. "frozen prices"', "incapable of being changed", ("frozen prices",)),
    ('impossible to avoid:"inescapable conclusion"', "impossible to avoid", ("inescapable conclusion",)),
    ('capable of absorbing; "an assimilative substance', "capable of absorbing", ("an assimilative substance",)),
    ('sparing; "never of much consequence"- John Galsworthy', "sparing", ("never of much consequence",)),
])
def test_build_parses_glosses(build, gloss, definition, examples):
    assert build.parse_gloss(gloss) == (definition, examples)


def test_build_parses_data_lines(build):
    adj = build.parse_data_line('00003356 00 s 02 nascent(p) 0 emergent 1 001 & 00003356 a 0000 | being born; '
                                '"the nascent chicks"  ', "x")
    assert (adj.ss_type, adj.pos, adj.words, adj.definition, adj.examples) == (
        "s", "adj", ("nascent", "emergent"), "being born", ("the nascent chicks",))
    verb = build.parse_data_line("00001740 29 v 02 take_a_breath 0 breathe 0 001 * 00005041 v 0000 01 + 02 00 | "
                                 'draw air; "breathe deeply"', "x")
    assert verb.words == ("take a breath", "breathe") and verb.pos == "verb"
    with pytest.raises(ValueError, match="x: no ' \\| '"):
        build.parse_data_line("00001740 03 n 01 entity 0 000", "x")
    with pytest.raises(ValueError, match="does not match its counts"):
        build.parse_data_line("00001740 03 n 01 entity 0 002 @ 00001930 n 0000 | that which is", "x")
    with pytest.raises(ValueError, match="malformed synset header"):
        build.parse_data_line("00001740 03 n 02 entity 0 000 | that which is", "x")
    assert build.pick_example("breathe", ("he held it", "she breathed deeply")) == "she breathed deeply"
    assert build.pick_example("respire", ("she breathed deeply",)) == "she breathed deeply"
    assert build.pick_example("x", ()) == ""


def _fake_wordnet(root: Path) -> None:
    """Tiny data files whose synset offsets are true byte offsets, as WordNet's are."""
    synsets = {
        "noun": [("n", ["bank", "depository_financial_institution"], 'a financial institution; "he cashed a check at the bank"'),
                 ("n", ["bank"], 'sloping land beside a body of water; "they pulled the canoe up on the bank"'),
                 ("n", ["entity"], "that which is perceived or known to exist")],
        "verb": [("v", ["breathe", "respire"], 'draw air into the lungs; "she breathed deeply"')],
        "adj": [("a", ["able"], 'having the means; "able to swim"'), ("s", ["emergent(p)"], "coming into existence")],
        "adv": [("r", ["quickly", "rapidly"], 'with speed; "she answered quickly"')],
    }
    for pos, entries in synsets.items():
        data = b"  1 This software and database is being provided to you, the LICENSEE\n"
        for ss_type, words, gloss in entries:
            listed = " ".join(f"{w} 0" for w in words)
            data += f"{len(data):08d} 03 {ss_type} {len(words):02x} {listed} 000 | {gloss}  \n".encode()
        (root / f"data.{pos}").write_bytes(data)
    (root / "copyright").write_text("Files: *\nLicense: WordNet3.0\n Permission granted.\n .\n WordNet 3.0 Copyright "
                                    "2006 by Princeton University.\n\nFiles: debian/*\nLicense: GPL-2+\n x\n")


def test_build_end_to_end_is_reproducible(build, tmp_path, capsys):
    _fake_wordnet(tmp_path)
    args = ["--wordnet-dir", str(tmp_path), "--copyright-file", str(tmp_path / "copyright"), "--no-install",
            "--valid-percent", "30", "--test-percent", "30"]
    build.main(args + ["--out", str(tmp_path / "a")])
    build.main(args + ["--out", str(tmp_path / "b")])
    assert "7 synsets" in capsys.readouterr().out
    for name in ("train.jsonl", "valid.jsonl", "test.jsonl", "LICENSE", "README.md"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    rows = {s: [json.loads(l) for l in open(tmp_path / "a" / f"{s}.jsonl")] for s in SPLITS}
    every = [r for rs in rows.values() for r in rs]
    assert len(every) == 10  # one record per (word, sense)
    split_of = {}
    for s, rs in rows.items():
        for r in rs:
            assert split_of.setdefault(r["word"].lower(), s) == s
    banks = {r["source"] for r in every if r["word"] == "bank"}
    assert banks == {"bank: he cashed a check at the bank", "bank: they pulled the canoe up on the bank"}
    respire = next(r for r in every if r["word"] == "respire")
    assert respire["source"] == "respire: she breathed deeply" and respire["target"] == "draw air into the lungs"
    assert next(r for r in every if r["word"] == "emergent")["synset"].endswith("-s")
    licence = (tmp_path / "a" / "LICENSE").read_text()
    assert "Permission granted.\n\nWordNet 3.0 Copyright 2006" in licence and "GPL" not in licence


def test_build_rejects_shifted_offsets_and_missing_wordnet(build, tmp_path):
    _fake_wordnet(tmp_path)
    noun = tmp_path / "data.noun"
    noun.write_bytes(noun.read_bytes().replace(b"a financial", b"a  financial"))
    with pytest.raises(ValueError, match="is not its byte offset"):
        build.read_data_file(noun)
    with pytest.raises(SystemExit, match="apt-get install -y wordnet-base"):
        build.main(["--wordnet-dir", str(tmp_path / "none"), "--no-install", "--out", str(tmp_path / "o")])


@pytest.mark.slow
def test_build_reproduces_the_committed_files(build, tmp_path):
    if not all((build.WORDNET_DIR / f).is_file() for f in build.FILES.values()):
        pytest.skip("WordNet 3.0 (Debian's wordnet-base) is not installed")
    build.main(["--no-install", "--out", str(tmp_path)])
    for name in ("train.jsonl", "valid.jsonl", "test.jsonl", "LICENSE", "README.md"):
        assert (tmp_path / name).read_bytes() == (TASK / name).read_bytes(), name
