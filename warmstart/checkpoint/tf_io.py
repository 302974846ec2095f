"""TF checkpoint files without TensorFlow: v4's ``tf_model.h5`` (single or sharded), read and written with h5py.

v4 saved weights through Keras 2's ``save_weights`` (see ../shared/FORMATS.md); Keras 3 cannot write that layout
(it ignores name scopes and saves by position), so it is written here directly:

- single file: root attributes ``layer_names`` (the model's top layers, weightless ones such as dropouts too),
  ``backend`` and ``keras_version``; one group per layer, created in sorted name order, with a ``weight_names``
  attribute of full names (``tf_bert_model/bert/embeddings/LayerNorm/gamma:0``) and each dataset at that full
  name under the group. A layer lists every weight it reaches, so a head that shares the word embeddings
  (``mlm___cls``) holds a second copy of them. An empty ``top_level_model_weights`` group closes the file;
- string attributes are variable-length ASCII; a list whose fixed-width numpy form exceeds 64512 bytes (HDF5's
  object-header limit) is split into ``name0``, ``name1``, ... of fixed-width strings, as Keras does;
- shards ``tf_model-0000k-of-0000n.h5``: no groups, each dataset at the name without the model's component
  (``bert/embeddings/LayerNorm/gamma:0``), sorted, listed in a root ``layer_names``; ``tf_model.h5.index.json``
  maps every full name to its shard (split greedily in the model's weight order).

Names given to and returned by this module are relative to the model and without ``:0``
(``bert/embeddings/LayerNorm/gamma``), as ``tf_layout`` uses them. Every reader names the file and the problem;
a truncated, empty or foreign file never loads partially. Writes go to a side file renamed into place.
"""
from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..storage.files import TF_INDEX, TF_WEIGHTS, CheckpointError, CheckpointNotFoundError
from ..storage.weights import parse_size
from .keymaps import TF_SHARED_LAYERS

__all__ = ["TF_WEIGHTS", "TF_INDEX", "KERAS_BACKEND", "KERAS_VERSION", "TFWeightsInfo", "read_tf_h5",
           "read_tf_sharded", "read_tf_weights", "write_tf_h5", "write_tf_sharded", "write_tf_weights",
           "find_tf_weights", "tf_shard_name", "v4_layers"]

# What transformers 4.57.1 on tf-keras 2.21 writes into the root attributes.
KERAS_BACKEND = "tensorflow"
KERAS_VERSION = "2.21.0"
_TOP_LEVEL = "top_level_model_weights"
_HEADER_LIMIT = 64512  # bytes an HDF5 object header keeps for one attribute (Keras' HDF5_OBJECT_HEADER_LIMIT)

Layers = Sequence[tuple[str, Sequence[tuple[str, Any]]]]


@dataclass
class TFWeightsInfo:
    """What a tf_model.h5 says about itself besides the arrays (enough to write the same file again)."""

    files: list[Path]
    sharded: bool
    model_name: str | None = None
    # (layer name, relative weight names in file order); a weight shared by two layers is listed under both.
    layers: list[tuple[str, list[str]]] = field(default_factory=list)
    top_level: list[str] = field(default_factory=list)
    backend: str | None = None
    keras_version: str | None = None


def _h5py():
    try:
        import h5py
    except ImportError as e:
        raise ImportError("reading or writing tf_model.h5 needs h5py: pip install 'warmstart[convert]' (or "
                          "'warmstart[tf]', or h5py)") from e
    return h5py


# ---- names -----------------------------------------------------------------------------------------------------
def _split_full(full: str, where: str) -> tuple[str, str]:
    """``tf_bert_model/bert/x/kernel:0`` -> ("tf_bert_model", "bert/x/kernel")."""
    name = full.removesuffix(":0")
    head, sep, rest = name.partition("/")
    if not sep or not head or not rest:
        raise CheckpointError(f"{where}: weight name {full!r} has no model-name component "
                              "(expected e.g. 'tf_bert_model/bert/embeddings/word_embeddings/weight:0')")
    return head, rest


def _full(model_name: str, rel: str) -> str:
    return f"{model_name}/{rel}:0"


def _check_rel(rel: str) -> None:
    if not isinstance(rel, str) or not rel or rel.endswith(":0") or any(not p for p in rel.split("/")):
        raise ValueError(f"weight name {rel!r} must be relative to the model and without ':0' "
                         "(e.g. 'bert/embeddings/LayerNorm/gamma')")


# ---- attributes (Keras' chunked lists) ---------------------------------------------------------------------------
def _text(value) -> str:
    return value.decode("utf8") if isinstance(value, (bytes, np.bytes_)) else str(value)


def _read_list_attr(group, name: str) -> list[str] | None:
    if name in group.attrs:
        values = group.attrs[name]
        return [_text(v) for v in np.atleast_1d(values)] if np.size(values) else []
    if f"{name}0" not in group.attrs:
        return None
    out: list[str] = []
    k = 0
    while f"{name}{k}" in group.attrs:
        out.extend(_text(v) for v in np.atleast_1d(group.attrs[f"{name}{k}"]))
        k += 1
    return out


def _write_list_attr(group, name: str, items: list[str]) -> None:
    data = [s.encode("utf8") for s in items]
    too_long = [s for s in data if len(s) > _HEADER_LIMIT]
    if too_long:
        raise ValueError(f"cannot store {name!r}: {too_long[0][:80]!r}... is longer than {_HEADER_LIMIT} bytes")
    fixed = np.asarray(data)
    chunks = 1
    parts = np.array_split(fixed, chunks)
    while any(p.nbytes > _HEADER_LIMIT for p in parts):
        chunks += 1
        parts = np.array_split(fixed, chunks)
    if chunks == 1:
        group.attrs[name] = data  # a list of bytes: h5py stores variable-length ASCII (an empty one: float64)
    else:
        for k, part in enumerate(parts):
            group.attrs[f"{name}{k}"] = part  # fixed-width strings, as Keras' split lists


# ---- opening ---------------------------------------------------------------------------------------------------
def _open(path: Path):
    h5py = _h5py()
    if not path.is_file():
        raise CheckpointNotFoundError(f"no TF weights file at {str(path)!r}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{str(path)!r} is empty (0 bytes), not a tf_model.h5")
    try:
        with path.open("rb") as f:
            head = f.read(64)
    except OSError as e:
        raise CheckpointError(f"cannot read {str(path)!r}: {e}") from e
    if head.startswith(b"version https://git-lfs"):
        raise CheckpointError(f"{str(path)!r} is a git-lfs pointer, not the weights: run `git lfs pull`")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise CheckpointError(f"{str(path)!r} is not a readable HDF5 file (truncated or not HDF5?): {e}") from e


def _array(dset, where: str) -> np.ndarray:
    try:
        return dset[()] if dset.shape == () else dset[...]
    except (OSError, ValueError, TypeError) as e:
        raise CheckpointError(f"{where}: cannot read dataset {dset.name!r} (truncated or corrupt?): {e}") from e


def _is_shard(f, layer_names: list[str]) -> bool:
    h5py = _h5py()
    return bool(layer_names) and all(isinstance(f.get(n), h5py.Dataset) for n in layer_names)


# ---- reading ---------------------------------------------------------------------------------------------------
def read_tf_h5(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], TFWeightsInfo]:
    """One v4 ``tf_model.h5`` (or one of its shards) -> (arrays by relative name, what else the file says)."""
    path = Path(path)
    where = repr(str(path))
    with _open(path) as f:
        try:
            layer_names = _read_list_attr(f, "layer_names")
            if layer_names is None:
                kind = ("a Keras 3 .weights.h5 (saved by position, no names)" if "vars" in f or "layers" in f
                        else "not a Keras 2 / transformers v4 weights file")
                raise CheckpointError(f"{where} has no 'layer_names' attribute: {kind}")
            if _is_shard(f, layer_names):
                return _read_shard(f, path, layer_names)
            return _read_single(f, path, layer_names)
        except CheckpointError:
            raise
        except (OSError, KeyError, ValueError, TypeError, RuntimeError) as e:
            raise CheckpointError(f"{where} could not be read as a tf_model.h5 (truncated or corrupt?): "
                                  f"{type(e).__name__}: {e}") from e


def _read_single(f, path: Path, layer_names: list[str]) -> tuple[dict[str, np.ndarray], TFWeightsInfo]:
    h5py = _h5py()
    where = repr(str(path))
    info = TFWeightsInfo(files=[path], sharded=False, backend=_text(f.attrs["backend"]) if "backend" in f.attrs
                         else None, keras_version=_text(f.attrs["keras_version"]) if "keras_version" in f.attrs
                         else None)
    weights: dict[str, np.ndarray] = {}
    groups = [(n, False) for n in layer_names] + ([(_TOP_LEVEL, True)] if _TOP_LEVEL in f else [])
    for layer, top in groups:
        group = f.get(layer)
        if not isinstance(group, h5py.Group):
            raise CheckpointError(f"{where} lists layer {layer!r} in 'layer_names' but has no group of that name")
        names = _read_list_attr(group, "weight_names")
        if names is None:
            raise CheckpointError(f"{where}: layer group {layer!r} has no 'weight_names' attribute")
        rels = []
        for full in names:
            model, rel = _split_full(full, where)
            if info.model_name is None:
                info.model_name = model
            elif model != info.model_name:
                raise CheckpointError(f"{where} mixes weights of two models: {info.model_name!r} and {model!r} "
                                      f"({full!r} in layer {layer!r})")
            dset = group.get(full)
            if not isinstance(dset, h5py.Dataset):
                raise CheckpointError(f"{where}: layer {layer!r} lists weight {full!r} but has no dataset "
                                      f"{layer + '/' + full!r}")
            value = _array(dset, where)
            if rel in weights:
                if weights[rel].shape != value.shape or not np.array_equal(weights[rel], value):
                    raise CheckpointError(f"{where}: weight {full!r} is stored twice with different values "
                                          f"(again in layer {layer!r})")
            else:
                weights[rel] = value
            rels.append(rel)
        if top:
            info.top_level = rels
        else:
            info.layers.append((layer, rels))
    return weights, info


def _read_shard(f, path: Path, layer_names: list[str]) -> tuple[dict[str, np.ndarray], TFWeightsInfo]:
    where = repr(str(path))
    weights: dict[str, np.ndarray] = {}
    for name in layer_names:
        rel = name.removesuffix(":0")
        if rel in weights:
            raise CheckpointError(f"{where} lists {name!r} twice in 'layer_names'")
        weights[rel] = _array(f[name], where)
    return weights, TFWeightsInfo(files=[path], sharded=True, layers=[("", list(weights))])


def _read_index(index_file: Path) -> tuple[list[Path], dict[str, str]]:
    try:
        index = json.loads(index_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CheckpointError(f"shard index {str(index_file)!r} is not readable JSON: {e}") from e
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(f"shard index {str(index_file)!r} has no non-empty 'weight_map'")
    folder = index_file.parent
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


def read_tf_sharded(index_path: str | os.PathLike) -> tuple[dict[str, np.ndarray], TFWeightsInfo]:
    """v4 TF shards through their ``tf_model.h5.index.json`` -> (arrays by relative name, info)."""
    index_path = Path(index_path)
    shards, weight_map = _read_index(index_path)
    weights: dict[str, np.ndarray] = {}
    for shard in shards:
        part, info = read_tf_h5(shard)
        if not info.sharded:
            raise CheckpointError(f"{str(shard)!r}, named by {str(index_path)!r}, is a whole tf_model.h5, not a "
                                  "shard")
        for rel, value in part.items():
            if rel in weights:
                raise CheckpointError(f"weight {rel!r} is stored twice (again in {str(shard)!r})")
            weights[rel] = value
    models = set()
    listed = set()
    for full in weight_map:
        model, rel = _split_full(full, repr(str(index_path)))
        models.add(model)
        listed.add(rel)
    absent = sorted(listed - set(weights))
    if absent:
        raise CheckpointError(f"shard index {str(index_path)!r} lists {len(absent)} weight(s) that no shard "
                              f"holds, e.g. {absent[:5]}")
    info = TFWeightsInfo(files=[index_path, *shards], sharded=True,
                         model_name=next(iter(models)) if len(models) == 1 else None,
                         layers=[("", list(weights))])
    return weights, info


def find_tf_weights(folder: str | os.PathLike) -> list[Path]:
    """The TF weights of ``folder``: ``[tf_model.h5]`` or ``[tf_model.h5.index.json, shard, ...]``."""
    folder = Path(folder)
    single, index = folder / TF_WEIGHTS, folder / TF_INDEX
    if single.is_file() and index.is_file():
        raise CheckpointError(f"{str(folder)!r} holds both {TF_WEIGHTS!r} and {TF_INDEX!r}; refusing to guess "
                              "which is current. Delete the stale one.")
    if single.is_file():
        return [single]
    if index.is_file():
        return [index, *_read_index(index)[0]]
    present = sorted(os.listdir(folder)) if folder.is_dir() else None
    raise CheckpointNotFoundError(f"no {TF_WEIGHTS} or {TF_INDEX} in {str(folder)!r}"
                                  + ("" if present is None else f"; the folder contains {present or 'nothing'}")
                                  + ("" if folder.is_dir() else " (not a folder)"))


def read_tf_weights(folder: str | os.PathLike) -> tuple[dict[str, np.ndarray], TFWeightsInfo]:
    """The arrays a folder's ``tf_model.h5`` (or its shards) holds."""
    files = find_tf_weights(folder)
    return read_tf_sharded(files[0]) if files[0].name == TF_INDEX else read_tf_h5(files[0])


# ---- writing ---------------------------------------------------------------------------------------------------
def v4_layers(weights: Sequence[tuple[str, Any]], layer_names: Sequence[str],
              shared: Sequence[tuple[str, str]] = TF_SHARED_LAYERS) -> list[tuple[str, list[tuple[str, Any]]]]:
    """The ``layers`` argument of ``write_tf_h5`` from a model's weights in ``model.weights`` order and its top
    layer names (``["bert", "dropout_4", "classifier"]``): each weight goes to the layer its first component names,
    and a head in ``shared`` (``mlm___cls``) lists the backbone sub-tree it holds (``bert/embeddings``) again after
    its own weights, as v4's files do."""
    names = list(layer_names)
    groups: dict[str, list[tuple[str, Any]]] = {n: [] for n in names}
    for rel, value in weights:
        _check_rel(rel)
        layer = rel.split("/", 1)[0]
        if layer not in groups:
            raise ValueError(f"weight {rel!r} belongs to no layer in {names}")
        groups[layer].append((rel, value))
    for head, subtree in shared:
        if head in groups:
            groups[head].extend((rel, v) for rel, v in weights if rel.startswith(subtree + "/"))
    return [(n, groups[n]) for n in names]


def _replace(path: Path, write) -> None:
    """Write beside ``path`` and rename over it: readers see the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.ws-part")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _put(group, name: str, value) -> None:
    array = np.asarray(value)
    if array.dtype.hasobject or array.dtype.fields is not None:
        raise TypeError(f"cannot store {name!r}: an array of dtype {array.dtype} (numbers only)")
    dset = group.create_dataset(name, array.shape, dtype=array.dtype)
    if array.shape:
        dset[:] = array
    else:
        dset[()] = array


def _checked_layers(model_name: str, layers: Layers) -> list[tuple[str, list[tuple[str, Any]]]]:
    if not isinstance(model_name, str) or not model_name or "/" in model_name:
        raise ValueError(f"model_name must be one name component such as 'tf_bert_model', got {model_name!r}")
    out = []
    seen: dict[str, Any] = {}
    for layer, weights in layers:
        if not isinstance(layer, str) or not layer or "/" in layer or layer == _TOP_LEVEL:
            raise ValueError(f"layer name {layer!r} is not a single, free group name")
        if any(layer == other for other, _ in out):
            raise ValueError(f"layer {layer!r} is given twice")
        items = []
        for rel, value in weights:
            _check_rel(rel)
            if rel in seen and seen[rel] is not value and not np.array_equal(np.asarray(seen[rel]), np.asarray(value)):
                raise ValueError(f"weight {rel!r} is given twice with different values (again in layer {layer!r})")
            seen[rel] = value
            items.append((rel, value))
        out.append((layer, items))
    return out


def write_tf_h5(path: str | os.PathLike, model_name: str, layers: Layers, *,
                top_level: Sequence[tuple[str, Any]] = ()) -> None:
    """Write v4's single-file ``tf_model.h5``.

    ``model_name``: the first component of every stored name (``tf_model_name(class)``, e.g. ``tf_bert_model``).
    ``layers``: the model's top layers in their order, each ``(layer name, [(relative weight name, array), ...])``
    with every weight the layer reaches, in its order (weightless layers with an empty list; a shared weight under
    each layer that holds it, as v4's files have it). ``top_level``: weights the model holds itself (none in v4).
    """
    checked = _checked_layers(model_name, layers)
    for rel, _ in top_level:
        _check_rel(rel)
    h5py = _h5py()
    path = Path(path)

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            _write_list_attr(f, "layer_names", [name for name, _ in checked])
            f.attrs["backend"] = KERAS_BACKEND.encode("utf8")
            f.attrs["keras_version"] = KERAS_VERSION.encode("utf8")
            # Keras creates the groups in name order so that no group name is a prefix seen before its parent.
            for layer, items in sorted(checked, key=lambda item: item[0]):
                _write_group(f.create_group(layer), model_name, items)
            _write_group(f.create_group(_TOP_LEVEL), model_name, list(top_level))

    _replace(path, write)


def _write_group(group, model_name: str, items: list[tuple[str, Any]]) -> None:
    names = [_full(model_name, rel) for rel, _ in items]
    _write_list_attr(group, "weight_names", names)
    for name, (_, value) in zip(names, items):
        _put(group, name, value)


def tf_shard_name(k: int, n: int) -> str:
    return f"tf_model-{k:05d}-of-{n:05d}.h5"


def _nbytes(value) -> int:
    array = np.asarray(value)
    return array.size * array.dtype.itemsize


def _blocks(weights: list[tuple[str, Any]], limit: int) -> list[list[tuple[str, Any]]]:
    """v4's greedy split in weight order; a weight larger than the limit gets a shard of its own (v4 would also
    write an empty first shard when the very first weight is too large; we do not)."""
    blocks: list[list[tuple[str, Any]]] = [[]]
    size = 0
    for rel, value in weights:
        n = _nbytes(value)
        if blocks[-1] and size + n > limit:
            blocks.append([])
            size = 0
        blocks[-1].append((rel, value))
        size += n
    return blocks


def write_tf_sharded(folder: str | os.PathLike, model_name: str, weights: Iterable[tuple[str, Any]],
                     max_shard_size: int | str = "10GB") -> list[str]:
    """Write v4's TF shards + ``tf_model.h5.index.json`` into ``folder`` from the model's weights in its weight
    order (``model.weights``, each once). Always shards, even when one would do (v4 then writes a single
    tf_model.h5: use ``write_tf_weights``). Returns the file names written."""
    if not isinstance(model_name, str) or not model_name or "/" in model_name:
        raise ValueError(f"model_name must be one name component such as 'tf_bert_model', got {model_name!r}")
    items = list(weights)
    seen: set[str] = set()
    for rel, _ in items:
        _check_rel(rel)
        if rel in seen:
            raise ValueError(f"weight {rel!r} is given twice; pass each of the model's weights once")
        seen.add(rel)
    if not items:
        raise ValueError("no weights to write")
    return _write_blocks(Path(folder), model_name, _blocks(items, parse_size(max_shard_size)))


def _write_blocks(folder: Path, model_name: str, blocks: list[list[tuple[str, Any]]]) -> list[str]:
    h5py = _h5py()
    names = [tf_shard_name(k + 1, len(blocks)) for k in range(len(blocks))]
    weight_map: dict[str, str] = {}
    total = 0
    for name, block in zip(names, blocks):
        stored = sorted((_full(model_name, rel), value) for rel, value in block)

        def write(tmp: Path, stored=stored) -> None:
            with h5py.File(tmp, "w") as f:
                paths = []
                for full, value in stored:
                    rel_path = full.split("/", 1)[1]  # the model's own component is left out in shards
                    _put(f, rel_path, value)
                    paths.append(rel_path)
                _write_list_attr(f, "layer_names", paths)

        _replace(folder / name, write)
        for full, value in stored:
            weight_map[full] = name
            total += _nbytes(value)
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    text = json.dumps(index, indent=2, sort_keys=True) + "\n"
    _replace(folder / TF_INDEX, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return names + [TF_INDEX]


def write_tf_weights(folder: str | os.PathLike, model_name: str, layers: Layers, *,
                     max_shard_size: int | str = "10GB") -> list[str]:
    """v4's ``save_pretrained`` for the weights: one ``tf_model.h5`` when they fit in ``max_shard_size``, else
    shards + index (weights in first-seen order over ``layers``). Stale TF weight files of the other layout are
    removed. Returns the file names written; the caller makes the whole folder swap atomic if it wants
    (``storage.atomic``)."""
    checked = _checked_layers(model_name, layers)
    order: dict[str, Any] = {}
    for _, items in checked:
        for rel, value in items:
            order.setdefault(rel, value)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    blocks = _blocks(list(order.items()), parse_size(max_shard_size))
    if len(blocks) == 1:
        write_tf_h5(folder / TF_WEIGHTS, model_name, checked)
        written = [TF_WEIGHTS]
    else:
        written = _write_blocks(folder, model_name, blocks)
    for name in os.listdir(folder):
        if (name == TF_WEIGHTS or name == TF_INDEX or _is_tf_shard(name)) and name not in written:
            os.remove(folder / name)
    return written


def _is_tf_shard(name: str) -> bool:
    stem = name[len("tf_model-"):-len(".h5")] if name.startswith("tf_model-") and name.endswith(".h5") else ""
    k, _, n = stem.partition("-of-")
    return len(k) == 5 and len(n) == 5 and k.isdigit() and n.isdigit()
