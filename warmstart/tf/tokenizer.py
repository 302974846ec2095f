"""``TFBertTokenizer``: BERT's WordPiece tokenizer as a Keras 3 layer, so raw ``tf.string`` batches can go
through a model (eagerly, in a ``tf.function`` or from a SavedModel) with no Python tokenizer beside it.

The public surface is transformers v4's ``TFBertTokenizer``. Where v4 let tensorflow_text normalise the text
(``case_fold_utf8`` / ``lower_case_nfd_strip_accents``, which apply Unicode *compatibility* folding: "，" -> ",",
"ⓔ" -> "e", "ß" -> "ss", Hangul syllables to jamo that then match pieces), this layer normalises in the graph
the way ``BertTokenizerFast`` does (drop control and format characters, map whitespace to a space, put spaces
around CJK ideographs, then NFD + drop non-spacing marks + lowercase when lowercasing) and hands the result to
tensorflow_text with its own normalisation switched off. Truncation follows ``BertTokenizerFast``'s
``longest_first`` arithmetic row by row, so ids match it, and ``max_length`` may be given per call for pairs too.

No id differences from ``BertTokenizerFast`` are known (tests/tf/test_tokenizer.py compares them on the
tokenizer tests' multilingual corpus and on odd input). The one possible source left: the character classes
come from RE2's (TF's regex engine) and ICU's (NFD, lowercasing) Unicode tables, which may classify a character
added in a recent Unicode version differently from the tables compiled into ``tokenizers``.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from .backend import keras, tf

try:
    import tensorflow_text as _tf_text
except ImportError as _err:  # pragma: no cover - exercised only where tensorflow_text is absent
    raise ImportError(f"TFBertTokenizer needs tensorflow_text ({_err}); install it with: "
                      f"pip install 'warmstart[tf]'") from _err

__all__ = ["TFBertTokenizer"]

_PADDINGS = ("longest", "max_length")
# Keyword arguments that belong to keras.layers.Layer rather than to the tensorflow_text tokenizer.
_LAYER_KWARGS = ("name", "trainable", "dtype", "autocast")
# Our own options carried in **tokenizer_kwargs (the rest go to the tensorflow_text tokenizer).
_OWN_KWARGS = ("strip_accents", "max_input_chars_per_word")

# Characters BertTokenizerFast's normaliser removes: C0/C1 controls except \t \n \r, format characters (Cf,
# e.g. zero-width joiners, soft hyphens), private-use characters (Co) and U+FFFD.
_DROPPED = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\p{Cf}\p{Co}\x{FFFD}]"
# What is left of Unicode's White_Space after the removal above; each becomes a plain space.
_WHITESPACE = r"[\t\n\r\p{Zs}\x{2028}\x{2029}]"
# The CJK ideograph blocks BERT splits into one token per character.
_CJK = (r"[\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2B73F}\x{2B740}-\x{2B81F}"
        r"\x{2B820}-\x{2CEAF}\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F}]")
# BERT's punctuation: Unicode's P* categories and every ASCII symbol.
_PUNCTUATION = r"[!-/:-@\[-`{-~\p{P}]"


def _check_int(name: str, value, minimum: int, why: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}{why}, got {value!r}")
    return value


def _check_padding(padding) -> str:
    if padding not in _PADDINGS:
        raise ValueError(f"padding must be 'longest' or 'max_length', got {padding!r}")
    return padding


def _round_up(length, multiple):
    return ((length + multiple - 1) // multiple) * multiple


def _pad(rows: tf.RaggedTensor, value: int, length) -> tf.Tensor:
    """Rows padded with ``value`` to ``length`` (a python int keeps the length static in the graph)."""
    shape = [None, length] if isinstance(length, int) else tf.stack([rows.nrows(), tf.cast(length, tf.int64)])
    return rows.to_tensor(default_value=tf.constant(value, rows.dtype), shape=shape)


def _keep_first(tokens: tf.RaggedTensor, keep: tf.Tensor) -> tf.RaggedTensor:
    """The first ``keep[i]`` tokens of each row ``i``."""
    positions = tf.ragged.range(tokens.row_lengths())
    return tf.ragged.boolean_mask(tokens, positions < tf.expand_dims(keep, 1))


def _longest_first(first: tf.RaggedTensor, second: tf.RaggedTensor, budget: int):
    """Cut a pair of token rows to ``budget`` tokens in all, as ``tokenizers``' ``longest_first`` does: the
    shorter side keeps everything if the longer can absorb the cut, otherwise the budget is split in half with
    the odd token going to the longer side (to the second when both are as long)."""
    n1, n2 = first.row_lengths(), second.row_lengths()
    half = tf.constant(budget // 2, tf.int64)
    shorter = tf.minimum(n1, n2)
    keep_short = tf.where(shorter > half, half, shorter)
    keep_long = budget - keep_short
    swap = n1 > n2
    keep1 = tf.where(swap, keep_long, keep_short)
    keep2 = tf.where(swap, keep_short, keep_long)
    fits = n1 + n2 <= budget
    keep1 = tf.minimum(tf.where(fits, n1, keep1), n1)
    keep2 = tf.minimum(tf.where(fits, n2, keep2), n2)
    return _keep_first(first, keep1), _keep_first(second, keep2)


@keras.saving.register_keras_serializable(package="warmstart")
class TFBertTokenizer(keras.layers.Layer):
    """BERT tokenization inside the TensorFlow graph, as a Keras layer.

    Build it with :meth:`from_pretrained` (a folder holding a BERT tokenizer) or :meth:`from_tokenizer` (a
    ``BertTokenizer`` / ``BertTokenizerFast``, ours or transformers'); calling it on strings returns int64
    ``input_ids``, ``token_type_ids`` and ``attention_mask`` of shape ``[batch, length]``, equal to what
    ``BertTokenizerFast(..., return_tensors="tf")`` gives for the same settings.

    Args:
        vocab_list: the vocabulary, index ``i`` holding the token of id ``i``.
        do_lower_case: lowercase and strip accents before WordPiece (uncased checkpoints).
        cls_token_id, sep_token_id, pad_token_id: special ids; by default the ids of "[CLS]", "[SEP]", "[PAD]".
        padding: ``"longest"`` (pad to the longest row of the batch) or ``"max_length"``.
        truncation: cut rows to ``max_length`` (pairs: ``longest_first``).
        max_length: the length cut to, and padded to under ``padding="max_length"``.
        pad_to_multiple_of: round the padded length up to a multiple of this.
        return_token_type_ids, return_attention_mask: which outputs besides ``input_ids`` to return.
        use_fast_bert_tokenizer: WordPiece by ``tensorflow_text.FastBertTokenizer`` (default) or by
            ``tensorflow_text.BertTokenizer`` over a lookup table (same ids, slower; for runtimes lacking the
            fast op).
        **tokenizer_kwargs: Keras layer options (``name``, ``dtype``, ...); ``strip_accents`` (default: follows
            ``do_lower_case``) and ``max_input_chars_per_word`` (100: longer words become the unknown token);
            anything else goes to the tensorflow_text tokenizer (e.g. ``unknown_token``, ``suffix_indicator``).

    A single string (python ``str`` or scalar tensor) is treated as a batch of one. A ``[batch, 2]`` string
    tensor without ``text_pair`` is read as pairs (v4's convention).
    """

    def __init__(self, vocab_list, do_lower_case, cls_token_id=None, sep_token_id=None, pad_token_id=None,
                 padding="longest", truncation=True, max_length=512, pad_to_multiple_of=None,
                 return_token_type_ids=True, return_attention_mask=True, use_fast_bert_tokenizer=True,
                 **tokenizer_kwargs):
        layer_kwargs = {key: tokenizer_kwargs.pop(key) for key in _LAYER_KWARGS if key in tokenizer_kwargs}
        super().__init__(**layer_kwargs)
        # Strings in, a dict of int64 out: keep Keras from casting or rejecting the python inputs.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True

        vocab = [str(token) for token in vocab_list]
        if not vocab:
            raise ValueError("vocab_list is empty")
        self.vocab_list = vocab
        self.do_lower_case = bool(do_lower_case)
        self.cls_token_id = self._special_id(vocab, cls_token_id, "[CLS]", "cls_token_id")
        self.sep_token_id = self._special_id(vocab, sep_token_id, "[SEP]", "sep_token_id")
        self.pad_token_id = self._special_id(vocab, pad_token_id, "[PAD]", "pad_token_id")
        self.padding = _check_padding(padding)
        self.truncation = bool(truncation)
        self.max_length = _check_int("max_length", max_length, 2, " (room for [CLS] and [SEP])")
        self.pad_to_multiple_of = (None if pad_to_multiple_of is None
                                   else _check_int("pad_to_multiple_of", pad_to_multiple_of, 1))
        if self.truncation and self.pad_to_multiple_of and self.max_length % self.pad_to_multiple_of:
            raise ValueError(f"with truncation, max_length ({self.max_length}) must be a multiple of "
                             f"pad_to_multiple_of ({self.pad_to_multiple_of})")
        self.return_token_type_ids = bool(return_token_type_ids)
        self.return_attention_mask = bool(return_attention_mask)
        self.use_fast_bert_tokenizer = bool(use_fast_bert_tokenizer)
        self.tokenizer_kwargs = dict(tokenizer_kwargs)

        options = dict(tokenizer_kwargs)
        strip_accents = options.pop("strip_accents", None)
        self._strip_accents = self.do_lower_case if strip_accents is None else bool(strip_accents)
        self._max_word_chars = _check_int("max_input_chars_per_word", options.pop("max_input_chars_per_word", 100), 1)
        # Words are capped in characters here (below), so the op's byte cap must not bite first.
        options.setdefault("max_bytes_per_word", 4 * self._max_word_chars)
        unknown = options.get("unknown_token", "[UNK]")
        if unknown not in vocab:
            raise ValueError(f"the unknown token {unknown!r} is not in vocab_list; pass unknown_token=...")
        # Over-long words are replaced by one private-use character the vocabulary lacks, which WordPiece then
        # maps to the unknown token (private-use characters in the input are removed before that).
        vocab_set = set(vocab)
        self._long_word_mark = next(chr(cp) for cp in range(0xE000, 0xF900) if chr(cp) not in vocab_set)

        if self.use_fast_bert_tokenizer:
            self.tf_tokenizer = _tf_text.FastBertTokenizer(
                vocab, token_out_type=tf.int64, lower_case_nfd_strip_accents=False, **options)
        else:
            table = tf.lookup.StaticVocabularyTable(
                tf.lookup.KeyValueTensorInitializer(
                    keys=tf.constant(vocab, tf.string), values=tf.range(len(vocab), dtype=tf.int64),
                    key_dtype=tf.string, value_dtype=tf.int64),
                num_oov_buckets=1)
            self.tf_tokenizer = _tf_text.BertTokenizer(
                table, token_out_type=tf.int64, lower_case=False, normalization_form=None, **options)
        self.built = True

    @staticmethod
    def _special_id(vocab, given, token, name):
        if given is not None:
            given = _check_int(name, given, 0)
            if given >= len(vocab):
                raise ValueError(f"{name}={given} is outside the vocabulary of {len(vocab)} tokens")
            return given
        try:
            return vocab.index(token)
        except ValueError:
            raise ValueError(f"{token!r} is not in vocab_list; pass {name}=...") from None

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_tokenizer(cls, tokenizer, **kwargs):
        """Build from a BERT tokenizer object (ours or transformers', slow or fast): its vocabulary, casing,
        special ids and unknown token. ``kwargs`` go to ``__init__`` (``padding``, ``max_length``, ...)."""
        vocab = tokenizer.get_vocab()
        ordered = [token for token, _ in sorted(vocab.items(), key=lambda item: item[1])]
        if [vocab[token] for token in ordered] != list(range(len(ordered))):
            raise ValueError("the tokenizer's vocabulary ids are not 0..n-1, so it cannot become a vocab_list")
        do_lower_case = kwargs.pop("do_lower_case", None)
        if do_lower_case is None:
            do_lower_case = getattr(tokenizer, "do_lower_case", None)
        if do_lower_case is None:
            init = getattr(tokenizer, "init_kwargs", None) or {}
            do_lower_case = init.get("do_lower_case", True)
        unk = getattr(tokenizer, "unk_token", None)
        if unk is not None and str(unk) != "[UNK]":
            kwargs.setdefault("unknown_token", str(unk))
        for name in ("cls_token_id", "sep_token_id", "pad_token_id"):
            kwargs.setdefault(name, getattr(tokenizer, name, None))
        return cls(vocab_list=ordered, do_lower_case=do_lower_case, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *init_inputs, **kwargs):
        """Load warmstart's tokenizer for ``pretrained_model_name_or_path`` (a folder, or a name already in
        the local cache) and build from it. Keyword arguments that ``__init__`` takes go to the layer; the
        rest go to the tokenizer's ``from_pretrained``."""
        from ..tokenizers import AutoTokenizer, BertTokenizerFast

        layer_keys = set(_LAYER_KWARGS) | set(_OWN_KWARGS) | {
            "cls_token_id", "sep_token_id", "pad_token_id", "padding", "truncation", "max_length",
            "pad_to_multiple_of", "return_token_type_ids", "return_attention_mask", "use_fast_bert_tokenizer",
            "unknown_token", "suffix_indicator", "do_lower_case"}
        layer_kwargs = {key: kwargs.pop(key) for key in list(kwargs) if key in layer_keys}
        try:
            tokenizer = AutoTokenizer.from_pretrained(pretrained_model_name_or_path, *init_inputs, **kwargs)
        except Exception:  # a folder with only vocab.txt (no tokenizer_config.json) still loads as BERT
            tokenizer = BertTokenizerFast.from_pretrained(pretrained_model_name_or_path, *init_inputs, **kwargs)
        if not hasattr(tokenizer, "get_vocab") or getattr(tokenizer, "cls_token_id", None) is None:
            raise ValueError(f"{pretrained_model_name_or_path!r} does not hold a BERT-style WordPiece tokenizer "
                             f"(got {type(tokenizer).__name__})")
        return cls.from_tokenizer(tokenizer, **layer_kwargs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({
            "vocab_list": list(self.vocab_list),
            "do_lower_case": self.do_lower_case,
            "cls_token_id": self.cls_token_id,
            "sep_token_id": self.sep_token_id,
            "pad_token_id": self.pad_token_id,
            "padding": self.padding,
            "truncation": self.truncation,
            "max_length": self.max_length,
            "pad_to_multiple_of": self.pad_to_multiple_of,
            "return_token_type_ids": self.return_token_type_ids,
            "return_attention_mask": self.return_attention_mask,
            "use_fast_bert_tokenizer": self.use_fast_bert_tokenizer,
        })
        config.update(self.tokenizer_kwargs)
        return config

    # ------------------------------------------------------------------ tokenization

    def _normalize(self, texts: tf.Tensor) -> tf.Tensor:
        """BertTokenizerFast's normaliser, in TF string ops."""
        texts = tf.strings.regex_replace(texts, _DROPPED, "")
        texts = tf.strings.regex_replace(texts, _WHITESPACE, " ")
        texts = tf.strings.regex_replace(texts, "(" + _CJK + ")", r" \1 ")
        if self._strip_accents:
            texts = _tf_text.normalize_utf8(texts, "NFD")
            texts = tf.strings.regex_replace(texts, r"\p{Mn}", "")
        if self.do_lower_case:
            # Lowercase per character like the Rust normaliser: ICU would give a word-final sigma "ς".
            texts = tf.strings.regex_replace(texts, "Σ", "σ")
            texts = tf.strings.lower(texts, encoding="utf-8")
        # A word over the cap becomes the mark. Only where some run of non-spaces is that long at all, the
        # punctuation is spaced out (WordPiece splits there anyway) so that words are exactly such runs.
        limit = self._max_word_chars + 1
        too_long = "[^ ]{%d,}" % limit

        def mark_long_words():
            spaced = tf.strings.regex_replace(texts, "(" + _PUNCTUATION + ")", r" \1 ")
            return tf.strings.regex_replace(spaced, too_long, self._long_word_mark)

        maybe = tf.reduce_any(tf.strings.regex_full_match(texts, "(?s).*" + too_long + ".*"))
        return tf.cond(maybe, mark_long_words, lambda: tf.identity(texts))

    def unpaired_tokenize(self, texts):
        """WordPiece ids of each text, no special tokens: a ``[batch, (tokens)]`` int64 RaggedTensor."""
        texts = self._normalize(tf.convert_to_tensor(texts, tf.string))
        tokens = self.tf_tokenizer.tokenize(texts)
        if not self.use_fast_bert_tokenizer:  # [batch, (words), (pieces)]
            tokens = tokens.merge_dims(-2, -1)
        return tokens

    @staticmethod
    def _as_batch(value, name: str) -> tf.Tensor:
        try:
            tensor = tf.convert_to_tensor(value, dtype=tf.string)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be a str, a list of str or a tf.string tensor, got {value!r}") from err
        rank = tensor.shape.rank
        if rank is None:
            tensor = tf.reshape(tensor, [-1])
        elif rank == 0:
            tensor = tf.expand_dims(tensor, 0)
        return tensor

    def call(self, text, text_pair=None, padding=None, truncation=None, max_length=None, pad_to_multiple_of=None,
             return_token_type_ids=None, return_attention_mask=None):
        padding = _check_padding(self.padding if padding is None else padding)
        truncation = self.truncation if truncation is None else bool(truncation)
        pad_to_multiple_of = self.pad_to_multiple_of if pad_to_multiple_of is None else pad_to_multiple_of
        if pad_to_multiple_of is not None:
            pad_to_multiple_of = _check_int("pad_to_multiple_of", pad_to_multiple_of, 1)
        return_token_type_ids = self.return_token_type_ids if return_token_type_ids is None else return_token_type_ids
        return_attention_mask = self.return_attention_mask if return_attention_mask is None else return_attention_mask

        text = self._as_batch(text, "text")
        if text_pair is not None:
            text_pair = self._as_batch(text_pair, "text_pair")
        elif text.shape.rank == 2:
            if text.shape[1] is not None and text.shape[1] != 2:
                raise ValueError(f"a 2-D text tensor must be [batch, 2] (pairs), got shape {text.shape}")
            text, text_pair = text[:, 0], text[:, 1]
        for name, value in (("text", text), ("text_pair", text_pair)):
            if value is not None and value.shape.rank != 1:
                raise ValueError(f"{name} must be a string or a 1-D batch of strings, got shape {value.shape}")
        paired = text_pair is not None
        if max_length is None:
            max_length = self.max_length
        max_length = _check_int("max_length", max_length, 3 if paired else 2,
                                " (room for [CLS] and two [SEP])" if paired else " (room for [CLS] and [SEP])")

        if truncation and pad_to_multiple_of is not None and max_length % pad_to_multiple_of:
            # As BertTokenizerFast: a cut that is then padded past max_length would defeat the cut.
            raise ValueError(f"with truncation, max_length ({max_length}) must be a multiple of "
                             f"pad_to_multiple_of ({pad_to_multiple_of})")

        if paired:
            n_text, n_pair = text.shape[0], text_pair.shape[0]
            if n_text is not None and n_pair is not None:
                if n_text != n_pair:
                    raise ValueError(f"text and text_pair must hold as many strings: got {n_text} texts and "
                                     f"{n_pair} text_pair entries")
                checks = []
            else:
                checks = [tf.debugging.assert_equal(tf.shape(text)[0], tf.shape(text_pair)[0],
                                                    message="text and text_pair must hold as many strings")]
            with tf.control_dependencies(checks):
                first = self.unpaired_tokenize(text)
                second = self.unpaired_tokenize(text_pair)
            if truncation:
                first, second = _longest_first(first, second, max_length - 3)
            segments = (first, second)
        else:
            first = self.unpaired_tokenize(text)
            if truncation:
                first = first[:, : max_length - 2]
            segments = (first,)
        input_ids, token_type_ids = _tf_text.combine_segments(
            segments, start_of_sequence_id=self.cls_token_id, end_of_segment_id=self.sep_token_id)

        if padding == "max_length" and truncation:
            length = max_length if pad_to_multiple_of is None else _round_up(max_length, pad_to_multiple_of)
        else:
            length = tf.cast(input_ids.bounding_shape(axis=1), tf.int64)
            if padding == "max_length":  # without truncation a longer row keeps its tokens
                length = tf.maximum(length, max_length)
            if pad_to_multiple_of is not None:
                length = _round_up(length, pad_to_multiple_of)
        outputs = {"input_ids": _pad(input_ids, self.pad_token_id, length)}
        if return_token_type_ids:
            outputs["token_type_ids"] = _pad(tf.cast(token_type_ids, tf.int64), 0, length)
        if return_attention_mask:
            outputs["attention_mask"] = _pad(tf.ones_like(input_ids, tf.int64), 0, length)
        return outputs
