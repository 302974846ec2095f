"""Ids-level model inputs, shared by both tokenizer families: truncation of id sequences, special
tokens and masks for one example (`_prepare_row`), transformers v4's `prepare_for_model` and
`prepare_seq2seq_batch`, and v4's warning about encodings longer than the model accepts.

These work on token ids with the layout hooks (`build_inputs_with_special_tokens`, ...) alone, so a
fast tokenizer gets the same ids-in path as a pure-Python one (v4 had it on the common base too).
"""

from __future__ import annotations

import logging
import warnings

from .base_encoding import LARGE_INTEGER, BatchEncoding, EncodeOptions, TruncationStrategy
from .base_encoding import describe as _describe

log = logging.getLogger("warmstart.tokenizers")

# v4 keeps one flag per tokenizer instance so that this warning is logged once, not per call.
_TOO_LONG = "sequence-length-is-longer-than-the-specified-maximum"


def _check_ids(name: str, ids) -> list[int]:
    if not isinstance(ids, (list, tuple)) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise TypeError(f"{name} must be a list of int token ids, got {_describe(ids)}")
    return list(ids)


class IdsMixin:
    """Needs the layout hooks, `_resolve_options`, `_pad_row` and `truncation_side`."""

    def _warn_if_too_long(self, length: int, max_length: int | None, verbose: bool = True) -> None:
        """v4: an encoding longer than model_max_length, made without a max_length (so nothing was
        truncated), gets one warning per tokenizer: the model will fail on it with an index error."""
        if max_length is not None or not verbose or length <= self.model_max_length:
            return
        warned = self.__dict__.setdefault("deprecation_warnings", {})
        if not warned.get(_TOO_LONG):
            log.warning(
                "Token indices sequence length is longer than the specified maximum sequence length for this model "
                f"({length} > {self.model_max_length}). Running this sequence through the model will result in "
                "indexing errors"
            )
        warned[_TOO_LONG] = True

    def _warn_if_encoding_too_long(self, encoding, max_length: int | None, verbose: bool) -> None:
        """The same check on a whole call's output (lists, nested lists or a tensor of ids)."""
        if max_length is not None or not verbose or encoding is None or self.model_max_length > LARGE_INTEGER:
            return
        ids = encoding.get("input_ids")
        if ids is None:
            return
        shape = getattr(ids, "shape", None)
        if shape is not None:
            longest = int(shape[-1]) if len(shape) else 0
        elif ids and isinstance(ids[0], (list, tuple)):
            longest = max(len(row) for row in ids)
        else:
            longest = len(ids)
        self._warn_if_too_long(longest, max_length, verbose)

    def prepare_for_model(self, ids: list[int], pair_ids: list[int] | None = None, add_special_tokens: bool = True,
                          padding=False, truncation=None, max_length: int | None = None, stride: int = 0,
                          pad_to_multiple_of: int | None = None, padding_side: str | None = None, return_tensors=None,
                          return_token_type_ids: bool | None = None, return_attention_mask: bool | None = None,
                          return_overflowing_tokens: bool = False, return_special_tokens_mask: bool = False,
                          return_offsets_mapping: bool = False, return_length: bool = False, verbose: bool = True,
                          prepend_batch_axis: bool = False, **kwargs) -> BatchEncoding:  # fmt: skip
        """v4 API: already-tokenized ids (and pair ids) -> model inputs of one example: truncate, add the
        special tokens, build token type ids / masks, pad. Works on slow and fast tokenizers alike."""
        if kwargs:
            raise TypeError(f"prepare_for_model() got unexpected keyword arguments {sorted(kwargs)}")
        ids = _check_ids("ids", ids)
        pair_ids = None if pair_ids is None else _check_ids("pair_ids", pair_ids)
        if return_offsets_mapping:
            raise NotImplementedError("prepare_for_model works on ids, which carry no character offsets")
        if return_token_type_ids and not add_special_tokens:
            # v4 refuses this too: without the special tokens the segment boundaries are undefined.
            raise ValueError(
                "return_token_type_ids=True with add_special_tokens=False is undefined; add the special tokens or "
                "leave return_token_type_ids=None"
            )
        opts = self._resolve_options(
            padding, truncation, max_length, stride, pad_to_multiple_of, padding_side, return_tensors,
            return_token_type_ids, return_attention_mask, add_special_tokens, False, return_overflowing_tokens,
            return_special_tokens_mask, False, return_length, None,
        )  # fmt: skip
        row = self._prepare_row(ids, pair_ids, opts)
        if return_overflowing_tokens:
            # v4 reports both fields on every call, the count as "total length - max_length".
            total = len(ids) + len(pair_ids or ()) + (self.num_special_tokens_to_add(pair_ids is not None)
                                                      if add_special_tokens else 0)  # fmt: skip
            overflowing = row.pop("overflowing_tokens", [])
            row.pop("num_truncated_tokens", None)
            row = {"overflowing_tokens": overflowing,
                   "num_truncated_tokens": total - opts.max_length if opts.max_length is not None else 0, **row}  # fmt: skip
        self._warn_if_too_long(len(row["input_ids"]), opts.max_length, verbose)
        self._pad_row(row, opts.padding, opts.max_length, opts.pad_to_multiple_of, opts.padding_side,
                      opts.return_attention_mask)  # fmt: skip
        if return_length:
            row["length"] = len(row["input_ids"])
        return BatchEncoding(row, tensor_type=opts.return_tensors, prepend_batch_axis=prepend_batch_axis,
                             n_sequences=1 if pair_ids is None else 2)  # fmt: skip

    def prepare_seq2seq_batch(self, src_texts: list[str], tgt_texts: list[str] | None = None,
                              max_length: int | None = None, max_target_length: int | None = None,
                              padding="longest", return_tensors=None, truncation=True, **kwargs) -> BatchEncoding:  # fmt: skip
        """v4's deprecated seq2seq helper: encode the sources and, given targets, their ids as ``labels``.

        Kept for v4 code; as in v4 it warns (FutureWarning): call the tokenizer with ``text_target=``."""
        warnings.warn(
            "prepare_seq2seq_batch is deprecated (as in transformers v4); use tokenizer(src_texts, "
            "text_target=tgt_texts, ...) instead, or two calls when sources and targets need different settings",
            FutureWarning,
            stacklevel=2,
        )
        kwargs.pop("src_lang", None)  # v4 drops the multilingual models' language codes here
        kwargs.pop("tgt_lang", None)
        if max_length is None and self.model_max_length <= LARGE_INTEGER:
            max_length = self.model_max_length  # v4: the model's limit (a tokenizer without one truncates nothing)
        inputs = self(src_texts, add_special_tokens=True, return_tensors=return_tensors, max_length=max_length,
                      padding=padding, truncation=truncation, **kwargs)  # fmt: skip
        if tgt_texts is None:
            return inputs
        if max_target_length is None:
            max_target_length = max_length
        labels = self(tgt_texts, add_special_tokens=True, return_tensors=return_tensors, padding=padding,
                      max_length=max_target_length, truncation=truncation, **kwargs)  # fmt: skip
        inputs["labels"] = labels["input_ids"]
        return inputs

    def _prepare_row(self, ids: list[int], pair_ids: list[int] | None, opts: EncodeOptions) -> dict:
        """Truncate, add special tokens and build the per-token fields of one example (no padding)."""
        pair = pair_ids is not None
        overflowing: list[int] = []
        num_removed = 0
        if opts.truncation is not TruncationStrategy.DO_NOT_TRUNCATE and opts.max_length is not None:
            if opts.return_overflowing_tokens and pair and opts.truncation is TruncationStrategy.LONGEST_FIRST:
                raise ValueError(
                    "return_overflowing_tokens with a pair needs truncation='only_first' or 'only_second' in a "
                    "pure-Python tokenizer (truncation='longest_first' cannot say which sequence overflowed)"
                )
            if opts.truncation is TruncationStrategy.ONLY_SECOND and not pair:
                raise ValueError("truncation='only_second' needs a text_pair, but only one sequence was given")
            n_special = self.num_special_tokens_to_add(pair) if opts.add_special_tokens else 0
            if opts.max_length < n_special:
                raise ValueError(
                    f"max_length={opts.max_length} is shorter than the {n_special} special tokens a "
                    f"{'pair' if pair else 'single sequence'} needs"
                )
            total = len(ids) + (len(pair_ids) if pair else 0) + n_special
            if total > opts.max_length:
                num_removed = total - opts.max_length
                ids, pair_ids, overflowing = self.truncate_sequences(
                    ids, pair_ids, num_removed, opts.truncation, opts.stride
                )
        if opts.add_special_tokens:
            input_ids = self.build_inputs_with_special_tokens(ids, pair_ids)
            type_ids = self.create_token_type_ids_from_sequences(ids, pair_ids)
        else:
            input_ids = ids + pair_ids if pair else list(ids)
            type_ids = [0] * len(input_ids)
        row = {"input_ids": input_ids}
        if opts.return_token_type_ids:
            row["token_type_ids"] = type_ids
        if opts.return_special_tokens_mask:
            row["special_tokens_mask"] = (
                self.get_special_tokens_mask(ids, pair_ids) if opts.add_special_tokens else [0] * len(input_ids)
            )
        if opts.return_overflowing_tokens and overflowing and opts.return_tensors is None:
            row["overflowing_tokens"] = overflowing
            row["num_truncated_tokens"] = num_removed
        return row

    def truncate_sequences(self, ids: list[int], pair_ids: list[int] | None = None, num_tokens_to_remove: int = 0,
                           truncation_strategy="longest_first", stride: int = 0):  # fmt: skip
        """Remove `num_tokens_to_remove` tokens by the strategy; return (ids, pair_ids, overflowing_tokens).

        Raises ValueError when the strategy cannot reach the length (the chosen sequence is too short,
        or only_second without a pair) or when `stride` is not smaller than what the truncated sequence
        keeps."""
        if num_tokens_to_remove <= 0:
            return ids, pair_ids, []
        strategy = TruncationStrategy.parse(truncation_strategy, "truncation strategy")
        right = self.truncation_side == "right"
        if strategy is TruncationStrategy.ONLY_SECOND and pair_ids is None:
            raise ValueError("truncation='only_second' needs a text_pair, but only one sequence was given")
        # 'only_*' on a pair must leave the chosen sequence at least one token (as the tokenizers
        # backend requires); a single sequence may be emptied when max_length leaves no room.
        keep_one = pair_ids is not None
        if strategy is TruncationStrategy.ONLY_FIRST or (strategy is TruncationStrategy.LONGEST_FIRST and pair_ids is None):
            ids, overflowing = _cut(ids, num_tokens_to_remove, stride, right, "first", strategy, keep_one)
            return ids, pair_ids, overflowing
        if strategy is TruncationStrategy.ONLY_SECOND:
            pair_ids, overflowing = _cut(pair_ids, num_tokens_to_remove, stride, right, "second", strategy, keep_one)
            return ids, pair_ids, overflowing
        # longest_first on a pair: trim the longer one down to the shorter, then alternate.
        if num_tokens_to_remove > len(ids) + len(pair_ids):
            raise ValueError(
                f"Cannot remove {num_tokens_to_remove} tokens from a pair of {len(ids)} + {len(pair_ids)} tokens"
            )
        first_cut = min(abs(len(pair_ids) - len(ids)), num_tokens_to_remove)
        rest = num_tokens_to_remove - first_cut
        if len(ids) > len(pair_ids):
            n_ids, n_pair = first_cut + rest // 2, rest - rest // 2
        else:
            n_ids, n_pair = rest // 2, first_cut + rest - rest // 2
        for n, seq in ((n_ids, ids), (n_pair, pair_ids)):
            if n and 0 < stride >= len(seq) - n:
                raise ValueError(f"stride={stride} must be smaller than the {len(seq) - n} tokens a sequence keeps")
        if right:
            ids, pair_ids = ids[: len(ids) - n_ids], pair_ids[: len(pair_ids) - n_pair]
        else:
            ids, pair_ids = ids[n_ids:], pair_ids[n_pair:]
        return ids, pair_ids, []




def _cut(seq: list[int], n: int, stride: int, right: bool, which: str, strategy, keep_one: bool):
    """Drop n tokens from one end of seq; return (kept, overflow), where the overflow repeats `stride`
    tokens of context from the kept part."""
    if n > len(seq) or (keep_one and n == len(seq)):
        raise ValueError(
            f"truncation={strategy.value!r} would have to remove {n} tokens from the {which} sequence, which has "
            f"{len(seq)}; use a larger max_length or another truncation strategy"
        )
    kept = len(seq) - n
    if 0 < kept <= stride:
        raise ValueError(
            f"stride={stride} must be smaller than the {kept} tokens the {which} sequence keeps after truncation"
        )
    window = min(len(seq), stride + n)
    if right:
        return seq[:kept], seq[len(seq) - window :]
    return seq[n:], seq[:window]
