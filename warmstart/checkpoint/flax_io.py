"""Flax checkpoint files without Flax: ``flax_model.msgpack`` (single or sharded) and Flax-named safetensors.

numpy + msgpack only, so the PyTorch wing and the converters can read a Flax checkpoint without jax installed.
The layout is v4's (``flax.serialization.to_bytes``, see ../shared/FORMATS.md):

- nested msgpack maps mirroring the parameter tree, keys in insertion order;
- each array an ExtType 1 whose payload is msgpack of ``(shape, dtype name, C-order bytes)``; numpy scalars
  ExtType 3 with the same payload of a 0-d array;
- an array above 2**30 bytes (msgpack's per-object limit is 2**31 - 1) is stored as a map
  ``{"__msgpack_chunked_array__": True, "shape": {"0": d0, ...}, "chunks": {"0": flat0, ...}}``;
- shards ``flax_model-0000k-of-0000n.msgpack`` each hold a sub-tree; ``flax_model.msgpack.index.json`` maps every
  "/"-joined path to its shard (split greedily in tree order, as v4 does);
- ``model.safetensors`` with metadata ``{"format": "flax"}`` holds the same leaves under "."-joined paths.

Every reader names the file it could not read; truncated files never load partially.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

try:  # only the msgpack files need it; the safetensors helpers here serve the TF wing too
    import msgpack
except ImportError:  # pragma: no cover - installed with warmstart[flax]
    msgpack = None
import numpy as np

from ..storage.files import FLAX_INDEX, FLAX_WEIGHTS, CheckpointError, CheckpointNotFoundError
from ..storage.weights import check_safetensors_length, parse_size
from .flax_layout import flatten_tree, unflatten_tree

__all__ = ["FLAX_WEIGHTS", "FLAX_INDEX", "read_msgpack", "read_msgpack_bytes", "msgpack_bytes", "write_msgpack",
           "read_flax_weights", "write_flax_weights", "read_safetensors", "write_flax_safetensors",
           "safetensors_format", "find_flax_weights", "read_safetensors_shards"]

_ARRAY, _SCALAR = 1, 3
_CHUNK_BYTES = 2**30
_CHUNKED = "__msgpack_chunked_array__"


# ---- arrays <-> ExtType payloads -------------------------------------------------------------------------------
def _dtype(name: str) -> np.dtype:
    if name == "bfloat16":  # numpy has no bfloat16; ml_dtypes (a jax dependency) does
        try:
            import ml_dtypes
        except ImportError as e:
            raise CheckpointError("the checkpoint holds bfloat16 arrays, which need ml_dtypes "
                                  "(pip install ml_dtypes, or 'warmstart[convert]')") from e
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def _decode_array(payload: bytes) -> np.ndarray:
    shape, dtype_name, buffer = msgpack.unpackb(payload, raw=False)
    dtype = _dtype(dtype_name)
    count = int(np.prod(shape, dtype=np.int64))
    if len(buffer) != count * dtype.itemsize:
        raise ValueError(f"an array of shape {tuple(shape)} {dtype_name} holds {len(buffer)} bytes, not "
                         f"{count * dtype.itemsize}")
    # A copy: frombuffer views are read-only and would pin the whole file's bytes.
    return np.frombuffer(buffer, dtype=dtype).reshape(shape).copy()


def _encode_array(array: np.ndarray) -> bytes:
    if array.dtype.hasobject or array.dtype.fields is not None:
        raise TypeError(f"cannot store an array of dtype {array.dtype} in msgpack (numbers only)")
    return msgpack.packb((array.shape, array.dtype.name, array.tobytes("C")), use_bin_type=True)


def _ext_hook(code: int, payload: bytes):
    if code == _ARRAY:
        return _decode_array(payload)
    if code == _SCALAR:
        return _decode_array(payload)[()]
    raise ValueError(f"unknown msgpack extension type {code} (flax_model.msgpack uses 1 for arrays, 3 for scalars)")


def _to_msgpack_leaf(value: Any):
    if isinstance(value, np.generic):
        return msgpack.ExtType(_SCALAR, _encode_array(np.asarray(value)))
    if isinstance(value, np.ndarray):
        return msgpack.ExtType(_ARRAY, _encode_array(value))
    if hasattr(value, "__array__"):  # a jax / torch array: through numpy, in its own dtype
        return msgpack.ExtType(_ARRAY, _encode_array(np.asarray(value)))
    raise TypeError(f"cannot store a {type(value).__name__} in msgpack (parameter trees hold arrays)")


# ---- chunking (arrays above msgpack's per-object limit) ---------------------------------------------------------
def _chunk(array: np.ndarray) -> dict:
    step = max(1, _CHUNK_BYTES // array.dtype.itemsize)
    flat = array.reshape(-1)
    return {_CHUNKED: True, "shape": {str(i): int(d) for i, d in enumerate(array.shape)},
            "chunks": {str(i): flat[j:j + step] for i, j in enumerate(range(0, flat.size, step))}}


def _unchunk(node: Mapping) -> np.ndarray:
    shape = tuple(int(node["shape"][str(i)]) for i in range(len(node["shape"])))
    chunks = [node["chunks"][str(i)] for i in range(len(node["chunks"]))]
    return np.concatenate(chunks).reshape(shape)


def _restore_chunks(node):
    if isinstance(node, Mapping):
        if _CHUNKED in node:
            return _unchunk(node)
        return {k: _restore_chunks(v) for k, v in node.items()}
    return node


def _with_chunks(node):
    if isinstance(node, Mapping):
        return {k: _with_chunks(v) for k, v in node.items()}
    array = node if isinstance(node, np.ndarray) else None
    if array is None and hasattr(node, "__array__") and not isinstance(node, np.generic):
        array = np.asarray(node)
    if array is not None and array.size * array.dtype.itemsize > _CHUNK_BYTES:
        return _chunk(array)
    return node if array is None else array


# ---- one msgpack file ------------------------------------------------------------------------------------------
def _need_msgpack() -> None:
    if msgpack is None:
        raise ImportError("flax_model.msgpack files need the msgpack package: pip install 'warmstart[convert]' "
                          "(or 'warmstart[flax]', or msgpack)")


def msgpack_bytes(tree: Mapping) -> bytes:
    """A parameter tree as v4's msgpack bytes (what ``flax.serialization.to_bytes`` writes for the same tree)."""
    if not isinstance(tree, Mapping):
        raise TypeError(f"a parameter tree must be a dict of dicts, got {type(tree).__name__}")
    # String keys, no empty nodes, numbers at the leaves: a tree that reads back as it was written.
    for path, leaf in flatten_tree(tree).items():
        if not (isinstance(leaf, (np.ndarray, np.generic)) or hasattr(leaf, "__array__")):
            raise TypeError(f"cannot store a {type(leaf).__name__} at {path!r} in msgpack (parameter trees hold "
                            "arrays)")
    _need_msgpack()
    return msgpack.packb(_with_chunks(tree), default=_to_msgpack_leaf, strict_types=True, use_bin_type=True)


def write_msgpack(tree: Mapping, path: str | os.PathLike) -> None:
    Path(path).write_bytes(msgpack_bytes(tree))


def read_msgpack_bytes(data: bytes, source: str = "the msgpack bytes") -> dict:
    """v4 msgpack bytes -> the nested dict of numpy arrays they hold; a CheckpointError naming ``source``."""
    _need_msgpack()
    try:
        tree = msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)
    except (ValueError, TypeError, msgpack.UnpackException, msgpack.ExtraData) as e:
        raise CheckpointError(f"{source} is not a readable flax_model.msgpack (truncated or corrupt?): "
                              f"{type(e).__name__}: {e}") from e
    if not isinstance(tree, dict):
        raise CheckpointError(f"{source} holds a msgpack {type(tree).__name__}, not a parameter tree")
    try:
        return _restore_chunks(tree)
    except (KeyError, ValueError, TypeError) as e:
        raise CheckpointError(f"{source} has a malformed chunked array: {e}") from e


def read_msgpack(path: str | os.PathLike) -> dict:
    """One msgpack file -> the nested dict of numpy arrays it holds; a CheckpointError naming the file otherwise."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"cannot read {str(path)!r}: {e}") from e
    return read_msgpack_bytes(data, repr(str(path)))


# ---- safetensors -----------------------------------------------------------------------------------------------
def safetensors_format(path: str | os.PathLike) -> str | None:
    """The ``format`` metadata ("pt", "flax", "tf") of a safetensors file, or None when it has none."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    check_safetensors_length(path)
    try:
        with safe_open(str(path), framework="np") as f:
            return (f.metadata() or {}).get("format")
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"could not read safetensors file {str(path)!r} (corrupt?): {e}") from e


def read_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every tensor of one safetensors file as numpy (bfloat16 as ml_dtypes.bfloat16), names as stored."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    check_safetensors_length(path)
    try:
        with safe_open(str(path), framework="np") as f:
            return {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, OSError, ValueError, TypeError) as e:
        raise CheckpointError(f"could not read safetensors file {str(path)!r} (corrupt?): {e}") from e


def read_safetensors_shards(files: list[Path], folder) -> tuple[dict[str, np.ndarray], str | None]:
    """(every tensor of a checkpoint's safetensors shards, the format their metadata names): the shards must agree
    on the format and hold each name once."""
    formats = {safetensors_format(f) for f in files}
    if len(formats) > 1:
        raise CheckpointError(f"the safetensors shards in {str(folder)!r} disagree on their format: "
                              f"{sorted(map(str, formats))}")
    state: dict[str, np.ndarray] = {}
    for f in files:
        for key, value in read_safetensors(f).items():
            if key in state:
                raise CheckpointError(f"tensor {key!r} is stored twice (again in {str(f)!r})")
            state[key] = value
    return state, next(iter(formats), None)


def write_flax_safetensors(tree: Mapping, path: str | os.PathLike) -> None:
    """v4's ``save_pretrained(safe_serialization=True)``: Flax leaves under "."-joined paths, format "flax"."""
    from safetensors.numpy import save_file

    flat = {k.replace("/", "."): np.ascontiguousarray(np.asarray(v)) for k, v in flatten_tree(tree).items()}
    save_file(flat, str(path), metadata={"format": "flax"})


# ---- folders: single file or shards ----------------------------------------------------------------------------
def _nbytes(value) -> int:
    array = np.asarray(value)
    return array.size * array.dtype.itemsize


def _shard_name(k: int, n: int) -> str:
    return f"flax_model-{k:05d}-of-{n:05d}.msgpack"


def write_flax_weights(tree: Mapping, folder: str | os.PathLike, max_shard_size: int | str = "10GB") -> list[str]:
    """Write ``tree`` into ``folder`` as v4 does: one ``flax_model.msgpack``, or shards + index when it is larger
    than ``max_shard_size`` (leaves taken in tree order; a leaf larger than the limit gets a shard of its own).
    Returns the file names written. The caller makes the folder swap atomic (``storage.atomic``)."""
    limit = parse_size(max_shard_size)
    flat = flatten_tree(tree)
    blocks: list[dict[str, Any]] = [{}]
    size = total = 0
    for path, value in flat.items():
        n = _nbytes(value)
        if blocks[-1] and size + n > limit:
            blocks.append({})
            size = 0
        blocks[-1][path] = value
        size += n
        total += n
    folder = Path(folder)
    if len(blocks) == 1:
        write_msgpack(tree, folder / FLAX_WEIGHTS)
        return [FLAX_WEIGHTS]
    names = [_shard_name(k + 1, len(blocks)) for k in range(len(blocks))]
    weight_map = {}
    for name, block in zip(names, blocks):
        write_msgpack(unflatten_tree(block), folder / name)
        weight_map.update(dict.fromkeys(block, name))
    index = {"metadata": {"total_size": total},
             "weight_map": dict(sorted(weight_map.items()))}
    (folder / FLAX_INDEX).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return names + [FLAX_INDEX]


def _read_index(folder: Path) -> tuple[list[Path], dict[str, str]]:
    index_file = folder / FLAX_INDEX
    try:
        index = json.loads(index_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CheckpointError(f"shard index {str(index_file)!r} is not readable JSON: {e}") from e
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(f"shard index {str(index_file)!r} has no non-empty 'weight_map'")
    shards: list[Path] = []
    for key, name in weight_map.items():
        if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
            raise CheckpointError(f"shard index {str(index_file)!r} maps {key!r} to {name!r}, not a file name in "
                                  "the checkpoint folder")
        if folder / name not in shards:
            shards.append(folder / name)
    missing = [p.name for p in shards if not p.is_file()]
    if missing:
        raise CheckpointError(f"shard index {str(index_file)!r} names shard file(s) missing from the folder: "
                              f"{missing}")
    return shards, weight_map


def read_flax_weights(folder: str | os.PathLike) -> dict:
    """The tree a folder's ``flax_model.msgpack`` (or its shards) holds."""
    folder = Path(folder)
    if (folder / FLAX_WEIGHTS).is_file():
        if (folder / FLAX_INDEX).is_file():
            raise CheckpointError(f"{str(folder)!r} holds both {FLAX_WEIGHTS!r} and {FLAX_INDEX!r}; refusing to "
                                  "guess which is current. Delete the stale one.")
        return read_msgpack(folder / FLAX_WEIGHTS)
    if not (folder / FLAX_INDEX).is_file():
        raise CheckpointNotFoundError(f"no {FLAX_WEIGHTS} or {FLAX_INDEX} in {str(folder)!r}")
    shards, weight_map = _read_index(folder)
    flat: dict[str, Any] = {}
    for shard in shards:
        for path, value in flatten_tree(read_msgpack(shard)).items():
            if path in flat:
                raise CheckpointError(f"parameter {path!r} is stored twice (again in {str(shard)!r})")
            flat[path] = value
    absent = [k for k in weight_map if k not in flat]
    if absent:
        raise CheckpointError(f"shard index {str(folder / FLAX_INDEX)!r} lists {len(absent)} parameter(s) that no "
                              f"shard holds, e.g. {absent[:5]}")
    return unflatten_tree(flat)


def find_flax_weights(folder: str | os.PathLike, *, from_pt: bool = False) -> tuple[str, list[Path]]:
    """Which weights a Flax model reads from ``folder``: ("msgpack", [file or shards' folder]),
    ("safetensors", files) or ("bin", files). Without ``from_pt``: msgpack first, then safetensors (any format;
    PyTorch ones are converted); ``pytorch_model.bin`` only with ``from_pt=True`` (as v4). With ``from_pt``: the
    PyTorch files first."""
    from ..storage.weights import find_weights

    folder = Path(folder)
    has_msgpack = (folder / FLAX_WEIGHTS).is_file() or (folder / FLAX_INDEX).is_file()
    if has_msgpack and not from_pt:
        return "msgpack", [folder]
    try:
        loc = find_weights(folder)
    except CheckpointNotFoundError:
        if has_msgpack:
            return "msgpack", [folder]
        present = sorted(os.listdir(folder)) if folder.is_dir() else []
        raise CheckpointNotFoundError(
            f"no weights in {str(folder)!r}: looked for {FLAX_WEIGHTS}, {FLAX_INDEX}, model.safetensors (+ index) "
            f"and pytorch_model.bin (+ index); the folder contains {present or 'nothing'}") from None
    if loc.format == "bin" and not from_pt:
        if has_msgpack:
            return "msgpack", [folder]
        raise CheckpointNotFoundError(
            f"{str(folder)!r} holds PyTorch weights ({loc.files[0].name}) but no {FLAX_WEIGHTS}: pass from_pt=True "
            "to convert them (needs torch)")
    return loc.format, list(loc.files)
