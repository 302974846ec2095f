"""GPT-2 / RoBERTa byte-level BPE, slow and fast, against transformers on the same vocab.json + merges.txt.

The vocabulary is trained on the fly (tokenizers' byte-level BPE trainer) from the multilingual corpus
of real text that conftest.py gathers, so merges cover English, Japanese, Chinese and the rest."""

from __future__ import annotations

import copy
import json
import pickle

import pytest

from warmstart.tokenizers import GPT2Tokenizer, GPT2TokenizerFast, RobertaTokenizer, RobertaTokenizerFast

transformers = pytest.importorskip("transformers")

GPT2_SPECIALS = ["<|endoftext|>"]
ROBERTA_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
ODD = [
    "", " ", "  lead and trail  ", "tab\there\nnew\r\nline", "it's we'll THEY'RE o'clock", "a  b   c\n\n\nd",
    "<|endoftext|>Hi<|endoftext|> there", "Hello <mask> world<s>x</s>", "zero\u200bwidth\u200d joiner\ufeff",
    "ctrl \x00\x01\x1c\x7f chars", "emoji 👍🏽 and 🇯🇵 flags", "½ ² ①  numbers ٣٤", "ＦＵＬＬ　ｗｉｄｔｈ",
]  # fmt: skip


def _train(folder, lines, specials):
    from tokenizers import ByteLevelBPETokenizer

    trainer = ByteLevelBPETokenizer()
    trainer.train_from_iterator(lines, vocab_size=1500, min_frequency=2, special_tokens=specials, show_progress=False)
    folder.mkdir()
    trainer.save_model(str(folder))
    return str(folder)


@pytest.fixture(scope="module")
def folders(tmp_path_factory, corpus):
    root = tmp_path_factory.mktemp("bpe")
    return {"gpt2": _train(root / "gpt2", corpus, GPT2_SPECIALS), "roberta": _train(root / "roberta", corpus, ROBERTA_SPECIALS)}


OURS = {"gpt2": (GPT2Tokenizer, GPT2TokenizerFast), "roberta": (RobertaTokenizer, RobertaTokenizerFast)}


def _ref(kind, folder, **kw):
    cls = transformers.GPT2Tokenizer if kind == "gpt2" else transformers.RobertaTokenizer
    return cls.from_pretrained(folder, **kw)


@pytest.fixture(scope="module", params=[(k, p) for k in ("gpt2", "roberta") for p in (False, True)],
                ids=lambda p: f"{p[0]}-prefix{int(p[1])}")  # fmt: skip
def trio(request, folders):
    """(ours slow, ours fast, transformers) for one family and add_prefix_space setting."""
    kind, prefix = request.param
    slow, fast = OURS[kind]
    folder = folders[kind]
    return slow.from_pretrained(folder, add_prefix_space=prefix), fast.from_pretrained(folder, add_prefix_space=prefix), _ref(kind, folder, add_prefix_space=prefix)


def _plain(enc):
    return {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in enc.items()}


# --------------------------------------------------------------------------- parity


def test_ids_tokens_and_decodes_match_transformers(trio, corpus):
    slow, fast, ref = trio
    for text in corpus[:600] + ODD:
        want = ref(text)
        assert slow(text) == fast(text) == want, text
        assert slow.tokenize(text) == fast.tokenize(text) == ref.tokenize(text), text
        for skip in (False, True):
            decoded = ref.decode(want["input_ids"], skip_special_tokens=skip)
            assert slow.decode(want["input_ids"], skip_special_tokens=skip) == decoded, text
            assert fast.decode(want["input_ids"], skip_special_tokens=skip) == decoded, text


def test_whole_corpus_as_one_batch(trio, corpus):
    slow, fast, ref = trio
    want = ref(corpus)["input_ids"]
    assert slow(corpus)["input_ids"] == want
    assert fast(corpus)["input_ids"] == want
    assert slow.batch_decode(want) == fast.batch_decode(want) == ref.batch_decode(want)


def test_offsets_and_word_ids_match_transformers(trio, corpus):
    _, fast, ref = trio
    texts = corpus[:200] + [t for t in ODD if t]
    got = fast(texts, corpus[200:200 + len(texts)], return_offsets_mapping=True)  # fmt: skip
    want = ref(texts, corpus[200:200 + len(texts)], return_offsets_mapping=True)  # fmt: skip
    assert _plain(got) == _plain(want)
    for i in range(len(texts)):
        assert got.word_ids(i) == want.word_ids(i)
        assert got.sequence_ids(i) == want.sequence_ids(i)


@pytest.mark.parametrize("strategy", ["only_first", "only_second", "longest_first"])
@pytest.mark.parametrize("max_length", [12, 20, 33])
def test_pairs_under_each_truncation_strategy(trio, corpus, strategy, max_length):
    slow, fast, ref = trio
    firsts = [t for t in corpus[300:400] if len(ref.tokenize(t)) > 25][:10]
    others = ["short one", "a second sentence that is rather longer than the first one, by far"]
    assert len(firsts) == 10
    pairs = [(a, b) for a in firsts for b in others] + [(b, a) for a in firsts for b in others]
    refused = 0
    for a, b in pairs:
        kw = dict(truncation=strategy, max_length=max_length, return_token_type_ids=True, return_special_tokens_mask=True)
        n1, n2 = (len(ref(t, add_special_tokens=False)["input_ids"]) for t in (a, b))
        cut = n1 + n2 + ref.num_special_tokens_to_add(pair=True) - max_length
        if cut > 0 and ((strategy == "only_first" and cut >= n1) or (strategy == "only_second" and cut >= n2)):
            # The strategy cannot reach max_length without erasing a whole sequence (transformers then
            # returns a wrong-length or emptied pair): a ValueError naming the strategy, in both classes.
            for tok in (slow, fast):
                with pytest.raises(ValueError, match=f"truncation='{strategy}'"):
                    tok(a, b, **kw)
            refused += 1
            continue
        want = ref(a, b, **kw)
        assert fast(a, b, **kw) == want, (a, b)
        if strategy != "longest_first":
            # Python tokenizers split a longest_first cut between a pair differently from the Rust
            # backend (transformers' own slow and fast classes disagree there too), so only the
            # single-sequence strategies are compared for the slow class.
            assert slow(a, b, **kw) == want, (a, b)
    assert refused < len(pairs)


def test_overflowing_tokens_with_stride(trio, corpus):
    _, fast, ref = trio
    texts = corpus[:20]
    kw = dict(truncation=True, max_length=16, stride=4, return_overflowing_tokens=True)
    assert _plain(fast(texts, **kw)) == _plain(ref(texts, **kw))


def test_padded_batches(trio, corpus):
    slow, fast, ref = trio
    for tok in (slow, fast, ref):
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
    texts = corpus[40:56]
    for kw in (dict(padding=True), dict(padding="max_length", max_length=64, truncation=True),
               dict(padding="longest", pad_to_multiple_of=8, padding_side="left")):  # fmt: skip
        for tensors in ("pt", "np"):
            want = _plain(ref(texts, return_tensors=tensors, **kw))
            assert _plain(slow(texts, return_tensors=tensors, **kw)) == want
            assert _plain(fast(texts, return_tensors=tensors, **kw)) == want


def test_split_into_words(trio):
    slow, fast, ref = trio
    words = [["Hello", "world", "!"], ["こんにちは", "世界"], [" spaced", "", "x"]]
    want = ref(words, is_split_into_words=True)
    assert slow(words, is_split_into_words=True) == fast(words, is_split_into_words=True) == want
    got = fast(words, is_split_into_words=True)
    assert [got.word_ids(i) for i in range(3)] == [want.word_ids(i) for i in range(3)]


def test_text_target_becomes_labels(trio):
    slow, fast, ref = trio
    want = ref("source text", text_target="target text")
    assert slow("source text", text_target="target text") == fast("source text", text_target="target text") == want


def test_added_tokens_match_transformers(folders):
    for kind in ("gpt2", "roberta"):
        toks = [cls.from_pretrained(folders[kind]) for cls in OURS[kind]] + [_ref(kind, folders[kind])]
        for tok in toks:
            assert tok.add_tokens(["newword", "<ctrl>"]) == 2
            assert tok.add_special_tokens({"additional_special_tokens": ["<extra>"]}) == 1
        text = "a newword b<ctrl>c <extra> d"
        want = toks[2](text)
        assert [len(t) for t in toks] == [len(toks[2])] * 3
        for tok in toks[:2]:
            assert tok(text) == want
            assert tok.decode(want["input_ids"]) == toks[2].decode(want["input_ids"])
            assert tok.decode(want["input_ids"], skip_special_tokens=True) == toks[2].decode(want["input_ids"], skip_special_tokens=True)


@pytest.mark.parametrize("bos, eos", [(True, False), (False, True), (True, True)])
def test_gpt2_add_bos_and_eos_tokens(folders, bos, eos):
    want = _ref("gpt2", folders["gpt2"], add_bos_token=bos, add_eos_token=eos)
    for cls in OURS["gpt2"]:
        tok = cls.from_pretrained(folders["gpt2"], add_bos_token=bos, add_eos_token=eos)
        kw = dict(return_token_type_ids=True, return_special_tokens_mask=True)
        assert tok("hello there", **kw) == want("hello there", **kw)
        assert tok("hello", "there", **kw) == want("hello", "there", **kw)


def test_roberta_pair_layout(folders):
    ref = _ref("roberta", folders["roberta"])
    for cls in OURS["roberta"]:
        tok = cls.from_pretrained(folders["roberta"])
        enc = tok("first", "second", return_token_type_ids=True)
        assert enc["input_ids"][0] == tok.cls_token_id and enc["input_ids"][-1] == tok.sep_token_id
        assert tok.convert_ids_to_tokens(enc["input_ids"]).count("</s>") == 3  # <s> A </s></s> B </s>
        assert enc == ref("first", "second", return_token_type_ids=True)


# --------------------------------------------------------------------------- v4 helpers


def test_v4_helpers_roberta(folders):
    for cls in OURS["roberta"]:
        tok = cls.from_pretrained(folders["roberta"])
        cls_id, sep = tok.cls_token_id, tok.sep_token_id
        assert tok.build_inputs_with_special_tokens([10, 11]) == [cls_id, 10, 11, sep]
        assert tok.build_inputs_with_special_tokens([10, 11], [12]) == [cls_id, 10, 11, sep, sep, 12, sep]
        assert tok.get_special_tokens_mask([10, 11], [12]) == [1, 0, 0, 1, 1, 0, 1]
        assert tok.get_special_tokens_mask([cls_id, 10, sep, sep, 12, sep], already_has_special_tokens=True) == [1, 0, 1, 1, 0, 1]
        assert tok.create_token_type_ids_from_sequences([10, 11], [12]) == [0] * 7
        assert tok.num_special_tokens_to_add(pair=True) == 4


def test_v4_helpers_gpt2(folders):
    for cls in OURS["gpt2"]:
        tok = cls.from_pretrained(folders["gpt2"])
        assert tok.build_inputs_with_special_tokens([10, 11], [12]) == [10, 11, 12]
        assert tok.get_special_tokens_mask([10, 11], [12]) == [0, 0, 0]
        bos_tok = cls.from_pretrained(folders["gpt2"], add_bos_token=True)
        bos = bos_tok.bos_token_id
        assert bos_tok.build_inputs_with_special_tokens([10, 11], [12]) == [bos, 10, 11, bos, 12]
        assert bos_tok.get_special_tokens_mask([10, 11], [12]) == [1, 0, 0, 1, 0]
        assert bos_tok.create_token_type_ids_from_sequences([10, 11], [12]) == [0, 0, 0, 1, 1]


# --------------------------------------------------------------------------- files


@pytest.mark.parametrize("kind", ["gpt2", "roberta"])
def test_save_pretrained_loads_in_transformers(folders, tmp_path, kind):
    text = "Saved and loaded: こんにちは newword!"
    for cls in OURS[kind]:
        ours = cls.from_pretrained(folders[kind], add_prefix_space=True)
        ours.add_tokens(["newword"])
        out = tmp_path / cls.__name__
        ours.save_pretrained(out)
        ref = _ref(kind, str(out))
        assert ref.add_prefix_space is True
        assert ref(text) == ours(text)
        assert len(ref) == len(ours)


@pytest.mark.parametrize("kind", ["gpt2", "roberta"])
def test_transformers_folder_loads_here(folders, tmp_path, kind):
    """transformers v5 saves only tokenizer.json + tokenizer_config.json; both our classes read it."""
    ref = _ref(kind, folders[kind], add_prefix_space=True)
    ref.add_tokens(["newword"])
    ref.save_pretrained(tmp_path)
    assert not (tmp_path / "vocab.json").exists()
    text = "Saved by transformers: 東京 newword <|endoftext|>"
    for cls in OURS[kind]:
        ours = cls.from_pretrained(tmp_path)
        assert ours.add_prefix_space is True
        assert ours(text) == ref(text)
        assert ours.decode(ref(text)["input_ids"]) == ref.decode(ref(text)["input_ids"])


def test_slow_and_fast_round_trip_through_each_other(folders, tmp_path):
    fast = RobertaTokenizerFast.from_pretrained(folders["roberta"])
    fast.save_pretrained(tmp_path / "fast")
    assert {p.name for p in (tmp_path / "fast").iterdir()} >= {"vocab.json", "merges.txt", "tokenizer.json"}
    slow = RobertaTokenizer.from_pretrained(tmp_path / "fast")
    slow.save_pretrained(tmp_path / "slow")
    again = RobertaTokenizerFast.from_pretrained(tmp_path / "slow")
    text = "round trip, twice: 往復"
    assert slow(text) == again(text) == fast(text)


def test_pickle_and_deepcopy(folders):
    for cls in OURS["gpt2"]:
        tok = cls.from_pretrained(folders["gpt2"])
        for clone in (pickle.loads(pickle.dumps(tok)), copy.deepcopy(tok)):
            assert clone("pickled text") == tok("pickled text")


# --------------------------------------------------------------------------- bad input


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("cls", [GPT2Tokenizer, GPT2TokenizerFast, RobertaTokenizer, RobertaTokenizerFast])
def test_bad_vocabularies_are_clear_errors(cls, folders, tmp_path):
    merges = f"{folders['gpt2']}/merges.txt"
    vocab = f"{folders['gpt2']}/vocab.json"
    cases = [
        (_write(tmp_path / "empty.json", "{}"), merges, ValueError, "vocabulary is empty"),
        (_write(tmp_path / "dup.json", '{"a": 0, "b": 1, "a": 2}'), merges, ValueError, "duplicate entry 'a'"),
        (_write(tmp_path / "shared.json", '{"a": 0, "b": 0}'), merges, ValueError, "share id 0"),
        (_write(tmp_path / "gap.json", '{"a": 0, "b": 5}'), _write(tmp_path / "m0.txt", "#version: 0.2\n"), ValueError, "without gaps"),
        (_write(tmp_path / "bad.json", "not json"), merges, ValueError, "not valid JSON"),
        (_write(tmp_path / "list.json", "[1, 2]"), merges, TypeError, "must map tokens to ids"),
        (vocab, _write(tmp_path / "m1.txt", "#version: 0.2\nab cd\n"), ValueError, "merge #0 .* not in the vocabulary"),
        (vocab, _write(tmp_path / "m2.txt", "#version: 0.2\nonlyone\n"), ValueError, "not two space-separated"),
        (str(tmp_path / "missing.json"), merges, FileNotFoundError, "missing.json"),
        (vocab, str(tmp_path / "missing.txt"), FileNotFoundError, "missing.txt"),
    ]  # fmt: skip
    for vocab_file, merges_file, error, match in cases:
        with pytest.raises(error, match=match):
            cls(vocab_file=vocab_file, merges_file=merges_file)
    with pytest.raises(FileNotFoundError, match="needs vocab.json"):
        cls()
    with pytest.raises(FileNotFoundError, match="needs merges.txt"):
        cls(vocab_file=vocab)
    with pytest.raises(FileNotFoundError, match="No vocabulary file"):
        cls.from_pretrained(tmp_path)


def test_a_tokenizer_json_that_is_not_bpe(minilm_dir):
    for cls in OURS["gpt2"]:
        with pytest.raises(ValueError, match="does not hold a BPE model.*WordPiece"):
            cls(tokenizer_file=f"{minilm_dir}/tokenizer.json")


def test_vocabulary_without_all_bytes_warns_and_drops_them(tmp_path):
    vocab = _write(tmp_path / "v.json", json.dumps({"a": 0, "b": 1, "ab": 2, "<|endoftext|>": 3}))
    merges = _write(tmp_path / "m.txt", "#version: 0.2\na b\n")
    ref = transformers.GPT2Tokenizer(vocab=json.load(open(vocab)), merges=[("a", "b")])
    for cls in OURS["gpt2"]:
        with pytest.warns(UserWarning, match="lacks 254 of the 256 byte symbols"):
            tok = cls(vocab_file=vocab, merges_file=merges)
        assert tok("abcab")["input_ids"] == ref("abcab")["input_ids"] == [2, 2]


# --------------------------------------------------------------------------- odd and huge input


def test_lone_surrogates_become_replacement_characters(trio):
    slow, fast, ref = trio
    text = "a\ud800b \udfff c"
    clean = "a\ufffdb \ufffd c"
    assert slow(text) == fast(text) == ref(clean)
    assert fast(text, return_offsets_mapping=True)["offset_mapping"] == ref(clean, return_offsets_mapping=True)["offset_mapping"]


def test_control_and_zero_width_characters_round_trip(trio):
    slow, fast, _ = trio
    text = "a\x00b\x1fc\u200bd\u200ce\u2060f\ufeffg\u00adh"
    for tok in (slow, fast):
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == (" " + text if tok.add_prefix_space else text)


@pytest.mark.parametrize("text", ["x" * 100_000, "東京" * 50_000, " " * 100_000, "ab1. " * 20_000])
def test_100k_character_inputs(folders, text):
    slow, fast = (cls.from_pretrained(folders["gpt2"]) for cls in OURS["gpt2"])
    want = _ref("gpt2", folders["gpt2"])(text)["input_ids"]
    assert slow(text)["input_ids"] == want
    assert fast(text)["input_ids"] == want
    assert slow.decode(want) == text


def test_setting_add_bos_token_later(folders):
    ref = _ref("gpt2", folders["gpt2"])
    ref.add_bos_token = True
    for cls in OURS["gpt2"]:
        tok = cls.from_pretrained(folders["gpt2"])
        tok.add_bos_token = True
        assert tok("hello", "there") == ref("hello", "there")


def test_decode_never_applies_the_wordpiece_clean_up(trio):
    """transformers v5 skips clean_up_tokenization_spaces for BPE (it would eat real spaces)."""
    slow, fast, ref = trio
    ids = ref("Hello , world . It ' s")["input_ids"]
    want = ref.decode(ids, clean_up_tokenization_spaces=True)
    assert slow.decode(ids, clean_up_tokenization_spaces=True) == fast.decode(ids, clean_up_tokenization_spaces=True) == want
