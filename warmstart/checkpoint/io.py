"""Moving PyTorch checkpoints between memory and disk: `dict[str, Tensor]` <-> weight files in a folder.

This layer knows nothing about models or key names. It reads the four layouts transformers writes
(`model.safetensors`, sharded safetensors with `model.safetensors.index.json`, `pytorch_model.bin`,
sharded `.bin` with `pytorch_model.bin.index.json`; which files, `storage.weights.find_weights` decides),
writes safetensors in exactly the layout transformers reads, and makes every save all-or-nothing
(`storage.atomic`).
"""
from __future__ import annotations

import json
import os
import pickle
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import split_torch_state_dict_into_shards
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..storage.atomic import _inside_atomic_save, atomic_directory, atomic_save, recover_interrupted_save
from ..storage.files import SAFE_INDEX, CheckpointError, CheckpointNotFoundError, is_weights_file
from ..storage.weights import WeightsLocation, check_safetensors_length, find_weights, parse_size

__all__ = [
    "CheckpointError",
    "CheckpointNotFoundError",
    "WeightsLocation",
    "find_weights",
    "load_state_dict",
    "save_state_dict",
    "atomic_save",
    "atomic_directory",
    "recover_interrupted_save",
    "parse_size",
    "is_weights_file",
]

# ----------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------
class _FolderChanged(Exception):
    """The folder was replaced by a concurrent save while we read it; read it again."""


def load_state_dict(
    source: str | os.PathLike | WeightsLocation,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
) -> dict[str, torch.Tensor]:
    """Read every tensor of a checkpoint folder (any layout), a `WeightsLocation`, or one file.

    `dtype` casts floating-point tensors only (integer buffers such as position ids keep theirs).
    """
    device = _check_device(device)
    if dtype is not None and not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch.dtype or None, got {dtype!r}")
    if isinstance(source, WeightsLocation):
        return _read_location(source, device, dtype)
    path = Path(source)
    if path.is_file():
        fmt = "safetensors" if path.suffix == ".safetensors" else "bin"
        return _read_location(WeightsLocation(path.parent, fmt, (path,)), device, dtype)
    # A concurrent save swaps whole folders (never files in place), so a read that saw one folder
    # generation from start to end is consistent; if the folder was swapped meanwhile, read again.
    for _ in range(3):
        try:
            with _same_folder_generation(path):
                return _read_location(find_weights(path), device, dtype)
        except _FolderChanged:
            continue
    raise CheckpointError(f"Checkpoint folder {str(path)!r} kept being replaced while it was read")


class _same_folder_generation:
    """Raise _FolderChanged if `folder` names another directory on exit than on entry.

    Holding a descriptor on the directory keeps its inode allocated, so an equal inode number at
    the end really is the same directory (the number cannot have been recycled meanwhile).
    """

    def __init__(self, folder: Path):
        self.folder, self.fd = folder, None

    def __enter__(self):
        recover_interrupted_save(self.folder)
        try:
            self.fd = os.open(self.folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            self.fd = None  # missing folder (find_weights reports it) or a platform without dir fds
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.fd is None:
            return False
        try:
            before = os.fstat(self.fd)
            try:
                now = os.stat(self.folder)
                changed = (now.st_ino, now.st_dev) != (before.st_ino, before.st_dev)
            except FileNotFoundError:
                changed = True
        finally:
            os.close(self.fd)
        if changed and (exc_type is None or issubclass(exc_type, (OSError, SafetensorError))):
            raise _FolderChanged()
        return False


def _check_device(device: Any) -> torch.device:
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device must be a torch device or a string like 'cpu', got {device!r}") from e


def _read_location(loc: WeightsLocation, device: torch.device, dtype) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    origin: dict[str, Path] = {}
    for path in loc.files:
        shard = _read_safetensors(path, device) if loc.format == "safetensors" else _read_bin(path, device)
        for key, tensor in shard.items():
            if key in state:
                raise CheckpointError(
                    f"Tensor {key!r} is stored twice: in {str(origin[key])!r} and in {str(path)!r}"
                )
            if dtype is not None and tensor.is_floating_point():
                tensor = tensor.to(dtype)
            state[key], origin[key] = tensor, path
    if loc.weight_map is not None:
        absent = [k for k in loc.weight_map if k not in state]
        if absent:
            raise CheckpointError(
                f"Shard index {str(loc.index_file)!r} lists {len(absent)} tensor(s) that no shard "
                f"holds, e.g. {absent[:5]}"
            )
    return state


def _read_safetensors(path: Path, device: torch.device) -> dict[str, torch.Tensor]:
    check_safetensors_length(path)
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            return {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, RuntimeError, ValueError) as e:
        raise CheckpointError(f"Could not read safetensors file {str(path)!r} (corrupt?): {e}") from e


def _read_bin(path: Path, device: torch.device) -> dict[str, torch.Tensor]:
    # weights_only refuses any pickle that would import or call code; mmap keeps zip-format files
    # (the torch>=1.6 default) out of RAM until used. The legacy format cannot be mapped.
    try:
        loaded = torch.load(
            path, map_location=device, weights_only=True, mmap=zipfile.is_zipfile(path)
        )
    except pickle.UnpicklingError as e:
        # torch's message is long; its "WeightsUnpickler error:" part names what was refused.
        detail = " ".join(str(e).partition("WeightsUnpickler error:")[2].split()).partition(". ")[0]
        raise CheckpointError(
            f"Refusing to load {str(path)!r}: torch.load(weights_only=True) rejected it "
            f"({detail or e!r}). It is damaged, or holds Python objects besides tensors, whose "
            f"unpickling could run code; if you trust it, convert it to safetensors first."
        ) from e
    except Exception as e:  # torch reports a damaged file as RuntimeError, EOFError, KeyError, ...
        raise CheckpointError(f"Could not read {str(path)!r} (truncated or corrupt?): {e!r}") from e
    if not isinstance(loaded, Mapping):
        raise CheckpointError(
            f"{str(path)!r} holds a {type(loaded).__name__}, not a flat dict of tensors"
        )
    for key, value in loaded.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            hint = " (a training checkpoint? save its model state_dict alone)" if isinstance(value, Mapping) else ""
            raise CheckpointError(
                f"{str(path)!r} is not a flat dict of tensors: entry {key!r} is a "
                f"{type(value).__name__}{hint}"
            )
    return dict(loaded)


# ----------------------------------------------------------------------------------------------
# Saving
# ----------------------------------------------------------------------------------------------
def _prepare_for_safetensors(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Validate the dict and return tensors safetensors accepts.

    safetensors refuses tensors that share memory (tied weights) and writes only contiguous data,
    so shared or partial views are cloned and strided ones made contiguous. After this every
    tensor owns exactly its storage, so shard sizes are exact and no two tensors alias.
    """
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict must be a mapping of str to Tensor, got {type(state_dict).__name__}")
    if not state_dict:
        raise ValueError("state_dict is empty; refusing to write a checkpoint without tensors")
    seen_storage: set[tuple[str, int]] = set()
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state_dict.items():
        if not isinstance(key, str):
            raise TypeError(f"state_dict keys must be str, got {key!r} ({type(key).__name__})")
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"state_dict[{key!r}] is a {type(tensor).__name__}, not a torch.Tensor")
        if tensor.layout != torch.strided:
            raise TypeError(f"state_dict[{key!r}] has layout {tensor.layout}; only dense tensors can be saved")
        if tensor.device.type == "meta":
            raise ValueError(f"state_dict[{key!r}] is on the meta device (no data to save)")
        tensor = tensor.detach()
        storage = tensor.untyped_storage()
        storage_id = (str(tensor.device), storage.data_ptr())
        owns_storage = tensor.is_contiguous() and tensor.storage_offset() == 0 and (
            tensor.numel() * tensor.element_size() == storage.nbytes()
        )
        if storage_id in seen_storage or not owns_storage:
            tensor = tensor.clone(memory_format=torch.contiguous_format)
        elif tensor.numel():  # empty tensors may all report data_ptr 0; they share nothing
            seen_storage.add(storage_id)
        out[key] = tensor
    return out


def save_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    folder: str | os.PathLike,
    *,
    max_shard_size: int | str = "5GB",
    metadata: Mapping[str, str] | None = None,
    atomic: bool = True,
) -> list[str]:
    """Write `state_dict` as safetensors into `folder`; return the file names written.

    Above `max_shard_size` the tensors go to `model-0000i-of-0000N.safetensors` plus
    `model.safetensors.index.json`, the layout and split transformers uses (tensors in dict order,
    a new shard when the next one would overflow; one bigger tensor gets a shard of its own).
    With `atomic` (default) the folder is replaced all-or-nothing via `atomic_directory`, keeping
    the folder's other files; inside an `atomic_directory` it writes straight into the new folder.
    """
    tensors = _prepare_for_safetensors(state_dict)
    limit = parse_size(max_shard_size)
    meta = {"format": "pt", **(metadata or {})}
    for k, v in meta.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"safetensors metadata must map str to str, got {k!r}: {v!r}")
    if atomic and not _inside_atomic_save(folder):
        with atomic_directory(folder) as tmp:
            return _write_shards(tensors, Path(tmp), limit, meta)
    return _write_shards(tensors, Path(folder), limit, meta)


def _write_shards(tensors: dict[str, torch.Tensor], folder: Path, limit: int, meta: dict) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    split = split_torch_state_dict_into_shards(
        tensors, filename_pattern="model{suffix}.safetensors", max_shard_size=limit
    )
    names = list(split.filename_to_tensors)
    # Only our own layout may remain: a stale index next to a new single file (or old shards next
    # to new ones) would make the folder ambiguous or load the wrong tensors.
    for name in os.listdir(folder):
        if is_weights_file(name) and name not in names:
            os.remove(folder / name)
    for name, keys in split.filename_to_tensors.items():
        _replace_file(folder / name, lambda tmp, keys=keys: save_file(
            {k: tensors[k] for k in keys}, str(tmp), metadata=meta))
    if split.is_sharded:
        index = {"metadata": dict(split.metadata), "weight_map": dict(split.tensor_to_filename)}
        text = json.dumps(index, indent=2, sort_keys=True) + "\n"
        _replace_file(folder / SAFE_INDEX, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        names.append(SAFE_INDEX)
    return names


def _replace_file(path: Path, write: Callable[[Path], Any]) -> None:
    """Write to a side file then rename over `path`: a reader that has `path` memory-mapped keeps
    its old bytes instead of seeing the file truncated under it (which would crash it)."""
    tmp = path.with_name(path.name + ".ws-part")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
