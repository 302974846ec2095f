"""The shared calling convention (base.py): options, pad(), BatchEncoding, decoding, special-token
attributes, and the documented errors, checked on both BERT classes (and against transformers where it
defines the behaviour)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from warmstart.tokenizers import BatchEncoding, BertTokenizer, BertTokenizerFast

transformers = pytest.importorskip("transformers")

TEXTS = ["Hello world!", "A somewhat longer second sentence, with punctuation.", "short"]


@pytest.fixture(params=["slow", "fast"])
def tok(request, ws_slow, ws_fast):
    return ws_slow if request.param == "slow" else ws_fast


def test_bare_max_length_truncates_and_padding_true_pads_to_longest(tok, hf_fast):
    assert tok("one two three four five", max_length=4)["input_ids"] == hf_fast("one two three four five", max_length=4)["input_ids"]
    enc = tok(TEXTS, padding=True)
    assert len({len(ids) for ids in enc["input_ids"]}) == 1
    assert enc["attention_mask"] == hf_fast(TEXTS, padding=True)["attention_mask"]
    assert tok("x", padding="max_length")["input_ids"][-1] == 0 and len(tok("x", padding="max_length")["input_ids"]) == 512


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(padding="bogus"), "Unknown padding strategy 'bogus'"),
        (dict(truncation="sideways", max_length=5), "Unknown truncation strategy 'sideways'"),
        (dict(padding_side="middle", padding=True), "padding_side must be 'right' or 'left'"),
        (dict(max_length=-1), "max_length must be an int >= 0"),
        (dict(stride=-2), "stride must be an int >= 0"),
        (dict(return_tensors="mlx"), "Unknown return_tensors 'mlx'"),  # 'tf' is supported (the TF wing)
        (dict(padding=True, truncation=True, max_length=10, pad_to_multiple_of=4), "not a multiple"),
        (dict(truncation=True, max_length=1), "shorter than the 2 special tokens"),
        (dict(truncation="only_second", max_length=4), "only_second' needs a text_pair"),
        (dict(truncation=True, max_length=6, stride=4, return_overflowing_tokens=True), "stride=4 must be smaller"),
    ],
)
def test_bad_options_are_value_errors(tok, kw, match):
    with pytest.raises(ValueError, match=match):
        tok("one two three four five six seven", **kw)


def test_pair_that_cannot_be_truncated(tok):
    with pytest.raises(ValueError, match="only_first"):
        tok("one", "two three four five six seven", truncation="only_first", max_length=6)
    with pytest.raises(ValueError, match="shorter than the 3 special tokens"):
        tok("one", "two", truncation=True, max_length=2)


def test_bad_inputs_are_type_errors(tok):
    with pytest.raises(ValueError, match="Nothing to tokenize"):
        tok()
    with pytest.raises(TypeError, match="text must be"):
        tok(3.5)
    with pytest.raises(TypeError, match="text_pair must be a list"):
        tok(["a", "b"], "c")
    with pytest.raises(ValueError, match="2 items but text_pair has 1"):
        tok(["a", "b"], ["c"])
    with pytest.raises(TypeError, match="unexpected keyword"):
        tok("a", not_an_option=True)


def test_batch_of_pairs_as_tuples(tok):
    assert tok([("a b", "c")])["input_ids"] == tok(["a b"], ["c"])["input_ids"]
    assert tok([["a", "b"]], is_split_into_words=True)["input_ids"] == [tok("a b")["input_ids"]]


def test_empty_inputs(tok):
    assert tok("")["input_ids"] == [101, 102]
    assert tok([])["input_ids"] == []
    assert tok([""], padding=True, return_tensors="pt")["input_ids"].tolist() == [[101, 102]]


def test_offsets_need_a_fast_tokenizer(ws_slow, ws_fast):
    with pytest.raises(NotImplementedError, match="fast tokenizer"):
        ws_slow("hello", return_offsets_mapping=True)
    with pytest.raises(ValueError, match="fast tokenizer"):
        ws_slow("hello").word_ids()
    enc = ws_fast("hello there", return_offsets_mapping=True)
    assert enc.word_ids() == [None, 0, 1, None] and enc["offset_mapping"][2] == (6, 11)
    assert enc.char_to_token(7) == 2 and enc.token_to_chars(1) == (0, 5) and enc.word_to_tokens(1) == (2, 3)
    assert enc.token_to_word(2) == 1 and enc.char_to_word(1) == 0 and enc.sequence_ids() == [None, 0, 0, None]


def test_batch_encoding_access(tok):
    enc = tok(TEXTS, padding=True, return_tensors="pt")
    assert isinstance(enc, BatchEncoding)
    assert enc.input_ids is enc["input_ids"] and set(enc.keys()) == {"input_ids", "token_type_ids", "attention_mask"}
    with pytest.raises(AttributeError, match="no field 'labels'"):
        _ = enc.labels
    assert enc.to("cpu") is enc and enc["input_ids"].device.type == "cpu"
    assert enc[0:2]["input_ids"].shape[0] == 2
    again = pickle.loads(pickle.dumps(enc))
    assert torch.equal(again["input_ids"], enc["input_ids"])
    with pytest.raises(ValueError, match="rows have different lengths"):
        tok(TEXTS, return_tensors="pt")


def test_pad_as_collate_fn(tok, hf_fast):
    rows = [tok(t) for t in TEXTS]
    ours = tok.pad(rows, return_tensors="pt")
    theirs = hf_fast.pad([hf_fast(t) for t in TEXTS], return_tensors="pt")
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key
    left = tok.pad({"input_ids": [r["input_ids"] for r in rows]}, padding="max_length", max_length=20,
                   padding_side="left", pad_to_multiple_of=8)  # fmt: skip
    assert all(len(ids) == 24 and ids[0] == 0 for ids in left["input_ids"]) and left["attention_mask"][0][0] == 0
    as_np = tok.pad({"input_ids": [np.array(r["input_ids"]) for r in rows]})
    assert isinstance(as_np["input_ids"], np.ndarray)
    one = tok.pad(rows[0], padding="max_length", max_length=9)
    assert one["input_ids"][-1] == 0 and len(one["attention_mask"]) == 9
    with pytest.raises(ValueError, match="needs the 'input_ids' field"):
        tok.pad({"labels": [1]})


def test_decode_forms(tok, hf_fast):
    ids = tok(TEXTS, padding=True)["input_ids"]
    assert tok.decode(torch.tensor(ids)) == tok.batch_decode(ids)
    assert tok.decode(torch.tensor(ids[0])) == tok.decode(ids[0]) == tok.decode(np.array(ids[0]))
    assert tok.decode(ids[0], skip_special_tokens=True) == "hello world!"
    assert tok.decode(7592) == "hello"
    with pytest.raises(ValueError, match="-100"):
        tok.decode([101, -100, 102])
    with pytest.raises(ValueError, match="outside"):
        tok.decode([len(tok)])
    assert tok.decode(tok.encode("don't stop"), skip_special_tokens=True, clean_up_tokenization_spaces=True) == "don't stop"


def test_special_token_attributes(minilm_dir):
    for cls in (BertTokenizer, BertTokenizerFast):
        tok = cls.from_pretrained(minilm_dir)
        assert tok.special_tokens_map == {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                                          "cls_token": "[CLS]", "mask_token": "[MASK]"}  # fmt: skip
        assert tok.all_special_ids == [100, 102, 0, 101, 103] and tok.bos_token is None and tok.eos_token_id is None
        tok.pad_token_id = 103
        assert tok.pad_token == "[MASK]" and tok("a", padding="max_length", max_length=4)["input_ids"][-1] == 103
        tok.pad_token = None
        with pytest.raises(ValueError, match="no pad_token"):
            tok(["a", "b c"], padding=True)
        with pytest.raises(ValueError, match="Unknown special token name 'foo_token'"):
            tok.add_special_tokens({"foo_token": "<foo>"})
        with pytest.raises(TypeError, match="str or tokenizers.AddedToken"):
            tok.add_tokens([3])
        assert tok.add_special_tokens({"bos_token": "<s>"}) == 1 and tok.bos_token_id == 30522
        assert tok.tokenize("a <s> b") == ["a", "<s>", "b"]


def test_split_special_tokens_matches_transformers(minilm_dir, hf_slow, hf_fast):
    text = "a [MASK] b"
    assert BertTokenizerFast.from_pretrained(minilm_dir)(text, split_special_tokens=True)["input_ids"] == hf_fast(
        text, split_special_tokens=True)["input_ids"]  # fmt: skip
    assert BertTokenizer.from_pretrained(minilm_dir)(text, split_special_tokens=True)["input_ids"] == hf_slow(
        text, split_special_tokens=True)["input_ids"]  # fmt: skip


def test_encode_plus_family(tok):
    assert tok.encode("hello", "world") == [101, 7592, 102, 2088, 102]
    assert tok.encode("hello", return_tensors="pt").shape == (1, 3)
    assert tok.encode_plus("hello")["input_ids"] == [101, 7592, 102]
    assert tok.batch_encode_plus(["hello", ("a", "b")])["input_ids"][1] == [101, 1037, 102, 1038, 102]
    assert tok.convert_ids_to_tokens(tok.convert_tokens_to_ids(["hello", "zzzqqq"])) == ["hello", "[UNK]"]
    assert tok.convert_tokens_to_string(["hel", "##lo", "world"]) == "hello world"


def test_odd_characters_same_in_both(ws_slow, ws_fast):
    """Controls, zero-width and lone surrogates are removed by both classes; nothing crashes."""
    odd = "a\x00b\u200bc\u200d\ufeffd\x07e\ud800f\udfffg\ufffd h\x85i\u2028j"
    assert ws_slow(odd)["input_ids"] == ws_fast(odd)["input_ids"]
    assert ws_slow.tokenize(odd) == ws_fast.tokenize(odd) == ws_slow.tokenize("abcdefg hi j")
    assert ws_fast([odd, "x\ud83d"], ["\udc00", "y"])["input_ids"] == ws_slow([odd, "x\ud83d"], ["\udc00", "y"])["input_ids"]
    offsets = ws_fast("x\ud800y z", return_offsets_mapping=True)["offset_mapping"]
    assert offsets == [(0, 0), (0, 1), (2, 3), (4, 5), (0, 0)]  # "x", "##y", "z": offsets index the original


def test_long_input(ws_slow, ws_fast):
    word = "a" * 100_000
    assert ws_slow.tokenize(word) == ws_fast.tokenize(word) == ["[UNK]"]
    text = "hello world. " * 8000
    assert ws_slow(text, truncation=True)["input_ids"] == ws_fast(text, truncation=True)["input_ids"]
    assert len(ws_fast(text)["input_ids"]) == 24002
