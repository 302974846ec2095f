"""Property tests for BertGenerationTokenizer: on arbitrary Unicode it matches transformers, and
decoding what it encoded gives back the text as SentencePiece normalises it."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from warmstart.tokenizers import BertGenerationTokenizer

transformers = pytest.importorskip("transformers")
spm = pytest.importorskip("sentencepiece")

SETTINGS = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SPECIALS = ["<s>", "</s>", "<unk>", "<pad>", "<::::>"]
ANY_CHAR = st.characters(exclude_categories=("Cs",))
TEXT = st.lists(
    st.one_of(st.text(ANY_CHAR, max_size=12), st.sampled_from(["the", " the ", "こんにちは", "世界", "  ", "\n", "12"] + SPECIALS)),
    max_size=8,
).map("".join)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, corpus):
    prefix = os.path.join(str(tmp_path_factory.mktemp("spiece")), "spiece")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus), model_prefix=prefix, vocab_size=len(set("".join(corpus))) + 500, character_coverage=1.0,
        hard_vocab_limit=False, pad_id=0, eos_id=1, bos_id=2, unk_id=3, user_defined_symbols=["<::::>"],
        minloglevel=2,
    )  # fmt: skip
    return prefix + ".model"


@pytest.fixture(scope="module")
def pair(model_file):
    return BertGenerationTokenizer(model_file), transformers.BertGenerationTokenizer(model_file)


@SETTINGS
@given(text=TEXT)
def test_matches_transformers(pair, text):
    ours, ref = pair
    want = ref(text)["input_ids"]
    assert ours(text)["input_ids"] == want
    assert ours.tokenize(text) == ref.tokenize(text)
    assert ours.decode(want) == ref.decode(want)
    assert ours.decode(want, skip_special_tokens=True) == ref.decode(want, skip_special_tokens=True)


@SETTINGS
@given(text=st.text(st.characters(), max_size=30))
def test_lone_surrogates_are_read_as_replacement_characters(pair, text):
    ours, ref = pair
    clean = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    assert ours(text)["input_ids"] == ref(clean)["input_ids"]


@SETTINGS
@given(data=st.data())
def test_decode_of_encode_is_the_normalised_text(pair, data):
    """For text the vocabulary covers (no <unk>), decode(encode(x)) is SentencePiece's normal form of x."""
    ours, _ = pair
    alphabet = sorted({c for piece in ours.get_vocab() if piece not in SPECIALS for c in piece.replace("\u2581", " ")})
    text = data.draw(st.text(st.sampled_from(alphabet), max_size=60))
    ids = ours(text)["input_ids"]
    assume(ours.unk_token_id not in ids and not any(s in text for s in SPECIALS))
    normal = ours.sp_model.normalize(text).replace("\u2581", " ").strip()
    assert ours.decode(ids) == normal
