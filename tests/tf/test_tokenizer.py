"""TFBertTokenizer against transformers' BertTokenizerFast (the oracle) and our own BertTokenizerFast, on the
MiniLM (bert-base-uncased) vocabulary and the multilingual corpus the tokenizer tests use (tests/tokenizers/
conftest.py): ids, token types and masks for single texts and pairs, every padding / truncation setting, both
tensorflow_text back ends; then loading, Keras config round trips, graph mode, an end-to-end SavedModel
reloaded in a fresh process, and the input errors."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow_text")
transformers = pytest.importorskip("transformers")

from warmstart.tf import TFBertTokenizer  # noqa: E402
from warmstart.tf.backend import keras, tf  # noqa: E402
from warmstart.tokenizers import BertTokenizerFast  # noqa: E402

KEYS = ("input_ids", "token_type_ids", "attention_mask")


def _tokenizer_conftest():
    """tests/tokenizers/conftest.py under a private name (pytest has its own module called conftest)."""
    path = Path(__file__).parents[1] / "tokenizers" / "conftest.py"
    spec = importlib.util.spec_from_file_location("_ws_tokenizer_corpus", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Odd input on top of the corpus: final sigma, ligatures and full-width forms (compatibility folding must not
# happen), emoji with modifiers and joiners, format / control / private-use / unassigned characters, every
# kind of space, CJK extension blocks, ASCII symbols, and words around the 100-character WordPiece cap.
EDGE_TEXTS = [
    "İstanbul ΣΟΦΟΣ straße ﬁne Ⅻ ½ ＡＢＣ",
    "emoji 👍🏽 👨‍👩‍👧 🇫🇷 ❤️",
    "zero\u200bwidth\u200dj soft\u00adhyphen",
    "nbsp\u00a0here\u3000ideo\u2028x\u2029y\u0085z\tw\r\nv",
    "ǅungla ǈ ẞ ῼ",
    "a\x00b\ufffdc\x85d\x0be\ue000f",
    "…—–«»¿¡",
    "\u0301alone",
    "unassigned\u0378x\U000e0001y",
    "$+<=>^`|~ ¢£¤¥ ©®°±",
    "𠀀𪜀 CJK ext",
    "x" * 120,
    "й" * 60,
    "y" * 100,
    "ab," + "q" * 101 + ".c d",
    "",
    "   ",
]


@pytest.fixture(scope="module")
def texts():
    return _tokenizer_conftest().corpus_lines() + EDGE_TEXTS


@pytest.fixture(scope="module")
def minilm(minilm_dir):
    return str(minilm_dir)


@pytest.fixture(scope="module")
def hf(minilm):
    return transformers.BertTokenizerFast.from_pretrained(minilm)


@pytest.fixture(scope="module")
def ours(minilm):
    return BertTokenizerFast.from_pretrained(minilm)


@pytest.fixture(scope="module", params=[True, False], ids=["fast_op", "lookup_table"])
def tf_tok(request, hf):
    return TFBertTokenizer.from_tokenizer(hf, use_fast_bert_tokenizer=request.param)


def _np(outputs) -> dict:
    return {key: np.asarray(outputs[key]) for key in KEYS}


def _assert_same(got, want, context):
    got, want = _np(got), _np(want)
    for key in KEYS:
        assert got[key].dtype == np.int64, (context, key, got[key].dtype)
        assert got[key].shape == want[key].shape, (context, key, got[key].shape, want[key].shape)
        rows = np.nonzero((got[key] != want[key]).any(axis=1))[0]
        assert rows.size == 0, (context, key, rows[:10].tolist())


def _oracle(tokenizer, text, text_pair=None, **kw):
    kw.setdefault("truncation", True)
    kw.setdefault("max_length", 512)
    kw.setdefault("padding", "longest")
    return tokenizer(text, text_pair, return_tensors="np", return_token_type_ids=True,
                     return_attention_mask=True, **kw)


# ---------------------------------------------------------------------------------------------- parity


def test_single_texts_match_transformers_and_ours(tf_tok, hf, ours, texts):
    got = tf_tok(texts)
    _assert_same(got, _oracle(hf, texts), "transformers")
    _assert_same(got, _oracle(ours, texts), "ours")


@pytest.mark.parametrize("max_length", [2, 5, 33])
def test_single_texts_truncated(tf_tok, hf, texts, max_length):
    batch = texts[::11]
    _assert_same(tf_tok(batch, max_length=max_length), _oracle(hf, batch, max_length=max_length), max_length)


@pytest.mark.parametrize("max_length", [3, 9, 16, 17])
def test_pairs_truncated_longest_first(tf_tok, hf, ours, texts, max_length):
    # Neighbouring lines give pairs of every length ratio, including equal lengths and empty sides.
    first, second = texts[0:-1:7], texts[1::7][: len(texts[0:-1:7])]
    got = tf_tok(first, second, max_length=max_length)
    _assert_same(got, _oracle(hf, first, second, max_length=max_length), ("transformers", max_length))
    if max_length == 17:
        _assert_same(got, _oracle(ours, first, second, max_length=max_length), ("ours", max_length))


def test_pairs_untruncated(tf_tok, hf, texts):
    first, second = texts[:200], texts[200:400]
    _assert_same(tf_tok(first, second, truncation=False), _oracle(hf, first, second, truncation=False), "pairs")
    # v4's [batch, 2] convention for pairs
    stacked = tf.stack([tf.constant(first), tf.constant(second)], axis=1)
    _assert_same(tf_tok(stacked, truncation=False), _oracle(hf, first, second, truncation=False), "stacked")


@pytest.mark.parametrize("padding,max_length,multiple", [
    ("max_length", 40, None), ("max_length", 48, 16), ("longest", 512, 8), ("longest", 21, 7),
    ("max_length", 8, 4)])
def test_padding_options(tf_tok, hf, texts, padding, max_length, multiple):
    batch = texts[:200:3]
    kw = dict(padding=padding, max_length=max_length, pad_to_multiple_of=multiple)
    _assert_same(tf_tok(batch, **kw), _oracle(hf, batch, **kw), kw)
    pairs = texts[1:201:3]
    _assert_same(tf_tok(batch, pairs, **kw), _oracle(hf, batch, pairs, **kw), ("pairs", kw))


TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "##s"]


def test_max_length_padding_without_truncation(hf, texts):
    """Rows longer than max_length keep their tokens (the batch pads to the longest), as BertTokenizerFast."""
    tok = TFBertTokenizer.from_tokenizer(hf, padding="max_length", max_length=24, pad_to_multiple_of=16,
                                         truncation=False)
    batch = ["many words " * 20, "short"]  # 42 tokens: past max_length
    want = _oracle(hf, batch, truncation=False, padding="longest", pad_to_multiple_of=16)
    _assert_same(tok(batch), want, "long rows")
    _assert_same(tok(["short"]), _oracle(hf, ["short"], truncation=False, padding="max_length", max_length=24,
                                          pad_to_multiple_of=16), "short rows")


def test_settings_given_at_construction(hf, texts):
    kw = dict(padding="max_length", max_length=32, pad_to_multiple_of=8)
    tok = TFBertTokenizer.from_tokenizer(hf, **kw)
    _assert_same(tok(texts[:50], texts[50:100]), _oracle(hf, texts[:50], texts[50:100], **kw), kw)


def test_uncased_vocab_without_lowercasing(minilm, texts):
    """do_lower_case=False (cased checkpoints): no lowercasing, no accent stripping, still HF's cleaning."""
    hf_cased = transformers.BertTokenizerFast.from_pretrained(minilm, do_lower_case=False)
    assert hf_cased("Ab")["input_ids"] != transformers.BertTokenizerFast.from_pretrained(minilm)("Ab")["input_ids"]
    for use_fast in (True, False):
        tok = TFBertTokenizer.from_tokenizer(hf_cased, use_fast_bert_tokenizer=use_fast)
        assert tok.do_lower_case is False
        _assert_same(tok(texts[::6]), _oracle(hf_cased, texts[::6]), use_fast)


# What tensorflow_text's own BERT normalisation (v4's TFBertTokenizer used it) makes of some text, against
# BertTokenizerFast: it folds Unicode compatibility forms (NFKC casefold), BertTokenizerFast does not.
TF_TEXT_NORMALIZER_DIFFERENCES = {
    "，": ([","], ["，"]),  # full-width comma: a token of its own in BERT's vocabulary
    "ⓔ": (["e"], ["[UNK]"]),
    "ＡＢＣ": (["abc"], ["[UNK]"]),
    "straße": (["st", "##ras", "##se"], ["st", "##raße"]),
    "ﬁne": (["fine"], ["ﬁ", "##ne"]),
    "½": (["1", "##⁄", "##2"], ["½"]),
}


def test_tensorflow_text_normalizer_difference_pinned(hf, tf_tok):
    """Why the layer does BertTokenizerFast's normalisation itself rather than tensorflow_text's (v4's way):
    the latter gives other ids on these texts (and on 123 of the 3000 corpus lines). The layer matches."""
    import tensorflow_text

    vocab = [t for t, _ in sorted(hf.get_vocab().items(), key=lambda kv: kv[1])]
    v4_way = tensorflow_text.FastBertTokenizer(vocab, token_out_type=tf.int64, lower_case_nfd_strip_accents=True)
    for text, (v4_tokens, hf_tokens) in TF_TEXT_NORMALIZER_DIFFERENCES.items():
        assert hf.tokenize(text) == hf_tokens, text
        assert hf.convert_ids_to_tokens(v4_way.tokenize([text]).to_list()[0]) == v4_tokens, text
        assert hf.convert_ids_to_tokens(tf_tok.unpaired_tokenize([text]).to_list()[0]) == hf_tokens, text


def test_input_kinds(hf):
    tok = TFBertTokenizer.from_tokenizer(hf)
    want = _np(_oracle(hf, ["Hello, wörld!"]))
    for value in ("Hello, wörld!", ["Hello, wörld!"], tf.constant("Hello, wörld!"), tf.constant(["Hello, wörld!"]),
                  np.array(["Hello, wörld!"])):
        _assert_same(tok(value), want, type(value))
    _assert_same(tok("a question?", "an answer."), _oracle(hf, ["a question?"], ["an answer."]), "pair str")
    _assert_same(tok(text="a question?", text_pair="an answer."), _oracle(hf, ["a question?"], ["an answer."]),
                 "keywords")
    out = tok(["x"], return_token_type_ids=False, return_attention_mask=False)
    assert list(out) == ["input_ids"]


def test_unpaired_tokenize(tf_tok, hf, texts):
    got = tf_tok.unpaired_tokenize(tf.constant(texts[:100]))
    assert isinstance(got, tf.RaggedTensor) and got.dtype == tf.int64 and got.shape.rank == 2
    assert got.to_list() == hf(texts[:100], add_special_tokens=False)["input_ids"]


def test_graph_mode_equals_eager(hf, texts):
    tf_tok = TFBertTokenizer.from_tokenizer(hf)  # the lookup-table back end runs in graph mode in the SavedModel
    batch = tf.constant(texts[:64])
    pairs = tf.constant(texts[64:128])
    spec = tf.TensorSpec([None], tf.string)

    kw = dict(max_length=24, padding="max_length", pad_to_multiple_of=8)

    @tf.function(input_signature=[spec, spec])
    def graph(a, b):
        return tf_tok(a, b, **kw)

    # With truncation, max_length padding gives a static length the graph's consumers can rely on.
    assert graph.get_concrete_function().structured_outputs["input_ids"].shape.as_list() == [None, 24]
    _assert_same(graph(batch, pairs), tf_tok(batch, pairs, **kw), "graph")
    with pytest.raises(tf.errors.InvalidArgumentError, match="as many strings"):
        graph(batch, pairs[:3])


# ---------------------------------------------------------------------------------------------- construction


def test_from_pretrained_folder(minilm, hf, texts):
    tok = TFBertTokenizer.from_pretrained(minilm, max_length=64)
    assert tok.do_lower_case is True and tok.max_length == 64
    assert (tok.cls_token_id, tok.sep_token_id, tok.pad_token_id) == (101, 102, 0)
    assert tok.vocab_list == [t for t, _ in sorted(hf.get_vocab().items(), key=lambda kv: kv[1])]
    _assert_same(tok(texts[:100]), _oracle(hf, texts[:100], max_length=64), "from_pretrained")
    ours = TFBertTokenizer.from_tokenizer(BertTokenizerFast.from_pretrained(minilm))
    unnamed = [{k: v for k, v in t.get_config().items() if k != "name"}
               for t in (ours, TFBertTokenizer.from_tokenizer(hf))]
    assert unnamed[0] == unnamed[1]


def test_defaults_from_vocab():
    tok = TFBertTokenizer(TINY_VOCAB, do_lower_case=True)
    assert (tok.cls_token_id, tok.sep_token_id, tok.pad_token_id) == (2, 3, 0)
    out = tok(["Hello worlds", "hi"])
    assert out["input_ids"].numpy().tolist() == [[2, 4, 5, 6, 3], [2, 1, 3, 0, 0]]


def test_get_config_round_trip(hf, texts):
    tok = TFBertTokenizer.from_tokenizer(hf, padding="max_length", max_length=64, pad_to_multiple_of=32,
                                         use_fast_bert_tokenizer=False, name="tok")
    config = tok.get_config()
    json.dumps(config)
    again = TFBertTokenizer.from_config(config)
    assert again.get_config() == config and again.name == "tok"
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(tok))
    assert isinstance(revived, TFBertTokenizer) and revived.get_config() == config
    for other in (again, revived):
        _assert_same(other(texts[:40], texts[40:80]), tok(texts[:40], texts[40:80]), "round trip")


# ---------------------------------------------------------------------------------------------- SavedModel

SEQ_LEN = 32
NUM_LABELS = 3


def _classifier(vocab_size: int):
    """A tiny random classifier on top of the tokenizer: our TFBertForSequenceClassification when the TF wing
    provides it, else a Keras embedding + pooling + dense stand-in (same inputs, same logits shape)."""
    try:
        from warmstart.config.bert import BertConfig
        from warmstart.tf import TFBertForSequenceClassification

        config = BertConfig(vocab_size=vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=32, max_position_embeddings=SEQ_LEN, num_labels=NUM_LABELS)
        model = TFBertForSequenceClassification(config)

        def logits(features):
            return model(**features).logits

        logits({k: tf.zeros([1, 4], tf.int64) for k in KEYS})
        return model, logits, "TFBertForSequenceClassification"
    except Exception:  # not there (yet) or not working: the stand-in still proves the strings-to-logits path
        embed = keras.layers.Embedding(vocab_size, 8)
        dense = keras.layers.Dense(NUM_LABELS)
        model = keras.Sequential([embed, keras.layers.GlobalAveragePooling1D(), dense])

        def logits(features):
            return model(features["input_ids"])

        logits({k: tf.zeros([1, 4], tf.int64) for k in KEYS})
        return model, logits, "keras stand-in"


_RELOAD = """
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import tensorflow as tf
import tensorflow_text  # registers the ops the graph uses
folder = sys.stdin.readline().strip()  # sent once the SavedModel is written
texts = json.load(open(os.path.join(folder, "texts.json")))
loaded = tf.saved_model.load(os.path.join(folder, "end_to_end"))
out = loaded.signatures["serving_default"](text=tf.constant(texts))
np.savez(os.path.join(folder, "out.npz"), **{k: v.numpy() for k, v in out.items()})
assert "warmstart" not in sys.modules and "transformers" not in sys.modules
"""


def test_saved_model_strings_to_logits(hf, tmp_path, texts):
    # The fresh process imports TensorFlow while this one builds and saves the model, then waits for the path.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    reload = subprocess.Popen([sys.executable, "-c", _RELOAD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
    try:
        # The lookup-table back end: its vocabulary table is a resource the SavedModel must carry.
        tok = TFBertTokenizer.from_tokenizer(hf, padding="max_length", max_length=SEQ_LEN,
                                             use_fast_bert_tokenizer=False)
        model, logits, kind = _classifier(len(tok.vocab_list))

        class EndToEnd(tf.Module):
            def __init__(self):
                super().__init__()
                self.tokenizer, self.model = tok, model

            @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
            def classify(self, text):
                features = self.tokenizer(text)
                return {"logits": logits(features), **features}

        module = EndToEnd()
        batch = texts[:6] + ["Hello world!", "吾輩は猫である 😺"]
        want = {key: value.numpy() for key, value in module.classify(tf.constant(batch)).items()}
        assert want["logits"].shape == (len(batch), NUM_LABELS), kind
        _assert_same(want, _oracle(hf, batch, padding="max_length", max_length=SEQ_LEN), "inside the module")

        tf.saved_model.save(module, str(tmp_path / "end_to_end"), signatures={"serving_default": module.classify})
        (tmp_path / "texts.json").write_text(json.dumps(batch))
        _, stderr = reload.communicate(str(tmp_path) + "\n", timeout=180)
    finally:
        if reload.poll() is None:
            reload.kill()
    assert reload.returncode == 0, stderr[-3000:]
    got = dict(np.load(tmp_path / "out.npz"))
    assert sorted(got) == sorted(want)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6, err_msg=f"{kind}: {key}")


# ---------------------------------------------------------------------------------------------- errors


@pytest.fixture(scope="module")
def tok(hf):
    return TFBertTokenizer.from_tokenizer(hf)


def test_bad_padding_names_the_value(tok, hf):
    with pytest.raises(ValueError, match="'do_not_pad'"):
        tok(["a"], padding="do_not_pad")
    with pytest.raises(ValueError, match="True"):
        tok(["a"], padding=True)
    with pytest.raises(ValueError, match="'left'"):
        TFBertTokenizer.from_tokenizer(hf, padding="left")


def test_bad_max_length(tok, hf):
    with pytest.raises(ValueError, match="at least 2.*got 1"):
        tok(["a"], max_length=1)
    with pytest.raises(ValueError, match="at least 3.*got 2"):
        tok(["a"], ["b"], max_length=2)
    tok(["a"], max_length=2)
    tok(["a"], ["b"], max_length=3)
    with pytest.raises(ValueError, match="at least 2.*got 0"):
        TFBertTokenizer.from_tokenizer(hf, max_length=0)
    with pytest.raises(TypeError, match="'12'"):
        tok(["a"], max_length="12")


def test_bad_pad_to_multiple_of(tok, hf):
    for bad in (0, -8):
        with pytest.raises(ValueError, match=f"pad_to_multiple_of.*got {bad}"):
            tok(["a"], pad_to_multiple_of=bad)
        with pytest.raises(ValueError, match=f"pad_to_multiple_of.*got {bad}"):
            TFBertTokenizer.from_tokenizer(hf, pad_to_multiple_of=bad)


def test_truncation_length_not_a_multiple(tok, hf):
    with pytest.raises(ValueError, match=r"max_length \(40\) must be a multiple of pad_to_multiple_of \(16\)"):
        tok(["a"], max_length=40, pad_to_multiple_of=16)
    with pytest.raises(ValueError, match="multiple"):
        TFBertTokenizer.from_tokenizer(hf, max_length=40, pad_to_multiple_of=16)
    tok(["a"], max_length=40, pad_to_multiple_of=16, truncation=False)


def test_pair_length_mismatch(tok):
    with pytest.raises(ValueError, match="2 texts and 3 text_pair"):
        tok(["a", "b"], ["c", "d", "e"])


def test_bad_inputs(tok):
    with pytest.raises(TypeError, match="text must be"):
        tok([1, 2])
    with pytest.raises(ValueError, match="shape"):
        tok(tf.constant([["a", "b", "c"]]))
    with pytest.raises(ValueError, match="text_pair must be"):
        tok(["a"], tf.constant([["b"]]))


def test_missing_special_tokens():
    with pytest.raises(ValueError, match=r"'\[CLS\]' is not in vocab_list"):
        TFBertTokenizer(["[PAD]", "[UNK]", "[SEP]", "a"], do_lower_case=True)
    with pytest.raises(ValueError, match="unknown token"):
        TFBertTokenizer(["[PAD]", "[CLS]", "[SEP]", "a"], do_lower_case=True)
