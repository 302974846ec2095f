"""Where a folder keeps its weights: the file layouts transformers writes, found and checked without reading a tensor.

Torch-free: every wing (and the converters) decides which files to read here, then reads them its own way.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .atomic import recover_interrupted_save
from .files import BIN_INDEX, BIN_WEIGHTS, SAFE_INDEX, SAFE_WEIGHTS, CheckpointError, CheckpointNotFoundError

__all__ = ["WeightsLocation", "find_weights", "parse_size", "check_safetensors_length"]

# safetensors refuses headers above 100 MB; anything larger is a corrupt length prefix.
_MAX_HEADER_BYTES = 100_000_000


@dataclass(frozen=True)
class WeightsLocation:
    """Which weight files to read from a folder, decided once by `find_weights`."""

    folder: Path
    format: str  # "safetensors" or "bin"
    files: tuple[Path, ...]  # the single file, or the shards in index order
    index_file: Path | None = None
    weight_map: Mapping[str, str] | None = None  # tensor name -> shard name (sharded only)

    @property
    def is_sharded(self) -> bool:
        return self.index_file is not None


# ----------------------------------------------------------------------------------------------
# Finding the weights
# ----------------------------------------------------------------------------------------------
def find_weights(folder: str | os.PathLike) -> WeightsLocation:
    """Decide which weight files of `folder` to read; safetensors wins over .bin.

    Raises CheckpointNotFoundError when there are none, CheckpointError when the choice is
    ambiguous or an index is malformed, unsafe or names a missing shard.
    """
    folder = Path(folder)
    recover_interrupted_save(folder)
    if not folder.is_dir():
        if folder.exists():
            raise NotADirectoryError(f"Checkpoint path {str(folder)!r} is a file, not a folder")
        raise CheckpointNotFoundError(f"Checkpoint folder {str(folder)!r} does not exist")
    for single, index, fmt in ((SAFE_WEIGHTS, SAFE_INDEX, "safetensors"), (BIN_WEIGHTS, BIN_INDEX, "bin")):
        has_single, has_index = (folder / single).is_file(), (folder / index).is_file()
        if has_single and has_index:
            # Both could be a stale leftover of the other; loading either might be the wrong model.
            raise CheckpointError(
                f"Checkpoint folder {str(folder)!r} holds both {single!r} and the shard index "
                f"{index!r}; refusing to guess which is current. Delete the stale one."
            )
        if has_single:
            return WeightsLocation(folder, fmt, (folder / single,))
        if has_index:
            return _location_from_index(folder, folder / index, fmt)
    try:
        present = sorted(os.listdir(folder))
    except OSError:
        present = []
    raise CheckpointNotFoundError(
        f"No weights found in {str(folder)!r}: looked for {SAFE_WEIGHTS!r}, {SAFE_INDEX!r}, "
        f"{BIN_WEIGHTS!r} and {BIN_INDEX!r}; the folder contains {present or 'nothing'}"
    )


def _location_from_index(folder: Path, index_file: Path, fmt: str) -> WeightsLocation:
    try:
        index = json.loads(index_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"Shard index {str(index_file)!r} is not valid JSON: {e}") from e
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(
            f"Shard index {str(index_file)!r} has no non-empty 'weight_map' object mapping tensor "
            f"names to shard files"
        )
    shards: dict[str, Path] = {}  # insertion order = first appearance in the index
    for key, name in weight_map.items():
        if not isinstance(name, str) or not name:
            raise CheckpointError(
                f"Shard index {str(index_file)!r} maps {key!r} to {name!r}, which is not a file name"
            )
        if name not in shards:
            shards[name] = _safe_shard_path(folder, index_file, key, name)
    missing = [name for name, path in shards.items() if not path.is_file()]
    if missing:
        raise CheckpointError(
            f"Shard index {str(index_file)!r} names shard file(s) missing from the folder: {missing}"
        )
    return WeightsLocation(folder, fmt, tuple(shards.values()), index_file, dict(weight_map))


def _safe_shard_path(folder: Path, index_file: Path, key: str, name: str) -> Path:
    """Resolve an index entry, refusing any that would read outside the checkpoint folder.

    The index is data from whoever made the checkpoint, so its names are untrusted: an absolute
    path, a `..` component or a symlinked sub-folder could make us read arbitrary files.
    A shard that is itself a symlink is allowed when it lands inside the folder or, for the Hugging
    Face cache layout (`snapshots/<rev>/` files link to `../../blobs/`), inside the repo's blobs.
    """
    pure = Path(name)
    if pure.is_absolute() or pure.drive or ".." in pure.parts or "\\" in name:
        raise CheckpointError(
            f"Shard index {str(index_file)!r} maps {key!r} to {name!r}, a path outside the "
            f"checkpoint folder; shard names must be relative paths inside it"
        )
    path = folder / pure
    real_folder = Path(os.path.realpath(folder))
    roots = [real_folder]
    if real_folder.parent.name == "snapshots":
        roots.append(real_folder.parent.parent / "blobs")
    real = Path(os.path.realpath(path))
    if not any(real == root or root in real.parents for root in roots):
        raise CheckpointError(
            f"Shard index {str(index_file)!r} maps {key!r} to {name!r}, which resolves through a "
            f"symlink to {str(real)!r}, outside the checkpoint folder; copy the shard into the folder"
        )
    return path


_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
_SIZE_RE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]+)\s*")


def parse_size(size: int | str) -> int:
    """Bytes from an int or a string like "5GB" (decimal units, as transformers) or "500MiB"."""
    if isinstance(size, bool) or not isinstance(size, (int, str)):
        raise TypeError(f"max_shard_size must be an int or a string like '5GB', got {size!r}")
    if isinstance(size, int):
        value = size
    else:
        m = _SIZE_RE.fullmatch(size)
        if m is None or m.group(2).upper() not in _UNITS:
            raise ValueError(
                f"Cannot parse size {size!r}: expected a number and a unit among "
                f"B, KB, MB, GB, TB, KiB, MiB, GiB, TiB (e.g. '5GB')"
            )
        value = int(float(m.group(1)) * _UNITS[m.group(2).upper()])
    if value <= 0:
        raise ValueError(f"max_shard_size must be positive, got {size!r}")
    return value


def check_safetensors_length(path: Path) -> None:
    """Refuse a file whose size disagrees with its own header: truncation never passes silently.

    Layout: 8-byte little-endian header length N, N bytes of JSON header, then the tensor bytes;
    the largest `data_offsets` end in the header is the size of the tensor bytes.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        prefix = f.read(8)
        n = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
        if n < 0 or n > min(size - 8, _MAX_HEADER_BYTES):
            raise CheckpointError(
                f"Safetensors file {str(path)!r} is truncated or corrupt: {size} bytes cannot hold "
                f"the header its first 8 bytes announce ({n} bytes)"
            )
        raw = f.read(n)
    try:
        header = json.loads(raw)
        end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
        raise CheckpointError(f"Safetensors file {str(path)!r} has a corrupt header: {e!r}") from e
    if size != 8 + n + end:
        raise CheckpointError(
            f"Safetensors file {str(path)!r} is {size} bytes but its header describes {8 + n + end} "
            f"bytes: the file is truncated or corrupt"
        )
