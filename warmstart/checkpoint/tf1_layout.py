"""TF1 checkpoint names -> transformers' PyTorch names (numpy arrays; the key strings live in keymaps.py).

Two namings exist. google-research/bert writes ``bert/encoder/layer_3/attention/self/query/kernel`` and its heads
(``cls/predictions``, ``cls/seq_relationship``, run_classifier's top-level ``output_weights``, run_squad's
``cls/squad``); v4's ``load_tf_weights_in_bert`` walked those names as attributes, which put the classifier and QA
head nowhere. Here whole head names are mapped first, then the generic rule: ``layer_3`` -> ``layer.3``,
``kernel`` -> ``weight`` transposed, ``gamma``/``beta`` -> ``weight``/``bias``, an ``*_embeddings`` leaf -> its
``.weight``. The result is a head model's state dict (``bert.`` prefix); the PyTorch loader aligns it with a bare
BertModel as it does for any checkpoint.

TF-Hub's bertseq2seq modules hold an encoder and a decoder stack side by side (``.../encoder/layer_0``,
``.../decoder/layer_0`` with ``attention/encdec`` cross-attention) over one embedding table. One side is taken:
the decoder's stack becomes the decoder model's ``encoder.layer`` (BERT's name for its layer stack) and its encdec
scopes BERT's ``crossattention``. Other modules have one ``encoder`` stack that both sides share, its layers
holding the encdec scopes too (what v4's converter loaded with ``is_encoder_named_decoder=False``); they are told
apart from google-research's names by those scopes or by the module's own scope (``module/bert/...``), and both
sides read that stack. A plain BERT checkpoint has no decoder stack either, so both sides read its one stack (a
warm start: cross-attention is then new, and reported).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from .keymaps import (TF1_BACKBONE, TF1_EMBEDDING_SUFFIX, TF1_HEAD_NAMES, TF1_LEAVES, TF1_OPTIMIZER_PARTS,
                      TF1_SEQ2SEQ_DECODER, TF1_SEQ2SEQ_ROOTS, TF1_SEQ2SEQ_SCOPES)

__all__ = ["TF1Mapping", "is_optimizer_state", "is_seq2seq", "is_hub_bundle", "tf1_to_pt", "tf1_name_to_pt"]

_INDEXED = re.compile(r"([A-Za-z]+)_(\d+)")
SIDES = ("encoder", "decoder")


@dataclass
class TF1Mapping:
    """The arrays under PyTorch names, where each came from, and what was left out on purpose (and why)."""

    state: dict[str, np.ndarray]
    origin: dict[str, str] = field(default_factory=dict)   # PyTorch key -> TF1 name
    skipped: dict[str, str] = field(default_factory=dict)  # TF1 name -> reason


def is_optimizer_state(name: str) -> bool:
    return any(part in TF1_OPTIMIZER_PARTS for part in name.split("/"))


def is_seq2seq(names) -> bool:
    """True for a bertseq2seq bundle: some weight sits in a ``decoder/layer_N`` stack."""
    return any(re.search(rf"(^|/){TF1_SEQ2SEQ_DECODER}/layer_\d+/", n) for n in names)


def is_hub_bundle(names) -> bool:
    """True for a TF-Hub bertseq2seq module, with one stack or two: a decoder stack, encdec cross-attention, or the
    backbone's scopes under two or more levels of the module's own (google-research's sit under ``bert/`` alone)."""
    encdec = {theirs.split("/")[-1] for theirs in TF1_SEQ2SEQ_SCOPES}
    for name in names:
        parts = name.split("/")
        root = next((i for i, p in enumerate(parts) if p in TF1_SEQ2SEQ_ROOTS), None)
        if root is not None and (root >= 2 or encdec & set(parts)):
            return True
    return is_seq2seq(names)


def tf1_name_to_pt(name: str) -> tuple[str, bool]:
    """One google-research name -> (PyTorch key of a head model, whether the array is transposed)."""
    if name in TF1_HEAD_NAMES:
        return TF1_HEAD_NAMES[name], False
    parts = [p for p in name.split("/") if p]
    if not parts:
        raise ValueError(f"TF1 tensor name {name!r} has no components")
    out = []
    for part in parts[:-1]:
        m = _INDEXED.fullmatch(part)
        out.extend(m.groups() if m else (part,))
    leaf = parts[-1]
    if leaf in TF1_LEAVES:
        renamed, transpose = TF1_LEAVES[leaf]
        return ".".join([*out, renamed]), transpose
    if leaf.endswith(TF1_EMBEDDING_SUFFIX):
        return ".".join([*out, leaf, "weight"]), False
    return ".".join([*out, leaf]), False


def _seq2seq_side(name: str, side: str, two_stacks: bool) -> tuple[str | None, str]:
    """A bertseq2seq name as the google-research name of one side's model, or (None, why it is not this side's).
    ``two_stacks``: the bundle has a decoder stack of its own (else the decoder reads the shared encoder stack)."""
    parts = name.split("/")
    root = next((i for i, p in enumerate(parts) if p in TF1_SEQ2SEQ_ROOTS), None)
    if root is None:
        return None, "not under embeddings/encoder/decoder"
    rest = "/".join(parts[root:])
    top = parts[root]
    if top == "embeddings":
        return f"{TF1_BACKBONE}/{rest}", ""
    if top != (TF1_SEQ2SEQ_DECODER if side == "decoder" and two_stacks else "encoder"):
        return None, f"the {top} stack, not the {side}'s"
    if top == TF1_SEQ2SEQ_DECODER:
        rest = "encoder" + rest[len(TF1_SEQ2SEQ_DECODER):]
    for theirs, ours in TF1_SEQ2SEQ_SCOPES.items():  # longest first: encdec_output before encdec
        rest = rest.replace(f"/{theirs}/", f"/{ours}/")  # (a shared encoder stack holds them too)
    return f"{TF1_BACKBONE}/{rest}", ""


def tf1_to_pt(arrays: dict[str, np.ndarray], *, side: str | None = None) -> TF1Mapping:
    """A TF1 checkpoint's arrays -> a PyTorch head model's state dict.

    ``side``: ``"encoder"`` or ``"decoder"``, which stack of a bertseq2seq bundle to take (a plain BERT checkpoint
    has one stack, which every side takes). Optimizer slots and step counters are skipped and reported."""
    if side is not None and side not in SIDES:
        raise ValueError(f"side must be 'encoder', 'decoder' or None, got {side!r}")
    bundle, two_stacks = is_hub_bundle(arrays), is_seq2seq(arrays)
    mapping = TF1Mapping(state={})
    for name, array in arrays.items():
        if is_optimizer_state(name):
            mapping.skipped[name] = "optimizer state or step counter"
            continue
        source = name
        if bundle:
            source, why = _seq2seq_side(name, side or "encoder", two_stacks)
            if source is None:
                mapping.skipped[name] = why
                continue
        key, transpose = tf1_name_to_pt(source)
        if transpose:
            if array.ndim != 2:
                raise ValueError(f"TF1 kernel {name!r} has shape {tuple(array.shape)}; only 2-D kernels map to "
                                 "PyTorch weights")
            array = array.T  # a view: the copy into the model's (out, in) weight does the transpose once
        if key in mapping.state:
            raise ValueError(f"TF1 tensors {mapping.origin[key]!r} and {name!r} both map to {key!r}")
        mapping.state[key], mapping.origin[key] = array, name
    return mapping
