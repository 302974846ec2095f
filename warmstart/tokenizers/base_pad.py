"""Padding for both tokenizer families: `pad()` (usable as a DataLoader collate_fn) and the in-place
helpers the encoders use. Padding fills input ids with pad_token_id, token type ids with
pad_token_type_id, attention masks with 0, special-token masks with 1 and offsets with (0, 0), on the
tokenizer's padding_side, like transformers."""

from __future__ import annotations

from collections.abc import Mapping

from .base_encoding import BatchEncoding, PaddingStrategy, to_py_obj
from .base_encoding import describe as _describe


class PaddingMixin:
    """Needs `model_input_names`, `pad_token_id`, `pad_token_type_id` and `_resolve_options`."""

    def pad(self, encoded_inputs, padding=True, max_length=None, pad_to_multiple_of=None, padding_side=None,
            return_attention_mask=None, return_tensors=None, verbose: bool = True) -> BatchEncoding:  # fmt: skip
        """Pad one encoding or a batch (dict of lists, or list of dicts: usable as a collate_fn)."""
        if isinstance(encoded_inputs, (list, tuple)) and encoded_inputs and isinstance(encoded_inputs[0], Mapping):
            encoded_inputs = {key: [ex[key] for ex in encoded_inputs] for key in encoded_inputs[0].keys()}
        if not isinstance(encoded_inputs, Mapping):
            raise TypeError(f"pad() expects a dict/BatchEncoding or a list of them, got {_describe(encoded_inputs)}")
        main = self.model_input_names[0]
        if main not in encoded_inputs:
            raise ValueError(f"pad() needs the {main!r} field; got fields {list(encoded_inputs.keys())}")
        encoded_inputs = dict(encoded_inputs)
        required = encoded_inputs[main]
        if required is None or (hasattr(required, "__len__") and len(required) == 0):
            if return_attention_mask:
                encoded_inputs["attention_mask"] = []
            return BatchEncoding(encoded_inputs, tensor_type=return_tensors)
        # Tensors in, tensors out (of the same kind) unless told otherwise.
        if return_tensors is None and not isinstance(required, (list, tuple)):
            return_tensors = _tensor_kind(required)
        elif return_tensors is None and isinstance(required, (list, tuple)) and not isinstance(required[0], (int, list, tuple)):
            return_tensors = _tensor_kind(required[0])
        encoded_inputs = {k: to_py_obj(v) for k, v in encoded_inputs.items()}
        opts = self._resolve_options(padding=padding, max_length=max_length, pad_to_multiple_of=pad_to_multiple_of,
                                     padding_side=padding_side, return_attention_mask=return_attention_mask)  # fmt: skip
        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names
        required = encoded_inputs[main]
        if not isinstance(required[0], (list, tuple)):  # one sequence
            self._pad_row(encoded_inputs, opts.padding, opts.max_length, opts.pad_to_multiple_of,
                          opts.padding_side, return_attention_mask)  # fmt: skip
            return BatchEncoding(encoded_inputs, tensor_type=return_tensors)
        sizes = {k: len(v) for k, v in encoded_inputs.items()}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"pad() got fields with different batch sizes: {sizes}")
        self._pad_batch(encoded_inputs, opts.padding, opts.max_length, opts.pad_to_multiple_of,
                        opts.padding_side, return_attention_mask)  # fmt: skip
        return BatchEncoding(encoded_inputs, tensor_type=return_tensors)

    def _pad_batch(self, batch: dict, strategy, max_length, multiple, side: str, attention_mask: bool) -> None:
        """Pad every row of a dict of lists in place (LONGEST pads to the longest row)."""
        main = self.model_input_names[0]
        rows = batch[main]
        if attention_mask and "attention_mask" not in batch:
            batch["attention_mask"] = [[1] * len(r) for r in rows]
        if strategy is PaddingStrategy.DO_NOT_PAD:
            return
        if strategy is PaddingStrategy.LONGEST:
            max_length = max((len(r) for r in rows), default=0)
        if max_length is None:
            return
        if multiple is not None and max_length % multiple:
            max_length = (max_length // multiple + 1) * multiple
        lengths = [len(r) for r in rows]
        if all(n >= max_length for n in lengths):
            return
        fills = {main: self.pad_token_id, "attention_mask": 0, "token_type_ids": self.pad_token_type_id,
                 "special_tokens_mask": 1, "offset_mapping": (0, 0)}  # fmt: skip
        for key, fill in fills.items():
            if key not in batch:
                continue
            if side == "right":
                batch[key] = [r + [fill] * (max_length - n) if n < max_length else r for r, n in zip(batch[key], lengths)]
            else:
                batch[key] = [[fill] * (max_length - n) + r if n < max_length else r for r, n in zip(batch[key], lengths)]

    def _pad_row(self, row: dict, strategy, max_length, multiple, side: str, attention_mask: bool) -> None:
        """Pad one encoding (dict of lists) in place; adds attention_mask when asked."""
        main = self.model_input_names[0]
        ids = row[main]
        if strategy is PaddingStrategy.LONGEST:
            max_length = len(ids)
        if max_length is not None and multiple is not None and max_length % multiple:
            max_length = (max_length // multiple + 1) * multiple
        if attention_mask and "attention_mask" not in row:
            row["attention_mask"] = [1] * len(ids)
        if strategy is PaddingStrategy.DO_NOT_PAD or max_length is None or len(ids) >= max_length:
            return
        n = max_length - len(ids)
        fills = {main: self.pad_token_id, "attention_mask": 0, "token_type_ids": self.pad_token_type_id,
                 "special_tokens_mask": 1, "offset_mapping": (0, 0)}  # fmt: skip
        for key, fill in fills.items():
            if key in row:
                row[key] = row[key] + [fill] * n if side == "right" else [fill] * n + row[key]


def _tensor_kind(value) -> str:
    """The return_tensors value that gives back arrays of ``value``'s kind (numpy, jax, tensorflow, else torch)."""
    module = type(value).__module__
    if module.startswith("tensorflow"):
        return "tf"
    return "np" if module == "numpy" else "jax" if module.startswith("jax") else "pt"
