"""Weights other frameworks wrote, read without them for the PyTorch classes (``from_tf`` / ``from_flax``).

Three sources: a TF1 checkpoint (google-research/bert, TF-Hub bertseq2seq; ``tf1_bundle`` reads it), v4's
``tf_model.h5`` (h5py) and v4's ``flax_model.msgpack`` (msgpack), or the ``model.safetensors`` of Flax names
(metadata format "flax") that v4's Flax ``save_pretrained(safe_serialization=True)`` writes. Each becomes a
transformers PyTorch state dict of numpy arrays, which the PyTorch loader then fits like any checkpoint, so
strictness and the "newly initialised" report are the same. Composite (encoder-decoder) files are split into
their sides, each named as its own model. Framework-free: TensorFlow and JAX are never imported.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..storage.files import (CONFIG_NAME, FLAX_INDEX, FLAX_WEIGHTS, GOOGLE_CONFIG_NAME, TF_INDEX, TF_WEIGHTS,
                             CheckpointError, CheckpointNotFoundError)
from .tf1_bundle import checkpoint_prefix, is_tf1_checkpoint, read_tf1_checkpoint
from .tf1_layout import is_optimizer_state, tf1_to_pt

__all__ = ["ForeignWeights", "SIDES", "PROJECTION", "find_foreign", "read_foreign", "split_tf_sides",
           "foreign_safetensors", "safetensors_kind", "detect_foreign"]

SIDES = ("encoder", "decoder")
PROJECTION = "enc_to_dec_proj"
# Config files beside a TF1 checkpoint: ours / transformers', then google-research's.
TF1_CONFIG_NAMES = (CONFIG_NAME, GOOGLE_CONFIG_NAME)


@dataclass
class ForeignWeights:
    kind: str  # "tf1", "h5", "msgpack", "flax_safetensors" or "tf_safetensors"
    source: Path  # the file or folder read
    state: dict[str, np.ndarray]
    skipped: dict[str, str] = field(default_factory=dict)  # name in the file -> why it was left out

    @property
    def folder(self) -> Path:
        return self.source if self.source.is_dir() else self.source.parent


def find_foreign(path: str | os.PathLike, *, from_tf: bool, from_flax: bool) -> tuple[str, Path]:
    """(kind, location) of the foreign weights ``path`` names: a folder with tf_model.h5 (or its shards), a TF1
    checkpoint (its .index, prefix, or a folder holding one), or a folder with flax_model.msgpack."""
    p = Path(path)
    if from_tf:
        if p.is_dir() and ((p / TF_WEIGHTS).is_file() or (p / TF_INDEX).is_file()):
            return "h5", p
        if is_tf1_checkpoint(p):
            return "tf1", checkpoint_prefix(p)
        if p.is_dir() and foreign_safetensors(p, "tf"):
            return "tf_safetensors", p
        if p.is_dir() and any(p.glob("*.index")):
            checkpoint_prefix(p)  # several checkpoints and none named: raises why, and that the .index picks one
        raise CheckpointNotFoundError(
            f"from_tf=True, but {str(p)!r} is neither a folder with {TF_WEIGHTS} / {TF_INDEX} nor a TF1 checkpoint "
            f"(a model.ckpt.index file, its prefix, or a folder holding one)"
            + (f"; the folder contains {sorted(os.listdir(p)) or 'nothing'}" if p.is_dir() else ""))
    if from_flax:
        if p.is_dir() and ((p / FLAX_WEIGHTS).is_file() or (p / FLAX_INDEX).is_file()):
            return "msgpack", p
        if p.is_dir() and foreign_safetensors(p, "flax"):
            return "flax_safetensors", p
        raise CheckpointNotFoundError(
            f"from_flax=True, but {str(p)!r} is not a folder with {FLAX_WEIGHTS}, {FLAX_INDEX} or a "
            "model.safetensors of Flax names"
            + (f"; it contains {sorted(os.listdir(p)) or 'nothing'}" if p.is_dir() else ""))
    raise ValueError("find_foreign needs from_tf or from_flax")


def detect_foreign(path: str | os.PathLike) -> tuple[str, Path]:
    """``find_foreign`` without a flag: TF weights (or a TF1 checkpoint) if ``path`` holds them, else Flax ones;
    the TF error (which names the folder's files) when it holds neither."""
    try:
        return find_foreign(path, from_tf=True, from_flax=False)
    except CheckpointNotFoundError as tf_error:
        try:
            return find_foreign(path, from_tf=False, from_flax=True)
        except CheckpointNotFoundError:
            raise tf_error from None


def _safetensors_format(folder: Path) -> tuple[str | None, list[Path]]:
    """(the format a folder's safetensors metadata names, its files); (None, []) without safetensors weights."""
    from ..storage.weights import find_weights
    from .flax_io import safetensors_format

    try:
        loc = find_weights(folder)
        if loc.format != "safetensors":
            return None, []
        return safetensors_format(loc.files[0]), list(loc.files)
    except CheckpointError:
        return None, []  # no weights, or a broken folder: the ordinary loader says which


def foreign_safetensors(folder: Path, fmt: str) -> list[Path] | None:
    """The safetensors files of ``folder`` when their metadata says they hold ``fmt`` names ("flax" or "tf", what
    v4's Flax and TF ``save_pretrained(safe_serialization=True)`` write): v4's PyTorch from_pretrained converted
    those with or without from_flax / from_tf."""
    found, files = _safetensors_format(folder)
    return files if found == fmt else None


def safetensors_kind(folder: Path) -> str | None:
    """"flax_safetensors" / "tf_safetensors" for a folder whose model.safetensors holds Flax / TF names (one header
    read)."""
    found, _ = _safetensors_format(folder)
    return f"{found}_safetensors" if found in ("flax", "tf") else None


def tf1_config_file(location: Path) -> Path | None:
    """The config beside a TF1 checkpoint: config.json, else google-research's bert_config.json."""
    folder = location if location.is_dir() else location.parent
    return next((folder / n for n in TF1_CONFIG_NAMES if (folder / n).is_file()), None)


# ---- reading ---------------------------------------------------------------------------------------------------
def read_foreign(kind: str, location: Path, *, sides: Mapping[str, str | None] | None = None,
                 side: str | None = None, progress: bool = False) -> ForeignWeights:
    """The weights at ``location`` under transformers' PyTorch names.

    Single models: ``side`` picks the stack of a bertseq2seq TF1 bundle (``"decoder"`` for a decoder model).
    Composites: ``sides`` maps ``"encoder"`` / ``"decoder"`` to that side's stack choice (the keys are the sides
    wanted); the result's keys are ``encoder.*``, ``decoder.*`` and ``enc_to_dec_proj.*``."""
    if kind == "tf1":
        return _read_tf1(location, sides, side, progress)
    if kind == "h5":
        return _read_h5(location, composite=sides is not None)
    if kind == "msgpack":
        return _read_msgpack(location, composite=sides is not None)
    if kind == "flax_safetensors":
        return _read_flax_safetensors(location, composite=sides is not None)
    if kind == "tf_safetensors":
        return _read_tf_safetensors(location, composite=sides is not None)
    raise ValueError(f"unknown foreign weights kind {kind!r}")


def _read_tf1(prefix: Path, sides, side, progress) -> ForeignWeights:
    arrays, left = read_tf1_checkpoint(prefix, keep=lambda name: not is_optimizer_state(name), progress=progress)
    skipped = {name: ("optimizer state or step counter" if is_optimizer_state(name) else "not a numeric tensor")
               for name in left}
    if sides is None:
        mapping = tf1_to_pt(arrays, side=side)
        return ForeignWeights("tf1", prefix, mapping.state, {**skipped, **mapping.skipped})
    state: dict[str, np.ndarray] = {}
    used: set[str] = set()
    for name, choice in sides.items():
        mapping = tf1_to_pt(arrays, side=choice)
        state.update({f"{name}.{k}": v for k, v in mapping.state.items()})
        skipped.update({k: f"{why} ({name})" for k, why in mapping.skipped.items() if k not in skipped})
        used.update(mapping.origin.values())
    # A name one side took is not skipped, whatever the other side said of it.
    return ForeignWeights("tf1", prefix, state, {k: v for k, v in skipped.items() if k not in used})


def _read_h5(folder: Path, *, composite: bool) -> ForeignWeights:
    from .tf_io import read_tf_weights

    arrays, info = read_tf_weights(folder)
    return _from_tf(arrays, "h5", folder, composite, info)


def _read_tf_safetensors(folder: Path, *, composite: bool) -> ForeignWeights:
    from .flax_io import read_safetensors_shards

    files = foreign_safetensors(folder, "tf")
    if not files:
        raise CheckpointNotFoundError(f"{str(folder)!r} holds no model.safetensors of TF names")
    state, _ = read_safetensors_shards(files, folder)
    # v4 stores the TF names relative to the model, some with the variable's ":0".
    return _from_tf({k.removesuffix(":0"): v for k, v in state.items()}, "tf_safetensors", folder, composite, None)


def _from_tf(arrays: Mapping[str, Any], kind: str, folder: Path, composite: bool, info) -> ForeignWeights:
    from .tf_layout import tf_to_pt

    if not composite:
        return ForeignWeights(kind, folder, tf_to_pt(arrays, base_model=False))
    parts, projection, other = split_tf_sides(arrays, "tf", info)
    state: dict[str, np.ndarray] = {}
    for name, part in parts.items():
        state.update({f"{name}.{k}": v for k, v in tf_to_pt(part, base_model=False).items()})
    if projection:
        state.update(tf_to_pt(projection, base_model=False))
    return ForeignWeights(kind, folder, state, {k: "not part of either side" for k in other})


def _read_msgpack(folder: Path, *, composite: bool) -> ForeignWeights:
    from .flax_io import read_flax_weights

    return _from_flax(read_flax_weights(folder), "msgpack", folder, composite)


def _read_flax_safetensors(folder: Path, *, composite: bool) -> ForeignWeights:
    from .flax_io import read_safetensors_shards
    from .flax_layout import unflatten_tree

    files = foreign_safetensors(folder, "flax")
    if not files:
        raise CheckpointNotFoundError(f"{str(folder)!r} holds no model.safetensors of Flax names")
    state, _ = read_safetensors_shards(files, folder)
    return _from_flax(unflatten_tree({k.replace(".", "/"): v for k, v in state.items()}), "flax_safetensors",
                      folder, composite)


def _from_flax(tree: Mapping, kind: str, folder: Path, composite: bool) -> ForeignWeights:
    from .flax_layout import from_flax_tree

    if not composite:
        return ForeignWeights(kind, folder, from_flax_tree(tree))
    state: dict[str, np.ndarray] = {}
    skipped = {}
    for key, sub in tree.items():
        if key in SIDES and isinstance(sub, Mapping):
            state.update({f"{key}.{k}": v for k, v in from_flax_tree(sub).items()})
        elif key == PROJECTION and isinstance(sub, Mapping):  # a Dense layer: kernel (in, out)
            state.update({f"{PROJECTION}.{'weight' if leaf == 'kernel' else leaf}":
                          np.ascontiguousarray(np.asarray(v).T) if leaf == "kernel" else np.asarray(v)
                          for leaf, v in sub.items()})
        else:
            skipped[key] = "not part of either side"
    return ForeignWeights(kind, folder, state, skipped)


# ---- composite h5 files ----------------------------------------------------------------------------------------
def _side_roots(arrays: Mapping[str, Any], fmt: str, layout) -> dict[str, str]:
    """The first name component of each side: ``encoder`` / ``decoder``, or in a v4 h5 file of a composite built
    from ready models the first and second layer groups' names (Keras' defaults, ``tf_bert_model``...)."""
    if fmt == "tf" and layout is not None and not layout.sharded:
        roots = {rel.split("/", 1)[0] for rel in arrays}
        if not set(SIDES) <= roots:
            groups = [name for name, _ in layout.layers if name != PROJECTION]
            if len(groups) == 2:
                return dict(zip(SIDES, groups))
    return {s: s for s in SIDES}


def split_tf_sides(arrays: Mapping[str, Any], fmt: str, layout=None):
    """A composite's TF names (``fmt="tf"``, ``/``) or PyTorch keys (``"pt"``, ``.``) -> (per-side arrays without
    the side's name, the projection's arrays under their full names, other names)."""
    sep = "/" if fmt == "tf" else "."
    side_of = {root: s for s, root in _side_roots(arrays, fmt, layout).items()}
    parts: dict[str, dict] = {s: {} for s in SIDES}
    projection, other = {}, []
    for key, value in arrays.items():
        root, _, rest = key.partition(sep)
        if root in side_of and rest:
            parts[side_of[root]][rest] = value
        elif root == PROJECTION and rest:
            projection[key] = value
        else:
            other.append(key)
    return parts, projection, other
