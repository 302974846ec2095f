"""The calling convention shared by slow and fast tokenizers (see `base.py` for the subclass contract).

`PreTrainedTokenizerBase` parses what the user asked for once (`tok(text, text_pair, padding=...,
truncation=..., ...)`) into an `EncodeOptions`, normalises the input into a list of (first, second)
items, and hands both to `_encode_items`, which the slow and the fast base implement. Padding
(`pad`), decoding and the token/id conversions live here too, so the two families cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tokenizers import AddedToken

from .base_encoding import (
    LARGE_INTEGER,
    EncodeOptions,
    VERY_LARGE_INTEGER,
    BatchEncoding,
    PaddingStrategy,
    TensorType,
    TruncationStrategy,
    to_py_obj,
)
from .base_encoding import (
    describe as _describe,
)
from .base_ids import IdsMixin
from .base_io import PretrainedIOMixin
from .base_pad import PaddingMixin
from .base_special import SPECIAL_TOKENS_ATTRIBUTES, SpecialTokensMixin, check_token
from .chat import ChatTemplateMixin


def _check_side(name: str, value: str) -> str:
    if value not in ("right", "left"):
        raise ValueError(f"{name} must be 'right' or 'left', got {value!r}")
    return value


def _check_count(name: str, value, minimum: int) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < minimum):
        raise ValueError(f"{name} must be an int >= {minimum} (or None), got {value!r}")


def _is_text(x) -> bool:
    """A single (non-batched) sequence: a string, pre-split words, or ids."""
    return isinstance(x, str) or (isinstance(x, (list, tuple)) and (not x or isinstance(x[0], (str, int))))


class PreTrainedTokenizerBase(SpecialTokensMixin, PaddingMixin, IdsMixin, ChatTemplateMixin, PretrainedIOMixin):
    vocab_files_names: dict[str, str] = {}
    model_input_names: list[str] = ["input_ids", "token_type_ids", "attention_mask"]
    padding_side: str = "right"
    truncation_side: str = "right"
    is_fast: bool = False

    def __init__(self, **kwargs):
        _check_no_method_names(type(self), kwargs)
        # Everything the tokenizer was built from, so save_pretrained can write it back.
        self.init_kwargs = {k: v for k, v in kwargs.items() if k not in ("name_or_path",)}
        self.name_or_path = kwargs.pop("name_or_path", "")
        self._init_special_tokens(kwargs)
        max_len = kwargs.pop("model_max_length", kwargs.pop("max_len", None))
        self.model_max_length = VERY_LARGE_INTEGER if max_len is None else max_len
        self.padding_side = _check_side("padding_side", kwargs.pop("padding_side", type(self).padding_side))
        self.truncation_side = _check_side("truncation_side", kwargs.pop("truncation_side", type(self).truncation_side))
        self.model_input_names = list(kwargs.pop("model_input_names", type(self).model_input_names))
        self.clean_up_tokenization_spaces = kwargs.pop("clean_up_tokenization_spaces", False)
        self.split_special_tokens = kwargs.pop("split_special_tokens", False)
        self.chat_template = _read_chat_template(kwargs.pop("chat_template", None))
        self.deprecation_warnings: dict[str, bool] = {}  # v4's name: warnings already given by this tokenizer
        # Whatever is left is configuration this class does not use (e.g. keys written by other
        # tokenizer versions); it is kept in init_kwargs and written back on save, never an error.
        self.unused_kwargs = kwargs

    # ---------------------------------------------------------------------------------------------
    # Strategy resolution
    # ---------------------------------------------------------------------------------------------
    def _resolve_options(self, *args, **kwargs) -> EncodeOptions:
        """`_compute_options`, memoised: most programs make the same kind of call over and over."""
        state = (self.model_max_length, self.padding_side, self.pad_token, self.split_special_tokens,
                 tuple(self.model_input_names))  # fmt: skip
        try:
            key = (args, tuple(sorted(kwargs.items())), state)
            hit = self._options_cache.get(key)
        except TypeError:  # an unhashable argument: just compute
            return self._compute_options(*args, **kwargs)
        except AttributeError:
            self._options_cache = {}
            hit = None
        if hit is None:
            hit = self._compute_options(*args, **kwargs)
            if len(self._options_cache) > 256:
                self._options_cache.clear()
            self._options_cache[key] = hit
        return hit

    def _compute_options(
        self,
        padding=False,
        truncation=None,
        max_length=None,
        stride=0,
        pad_to_multiple_of=None,
        padding_side=None,
        return_tensors=None,
        return_token_type_ids=None,
        return_attention_mask=None,
        add_special_tokens=True,
        is_split_into_words=False,
        return_overflowing_tokens=False,
        return_special_tokens_mask=False,
        return_offsets_mapping=False,
        return_length=False,
        split_special_tokens=None,
    ) -> EncodeOptions:
        _check_count("max_length", max_length, 0)
        _check_count("stride", stride, 0)
        _check_count("pad_to_multiple_of", pad_to_multiple_of, 1)
        # transformers: a bare max_length (no padding, no truncation given) means "truncate to it".
        if max_length is not None and padding is False and truncation is None:
            truncation = True

        if padding is True:
            pad = PaddingStrategy.LONGEST
        elif padding is False or padding is None:
            pad = PaddingStrategy.DO_NOT_PAD
        else:
            pad = PaddingStrategy.parse(padding, "padding strategy")
        if truncation is True:
            trunc = TruncationStrategy.LONGEST_FIRST
        elif truncation is False or truncation is None:
            trunc = TruncationStrategy.DO_NOT_TRUNCATE
        else:
            trunc = TruncationStrategy.parse(truncation, "truncation strategy")

        if max_length is None:
            # Fall back on the model's limit; a tokenizer without one (the 1e30 sentinel) then
            # neither pads to max_length nor truncates, as in transformers.
            limited = self.model_max_length is not None and self.model_max_length <= LARGE_INTEGER
            if pad is PaddingStrategy.MAX_LENGTH:
                if limited:
                    max_length = self.model_max_length
                else:
                    pad = PaddingStrategy.DO_NOT_PAD
            if trunc is not TruncationStrategy.DO_NOT_TRUNCATE:
                if limited:
                    max_length = self.model_max_length
                else:
                    trunc = TruncationStrategy.DO_NOT_TRUNCATE

        if pad is not PaddingStrategy.DO_NOT_PAD and (self.pad_token is None or self.pad_token_id is None):
            raise ValueError(
                "Padding was requested but this tokenizer has no pad_token; set one, e.g. "
                "tokenizer.pad_token = tokenizer.eos_token, or tokenizer.add_special_tokens({'pad_token': '[PAD]'})"
            )
        if (
            trunc is not TruncationStrategy.DO_NOT_TRUNCATE
            and pad is not PaddingStrategy.DO_NOT_PAD
            and pad_to_multiple_of is not None
            and max_length is not None
            and max_length % pad_to_multiple_of != 0
        ):
            raise ValueError(
                f"Truncation and padding are both on, but the truncation length max_length={max_length} is not a "
                f"multiple of pad_to_multiple_of={pad_to_multiple_of}"
            )
        names = self.model_input_names
        return EncodeOptions(
            add_special_tokens=bool(add_special_tokens),
            padding=pad,
            truncation=trunc,
            max_length=max_length,
            stride=stride,
            is_split_into_words=bool(is_split_into_words),
            pad_to_multiple_of=pad_to_multiple_of,
            padding_side=_check_side("padding_side", padding_side or self.padding_side),
            return_tensors=None if return_tensors is None else TensorType.parse(return_tensors, "return_tensors"),
            return_token_type_ids=("token_type_ids" in names) if return_token_type_ids is None else return_token_type_ids,
            return_attention_mask=("attention_mask" in names) if return_attention_mask is None else return_attention_mask,
            return_overflowing_tokens=bool(return_overflowing_tokens),
            return_special_tokens_mask=bool(return_special_tokens_mask),
            return_offsets_mapping=bool(return_offsets_mapping),
            return_length=bool(return_length),
            split_special_tokens=self.split_special_tokens if split_special_tokens is None else split_special_tokens,
        )

    # ---------------------------------------------------------------------------------------------
    # Calling
    # ---------------------------------------------------------------------------------------------
    def __call__(
        self,
        text=None,
        text_pair=None,
        text_target=None,
        text_pair_target=None,
        add_special_tokens: bool = True,
        padding: bool | str | PaddingStrategy = False,
        truncation: bool | str | TruncationStrategy | None = None,
        max_length: int | None = None,
        stride: int = 0,
        is_split_into_words: bool = False,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_tensors: str | TensorType | None = None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        return_overflowing_tokens: bool = False,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
        verbose: bool = True,
        **kwargs,
    ) -> BatchEncoding:
        """Tokenize a string, a pair, or a batch of either; `text_target` is encoded into `labels`."""
        if text is None and text_target is None:
            raise ValueError("Nothing to tokenize: pass `text` and/or `text_target`")
        max_target_length = kwargs.pop("max_target_length", None)
        split_special_tokens = kwargs.pop("split_special_tokens", None)
        opts = self._resolve_options(
            padding, truncation, max_length, stride, pad_to_multiple_of, padding_side, return_tensors,
            return_token_type_ids, return_attention_mask, add_special_tokens, is_split_into_words,
            return_overflowing_tokens, return_special_tokens_mask, return_offsets_mapping, return_length,
            split_special_tokens,
        )  # fmt: skip
        encodings = None
        if text is not None:
            encodings = self._encode_input(text, text_pair, opts, kwargs)
            self._warn_if_encoding_too_long(encodings, opts.max_length, verbose)
        if text_target is None:
            return encodings
        if max_target_length is not None:
            _check_count("max_target_length", max_target_length, 0)
            opts = opts.__class__(**{**_asdict(opts), "max_length": max_target_length})
        targets = self._encode_input(text_target, text_pair_target, opts, kwargs)
        self._warn_if_encoding_too_long(targets, opts.max_length, verbose)
        if encodings is None:
            return targets
        encodings["labels"] = targets["input_ids"]
        return encodings

    def _encode_input(self, text, text_pair, opts: EncodeOptions, kwargs: dict) -> BatchEncoding:
        items, is_batched = self._as_items(text, text_pair, opts.is_split_into_words)
        return self._encode_items(items, is_batched, opts, kwargs)

    @staticmethod
    def _as_items(text, text_pair, is_split_into_words: bool) -> tuple[list, bool]:
        """Normalise any accepted input into ([(first, second_or_None), ...], is_batched)."""
        if is_split_into_words:
            is_batched = isinstance(text, (list, tuple)) and bool(text) and isinstance(text[0], (list, tuple))
        else:
            is_batched = isinstance(text, (list, tuple)) and (not text or not isinstance(text[0], int))
        if not is_batched:
            if not _is_text(text):
                raise TypeError(f"text must be a str, a list of str, or a list of int ids; got {_describe(text)}")
            if text_pair is not None and not _is_text(text_pair):
                raise TypeError(f"text_pair must match text's kind (a single sequence); got {_describe(text_pair)}")
            return [(text, text_pair)], False
        if text_pair is not None:
            if isinstance(text_pair, str) or not isinstance(text_pair, (list, tuple)):
                raise TypeError(f"text is a batch, so text_pair must be a list of the same length; got {_describe(text_pair)}")
            if len(text_pair) != len(text):
                raise ValueError(f"text has {len(text)} items but text_pair has {len(text_pair)}; they must match")
            items = list(zip(text, text_pair))
        else:
            items = []
            for t in text:
                items.append(_batch_item(t, is_split_into_words))
        for first, second in items:
            for part in (first, second) if second is not None else (first,):
                if not _is_text(part):
                    raise TypeError(f"each batch item must be a str, a list of str, or a pair of those; got {_describe(part)}")
        return items, True

    def _encode_items(self, items: list, is_batched: bool, opts: EncodeOptions, kwargs: dict) -> BatchEncoding:
        raise NotImplementedError  # implemented by PreTrainedTokenizer and PreTrainedTokenizerFast

    def encode(self, text, text_pair=None, add_special_tokens: bool = True, padding=False, truncation=None,
               max_length=None, stride: int = 0, padding_side=None, return_tensors=None, **kwargs):  # fmt: skip
        """The `input_ids` of one sequence or pair (a list of ints, or a (1, L) tensor with return_tensors)."""
        enc = self(text, text_pair, add_special_tokens=add_special_tokens, padding=padding, truncation=truncation,
                   max_length=max_length, stride=stride, padding_side=padding_side, return_tensors=return_tensors,
                   return_token_type_ids=False, return_attention_mask=False, **kwargs)  # fmt: skip
        return enc["input_ids"]

    def encode_plus(self, text, text_pair=None, **kwargs) -> BatchEncoding:
        """v4 name for calling the tokenizer on one sequence or pair."""
        return self(text, text_pair, **kwargs)

    def batch_encode_plus(self, batch_text_or_text_pairs, **kwargs) -> BatchEncoding:
        """v4 name for calling the tokenizer on a batch (items may be (text, pair) tuples)."""
        if not isinstance(batch_text_or_text_pairs, (list, tuple)):
            raise TypeError(f"batch_encode_plus expects a list, got {_describe(batch_text_or_text_pairs)}")
        return self(list(batch_text_or_text_pairs), **kwargs)

    # ---------------------------------------------------------------------------------------------
    # Growing the vocabulary
    # ---------------------------------------------------------------------------------------------
    def add_tokens(self, new_tokens, special_tokens: bool = False) -> int:
        """Add tokens (str or AddedToken) after the vocabulary; return how many were new."""
        if new_tokens is None:
            return 0
        if isinstance(new_tokens, (str, AddedToken)):
            new_tokens = [new_tokens]
        for t in new_tokens:
            check_token("add_tokens() item", t)
        return self._add_tokens(list(new_tokens), special_tokens=special_tokens)

    def add_special_tokens(self, special_tokens_dict: dict, replace_additional_special_tokens: bool = True) -> int:
        """Set named special tokens ({'pad_token': '[PAD]', 'additional_special_tokens': [...]}) and add
        the ones missing from the vocabulary; return how many were new."""
        if not isinstance(special_tokens_dict, Mapping):
            raise TypeError(f"add_special_tokens expects a dict, got {_describe(special_tokens_dict)}")
        to_add = []
        for key, value in special_tokens_dict.items():
            if key in ("additional_special_tokens", "extra_special_tokens"):
                if not isinstance(value, (list, tuple)):
                    raise TypeError(f"{key} must be a list of tokens, got {_describe(value)}")
                values = [check_token(key, v) for v in value]
                if replace_additional_special_tokens:
                    kept = []
                else:
                    kept = list(self._additional_special_tokens)
                self._additional_special_tokens = kept + [v for v in values if str(v) not in {str(k) for k in kept}]
                self._additional_unset = False
                self.special_tokens_version += 1
                to_add.extend(values)
            elif key in SPECIAL_TOKENS_ATTRIBUTES:
                self._set_special(key, value)
                to_add.append(value)
            else:
                raise ValueError(f"Unknown special token name {key!r}; use one of {SPECIAL_TOKENS_ATTRIBUTES} "
                                 "or 'additional_special_tokens'")  # fmt: skip
        return self._add_tokens([t for t in to_add if t is not None], special_tokens=True)

    def _add_tokens(self, new_tokens: list, special_tokens: bool = False) -> int:
        raise NotImplementedError  # implemented by the slow / fast base

    # ---------------------------------------------------------------------------------------------
    # Tokens <-> ids, decoding
    # ---------------------------------------------------------------------------------------------
    def convert_tokens_to_ids(self, tokens):
        """A token -> its id, or a list of tokens -> a list of ids (unknown ones map to unk_token_id)."""
        if tokens is None:
            return None
        if isinstance(tokens, str):
            return self._convert_token_to_id_with_added_voc(tokens)
        return [self._convert_token_to_id_with_added_voc(t) for t in tokens]

    def decode(self, token_ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces: bool | None = None,
               **kwargs) -> str | list[str]:  # fmt: skip
        """Ids -> text. A batch (list of lists, 2-D tensor) gives a list of strings."""
        token_ids = to_py_obj(token_ids)
        if isinstance(token_ids, (list, tuple)) and token_ids and isinstance(token_ids[0], (list, tuple)):
            return [self._decode_checked(seq, skip_special_tokens, clean_up_tokenization_spaces, kwargs) for seq in token_ids]
        return self._decode_checked(token_ids, skip_special_tokens, clean_up_tokenization_spaces, kwargs)

    def batch_decode(self, sequences, skip_special_tokens: bool = False, clean_up_tokenization_spaces: bool | None = None,
                     **kwargs) -> list[str]:  # fmt: skip
        sequences = to_py_obj(sequences)
        if not isinstance(sequences, (list, tuple)):
            raise TypeError(f"batch_decode expects a list of id sequences, got {_describe(sequences)}")
        return [self._decode_checked(seq, skip_special_tokens, clean_up_tokenization_spaces, kwargs) for seq in sequences]

    def _decode_checked(self, ids, skip_special_tokens, clean_up, kwargs) -> str:
        kwargs = dict(kwargs)
        kwargs.pop("spaces_between_special_tokens", None)  # v4 slow-only knob; WordPiece decoding ignores it
        if kwargs:
            raise TypeError(f"decode() got unexpected keyword arguments {sorted(kwargs)}")
        if isinstance(ids, int):
            ids = [ids]
        if not isinstance(ids, (list, tuple)) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise TypeError(f"decode() expects int ids, got {_describe(ids)}")
        size = len(self)
        bad = [i for i in ids if not 0 <= i < size]
        if bad:
            raise ValueError(
                f"Cannot decode ids {bad[:5]} (outside 0..{size - 1}); ignore-index labels such as -100 must be "
                "replaced by pad_token_id before decoding"
            )
        text = self._decode(list(ids), skip_special_tokens)
        if self.clean_up_tokenization_spaces if clean_up is None else clean_up:
            text = self.clean_up_tokenization(text)
        return text

    def _decode(self, ids: list[int], skip_special_tokens: bool) -> str:
        raise NotImplementedError  # implemented by the slow / fast base

    @staticmethod
    def clean_up_tokenization(text: str) -> str:
        """Undo the spaces WordPiece-style decoding leaves before punctuation and English contractions."""
        for before, after in _CLEANUPS:
            text = text.replace(before, after)
        return text

    # ---------------------------------------------------------------------------------------------
    # Special-token layout (v4 helpers; model tokenizers override these)
    # ---------------------------------------------------------------------------------------------
    def build_inputs_with_special_tokens(self, token_ids_0: list[int], token_ids_1: list[int] | None = None) -> list[int]:
        """Default layout: no special tokens, a pair is the plain concatenation."""
        return list(token_ids_0) if token_ids_1 is None else list(token_ids_0) + list(token_ids_1)

    def create_token_type_ids_from_sequences(self, token_ids_0: list[int], token_ids_1: list[int] | None = None) -> list[int]:
        if token_ids_1 is None:
            return [0] * len(token_ids_0)
        return [0] * len(token_ids_0) + [1] * len(token_ids_1)

    def get_special_tokens_mask(self, token_ids_0: list[int], token_ids_1: list[int] | None = None,
                                already_has_special_tokens: bool = False) -> list[int]:  # fmt: skip
        """1 where a special token is (or would be added), 0 for sequence tokens."""
        if already_has_special_tokens:
            if token_ids_1 is not None:
                raise ValueError(
                    "already_has_special_tokens=True takes one already-formatted sequence; token_ids_1 must be None"
                )
            special = set(self.all_special_ids)
            return [1 if i in special else 0 for i in token_ids_0]
        return [0] * (len(token_ids_0) + (len(token_ids_1) if token_ids_1 else 0))

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return len(self.build_inputs_with_special_tokens([], [] if pair else None))

    @property
    def max_len_single_sentence(self) -> int:
        return self.model_max_length - self.num_special_tokens_to_add(pair=False)

    @property
    def max_len_sentences_pair(self) -> int:
        return self.model_max_length - self.num_special_tokens_to_add(pair=True)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name_or_path={self.name_or_path!r}, vocab_size={self.vocab_size}, "
            f"model_max_length={self.model_max_length}, is_fast={self.is_fast}, padding_side={self.padding_side!r}, "
            f"truncation_side={self.truncation_side!r}, special_tokens={self.special_tokens_map})"
        )


_CLEANUPS = (
    (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"),
    (" n't", "n't"), (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
)  # fmt: skip


def _check_no_method_names(cls: type, kwargs: dict) -> None:
    """v4 refuses an init keyword named like one of the tokenizer's methods (``tokenize=...``, ``pad=...``):
    stored as an attribute it would shadow the method on the instance."""
    for key in kwargs:
        if callable(getattr(cls, key, None)) and not isinstance(getattr(cls, key, None), type):
            raise AttributeError(f"{key} conflicts with the method {key} in {cls.__name__}: a tokenizer keyword "
                                 f"argument cannot be named like a method (got {key}={kwargs[key]!r})")


def _read_chat_template(value):
    """A chat template as given or stored: a Jinja string, a {name: template} dict, or v4's saved form, a
    list of {"name": ..., "template": ...} records (read back into the dict)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        templates = dict(value)
    elif isinstance(value, (list, tuple)) and all(isinstance(t, Mapping) and {"name", "template"} <= set(t) for t in value):
        templates = {t["name"]: t["template"] for t in value}
    else:
        raise TypeError(f"chat_template must be a str, a dict of named templates, or a list of "
                        f"{{'name', 'template'}} records; got {_describe(value)}")  # fmt: skip
    bad = {k: v for k, v in templates.items() if not isinstance(k, str) or not isinstance(v, str)}
    if bad:
        raise TypeError(f"chat templates must map names (str) to Jinja templates (str); got {bad!r}")
    return templates


def _asdict(opts: EncodeOptions) -> dict[str, Any]:
    return {name: getattr(opts, name) for name in EncodeOptions.__slots__}


def _batch_item(t, is_split_into_words: bool) -> tuple:
    """One batch entry -> (first, second_or_None), reading [a, b] / (a, b) as a pair like transformers.

    Without is_split_into_words a 2-element list/tuple of texts is a pair; with it, only a tuple is
    (a list there is one pre-split sequence)."""
    if not isinstance(t, (list, tuple)) or not t or isinstance(t[0], int):
        return (t, None)
    if len(t) == 2 and (not is_split_into_words or isinstance(t, tuple)) and all(
        isinstance(x, (str, list, tuple)) for x in t
    ):
        return (t[0], t[1])
    if is_split_into_words:
        return (t, None)
    if len(t) == 1:
        return (t[0], None)
    raise ValueError(
        f"A batch item that is a list must be a (text, text_pair) couple, got {len(t)} elements; "
        "for pre-split words pass is_split_into_words=True"
    )
