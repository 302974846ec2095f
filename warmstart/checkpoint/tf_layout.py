"""The TF layout adapter: v4's Keras weight names (``tf_model.h5``) <-> transformers' PyTorch state-dict names.

v4's TF classes were written to mirror the PyTorch modules, so one generic rule turns a TF weight name into the
PyTorch key (the rule transformers applies in both directions, see ../shared/FORMATS.md):

- ``:0`` (the variable's output index) is dropped;
- a scope ``xxx___yyy`` is PyTorch's ``yyy`` (``mlm___cls`` -> ``cls``: a second Keras name for one module);
- a list element ``layer_._3`` is ``layer.3``; ``/`` becomes ``.``;
- ``kernel`` -> ``weight`` transposed (Dense kernels are (in, out), Linear weights (out, in)); ``embeddings`` and
  ``gamma`` -> ``weight``; ``beta`` -> ``bias``. GPT-2's Conv1D keeps ``weight`` (in, out) on both sides, and its TF
  bias may be (1, out): shapes are aligned by squeezing or adding the leading 1, as v4 does;
- TF names always carry the main layer (``bert/...``); a PyTorch base model's keys do not (``embeddings...``) while
  its head models' do, so the backbone prefix is added or stripped by looking at the state's keys.

The names here are *relative to the model*: without the model's own first component (``tf_bert_model``) and without
``:0`` (``tf_io`` adds and strips both). Nothing is dropped silently: ``pt_to_tf`` reports every TF weight it found
no array for, every PyTorch key it did not use, every shape it could not align, and the keys it left out on
purpose with the reason (buffers the key maps list under ``ignore``, tied output projections, second bias names).
Framework-free: numpy only.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .keymaps import (KEYMAPS, TF_BACKBONE_ROOTS, TF_BIAS_ALIASES, TF_LIST_SEPARATOR, TF_SCOPE_SEPARATOR,
                      TF_TIED_OUTPUTS, normalize_legacy_names)

__all__ = ["TFConversion", "tf_model_name", "tf_to_pt_name", "strip_model_name", "pt_to_tf", "tf_to_pt",
           "infer_tf_prefix"]

# Buffers (not weights) of every family, as regexes over the backbone-relative PyTorch name.
_IGNORE = [re.compile("^" + re.escape(p).replace(r"\*", r"[^.]+") + "$")
           for km in KEYMAPS.values() for p in km.ignore]
_RENAMED_LEAVES = {"kernel": "weight", "embeddings": "weight", "gamma": "weight", "beta": "bias"}


@dataclass
class TFConversion:
    """Arrays by relative TF name plus the bookkeeping a loading report needs."""

    arrays: dict[str, np.ndarray]
    origin: dict[str, str] = field(default_factory=dict)    # TF name -> the PyTorch key it came from
    missing: list[str] = field(default_factory=list)         # TF names no PyTorch key provides
    unexpected: list[str] = field(default_factory=list)      # PyTorch keys no TF name used
    dropped: dict[str, str] = field(default_factory=dict)    # PyTorch key -> why it was left out on purpose
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)  # (TF name, TF shape, PyTorch shape)


# ---- names -----------------------------------------------------------------------------------------------------
def tf_model_name(class_name: str) -> str:
    """The name Keras 2 gives the first instance of a model class, the first component of every weight name in v4's
    files: its snake case (``TFBertForSequenceClassification`` -> ``tf_bert_for_sequence_classification``,
    ``TFGPT2LMHeadModel`` -> ``tfgpt2lm_head_model``, as the v4 fixtures show). Later instances in one process
    got ``_1``, ``_2``... ."""
    if not isinstance(class_name, str) or not class_name.isidentifier():
        raise ValueError(f"a model class name must be a Python identifier, got {class_name!r}")
    # Keras' two-pass rule: split before a capitalised word (letters only: "GPT2" stays whole), then between a
    # lower-case letter and a capital.
    words = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    snake = re.sub(r"([a-z])([A-Z])", r"\1_\2", words).lower()
    return snake if not snake.startswith("_") else "private" + snake


def strip_model_name(full_name: str) -> str:
    """``tf_bert_model/bert/.../kernel:0`` -> ``bert/.../kernel``: the name relative to the model, as our Keras
    models and ``pt_to_tf`` use it."""
    name = full_name.removesuffix(":0")
    parts = name.split("/")
    if len(parts) < 2 or not all(parts):
        raise ValueError(f"{full_name!r} is not a full TF weight name (model name / layer path / weight)")
    return "/".join(parts[1:])


def tf_to_pt_name(name: str, *, has_model_name: bool = False) -> tuple[str, bool]:
    """One TF weight name -> (the PyTorch key, whether the array is transposed between the two).

    ``name`` is relative to the model (``bert/embeddings/LayerNorm/gamma``); with ``has_model_name=True`` it is the
    full name as h5 files store it and its first component is dropped. The backbone prefix is kept
    (``bert.embeddings.LayerNorm.weight``); ``pt_to_tf`` / ``tf_to_pt`` align it with the PyTorch side."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a TF weight name must be a non-empty string, got {name!r}")
    name = name.removesuffix(":0")
    parts = [p for p in name.split("/") if p]
    if has_model_name:
        if len(parts) < 2:
            raise ValueError(f"{name!r} has no model-name component to strip")
        parts = parts[1:]
    # ``xxx___yyy`` scopes (never the leaf) are PyTorch's ``yyy``.
    parts = [p.rsplit(TF_SCOPE_SEPARATOR, 1)[1] if TF_SCOPE_SEPARATOR in p and i < len(parts) - 1 else p
             for i, p in enumerate(parts)]
    parts = [q for p in parts for q in p.split(TF_LIST_SEPARATOR) if q]
    if not parts:
        raise ValueError(f"TF weight name {name!r} has no components")
    transpose = parts[-1] == "kernel"
    parts[-1] = _RENAMED_LEAVES.get(parts[-1], parts[-1])
    return ".".join(parts), transpose


def infer_tf_prefix(tf_names: Iterable[str]) -> str | None:
    """The backbone main layer the TF names carry (``bert``, ``roberta``, ``transformer``), or None."""
    firsts = {n.split("/", 1)[0] for n in tf_names}
    found = [p for p in TF_BACKBONE_ROOTS if p in firsts]
    if len(found) > 1:
        raise ValueError(f"TF names carry several backbone main layers {found}")
    return found[0] if found else None


# ---- shapes ----------------------------------------------------------------------------------------------------
def _as_array(key: str, value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    try:
        return np.asarray(value)
    except Exception as e:  # a torch bfloat16 tensor, a python object, ...
        raise TypeError(f"state[{key!r}] is a {type(value).__name__} that numpy cannot read ({e}); pass numpy "
                        f"arrays (torch: tensor.float().numpy() for bfloat16)") from e


def _fit(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """``array`` in ``shape`` the way v4 aligns them (drop or add a leading 1, then reshape), or None when the
    sizes differ."""
    if array.shape == shape:
        return array
    if array.ndim > len(shape):
        array = np.squeeze(array)
    elif array.ndim < len(shape):
        array = array[None]
    if array.shape == shape:
        return array
    if array.size != int(np.prod(shape, dtype=np.int64)):
        return None
    return array.reshape(shape)


def _is_ignored(key: str, prefix: str | None) -> bool:
    rel = key[len(prefix) + 1:] if prefix and key.startswith(prefix + ".") else key
    return any(rx.match(rel) or rx.match(key) for rx in _IGNORE)


# ---- PyTorch -> TF ---------------------------------------------------------------------------------------------
def pt_to_tf(state: Mapping[str, Any], tf_names: Mapping[str, Iterable[int]] | Iterable[str], *,
             tie_word_embeddings: bool | None = None) -> TFConversion:
    """transformers PyTorch names -> the arrays a TF model's weights take, with where each came from.

    ``tf_names``: the model's weight names relative to the model (``bert/embeddings/word_embeddings/weight``),
    ideally as a mapping to their shapes: then arrays are brought to those shapes (GPT-2's (1, out) Conv1D biases)
    and shape conflicts are reported in ``mismatched`` instead of passing through. With a plain list, arrays keep
    their PyTorch shape (only ``kernel``s are transposed).
    ``tie_word_embeddings``: TF models have no output projection tied to the word embeddings; True leaves the
    PyTorch projection out always, False never (it is then reported unexpected), None when it equals the table.
    """
    if not isinstance(state, Mapping):
        raise TypeError(f"state must be a dict of name -> array, got {type(state).__name__}")
    if tie_word_embeddings not in (True, False, None):
        raise TypeError(f"tie_word_embeddings must be True, False or None, got {tie_word_embeddings!r}")
    if isinstance(tf_names, Mapping):
        shapes: dict[str, tuple[int, ...] | None] = {
            n: None if s is None else tuple(int(d) for d in s) for n, s in tf_names.items()}
    elif isinstance(tf_names, str):
        raise TypeError("tf_names must be a list of names or a mapping name -> shape, not one string")
    else:
        shapes = dict.fromkeys(tf_names)
    prefix = infer_tf_prefix(shapes)

    # Legacy gamma/beta names; each key remembers how the checkpoint spells it.
    source: dict[str, str] = {}
    arrays: dict[str, np.ndarray] = {}
    for key, value in state.items():
        if not isinstance(key, str) or not key or any(not p for p in key.split(".")):
            raise ValueError(f"state key {key!r} is not a dotted parameter name")
        new = next(iter(normalize_legacy_names({key: None})))
        if new in arrays:
            raise ValueError(f"state holds both {source[new]!r} and {key!r}, two spellings of {new!r}")
        arrays[new], source[new] = _as_array(key, value), key
    dropped: dict[str, str] = {}
    _resolve_bias_aliases(arrays, source, dropped)

    # TF names carry the main layer; a bare-backbone state does not (v4 strips the prefix from the TF side).
    strip = prefix is not None and not any(k.startswith(prefix + ".") or k == prefix for k in arrays)
    out: dict[str, np.ndarray] = {}
    origin: dict[str, str] = {}
    missing: list[str] = []
    mismatched: list[tuple[str, tuple, tuple]] = []
    used: set[str] = set()
    for tf_name, shape in shapes.items():
        pt_name, transpose = tf_to_pt_name(tf_name)
        if strip and pt_name.startswith(prefix + "."):
            pt_name = pt_name[len(prefix) + 1:]
        if pt_name not in arrays:
            missing.append(tf_name)
            continue
        if pt_name in used:
            raise ValueError(f"two TF weights map to the PyTorch key {source[pt_name]!r} (one is {tf_name!r})")
        used.add(pt_name)
        array = arrays[pt_name]
        if transpose:
            if array.ndim != 2:
                raise ValueError(f"TF kernel {tf_name!r} needs a 2-D PyTorch weight, {source[pt_name]!r} has shape "
                                 f"{tuple(array.shape)}")
            array = np.ascontiguousarray(array.T)
        if shape is not None:
            fitted = _fit(array, shape)
            if fitted is None:
                mismatched.append((tf_name, shape, tuple(arrays[pt_name].shape)))
                continue
            array = fitted
        out[tf_name], origin[tf_name] = array, source[pt_name]

    unexpected: list[str] = []
    tied = _tied_projections(arrays, prefix, strip, tie_word_embeddings)
    for key in arrays:
        if key in used:
            continue
        if _is_ignored(key, prefix):
            dropped[source[key]] = "buffer, not a weight"
        elif key in tied:
            dropped[source[key]] = tied[key]
        else:
            unexpected.append(source[key])
    return TFConversion(out, origin, missing, unexpected, dropped, mismatched)


def _resolve_bias_aliases(arrays: dict[str, np.ndarray], source: dict[str, str], dropped: dict[str, str]) -> None:
    """``cls.predictions.decoder.bias`` is PyTorch's second name for ``cls.predictions.bias``; TF has one."""
    for alias, canonical in TF_BIAS_ALIASES:
        if alias not in arrays:
            continue
        if canonical not in arrays:
            arrays[canonical], source[canonical] = arrays.pop(alias), source.pop(alias)
        elif arrays[alias].shape == arrays[canonical].shape and np.array_equal(arrays[alias], arrays[canonical]):
            del arrays[alias]
            dropped[source.pop(alias)] = f"the same tensor as {source[canonical]!r}"
        else:
            raise ValueError(f"{source[alias]!r} and {source[canonical]!r} are two names of one bias but hold "
                             f"different values")


def _tied_projections(arrays: Mapping[str, np.ndarray], prefix: str | None, stripped: bool, tie: bool | None
                      ) -> dict[str, str]:
    """PyTorch output projections that TF models tie to the word embeddings -> the reason to leave them out."""
    if tie is False:
        return {}
    out = {}
    for pre in ([prefix] if prefix else list(TF_TIED_OUTPUTS)):
        for projection, embedding in TF_TIED_OUTPUTS.get(pre, ()):
            if projection not in arrays:
                continue
            table_key = embedding[len(pre) + 1:] if stripped else embedding
            table = arrays.get(table_key)
            same = table is not None and table.shape == arrays[projection].shape and np.array_equal(
                table, arrays[projection])
            if tie or same:
                out[projection] = f"tied to {table_key!r}"
    return out


# ---- TF -> PyTorch ---------------------------------------------------------------------------------------------
def tf_to_pt(arrays: Mapping[str, Any], *, base_model: bool) -> dict[str, np.ndarray]:
    """A TF model's arrays (relative names) -> transformers' PyTorch state dict, as its PyTorch class names it.

    ``base_model``: True for ``BertModel``-like classes, whose keys have no backbone prefix (``embeddings...``);
    False for head models, which keep it (``bert.embeddings...``, ``cls.predictions.bias``). Kernels are
    transposed, 2-D ``(1, out)`` biases (GPT-2's TF Conv1D) become 1-D. Tied projections stay absent: PyTorch
    models re-tie them on load, and transformers leaves them out of safetensors files too."""
    if not isinstance(arrays, Mapping):
        raise TypeError(f"arrays must be a dict of TF name -> array, got {type(arrays).__name__}")
    prefix = infer_tf_prefix(arrays)
    out: dict[str, np.ndarray] = {}
    came_from: dict[str, str] = {}
    for tf_name, value in arrays.items():
        array = _as_array(tf_name, value)
        key, transpose = tf_to_pt_name(tf_name)
        if transpose:
            if array.ndim != 2:
                raise ValueError(f"TF kernel {tf_name!r} has shape {tuple(array.shape)}; only 2-D kernels map to "
                                 f"PyTorch weights")
            array = np.ascontiguousarray(array.T)
        if key.endswith("bias") and array.ndim == 2 and array.shape[0] == 1:
            array = array.reshape(-1)
        if base_model and prefix and key.startswith(prefix + "."):
            key = key[len(prefix) + 1:]
        if key in out:
            raise ValueError(f"TF weights {came_from[key]!r} and {tf_name!r} both map to {key!r}")
        out[key], came_from[key] = array, tf_name
    return out
