"""BatchEncoding, the strategy enums and the resolved call options shared by every tokenizer.

`BatchEncoding` is what `tokenizer(...)` returns: a dict (``enc["input_ids"]``) that also answers
attribute access (``enc.input_ids``), converts itself to torch / numpy, moves to a device, and, when a
fast tokenizer produced it, exposes the backend `tokenizers.Encoding` objects for alignment queries
(`word_ids()`, `tokens()`, `char_to_token()`, ...), exactly as transformers' class of the same name.
"""

from __future__ import annotations

import enum
from collections import UserDict
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

# transformers' "no limit" sentinel for model_max_length (int(1e30)); kept identical so configs that
# were saved without a model_max_length round-trip to the same value.
VERY_LARGE_INTEGER = int(1e30)
LARGE_INTEGER = int(1e20)


class _StrEnum(str, enum.Enum):
    @classmethod
    def parse(cls, value, what: str):
        if isinstance(value, cls):
            return value
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(repr(m.value) for m in cls)
            raise ValueError(f"Unknown {what} {value!r}; expected one of {choices} (or a bool)") from None


class PaddingStrategy(_StrEnum):
    LONGEST = "longest"
    MAX_LENGTH = "max_length"
    DO_NOT_PAD = "do_not_pad"


class TruncationStrategy(_StrEnum):
    ONLY_FIRST = "only_first"
    ONLY_SECOND = "only_second"
    LONGEST_FIRST = "longest_first"
    DO_NOT_TRUNCATE = "do_not_truncate"


class TensorType(_StrEnum):
    PYTORCH = "pt"
    NUMPY = "np"
    JAX = "jax"
    TENSORFLOW = "tf"


class CharSpan(NamedTuple):
    start: int
    end: int


class TokenSpan(NamedTuple):
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class EncodeOptions:
    """Everything a call decided, resolved once (strategies parsed, defaults filled in)."""

    add_special_tokens: bool = True
    padding: PaddingStrategy = PaddingStrategy.DO_NOT_PAD
    truncation: TruncationStrategy = TruncationStrategy.DO_NOT_TRUNCATE
    max_length: int | None = None
    stride: int = 0
    is_split_into_words: bool = False
    pad_to_multiple_of: int | None = None
    padding_side: str = "right"
    return_tensors: TensorType | None = None
    return_token_type_ids: bool = True
    return_attention_mask: bool = True
    return_overflowing_tokens: bool = False
    return_special_tokens_mask: bool = False
    return_offsets_mapping: bool = False
    return_length: bool = False
    split_special_tokens: bool = False


def _is_ragged(value) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) > 0
        and isinstance(value[0], (list, tuple))
        and len({len(v) for v in value}) > 1
    )


def to_py_obj(obj):
    """Tensors / arrays / numpy scalars -> plain Python lists and ints (used by pad() and decode())."""
    if hasattr(obj, "detach") and hasattr(obj, "tolist"):  # torch.Tensor, without importing torch
        return obj.detach().cpu().tolist()
    if isinstance(obj, (np.ndarray, np.number)):
        return obj.tolist()
    if type(obj).__module__.startswith("jax") and hasattr(obj, "tolist"):  # a jax.Array, without importing jax
        return obj.tolist()
    if type(obj).__module__.startswith("tensorflow") and hasattr(obj, "numpy"):  # a tf.Tensor, likewise
        return obj.numpy().tolist()
    if isinstance(obj, (list, tuple)):
        return [to_py_obj(o) for o in obj]
    if isinstance(obj, dict):
        return {k: to_py_obj(v) for k, v in obj.items()}
    return obj


class BatchEncoding(UserDict):
    """The output of a tokenizer call: ``input_ids``, ``attention_mask``, ... as a dict.

    `encodings` holds the backend `tokenizers.Encoding` per row when a fast tokenizer made it (None
    otherwise); the alignment helpers need them and say so when they are missing.
    """

    def __init__(
        self,
        data: dict[str, Any] | None = None,
        encoding=None,
        tensor_type: str | TensorType | None = None,
        prepend_batch_axis: bool = False,
        n_sequences: int | None = None,
    ):
        # Plain assignment instead of UserDict's per-key update: this runs once per tokenizer call.
        self.data = dict(data) if data else {}
        if encoding is not None and not isinstance(encoding, (list, tuple)):
            encoding = [encoding]
        self._encodings = encoding
        self._n_sequences = n_sequences
        if tensor_type is not None:
            self.convert_to_tensors(tensor_type=tensor_type, prepend_batch_axis=prepend_batch_axis)

    # -- dict / attribute access -------------------------------------------------------------------
    def __getitem__(self, item):
        if isinstance(item, str):
            return self.data[item]
        if self._encodings is not None and isinstance(item, int):
            return self._encodings[item]
        if isinstance(item, slice):
            return {key: value[item] for key, value in self.data.items()}
        raise KeyError(
            f"BatchEncoding keys are field names (str), slices, or (fast tokenizers only) row indices; got {item!r}"
        )

    def __getattr__(self, item: str):
        # Only called when normal lookup fails; "data" itself must never recurse here (unpickling).
        if item == "data" or item.startswith("__"):
            raise AttributeError(item)
        try:
            return self.data[item]
        except KeyError:
            raise AttributeError(f"BatchEncoding has no field {item!r}; fields: {list(self.data)}") from None

    def __getstate__(self):
        return {"data": self.data, "encodings": self._encodings, "n_sequences": self._n_sequences}

    def __setstate__(self, state):
        self.data = state.get("data", {})
        self._encodings = state.get("encodings")
        self._n_sequences = state.get("n_sequences")

    @property
    def n_sequences(self) -> int | None:
        """1 for single sequences, 2 for pairs, None if unknown (read lazily from the backend)."""
        if self._n_sequences is None and self._encodings:
            self._n_sequences = self._encodings[0].n_sequences
        return self._n_sequences

    @property
    def is_fast(self) -> bool:
        return self._encodings is not None

    @property
    def encodings(self):
        return self._encodings

    # -- alignment helpers (fast tokenizers) -------------------------------------------------------
    def _encoding(self, what: str, batch_index: int):
        if not self._encodings:
            raise ValueError(
                f"{what}() needs the alignment data of a fast tokenizer; this BatchEncoding was made by a "
                "pure-Python tokenizer (use the *Fast class, e.g. BertTokenizerFast)"
            )
        if not -len(self._encodings) <= batch_index < len(self._encodings):
            raise IndexError(f"batch_index {batch_index} out of range for a batch of {len(self._encodings)}")
        return self._encodings[batch_index]

    @staticmethod
    def _split_index(first: int, second: int | None) -> tuple[int, int]:
        # transformers' calling convention: f(i) means row 0, index i; f(b, i) means row b, index i.
        return (0, first) if second is None else (first, second)

    def tokens(self, batch_index: int = 0) -> list[str]:
        return self._encoding("tokens", batch_index).tokens

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        return self._encoding("word_ids", batch_index).word_ids

    def words(self, batch_index: int = 0) -> list[int | None]:
        return self.word_ids(batch_index)

    def sequence_ids(self, batch_index: int = 0) -> list[int | None]:
        return self._encoding("sequence_ids", batch_index).sequence_ids

    def token_to_sequence(self, batch_or_token_index: int, token_index: int | None = None) -> int:
        b, t = self._split_index(batch_or_token_index, token_index)
        enc = self._encoding("token_to_sequence", b)
        return enc.token_to_sequence(t if t >= 0 else len(enc.ids) + t)

    def token_to_word(self, batch_or_token_index: int, token_index: int | None = None) -> int | None:
        b, t = self._split_index(batch_or_token_index, token_index)
        enc = self._encoding("token_to_word", b)
        return enc.token_to_word(t if t >= 0 else len(enc.ids) + t)

    def token_to_chars(self, batch_or_token_index: int, token_index: int | None = None) -> CharSpan | None:
        b, t = self._split_index(batch_or_token_index, token_index)
        enc = self._encoding("token_to_chars", b)
        span = enc.token_to_chars(t if t >= 0 else len(enc.ids) + t)
        return CharSpan(*span) if span is not None else None

    def word_to_tokens(
        self, batch_or_word_index: int, word_index: int | None = None, sequence_index: int = 0
    ) -> TokenSpan | None:
        b, w = self._split_index(batch_or_word_index, word_index)
        span = self._encoding("word_to_tokens", b).word_to_tokens(w, sequence_index)
        return TokenSpan(*span) if span is not None else None

    def word_to_chars(
        self, batch_or_word_index: int, word_index: int | None = None, sequence_index: int = 0
    ) -> CharSpan | None:
        b, w = self._split_index(batch_or_word_index, word_index)
        span = self._encoding("word_to_chars", b).word_to_chars(w, sequence_index)
        return CharSpan(*span) if span is not None else None

    def char_to_token(
        self, batch_or_char_index: int, char_index: int | None = None, sequence_index: int = 0
    ) -> int | None:
        b, c = self._split_index(batch_or_char_index, char_index)
        return self._encoding("char_to_token", b).char_to_token(c, sequence_index)

    def char_to_word(
        self, batch_or_char_index: int, char_index: int | None = None, sequence_index: int = 0
    ) -> int | None:
        b, c = self._split_index(batch_or_char_index, char_index)
        return self._encoding("char_to_word", b).char_to_word(c, sequence_index)

    # -- tensors -----------------------------------------------------------------------------------
    def convert_to_tensors(self, tensor_type: str | TensorType | None = None, prepend_batch_axis: bool = False):
        """Turn every list field into a torch tensor ("pt"), numpy array ("np"), jax array ("jax") or tf tensor
        ("tf"), in place."""
        if tensor_type is None:
            return self
        tensor_type = TensorType.parse(tensor_type, "return_tensors")
        if tensor_type is TensorType.PYTORCH:
            import torch

            is_tensor = torch.is_tensor

            def as_tensor(value):
                if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
                    return torch.from_numpy(np.array(value))
                if _all_ints(value):  # numpy reads nested int lists ~3x faster than torch.tensor
                    return torch.from_numpy(np.array(value, dtype=np.int64))
                return torch.tensor(value)

        elif tensor_type is TensorType.JAX:
            try:
                import jax
                import jax.numpy as jnp
            except ImportError as err:
                raise ImportError(f"return_tensors='jax' needs jax ({err}); pip install 'warmstart[flax]'") from err

            def is_tensor(value):
                return isinstance(value, jax.Array)

            def as_tensor(value):
                if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
                    return jnp.asarray(np.array(value))
                # int32, jax's default integer width (int64 needs jax_enable_x64); ids fit in it.
                return jnp.asarray(np.array(value, dtype=np.int32) if _all_ints(value) else np.array(value))

        elif tensor_type is TensorType.TENSORFLOW:
            try:
                import tensorflow as tf
            except ImportError as err:
                raise ImportError(f"return_tensors='tf' needs tensorflow ({err}); pip install 'warmstart[tf]'") from err

            def is_tensor(value):
                return tf.is_tensor(value)

            def as_tensor(value):
                if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
                    return tf.constant(np.array(value))
                # int32, the dtype v4's TF models and their serving signatures take; ids fit in it.
                return tf.constant(np.array(value, dtype=np.int32) if _all_ints(value) else np.array(value))

        else:

            def is_tensor(value):
                return isinstance(value, np.ndarray)

            def as_tensor(value):
                return np.asarray(value, dtype=np.int64 if _all_ints(value) else None)

        for key, value in list(self.data.items()):
            if prepend_batch_axis:
                value = [value]
            if is_tensor(value):
                continue
            if _is_ragged(value):
                raise ValueError(
                    f"Cannot make a {tensor_type.value!r} tensor from {key!r}: its rows have different lengths "
                    f"{sorted({len(v) for v in value})}. Pass padding=True (and truncation=True if needed)."
                )
            try:
                self.data[key] = as_tensor(value)
            except (ValueError, TypeError) as err:
                raise ValueError(f"Cannot make a {tensor_type.value!r} tensor from {key!r}: {err}") from err
        return self

    def to(self, device, *, non_blocking: bool = False) -> "BatchEncoding":
        """Move every tensor field to `device` (torch only); non-tensor fields are left as they are."""
        self.data = {
            k: v.to(device=device, non_blocking=non_blocking) if hasattr(v, "to") and callable(v.to) else v
            for k, v in self.data.items()
        }
        return self


def _all_ints(value) -> bool:
    """True when a (nested) list holds only ints, or is empty: then the tensor must be int64."""
    while isinstance(value, (list, tuple)):
        if not value:
            return True
        value = value[0]
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def describe(x) -> str:
    """A short description of a bad argument for error messages: its type and a glimpse of it."""
    if isinstance(x, (list, tuple)):
        inner = type(x[0]).__name__ if x else "nothing"
        return f"{type(x).__name__} of {inner} (len {len(x)})"
    return f"{type(x).__name__}: {x!r}"[:120]
