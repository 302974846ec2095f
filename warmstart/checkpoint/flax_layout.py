"""The Flax layout adapter: transformers' PyTorch state-dict names <-> v4's nested Flax parameter trees.

PyTorch and Flax checkpoints of the same model differ only in layout, never in key strings, so the rules here are
generic and the few names they need (which modules are embedding tables, the backbone roots, tied output
projections) are data in ``keymaps.py``:

- ``<module>.weight`` of an embedding table (``word_embeddings``, ``wte``, ...) <-> ``<module>/embedding``, as is;
- a 1-D ``weight`` (LayerNorm; old checkpoints' ``gamma``) <-> ``scale``; ``beta`` -> ``bias``;
- every other 2-D ``weight`` <-> ``kernel`` transposed. That includes GPT-2's Conv1D weights: PyTorch stores them
  (in, out) and v4's Flax Conv1D declares its kernel (out, in), so they are transposed like any Linear weight;
- ``bias`` stays; dotted paths become nested dicts, layer indices stay strings (``layer/"0"``);
- the backbone prefix (``bert``, ``roberta``, ``transformer``) is added or stripped between base and head models;
- a tied output projection (``cls.predictions.decoder.weight`` equal to the word embeddings) has no Flax kernel.

Nothing is dropped silently: keys no rule knows keep their name (the loader then reports them unexpected); the
only keys left out are the buffers the key maps list under ``ignore`` (no weights, transformers drops them too),
duplicate bias names and tied projections, and ``convert_to_flax`` returns each of them with the reason.
Framework-free: numpy only (bfloat16 arrays pass through as they are).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .keymaps import (FLAX_BACKBONE_ROOTS, FLAX_BIAS_ALIASES, FLAX_EMBEDDING_MODULES, FLAX_TIED_OUTPUTS, KEYMAPS)

__all__ = ["FlaxConversion", "convert_to_flax", "to_flax_tree", "from_flax_tree", "flatten_tree", "unflatten_tree",
           "infer_base_prefix", "align_flat_prefix"]

_EMBEDDINGS = frozenset(FLAX_EMBEDDING_MODULES)
# Buffers (not weights) of every family, as regexes over the backbone-relative name.
_IGNORE = [re.compile("^" + re.escape(p).replace(r"\*", r"[^.]+") + "$")
           for km in KEYMAPS.values() for p in km.ignore]


@dataclass
class FlaxConversion:
    """A converted tree plus the bookkeeping a loading report needs."""

    tree: dict
    origin: dict[str, str] = field(default_factory=dict)   # "a/b/kernel" -> the PyTorch key it came from
    dropped: dict[str, str] = field(default_factory=dict)  # PyTorch key -> why it has no leaf in the tree


# ---- nesting ---------------------------------------------------------------------------------------------------
def flatten_tree(tree: Mapping, sep: str = "/") -> dict[str, Any]:
    """Nested dicts -> {"a/b/c": leaf}. Every key must be a string (Flax trees' keys are)."""
    out: dict[str, Any] = {}

    def walk(node: Mapping, prefix: str) -> None:
        for key, value in node.items():
            if not isinstance(key, str):
                raise TypeError(f"tree keys must be strings, got {key!r} under {prefix.rstrip(sep) or 'the root'!r}")
            if sep in key:
                raise ValueError(f"tree key {key!r} contains the separator {sep!r}")
            path = prefix + key
            if isinstance(value, Mapping):
                if not value:
                    raise ValueError(f"tree node {path!r} is empty (a parameter tree has arrays at every leaf)")
                walk(value, path + sep)
            else:
                out[path] = value

    if not isinstance(tree, Mapping):
        raise TypeError(f"a parameter tree must be a dict of dicts, got {type(tree).__name__}")
    walk(tree, "")
    return out


def unflatten_tree(flat: Mapping[str, Any], sep: str = "/") -> dict:
    """{"a/b/c": leaf} -> nested dicts; a path that is both a leaf and a node is an error naming it."""
    tree: dict = {}
    for path, value in flat.items():
        parts = path.split(sep)
        if any(not p for p in parts):
            raise ValueError(f"parameter path {path!r} has an empty component")
        node = tree
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"{sep.join(parts[:i + 1])!r} is a leaf and also the parent of {path!r}")
            node = child
        if parts[-1] in node:
            raise ValueError(f"parameter path {path!r} is given twice (or is also a parent of other paths)")
        node[parts[-1]] = value
    return tree


# ---- prefixes --------------------------------------------------------------------------------------------------
def infer_base_prefix(names) -> str | None:
    """The backbone prefix the first component of some name is (``bert``, ``roberta``, ``transformer``), or None."""
    firsts = {n.split(".", 1)[0].split("/", 1)[0] for n in names}
    found = [p for p in FLAX_BACKBONE_ROOTS if p in firsts]
    if len(found) > 1:
        raise ValueError(f"names carry several backbone prefixes {found}; pass base_prefix= to choose")
    return found[0] if found else None


def _align_prefix(names: list[str], sep: str, base_prefix: str | None, add_prefix: bool | None) -> dict[str, str]:
    """old name -> new name, after adding (True) or stripping (False) the backbone prefix; None leaves names."""
    if add_prefix is None:
        return {n: n for n in names}
    if add_prefix not in (True, False):
        raise TypeError(f"add_prefix must be True, False or None, got {add_prefix!r}")
    prefix = base_prefix if base_prefix is not None else infer_base_prefix(names)
    if prefix is None:
        if add_prefix:
            raise ValueError(f"add_prefix=True needs base_prefix= (one of {sorted(FLAX_BACKBONE_ROOTS)}): "
                             f"the names carry no backbone prefix to take it from")
        return {n: n for n in names}  # nothing to strip
    if add_prefix and prefix not in FLAX_BACKBONE_ROOTS:
        raise ValueError(f"unknown base_prefix {prefix!r}; known backbones: {sorted(FLAX_BACKBONE_ROOTS)}")
    lead = prefix + sep
    if not add_prefix:
        # A head-model state loaded as the bare backbone: head keys keep their names (reported unexpected later).
        return {n: n[len(lead):] if n.startswith(lead) else n for n in names}
    roots = set(FLAX_BACKBONE_ROOTS[prefix])
    return {n: lead + n if n.split(sep, 1)[0] in roots else n for n in names}


def align_flat_prefix(flat: Mapping[str, Any], *, base_prefix: str | None = None, add_prefix: bool | None = None
                      ) -> dict[str, Any]:
    """A flat Flax tree ({"a/b": leaf}) with the backbone prefix added (True) or stripped (False), as
    ``to_flax_tree`` does for PyTorch names: a bare-backbone checkpoint loads into a head model and back."""
    renamed = _align_prefix(list(flat), "/", base_prefix, add_prefix)
    out: dict[str, Any] = {}
    for old, value in flat.items():
        new = renamed[old]
        if new in out:
            raise ValueError(f"{old!r} and another parameter both become {new!r} when the prefix is aligned")
        out[new] = value
    return out


# ---- PyTorch -> Flax -------------------------------------------------------------------------------------------
def _is_ignored(key: str) -> bool:
    rel = key.split(".", 1)[1] if key.split(".", 1)[0] in FLAX_BACKBONE_ROOTS and "." in key else key
    return any(rx.match(rel) or rx.match(key) for rx in _IGNORE)


def _as_array(key: str, value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    try:
        return np.asarray(value)
    except Exception as e:  # a torch bfloat16 tensor, a python object, ...
        raise TypeError(f"state[{key!r}] is a {type(value).__name__} that numpy cannot read ({e}); pass numpy "
                        f"arrays (torch: tensor.float().numpy() for bfloat16)") from e


def _flax_leaf(key: str, array: np.ndarray) -> tuple[str, np.ndarray]:
    """One PyTorch name (dotted) -> its Flax path ("/") and array."""
    parts = key.split(".")
    leaf, module = parts[-1], (parts[-2] if len(parts) > 1 else "")
    head = "/".join(parts[:-1])
    lead = head + "/" if head else ""
    if leaf == "weight" and module in _EMBEDDINGS:
        if array.ndim != 2:
            raise ValueError(f"{key!r} is an embedding table but has shape {tuple(array.shape)}, not 2-D")
        return lead + "embedding", array
    if leaf in ("weight", "gamma") and array.ndim == 1:
        return lead + "scale", array
    if leaf == "weight" and array.ndim == 2:
        return lead + "kernel", np.ascontiguousarray(array.T)
    if leaf in ("weight", "gamma"):
        raise ValueError(f"{key!r} has shape {tuple(array.shape)}: no Flax layout rule for a {array.ndim}-D "
                         f"weight (Linear kernels are 2-D, LayerNorm scales 1-D)")
    if leaf == "beta":
        return lead + "bias", array
    return lead + leaf, array  # "bias", and names no rule knows (kept so the loader can report them)


def convert_to_flax(state: Mapping[str, Any], *, base_prefix: str | None = None, add_prefix: bool | None = None,
                    tie_word_embeddings: bool | None = None) -> FlaxConversion:
    """transformers PyTorch names -> a nested v4 Flax tree, with where each leaf came from and what was left out.

    ``base_prefix``: the backbone attribute (``bert``/``roberta``/``transformer``); by default read off the names.
    ``add_prefix``: True for a head-model target (a bare-backbone state gets the prefix), False for a bare-backbone
    target (the prefix is stripped; head keys keep their names), None to keep names as they are.
    ``tie_word_embeddings``: True drops the output projection tied to the word embeddings, False keeps it as a
    kernel, None drops it only when it equals the embedding table.
    """
    if not isinstance(state, Mapping):
        raise TypeError(f"state must be a dict of name -> array, got {type(state).__name__}")
    arrays: dict[str, np.ndarray] = {}
    for key, value in state.items():
        if not isinstance(key, str) or not key or any(not p for p in key.split(".")):
            raise ValueError(f"state key {key!r} is not a dotted parameter name")
        arrays[key] = _as_array(key, value)
    dropped: dict[str, str] = {}
    for key in list(arrays):
        if _is_ignored(key):
            dropped[key] = "buffer, not a weight"
            del arrays[key]
    _resolve_bias_aliases(arrays, dropped)
    _drop_tied_outputs(arrays, dropped, base_prefix, tie_word_embeddings)

    renamed = _align_prefix(list(arrays), ".", base_prefix, add_prefix)
    flat: dict[str, np.ndarray] = {}
    origin: dict[str, str] = {}
    for key, array in arrays.items():
        path, out = _flax_leaf(renamed[key], array)
        if path in flat:
            raise ValueError(f"{origin[path]!r} and {key!r} both map to the Flax parameter {path!r}")
        flat[path], origin[path] = out, key
    return FlaxConversion(unflatten_tree(flat), origin, dropped)


def _resolve_bias_aliases(arrays: dict[str, np.ndarray], dropped: dict[str, str]) -> None:
    """``cls.predictions.decoder.bias`` is PyTorch's second name for ``cls.predictions.bias``; Flax has one."""
    for alias, canonical in FLAX_BIAS_ALIASES:
        if alias not in arrays:
            continue
        if canonical not in arrays:
            arrays[canonical] = arrays.pop(alias)
        elif arrays[alias].shape == arrays[canonical].shape and np.array_equal(arrays[alias], arrays[canonical]):
            del arrays[alias]
            dropped[alias] = f"the same tensor as {canonical!r}"
        else:
            raise ValueError(f"{alias!r} and {canonical!r} are two names of one bias but hold different values")


def _drop_tied_outputs(arrays: dict[str, np.ndarray], dropped: dict[str, str], base_prefix: str | None,
                       tie: bool | None) -> None:
    if tie not in (True, False, None):
        raise TypeError(f"tie_word_embeddings must be True, False or None, got {tie!r}")
    if tie is False:
        return
    prefixes = [base_prefix] if base_prefix is not None else list(FLAX_TIED_OUTPUTS)
    for prefix in prefixes:
        for projection, embedding in FLAX_TIED_OUTPUTS.get(prefix, ()):
            if projection not in arrays:
                continue
            table = arrays.get(embedding)
            same = table is not None and table.shape == arrays[projection].shape and np.array_equal(
                table, arrays[projection])
            if tie or same:
                del arrays[projection]
                dropped[projection] = f"tied to {embedding!r}"


def to_flax_tree(state: Mapping[str, Any], *, base_prefix: str | None = None, add_prefix: bool | None = None,
                 tie_word_embeddings: bool | None = None) -> dict:
    """transformers PyTorch names -> v4's nested Flax tree (see ``convert_to_flax`` for the keywords)."""
    return convert_to_flax(state, base_prefix=base_prefix, add_prefix=add_prefix,
                           tie_word_embeddings=tie_word_embeddings).tree


# ---- Flax -> PyTorch -------------------------------------------------------------------------------------------
def from_flax_tree(tree: Mapping, *, base_prefix: str | None = None, add_prefix: bool | None = None
                   ) -> dict[str, np.ndarray]:
    """A v4 Flax tree -> transformers PyTorch names: ``embedding``/``scale`` -> ``weight``, ``kernel`` -> ``weight``
    transposed. Tied projections stay absent (PyTorch models re-tie them on load); ``add_prefix`` as for
    ``to_flax_tree``."""
    flat = flatten_tree(tree)
    renamed = _align_prefix(list(flat), "/", base_prefix, add_prefix)
    out: dict[str, np.ndarray] = {}
    source: dict[str, str] = {}
    for path, value in flat.items():
        array = _as_array(path, value)
        parts = renamed[path].split("/")
        leaf = parts[-1]
        if leaf == "kernel":
            if array.ndim != 2:
                raise ValueError(f"Flax kernel {path!r} has shape {tuple(array.shape)}; only 2-D kernels map to "
                                 f"PyTorch weights")
            leaf, array = "weight", np.ascontiguousarray(array.T)
        elif leaf in ("embedding", "scale"):
            leaf = "weight"
        key = ".".join(parts[:-1] + [leaf])
        if key in out:
            raise ValueError(f"Flax parameters {source[key]!r} and {path!r} both map to {key!r}")
        out[key], source[key] = array, path
    return out
