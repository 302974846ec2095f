"""TF1 checkpoints (TensorFlow's tensor bundle, what google-research/bert ships) read with numpy and the standard
library: no TensorFlow, no protobuf package.

A checkpoint ``PREFIX`` is ``PREFIX.index`` plus data shards ``PREFIX.data-0000k-of-0000n``. The index is a
LevelDB-style sorted table (../shared/FORMATS.md): a 48-byte footer pointing at an index block whose entries point
at data blocks; each block is prefix-compressed entries, restart offsets, and a trailer of one compression byte and a
masked CRC-32C. Key ``""`` holds the bundle header (shard count, byte order); every other key is a tensor name whose
value is a BundleEntry protobuf (dtype, shape, shard, offset, size, CRC-32C of the bytes). The handful of protobuf
fields used are decoded here by hand.

Every check names the file and, where there is one, the tensor: a truncated or corrupt index, a block or tensor whose
checksum does not match, a missing shard, a dtype we cannot read, a partitioned (sliced) variable.
"""
from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..storage.files import CheckpointError, CheckpointNotFoundError
from .crc32c import crc32c, unmask_crc32c

__all__ = ["TF1CheckpointError", "TensorEntry", "TF1Checkpoint", "checkpoint_prefix", "is_tf1_checkpoint",
           "read_tf1_checkpoint"]

_MAGIC = 0xDB4775248B80FB57
_FOOTER = 48
_BLOCK_TRAILER = 5
_STRING = 7
# TF DataType enum -> numpy (little-endian; a big-endian bundle is byte-swapped on read).
_DTYPES = {1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 9: "int64", 10: "bool",
           17: "uint16", 19: "float16", 22: "uint32", 23: "uint64"}
_BFLOAT16 = 14
_DTYPE_NAMES = {7: "string", 8: "complex64", 18: "complex128", 20: "resource", 21: "variant", 11: "qint8",
                12: "quint8", 13: "qint32", 15: "qint16", 16: "quint16"}


class TF1CheckpointError(CheckpointError):
    """A TF1 checkpoint is truncated, corrupt, incomplete or holds what we cannot read."""


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: int  # TF's DataType enum value
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int
    crc: int | None  # masked CRC-32C of the bytes, as stored; None when the writer stored none
    sliced: bool = False

    @property
    def dtype_name(self) -> str:
        if self.dtype == _BFLOAT16:
            return "bfloat16"
        return _DTYPES.get(self.dtype) or _DTYPE_NAMES.get(self.dtype) or f"DataType {self.dtype}"


# ---- finding a checkpoint --------------------------------------------------------------------------------------
def checkpoint_prefix(path: str | os.PathLike) -> Path:
    """The bundle prefix named by ``path``: ``model.ckpt.index``, a ``model.ckpt.data-...`` shard, the prefix
    ``model.ckpt`` itself, or a folder holding one checkpoint (the one its ``checkpoint`` file names, else the only
    ``*.index``)."""
    p = Path(path)
    if p.is_dir():
        return _prefix_in_folder(p)
    name = p.name
    if name.endswith(".index"):
        prefix = p.with_name(name[: -len(".index")])
    elif ".data-" in name:
        prefix = p.with_name(name.split(".data-")[0])
    else:
        prefix = p
    if not prefix.with_name(prefix.name + ".index").is_file():
        raise CheckpointNotFoundError(f"no TF checkpoint at {str(path)!r}: {str(prefix) + '.index'!r} does not exist")
    return prefix


def _prefix_in_folder(folder: Path) -> Path:
    state = folder / "checkpoint"  # TF's text file: model_checkpoint_path: "model.ckpt-1000"
    stale = None  # what the state file names when that checkpoint is gone (a copied or pruned folder)
    if state.is_file():
        for line in state.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model_checkpoint_path":
                named = Path(value.strip().strip('"'))
                # TF writes the absolute path of the machine that trained, so a folder copied elsewhere names a path
                # that is not there: the checkpoint of that name in this folder is the one meant.
                for prefix in (named if named.is_absolute() else folder / named, folder / named.name):
                    if prefix.with_name(prefix.name + ".index").is_file():
                        return prefix
                stale = str(named)
    indexes = sorted(folder.glob("*.index"))
    if len(indexes) == 1:
        return indexes[0].with_name(indexes[0].name[: -len(".index")])
    if not indexes:
        raise CheckpointNotFoundError(f"no TF checkpoint in {str(folder)!r}: no *.index file")
    why = f"its 'checkpoint' file names {stale!r}, which is not there" if stale else "no 'checkpoint' file names one"
    raise TF1CheckpointError(f"{str(folder)!r} holds several TF checkpoints ({[i.name for i in indexes]}) and {why}; "
                             "pass the .index file to load")


def is_tf1_checkpoint(path: str | os.PathLike) -> bool:
    """True when ``path`` names a TF1 checkpoint (a file of one, its prefix, or a folder holding exactly one)."""
    try:
        checkpoint_prefix(path)
    except CheckpointError:
        return False
    return True


# ---- the index table -------------------------------------------------------------------------------------------
def _varint(buf: bytes, pos: int, where: str) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise TF1CheckpointError(f"{where}: a number runs past the end of its record (truncated or corrupt)")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise TF1CheckpointError(f"{where}: a number longer than 10 bytes (corrupt)")


def _read_block(data: bytes, offset: int, size: int, where: str) -> bytes:
    end = offset + size
    if offset < 0 or end + _BLOCK_TRAILER > len(data):
        raise TF1CheckpointError(f"{where}: a block at bytes {offset}..{end} runs past the end of the file "
                                 f"({len(data)} bytes): the file is truncated")
    block, kind = data[offset:end], data[end]
    (stored,) = struct.unpack_from("<I", data, end + 1)
    if unmask_crc32c(stored) != crc32c(data[offset:end + 1]):
        raise TF1CheckpointError(f"{where}: the block at byte {offset} fails its CRC-32C check: the file is corrupt")
    if kind != 0:
        raise TF1CheckpointError(f"{where}: the block at byte {offset} is compressed (type {kind}); TF bundles are "
                                 "written uncompressed, so this is not a checkpoint index we can read")
    return block


def _block_entries(block: bytes, where: str) -> Iterable[tuple[bytes, bytes]]:
    if len(block) < 4:
        raise TF1CheckpointError(f"{where}: a block of {len(block)} bytes is too short (corrupt)")
    (restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    limit = len(block) - 4 - 4 * restarts
    if limit < 0:
        raise TF1CheckpointError(f"{where}: a block claims {restarts} restart points, more than it can hold (corrupt)")
    pos, key = 0, b""
    while pos < limit:
        shared, pos = _varint(block, pos, where)
        unshared, pos = _varint(block, pos, where)
        length, pos = _varint(block, pos, where)
        if shared > len(key) or pos + unshared + length > limit:
            raise TF1CheckpointError(f"{where}: an entry runs past its block (corrupt)")
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        yield key, block[pos:pos + length]
        pos += length


def _table_entries(data: bytes, where: str) -> Iterable[tuple[bytes, bytes]]:
    if len(data) < _FOOTER:
        raise TF1CheckpointError(f"{where}: {len(data)} bytes is shorter than a table footer: the file is truncated "
                                 "or not a TF checkpoint index")
    footer = data[-_FOOTER:]
    (magic,) = struct.unpack_from("<Q", footer, _FOOTER - 8)
    if magic != _MAGIC:
        raise TF1CheckpointError(f"{where}: no table magic number at the end: the file is truncated or not a TF "
                                 "checkpoint index")
    _, pos = _varint(footer, 0, where)  # the metaindex block: empty in bundles
    _, pos = _varint(footer, pos, where)
    index_offset, pos = _varint(footer, pos, where)
    index_size, _ = _varint(footer, pos, where)
    for _, handle in _block_entries(_read_block(data, index_offset, index_size, where), where):
        offset, p = _varint(handle, 0, where)
        size, _ = _varint(handle, p, where)
        yield from _block_entries(_read_block(data, offset, size, where), where)


# ---- the two protobuf messages ---------------------------------------------------------------------------------
def _fields(buf: bytes, where: str) -> Iterable[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of a protobuf message: varints as ints, fixed32 as ints, bytes as bytes."""
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos, where)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos, where)
        elif wire == 1:
            if pos + 8 > len(buf):
                raise TF1CheckpointError(f"{where}: a record is cut short (corrupt)")
            (value,), pos = struct.unpack_from("<Q", buf, pos), pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos, where)
            if pos + length > len(buf):
                raise TF1CheckpointError(f"{where}: a record is cut short (corrupt)")
            value, pos = buf[pos:pos + length], pos + length
        elif wire == 5:
            if pos + 4 > len(buf):
                raise TF1CheckpointError(f"{where}: a record is cut short (corrupt)")
            (value,), pos = struct.unpack_from("<I", buf, pos), pos + 4
        else:
            raise TF1CheckpointError(f"{where}: a record field has wire type {wire} (corrupt)")
        yield number, wire, value


def _shape(buf: bytes, where: str) -> tuple[int, ...]:
    dims = []
    for number, _, value in _fields(buf, where):
        if number == 2:  # TensorShapeProto.dim
            size = next((v for n, _, v in _fields(value, where) if n == 1), 0)
            dims.append(size - (1 << 64) if size >= 1 << 63 else size)
        elif number == 3 and value:
            raise TF1CheckpointError(f"{where}: the tensor's shape is of unknown rank")
    return tuple(dims)


def _entry(name: str, value: bytes, where: str) -> TensorEntry:
    got = {"dtype": 0, "shape": (), "shard": 0, "offset": 0, "size": 0, "crc": None, "sliced": False}
    for number, _, v in _fields(value, f"{where}, tensor {name!r}"):
        if number == 1:
            got["dtype"] = v
        elif number == 2:
            got["shape"] = _shape(v, f"{where}, tensor {name!r}")
        elif number in (3, 4, 5):
            got[{3: "shard", 4: "offset", 5: "size"}[number]] = v
        elif number == 6:
            got["crc"] = v
        elif number == 7:
            got["sliced"] = True
    return TensorEntry(name=name, **got)


# ---- the checkpoint --------------------------------------------------------------------------------------------
class TF1Checkpoint:
    """The index of one TF1 checkpoint, read and checked when opened; tensors are read on request."""

    def __init__(self, path: str | os.PathLike):
        self.prefix = checkpoint_prefix(path)
        self.index_file = self.prefix.with_name(self.prefix.name + ".index")
        where = str(self.index_file)
        data = self.index_file.read_bytes()
        self.num_shards, self.big_endian = 1, False
        self.entries: dict[str, TensorEntry] = {}
        header_seen = False
        for key, value in _table_entries(data, where):
            if key == b"":
                header_seen = True
                for number, _, v in _fields(value, f"{where}, bundle header"):
                    if number == 1:
                        self.num_shards = v
                    elif number == 2:
                        self.big_endian = v == 1
                continue
            if key[:1] == b"\x00":
                # One slice of a partitioned variable (TF's EncodeTensorNameSlice: NUL, name, the slice in ordered
                # code, not UTF-8). Never a tensor of its own: its variable's entry is marked sliced and read refuses
                # it; kept here, slices would show up as tensors with garbled names that can even collide.
                continue
            name = key.decode("utf-8", errors="replace")
            self.entries[name] = _entry(name, value, where)
        if not header_seen:
            raise TF1CheckpointError(f"{where}: no bundle header: a LevelDB table, but not a TF checkpoint index")
        for entry in self.entries.values():
            if not 0 <= entry.shard < max(self.num_shards, 1):
                raise TF1CheckpointError(f"{where}, tensor {entry.name!r}: stored in shard {entry.shard}, but the "
                                         f"checkpoint has {self.num_shards} shard(s) (corrupt index)")

    def shard_file(self, shard: int) -> Path:
        return self.prefix.with_name(f"{self.prefix.name}.data-{shard:05d}-of-{self.num_shards:05d}")

    def check_shards(self) -> None:
        """Every data shard the index uses is there and long enough for its tensors."""
        ends: dict[int, tuple[int, str]] = {}
        for e in self.entries.values():
            if e.offset + e.size > ends.get(e.shard, (-1, ""))[0]:
                ends[e.shard] = (e.offset + e.size, e.name)
        for shard, (end, name) in sorted(ends.items()):
            path = self.shard_file(shard)
            if not path.is_file():
                raise TF1CheckpointError(f"{str(path)!r} is missing: tensor {name!r} (and maybe more) of "
                                         f"{str(self.index_file)!r} is stored there")
            if path.stat().st_size < end:
                raise TF1CheckpointError(f"{str(path)!r} is truncated: {path.stat().st_size} bytes, but tensor "
                                         f"{name!r} ends at byte {end}")

    def numpy_dtype(self, entry: TensorEntry) -> np.dtype:
        if entry.dtype == _BFLOAT16:
            try:
                import ml_dtypes
            except ImportError as e:
                raise TF1CheckpointError(f"{str(self.index_file)!r}, tensor {entry.name!r}: bfloat16 needs "
                                         "ml_dtypes (pip install ml_dtypes)") from e
            dtype = np.dtype(ml_dtypes.bfloat16)
        elif entry.dtype in _DTYPES:
            dtype = np.dtype(_DTYPES[entry.dtype])
        else:
            raise TF1CheckpointError(f"{str(self.index_file)!r}, tensor {entry.name!r}: dtype {entry.dtype_name} is "
                                     "not a numeric type we read")
        return dtype.newbyteorder(">") if self.big_endian and dtype.itemsize > 1 else dtype

    def read(self, name: str) -> np.ndarray:
        if name not in self.entries:
            raise KeyError(f"{str(self.index_file)!r} holds no tensor {name!r}")
        entry = self.entries[name]
        where = f"{str(self.index_file)!r}, tensor {name!r}"
        if entry.sliced:
            raise TF1CheckpointError(f"{where} is a partitioned variable saved in slices, which we do not read")
        dtype = self.numpy_dtype(entry)
        count = int(np.prod(entry.shape, dtype=np.int64))
        if count * dtype.itemsize != entry.size:
            raise TF1CheckpointError(f"{where}: {entry.size} bytes stored for shape {entry.shape} {entry.dtype_name} "
                                     f"({count * dtype.itemsize} expected): corrupt index")
        path = self.shard_file(entry.shard)
        if not path.is_file():
            raise TF1CheckpointError(f"{str(path)!r} is missing: {where} is stored there")
        with open(path, "rb") as f:
            f.seek(entry.offset)
            raw = f.read(entry.size)
        if len(raw) != entry.size:
            raise TF1CheckpointError(f"{str(path)!r} is truncated: {where} needs bytes {entry.offset}.."
                                     f"{entry.offset + entry.size}, the file has {entry.offset + len(raw)}")
        if entry.crc is not None and crc32c(raw) != unmask_crc32c(entry.crc):
            raise TF1CheckpointError(f"{where}: the bytes in {str(path)!r} fail their CRC-32C check: the data file "
                                     "is corrupt")
        array = np.frombuffer(raw, dtype=dtype).reshape(entry.shape)
        return array.astype(dtype.newbyteorder("<")) if dtype.byteorder == ">" else array.copy()


def read_tf1_checkpoint(path: str | os.PathLike, *, keep: Callable[[str], bool] | None = None,
                        progress: bool = False) -> tuple[dict[str, np.ndarray], list[str]]:
    """(arrays by name, names left out): the numeric tensors ``keep`` accepts (all by default). String tensors
    (e.g. a TF2 object graph) are left out, not an error: they are never weights."""
    ckpt = TF1Checkpoint(path)
    ckpt.check_shards()
    wanted, left = [], []
    for name, entry in ckpt.entries.items():
        (wanted if entry.dtype != _STRING and (keep is None or keep(name)) else left).append(name)
    total = sum(ckpt.entries[n].size for n in wanted)
    bar = None
    if progress and total:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, unit="B", unit_scale=True, desc=f"reading {ckpt.prefix.name}")
    arrays = {}
    try:
        for name in wanted:
            arrays[name] = ckpt.read(name)
            if bar is not None:
                bar.update(ckpt.entries[name].size)
    finally:
        if bar is not None:
            bar.close()
    return arrays, left
