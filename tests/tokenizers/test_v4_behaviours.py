"""transformers v4 tokenizer behaviours that v5 dropped or changed, against frozen v4.46.3 answers.

The reference values are in tests/assets/tokenizers_v4/expected.json, written by
tests/assets/make_tokenizer_v4_fixtures.py from a transformers 4.46.3 install (never needed here)."""

from __future__ import annotations

import json
import logging
import os
import warnings

import numpy as np
import pytest
from tokenizers import AddedToken

from warmstart.tokenizers import (
    BertTokenizer,
    BertTokenizerFast,
    GPT2Tokenizer,
    GPT2TokenizerFast,
    RobertaTokenizer,
    RobertaTokenizerFast,
)

ASSETS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "assets", "tokenizers_v4")
BERT_VOCAB = os.path.join(ASSETS, "bert", "vocab.txt")
CLASSES = {c.__name__: c for c in (BertTokenizer, BertTokenizerFast, GPT2Tokenizer, GPT2TokenizerFast, RobertaTokenizer,
                                   RobertaTokenizerFast)}  # fmt: skip


@pytest.fixture(scope="module")
def v4():
    with open(os.path.join(ASSETS, "expected.json"), encoding="utf-8") as f:
        expected = json.load(f)
    assert expected["transformers"].startswith("4.46")
    return expected


def _bert(cls, **kw):
    return cls(BERT_VOCAB, **kw)


def _bpe(cls, **kw):
    return cls(os.path.join(ASSETS, "bpe", "vocab.json"), os.path.join(ASSETS, "bpe", "merges.txt"), **kw)


def _plain(enc) -> dict:
    return {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in dict(enc).items()}


# -- 1. added tokens on a lower-casing tokenizer --------------------------------------------------


@pytest.mark.parametrize("cls", [BertTokenizer, BertTokenizerFast])
def test_lower_casing_tokenizer_matches_added_tokens_case_insensitively(v4, cls):
    tok = _bert(cls, do_lower_case=True)
    tok.add_tokens([AddedToken("aaaaa bbbbbb", lstrip=True, rstrip=True), "HeLLo Big"])
    tok.add_tokens([AddedToken("XyZ", normalized=False)])
    tok.add_special_tokens({"additional_special_tokens": ["[SPEC]"]})
    expected = v4["lowercase_added_tokens"]
    for text, tokens in expected[cls.__name__].items():
        assert tok.tokenize(text) == tokens, text
        assert tok(text)["input_ids"] == expected[cls.__name__ + "_ids"][text], text


def test_the_issue_example():
    tok = _bert(BertTokenizer, do_lower_case=True)
    tok.add_tokens([AddedToken("aaaaa bbbbbb", lstrip=True, rstrip=True)])
    assert tok.tokenize("AAAAA BBBBBB low") == ["aaaaa bbbbbb", "low"]


def test_a_cased_tokenizer_still_matches_added_tokens_exactly():
    tok = _bert(BertTokenizer, do_lower_case=False)
    tok.add_tokens(["Hello"])
    assert tok.tokenize("Hello hello") == ["Hello", "hello"]


# -- 3. prepare_for_model on every class ------------------------------------------------------------

PFM_CASES = {
    "single": ([10, 11, 12], None, {}),
    "pair": ([10, 11, 12], [13, 14], {}),
    "no_specials": ([10, 11, 12], [13], {"add_special_tokens": False}),
    "truncate_pair": ([10, 11, 12, 13, 14], [15, 16, 17], {"truncation": True, "max_length": 7}),
    "truncate_only_first_overflow": ([10, 11, 12, 13, 14, 15], [16], {"truncation": "only_first", "max_length": 8,
                                                                     "return_overflowing_tokens": True, "stride": 1}),
    "overflow_no_cut": ([10, 11], None, {"truncation": True, "max_length": 9, "return_overflowing_tokens": True}),
    "pad_max_length": ([10, 11], [12], {"padding": "max_length", "max_length": 9, "return_special_tokens_mask": True,
                                        "return_length": True}),
    "pad_left_multiple": ([10, 11, 12], None, {"padding": True, "pad_to_multiple_of": 8, "padding_side": "left"}),
    "tensors": ([10, 11, 12], [13], {"return_tensors": "np"}),
    "tensors_batch_axis": ([10, 11, 12], None, {"return_tensors": "np", "prepend_batch_axis": True}),
    "no_mask": ([10, 11, 12], None, {"return_attention_mask": False, "return_token_type_ids": False}),
}  # fmt: skip
PFM_MAKERS = {
    "BertTokenizerFast": lambda: _bert(BertTokenizerFast),
    "BertTokenizer": lambda: _bert(BertTokenizer),
    "GPT2TokenizerFast": lambda: _bpe(GPT2TokenizerFast, pad_token="<|endoftext|>"),
    "RobertaTokenizerFast": lambda: _bpe(RobertaTokenizerFast),
}


@pytest.mark.parametrize("name", sorted(PFM_MAKERS))
@pytest.mark.parametrize("case", sorted(PFM_CASES))
def test_prepare_for_model_matches_v4(v4, name, case):
    expected = v4["prepare_for_model"][name][case]
    if "error" in expected:
        pytest.skip(f"v4 fails here ({expected['error'][:60]}...); warmstart returns the mask")
    ids, pair, kw = PFM_CASES[case]
    enc = PFM_MAKERS[name]().prepare_for_model(ids, pair, **kw)
    assert _plain(enc) == expected["values"]
    assert {k: list(getattr(v, "shape", ())) for k, v in enc.items()} == expected["shapes"]


def test_prepare_for_model_gives_the_call_layout_on_a_fast_tokenizer():
    tok = _bert(BertTokenizerFast)
    ids, pair = tok.encode("hello world", add_special_tokens=False), tok.encode("the fox", add_special_tokens=False)
    assert dict(tok.prepare_for_model(ids, pair)) == dict(tok("hello world", "the fox"))


def test_prepare_for_model_errors():
    tok = _bert(BertTokenizerFast)
    with pytest.raises(TypeError, match="ids must be a list of int"):
        tok.prepare_for_model("hello")
    with pytest.raises(ValueError, match="return_token_type_ids=True with add_special_tokens=False"):
        tok.prepare_for_model([5], add_special_tokens=False, return_token_type_ids=True)
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['colour'\\]"):
        tok.prepare_for_model([5], colour=1)


# -- 4. prepare_seq2seq_batch ---------------------------------------------------------------------

SEQ2SEQ = {
    "default": {},
    "limits": {"max_length": 5, "max_target_length": 4},
    "only_max_length": {"max_length": 4},
    "no_targets": {"tgt_texts": None},
    "max_length_padding": {"padding": "max_length", "max_length": 8},
}


@pytest.mark.parametrize("cls", [BertTokenizer, BertTokenizerFast])
@pytest.mark.parametrize("setting", sorted(SEQ2SEQ))
def test_prepare_seq2seq_batch_matches_v4(v4, cls, setting):
    tok = _bert(cls, model_max_length=16)
    kw = dict(SEQ2SEQ[setting])
    targets = kw.pop("tgt_texts", ["hi", "how are you", "the lowest lower low"])
    with pytest.warns(FutureWarning, match="prepare_seq2seq_batch is deprecated"):
        enc = tok.prepare_seq2seq_batch(["hello world", "the quick brown fox", "low"], targets, **kw)
    assert _plain(enc) == v4["prepare_seq2seq_batch"][cls.__name__][setting]
    assert v4["prepare_seq2seq_batch"][cls.__name__]["warning_category"] == "FutureWarning"


def test_prepare_seq2seq_batch_on_a_tokenizer_without_a_length_limit():
    tok = _bert(BertTokenizerFast)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        enc = tok.prepare_seq2seq_batch(["hello world"], ["hi"], return_tensors="pt")
    assert enc["labels"].tolist() == [tok.encode("hi")]


# -- 6. special-token attributes, add_prefix_space ------------------------------------------------


@pytest.mark.parametrize("cls", [BertTokenizer, BertTokenizerFast])
def test_additional_special_tokens_none_and_the_ids_setter(v4, cls):
    expected = v4["special_token_attributes"][cls.__name__]
    tok = _bert(cls)
    tok.additional_special_tokens = None
    got = {"tokens": tok.additional_special_tokens, "ids": tok.additional_special_tokens_ids,
           "map": tok.special_tokens_map, "all": tok.all_special_tokens}  # fmt: skip
    assert got == expected["set_none"]
    tok = _bert(cls)
    tok.additional_special_tokens_ids = [52, 53]
    got = {"tokens": tok.additional_special_tokens, "ids": tok.additional_special_tokens_ids,
           "map": tok.special_tokens_map, "all": tok.all_special_tokens}  # fmt: skip
    assert got == expected["set_ids"]
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.additional_special_tokens_ids = [10_000]


def test_unset_additional_special_tokens_come_back_when_added():
    tok = _bert(BertTokenizer)
    tok.additional_special_tokens = None
    tok.add_special_tokens({"additional_special_tokens": ["[NEW]"]})
    assert tok.additional_special_tokens == ["[NEW]"]


@pytest.mark.parametrize("cls", [GPT2Tokenizer, RobertaTokenizer])
def test_add_prefix_space_at_call_time(v4, cls):
    kw = {"additional_special_tokens": ["<|endoftext|>"]} if cls is RobertaTokenizer else {}
    tok = _bpe(cls, **kw)
    for text, expected in v4["add_prefix_space"][cls.__name__].items():
        assert tok.tokenize(text, add_prefix_space=True) == expected["prefix"], text
        assert tok.tokenize(text) == expected["plain"], text
        assert tok(text, add_prefix_space=True)["input_ids"] == expected["ids"], text
    with pytest.raises(TypeError, match="add_prefix_space must be a bool"):
        tok.tokenize("x", add_prefix_space="yes")


# -- 7. init keywords named like methods ----------------------------------------------------------


@pytest.mark.parametrize("key", ["tokenize", "pad", "decode"])
@pytest.mark.parametrize("cls", [BertTokenizer, BertTokenizerFast, GPT2Tokenizer])
def test_an_init_keyword_named_like_a_method_is_refused(v4, cls, key):
    make = (lambda: _bert(cls, **{key: 1})) if cls.__name__.startswith("Bert") else (lambda: _bpe(cls, **{key: 1}))
    with pytest.raises(AttributeError) as err:
        make()
    assert str(err.value).startswith(f"{key} conflicts with the method {key} in {cls.__name__}")
    v4_message = v4["method_named_keywords"].get(f"{cls.__name__}.{key}")
    if v4_message is not None:
        assert str(err.value).startswith(v4_message)


# -- 8. the too-long warning ----------------------------------------------------------------------


@pytest.mark.parametrize("cls", [BertTokenizer, BertTokenizerFast])
def test_too_long_encoding_warns_once_per_tokenizer(v4, cls, caplog):
    tok = _bert(cls, model_max_length=6)
    with caplog.at_level(logging.WARNING, logger="warmstart.tokenizers"):
        tok("the quick brown fox the quick")
        tok("the quick brown fox the quick brown")
        tok("the quick brown fox the quick", truncation=True)
    messages = [r.getMessage() for r in caplog.records if r.name == "warmstart.tokenizers"]
    assert messages == v4["too_long_warning"][cls.__name__]
    caplog.clear()
    other = _bert(cls, model_max_length=6)
    with caplog.at_level(logging.WARNING, logger="warmstart.tokenizers"):
        other(["the quick brown fox the quick", "hi"], padding=True, return_tensors="np")
        other("the quick brown fox the quick", verbose=False)
    assert len([r for r in caplog.records if r.name == "warmstart.tokenizers"]) == 1


def test_no_warning_within_the_limit_or_with_max_length(caplog):
    tok = _bert(BertTokenizerFast, model_max_length=6)
    with caplog.at_level(logging.WARNING, logger="warmstart.tokenizers"):
        tok("hello world")
        tok("the quick brown fox the quick", max_length=20, padding=True)
        tok.prepare_for_model([5] * 10, verbose=False)
    assert not [r for r in caplog.records if r.name == "warmstart.tokenizers"]


# -- 9. our stricter guard stays -------------------------------------------------------------------


@pytest.mark.parametrize("cls", [BertTokenizer, BertTokenizerFast, GPT2Tokenizer, GPT2TokenizerFast])
def test_an_unknown_call_keyword_is_a_type_error(cls):
    tok = _bert(cls) if cls.__name__.startswith("Bert") else _bpe(cls)
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['colour'\\]"):
        tok("hello", colour="red")


def test_numpy_prepare_for_model_dtype():
    enc = _bert(BertTokenizerFast).prepare_for_model([10, 11], return_tensors="np")
    assert enc["input_ids"].dtype == np.int64
