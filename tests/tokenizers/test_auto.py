"""AutoTokenizer picks the class from tokenizer_config.json, config.json, or the files present."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from warmstart.tokenizers import AutoTokenizer, BertTokenizer, BertTokenizerFast, PreTrainedTokenizerFast
from warmstart.tokenizers.auto import MODEL_TYPE_TO_TOKENIZER, TOKENIZER_CLASSES, tokenizer_class_from_name


def test_from_tokenizer_config(minilm_dir):
    assert type(AutoTokenizer.from_pretrained(minilm_dir)) is BertTokenizerFast
    assert type(AutoTokenizer.from_pretrained(minilm_dir, use_fast=False)) is BertTokenizer
    tok = AutoTokenizer.from_pretrained(minilm_dir, model_max_length=16)
    assert tok.model_max_length == 16 and tok("hello world")["input_ids"] == [101, 7592, 2088, 102]


def _copy(minilm_dir, dest, files):
    os.makedirs(dest, exist_ok=True)
    for name in files:
        shutil.copy(os.path.join(minilm_dir, name), dest)
    return dest


def test_from_model_config_and_from_files(minilm_dir, tmp_path):
    by_model_type = _copy(minilm_dir, tmp_path / "a", ["vocab.txt", "config.json"])
    assert type(AutoTokenizer.from_pretrained(by_model_type)) is BertTokenizerFast
    enc_dec = _copy(minilm_dir, tmp_path / "b", ["vocab.txt"])
    (enc_dec / "config.json").write_text(json.dumps({"model_type": "encoder-decoder", "encoder": {"model_type": "bert"},
                                                     "decoder": {"model_type": "bert"}}))  # fmt: skip
    assert type(AutoTokenizer.from_pretrained(enc_dec, use_fast=False)) is BertTokenizer
    only_vocab = _copy(minilm_dir, tmp_path / "c", ["vocab.txt"])
    assert type(AutoTokenizer.from_pretrained(only_vocab)) is BertTokenizerFast
    only_json = _copy(minilm_dir, tmp_path / "d", ["tokenizer.json"])
    generic = AutoTokenizer.from_pretrained(only_json)
    assert type(generic) is PreTrainedTokenizerFast
    assert generic("hello world", add_special_tokens=False)["input_ids"] == [7592, 2088]


def test_v5_generic_class_name(minilm_dir, tmp_path):
    folder = _copy(minilm_dir, tmp_path / "v5", ["tokenizer.json"])
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "TokenizersBackend",
                                                              "cls_token": "[CLS]", "sep_token": "[SEP]"}))  # fmt: skip
    tok = AutoTokenizer.from_pretrained(folder)
    assert type(tok) is PreTrainedTokenizerFast and tok("hi")["input_ids"] == [101, 7632, 102]


def test_errors_name_the_problem(minilm_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="Cannot tell which tokenizer"):
        AutoTokenizer.from_pretrained(empty)
    weird = _copy(minilm_dir, tmp_path / "weird", ["vocab.txt"])
    (weird / "config.json").write_text(json.dumps({"model_type": "t5"}))
    with pytest.raises(ValueError, match="No tokenizer for model_type 't5'"):
        AutoTokenizer.from_pretrained(weird)
    with pytest.raises(ValueError, match="Unknown tokenizer class 'XLNetTokenizer'"):
        tokenizer_class_from_name("XLNetTokenizer")
    with pytest.raises(FileNotFoundError):
        AutoTokenizer.from_pretrained(tmp_path / "does-not-exist")
    with pytest.raises(TypeError, match="not instantiable"):
        AutoTokenizer()


def test_every_registered_name_resolves():
    """Each listed class (including the BPE / SentencePiece ones, imported lazily) exists."""
    for name in TOKENIZER_CLASSES:
        assert tokenizer_class_from_name(name, use_fast=False).__name__ in (name, name[:-4])
    assert set(MODEL_TYPE_TO_TOKENIZER) == {"bert", "bert-generation", "gpt2", "roberta"}
