"""The v4 helpers (BasicTokenizer, WordpieceTokenizer, build_inputs_with_special_tokens, ...) against the
outputs transformers v4 documents and tests, save/load round trips with transformers in both
directions, and the errors for bad vocabularies."""

from __future__ import annotations

import json
import os

import pytest

from warmstart.tokenizers import BasicTokenizer, BertTokenizer, BertTokenizerFast, WordpieceTokenizer

transformers = pytest.importorskip("transformers")
legacy = pytest.importorskip("transformers.models.bert.tokenization_bert_legacy")

BOTH = [BertTokenizer, BertTokenizerFast]


def test_basic_tokenizer_documented_cases():
    # Cases from transformers v4's tests/models/bert/test_tokenization_bert.py.
    assert BasicTokenizer().tokenize("ah\u535a\u63a8zz") == ["ah", "\u535a", "\u63a8", "zz"]
    assert BasicTokenizer(do_lower_case=True).tokenize(" \tHeLLo!how  \n Are yoU?  ") == [
        "hello", "!", "how", "are", "you", "?"]  # fmt: skip
    assert BasicTokenizer(do_lower_case=True).tokenize("H\u00e9llo") == ["hello"]
    assert BasicTokenizer(do_lower_case=True, strip_accents=False).tokenize(" \tHäLLo!how  \n Are yoU?  ") == [
        "hällo", "!", "how", "are", "you", "?"]  # fmt: skip
    assert BasicTokenizer(do_lower_case=True, strip_accents=True).tokenize(" \tHäLLo!how  \n Are yoU?  ") == [
        "hallo", "!", "how", "are", "you", "?"]  # fmt: skip
    assert BasicTokenizer(do_lower_case=False).tokenize(" \tHeLLo!how  \n Are yoU?  ") == [
        "HeLLo", "!", "how", "Are", "yoU", "?"]  # fmt: skip
    assert BasicTokenizer(do_lower_case=False, strip_accents=True).tokenize(" \tHäLLo!how  \n Are yoU?  ") == [
        "HaLLo", "!", "how", "Are", "yoU", "?"]  # fmt: skip
    assert BasicTokenizer(do_lower_case=False, never_split=["[UNK]"]).tokenize(" \tHeLLo!how  \n Are yoU? [UNK]") == [
        "HeLLo", "!", "how", "Are", "yoU", "?", "[UNK]"]  # fmt: skip
    assert BasicTokenizer(do_split_on_punc=False).tokenize("a\n'll !!to?'d of, can't.") == [
        "a", "'ll", "!!to?'d", "of,", "can't."]  # fmt: skip


def test_wordpiece_tokenizer_documented_cases():
    vocab = {t: i for i, t in enumerate(["[UNK]", "[CLS]", "[SEP]", "want", "##want", "##ed", "wa", "un", "runn", "##ing"])}
    wp = WordpieceTokenizer(vocab=vocab, unk_token="[UNK]")
    assert wp.tokenize("") == []
    assert wp.tokenize("unwanted running") == ["un", "##want", "##ed", "runn", "##ing"]
    assert wp.tokenize("unwantedX running") == ["[UNK]", "runn", "##ing"]
    assert WordpieceTokenizer(vocab, "[UNK]", max_input_chars_per_word=3).tokenize("want runn") == ["[UNK]", "[UNK]"]


@pytest.mark.parametrize("cls", BOTH)
def test_v4_special_token_helpers(cls, minilm_dir):
    tok = cls.from_pretrained(minilm_dir)
    cls_id, sep = tok.cls_token_id, tok.sep_token_id
    assert (cls_id, sep, tok.pad_token_id, tok.unk_token_id, tok.mask_token_id) == (101, 102, 0, 100, 103)
    assert tok.build_inputs_with_special_tokens([7, 8]) == [cls_id, 7, 8, sep]
    assert tok.build_inputs_with_special_tokens([7, 8], [9]) == [cls_id, 7, 8, sep, 9, sep]
    assert tok.create_token_type_ids_from_sequences([7, 8]) == [0, 0, 0, 0]
    assert tok.create_token_type_ids_from_sequences([7, 8], [9]) == [0, 0, 0, 0, 1, 1]
    assert tok.get_special_tokens_mask([7, 8]) == [1, 0, 0, 1]
    assert tok.get_special_tokens_mask([7, 8], [9]) == [1, 0, 0, 1, 0, 1]
    assert tok.get_special_tokens_mask([cls_id, 7, sep, 9, sep], already_has_special_tokens=True) == [1, 0, 1, 0, 1]
    with pytest.raises(ValueError, match="already_has_special_tokens"):
        tok.get_special_tokens_mask([1], [2], already_has_special_tokens=True)
    assert tok.num_special_tokens_to_add() == 2 and tok.num_special_tokens_to_add(pair=True) == 3
    assert tok.max_len_single_sentence == 510 and tok.max_len_sentences_pair == 509
    # The helpers agree with what __call__ builds.
    enc = tok("hello world", "again", return_special_tokens_mask=True)
    ids_a, ids_b = tok.encode("hello world", add_special_tokens=False), tok.encode("again", add_special_tokens=False)
    assert enc["input_ids"] == tok.build_inputs_with_special_tokens(ids_a, ids_b)
    assert enc["token_type_ids"] == tok.create_token_type_ids_from_sequences(ids_a, ids_b)
    assert enc["special_tokens_mask"] == tok.get_special_tokens_mask(ids_a, ids_b)


@pytest.mark.parametrize("cls", BOTH)
def test_save_vocabulary_writes_the_same_file(cls, minilm_dir, tmp_path):
    tok = cls.from_pretrained(minilm_dir)
    (path,) = tok.save_vocabulary(str(tmp_path), filename_prefix="p")
    assert os.path.basename(path) == "p-vocab.txt"
    with open(path, encoding="utf-8") as a, open(os.path.join(minilm_dir, "vocab.txt"), encoding="utf-8") as b:
        assert a.read() == b.read()


@pytest.mark.parametrize("cls", BOTH)
def test_round_trip_through_transformers(cls, minilm_dir, tmp_path, corpus):
    ours = cls.from_pretrained(minilm_dir, model_max_length=64)
    ours.add_tokens(["newword"])
    ours.add_special_tokens({"additional_special_tokens": ["<ent>"]})
    text = "a newword <ent> " + corpus[5]
    want = ours(text, truncation=True)["input_ids"]
    ours.save_pretrained(tmp_path / "ours")
    config = json.loads((tmp_path / "ours" / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "BertTokenizer" and config["model_max_length"] == 64
    # transformers reads our folder (its fast and its Python class) ...
    assert transformers.AutoTokenizer.from_pretrained(tmp_path / "ours")(text, truncation=True)["input_ids"] == want
    assert legacy.BertTokenizerLegacy.from_pretrained(tmp_path / "ours")(text, truncation=True)["input_ids"] == want
    # ... we read ours back, and read what transformers writes (v5 writes only tokenizer.json + config).
    assert cls.from_pretrained(tmp_path / "ours")(text, truncation=True)["input_ids"] == want
    transformers.AutoTokenizer.from_pretrained(tmp_path / "ours").save_pretrained(tmp_path / "theirs")
    again = cls.from_pretrained(tmp_path / "theirs")
    assert again(text, truncation=True)["input_ids"] == want
    assert again.additional_special_tokens == ["<ent>"] and again.model_max_length == 64


def test_load_v4_style_folder(tmp_path, minilm_dir):
    """A v4 save: special tokens as AddedToken dicts, the legacy added_tokens.json."""
    (tmp_path / "vocab.txt").write_text(open(os.path.join(minilm_dir, "vocab.txt"), encoding="utf-8").read())
    mask = {"content": "[MASK]", "lstrip": True, "normalized": False, "rstrip": False, "single_word": False,
            "__type": "AddedToken"}  # fmt: skip
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False, "mask_token": mask}))
    (tmp_path / "special_tokens_map.json").write_text(json.dumps({"mask_token": mask, "unk_token": "[UNK]"}))
    (tmp_path / "added_tokens.json").write_text(json.dumps({"<extra>": 30522}))
    for cls in BOTH:
        tok = cls.from_pretrained(tmp_path)
        assert tok.mask_token == "[MASK]" and not tok.do_lower_case
        assert tok("Hello <extra>", add_special_tokens=False)["input_ids"][-1] == 30522


def _vocab(tmp_path, lines: list[str]) -> str:
    path = tmp_path / "vocab.txt"
    path.write_text("".join(t + "\n" for t in lines), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("cls", BOTH)
def test_bad_vocabularies_are_named(cls, tmp_path):
    with pytest.raises(ValueError, match="empty"):
        cls(_vocab(tmp_path, []))
    with pytest.raises(ValueError, match="'a' twice"):
        cls(_vocab(tmp_path, ["[UNK]", "a", "b", "a"]))
    with pytest.raises(ValueError, match="no unknown token '\\[UNK\\]'"):
        cls(_vocab(tmp_path, ["[PAD]", "a"]))
    with pytest.raises(FileNotFoundError, match="vocab"):
        cls(str(tmp_path / "missing.txt"))
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="No vocabulary file"):
        cls.from_pretrained(empty)
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ValueError, match="UTF-8"):
        cls(str(tmp_path / "bin.txt"))


def test_broken_tokenizer_json_is_named(tmp_path):
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(ValueError, match="tokenizer.json"):
        BertTokenizerFast(tokenizer_file=str(tmp_path / "tokenizer.json"))


def test_vocab_with_windows_newlines_reads_like_unix(tmp_path):
    (tmp_path / "vocab.txt").write_bytes(b"[PAD]\r\n[UNK]\r\nhello\r\n")
    assert BertTokenizer(str(tmp_path / "vocab.txt")).vocab == {"[PAD]": 0, "[UNK]": 1, "hello": 2}
