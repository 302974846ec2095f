"""Writing TF1 checkpoints (the tensor bundle ``tf1_bundle`` reads) with numpy and the standard library.

For tools that still take google-research/bert checkpoints (its run_classifier.py / run_squad.py, TF1 serving
code): ``save_tf1_checkpoint(model, prefix)`` writes a PyTorch model under google's names, one data shard and its
index, which TensorFlow's own ``tf.train.load_checkpoint`` reads (tests/checkpoint/test_tf1_save.py checks it).

The index is the sorted table TF writes: the bundle header under key ``""``, then one BundleEntry per tensor, in
prefix-compressed blocks of about 4 KB with a restart point every 16 keys, an index block pointing at them, an empty
metaindex block and the 48-byte footer. The data shard is written first and the index last, each to a temporary
name renamed into place, so a reader never sees an index whose data is not all there.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from .crc32c import masked_crc32c
from .keymaps import (TF1_BACKBONE, TF1_EMBEDDING_SUFFIX, TF1_HEAD_NAMES, TF1_NORM_SCOPE, TF1_OUTPUT_LAYERS,
                      TF1_TIED_OUTPUTS)
from .tf1_bundle import _BFLOAT16, _DTYPES, _FOOTER, _MAGIC

__all__ = ["write_tf1_checkpoint", "pt_to_tf1", "save_tf1_checkpoint"]

_BLOCK_SIZE = 4096
_RESTART_INTERVAL = 16
_TF_DTYPE = {np.dtype(name): code for code, name in _DTYPES.items()}
_VERSION_PRODUCER = 1  # TF's bundle format version (kTensorBundleVersion)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_varint(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _field_bytes(number: int, value: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _dtype_code(name: str, array: np.ndarray) -> int:
    if array.dtype.name == "bfloat16":
        return _BFLOAT16
    code = _TF_DTYPE.get(array.dtype.newbyteorder("=") if array.dtype.byteorder == ">" else array.dtype)
    if code is None:
        raise TypeError(f"tensor {name!r} has dtype {array.dtype}, which a TF checkpoint cannot hold here "
                        f"(numeric dtypes only)")
    return code


def _entry(code: int, shape: tuple[int, ...], offset: int, size: int, crc: int) -> bytes:
    dims = b"".join(_field_bytes(2, _field_varint(1, d)) for d in shape)
    out = _field_varint(1, code) + _field_bytes(2, dims)
    if offset:
        out += _field_varint(4, offset)
    if size:
        out += _field_varint(5, size)
    return out + _varint(6 << 3 | 5) + struct.pack("<I", crc)


class _BlockBuilder:
    def __init__(self, interval: int):
        self.interval, self.buf, self.restarts, self.count, self.last = interval, bytearray(), [0], 0, b""

    def add(self, key: bytes, value: bytes) -> None:
        shared = 0
        if self.count % self.interval:
            limit = min(len(key), len(self.last))
            while shared < limit and key[shared] == self.last[shared]:
                shared += 1
        elif self.count:
            self.restarts.append(len(self.buf))
        self.buf += _varint(shared) + _varint(len(key) - shared) + _varint(len(value)) + key[shared:] + value
        self.last, self.count = key, self.count + 1

    def finish(self) -> bytes:
        return bytes(self.buf) + b"".join(struct.pack("<I", r) for r in self.restarts) + struct.pack(
            "<I", len(self.restarts))

    def size(self) -> int:
        return len(self.buf) + 4 * len(self.restarts) + 4


def _table(entries: list[tuple[bytes, bytes]]) -> bytes:
    out = bytearray()

    def put(block: bytes) -> bytes:
        handle = _varint(len(out)) + _varint(len(block))
        out.extend(block + b"\x00" + struct.pack("<I", masked_crc32c(block + b"\x00")))
        return handle

    index = _BlockBuilder(1)
    block = _BlockBuilder(_RESTART_INTERVAL)
    for key, value in entries:
        block.add(key, value)
        if block.size() >= _BLOCK_SIZE:
            index.add(block.last, put(block.finish()))
            block = _BlockBuilder(_RESTART_INTERVAL)
    if block.count:
        index.add(block.last, put(block.finish()))
    meta = put(_BlockBuilder(_RESTART_INTERVAL).finish())
    handles = meta + put(index.finish())
    footer = handles + b"\x00" * (_FOOTER - 8 - len(handles)) + struct.pack("<Q", _MAGIC)
    return bytes(out + footer)


def write_tf1_checkpoint(prefix: str | os.PathLike, arrays: dict[str, np.ndarray]) -> list[Path]:
    """Write ``arrays`` (name -> numpy array) as the TF1 checkpoint ``prefix`` (``.index`` + one data shard);
    returns the two files."""
    prefix = Path(prefix)
    if not arrays:
        raise ValueError("a TF checkpoint needs at least one tensor")
    for name in arrays:
        if not isinstance(name, str) or not name:
            raise ValueError(f"tensor names must be non-empty strings, got {name!r}")
    prefix.parent.mkdir(parents=True, exist_ok=True)
    data_file = prefix.with_name(f"{prefix.name}.data-00000-of-00001")
    index_file = prefix.with_name(f"{prefix.name}.index")
    entries, offset = [], 0
    tmp_data = data_file.with_name(data_file.name + ".tmp")
    with open(tmp_data, "wb") as f:
        for name in sorted(arrays, key=lambda n: n.encode()):  # the table's byte order
            array = np.asarray(arrays[name])  # tobytes() is C order (ascontiguousarray would make scalars 1-D)
            if array.dtype.byteorder == ">":
                array = array.astype(array.dtype.newbyteorder("<"))
            code = _dtype_code(name, array)
            raw = array.tobytes()
            f.write(raw)
            entries.append((name.encode(), _entry(code, array.shape, offset, len(raw), masked_crc32c(raw))))
            offset += len(raw)
        f.flush()
        os.fsync(f.fileno())
    header = _field_varint(1, 1) + _field_bytes(3, _field_varint(1, _VERSION_PRODUCER))
    tmp_index = index_file.with_name(index_file.name + ".tmp")
    tmp_index.write_bytes(_table([(b"", header), *entries]))
    os.replace(tmp_data, data_file)
    os.replace(tmp_index, index_file)
    return [index_file, data_file]


# ---- names -----------------------------------------------------------------------------------------------------
def pt_to_tf1(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A BERT model's transformers state dict (a head model's, or a bare BertModel's) -> google-research's names:
    the inverse of ``tf1_layout.tf1_name_to_pt`` over the same tables. Tied output projections are left out (google's
    MLM head multiplies by the embedding table), as are buffers."""
    heads = {pt: tf for tf, pt in TF1_HEAD_NAMES.items()}
    out: dict[str, np.ndarray] = {}
    for key, value in state.items():
        array = np.asarray(value)
        if key in TF1_TIED_OUTPUTS or key.endswith(("position_ids", "token_type_ids")):
            continue
        if key in heads:
            out[heads[key]] = array
            continue
        parts = key.split(".")
        if parts[0] != TF1_BACKBONE and not key.startswith("cls."):
            parts = [TF1_BACKBONE, *parts]  # a bare BertModel's keys
        path, leaf = [], parts[-1]
        for part in parts[:-1]:
            if part.isdigit() and path:
                path[-1] = f"{path[-1]}_{part}"  # layer.3 -> layer_3
            else:
                path.append(part)
        if "/".join(path) in TF1_OUTPUT_LAYERS:
            name = "/".join([*path, "output_weights" if leaf == "weight" else "output_bias"])
        elif path[-1].endswith(TF1_EMBEDDING_SUFFIX) and leaf == "weight":
            name = "/".join(path)
        elif path[-1] == TF1_NORM_SCOPE:
            name = "/".join([*path, "gamma" if leaf == "weight" else "beta"])
        elif leaf == "weight" and array.ndim == 2:
            name, array = "/".join([*path, "kernel"]), np.ascontiguousarray(array.T)
        else:
            name = "/".join([*path, leaf])
        if name in out:
            raise ValueError(f"{key!r} and another weight both map to the TF1 name {name!r}")
        out[name] = array
    return out


def save_tf1_checkpoint(model, prefix: str | os.PathLike) -> list[Path]:
    """Write a PyTorch BERT model (any head) as google-research would have saved it: ``PREFIX.index`` and
    ``PREFIX.data-00000-of-00001``, plus its ``bert_config.json`` beside them. Returns the files written."""
    import json

    from .pretrained import export_state_dict

    if getattr(model, "keymap_name", None) != "bert":
        raise TypeError(f"save_tf1_checkpoint writes BERT models (google-research's layout), not "
                        f"{type(model).__name__}")
    state = {k: v.detach().float().cpu().numpy() for k, v in export_state_dict(model).items()}
    files = write_tf1_checkpoint(prefix, pt_to_tf1(state))
    config = {k: v for k, v in model.config.to_dict().items() if k in _GOOGLE_CONFIG_FIELDS}
    config_file = Path(prefix).with_name("bert_config.json")
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return [*files, config_file]


# The fields of google-research's bert_config.json.
_GOOGLE_CONFIG_FIELDS = ("attention_probs_dropout_prob", "hidden_act", "hidden_dropout_prob", "hidden_size",
                         "initializer_range", "intermediate_size", "max_position_embeddings", "num_attention_heads",
                         "num_hidden_layers", "type_vocab_size", "vocab_size")
