"""tf1_bundle: TF1 checkpoints TensorFlow itself wrote (SaveV2 / MergeV2Checkpoints, once per module) read back
with numpy alone, and every kind of damage reported with the file and, where there is one, the tensor."""
import os
import shutil
from types import SimpleNamespace

import numpy as np
import pytest

from warmstart.checkpoint.crc32c import masked_crc32c
from warmstart.checkpoint.tf1_bundle import (
    TF1Checkpoint,
    TF1CheckpointError,
    checkpoint_prefix,
    is_tf1_checkpoint,
    read_tf1_checkpoint,
)
from warmstart.storage.files import CheckpointError, CheckpointNotFoundError

ml_dtypes = pytest.importorskip("ml_dtypes")


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    special = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-40, -3.5, 65504.0], np.float32)
    return {
        "bert/embeddings/word_embeddings": rng.standard_normal((7, 5)).astype(np.float32),
        "bert/encoder/layer_0/attention/self/query/kernel": rng.standard_normal((5, 5)).astype(np.float32),
        "bert/encoder/layer_0/attention/self/query/kernel/adam_m": rng.standard_normal((5, 5)).astype(np.float32),
        "bert/encoder/layer_10/output/LayerNorm/gamma": rng.standard_normal(5).astype(np.float32),
        "f32/special": special,
        "f64": rng.standard_normal((3, 2)),
        "f16": np.concatenate([special.astype(np.float16), rng.standard_normal(5).astype(np.float16)]),
        "bf16": np.concatenate([special, rng.standard_normal(9).astype(np.float32)]).astype(ml_dtypes.bfloat16),
        "i32": rng.integers(-2**31, 2**31, (2, 3), dtype=np.int32),
        "i64": rng.integers(-2**63, 2**63, 4, dtype=np.int64),
        "i16": rng.integers(-2**15, 2**15, 3, dtype=np.int16),
        "i8": np.array([-128, -1, 0, 1, 127], np.int8),
        "u8": np.array([0, 1, 200, 255], np.uint8),
        "u16": np.array([0, 65535], np.uint16),
        "u32": np.array([0, 2**32 - 1], np.uint32),
        "u64": np.array([0, 2**64 - 1], np.uint64),
        "bool": np.array([[True, False, True]]),
        "global_step": np.array(1000, np.int64),
        "scalar/f32": np.array(-2.5, np.float32),
        "empty/f32": np.zeros((0, 3), np.float32),
        "empty/i64": np.zeros((4, 0, 2), np.int64),
        "big": rng.standard_normal((1001, 769)).astype(np.float32),  # 3 MB, not a whole number of crc lanes
        "unicode/\u00fcber": np.array([1, 2], np.int32),
    }


ARRAYS = _arrays()
SMALL = {k: v for k, v in ARRAYS.items() if k != "big"}


def _copy(prefix, folder, name=None):
    """The checkpoint's files copied into ``folder`` (renamed to prefix ``name``); the new prefix."""
    folder.mkdir(parents=True, exist_ok=True)
    name = name or prefix.name
    for f in prefix.parent.glob(prefix.name + ".*"):
        shutil.copy(f, folder / (name + f.name[len(prefix.name):]))
    return folder / name


@pytest.fixture(scope="module")
def ck(tmp_path_factory):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    tf = pytest.importorskip("tensorflow")
    from tf1_writer import write_tf1

    root = tmp_path_factory.mktemp("tf1")
    out = SimpleNamespace(root=root)
    out.full = root / "full" / "bert_model.ckpt"
    out.full.parent.mkdir()
    write_tf1(str(out.full), {**ARRAYS, "object_graph": np.array([b"not", b"weights"])})
    out.small = root / "small" / "model.ckpt"
    out.small.parent.mkdir()
    write_tf1(str(out.small), SMALL)
    for n in (2, 3):
        setattr(out, f"shards{n}", root / f"shards{n}" / "model.ckpt")
        getattr(out, f"shards{n}").parent.mkdir()
        write_tf1(str(getattr(out, f"shards{n}")), SMALL, shards=n)
    out.sliced = root / "sliced" / "model.ckpt"
    out.sliced.parent.mkdir()
    tf.raw_ops.SaveV2(prefix=str(out.sliced), tensor_names=["bert/w", "bert/w", "plain"],  # a partitioned variable
                      shape_and_slices=["4 2 0,2:-", "4 2 2,2:-", ""],
                      tensors=[tf.ones((2, 2)), tf.zeros((2, 2)), tf.constant(np.arange(3.0))])
    out.complex = root / "complex" / "model.ckpt"
    out.complex.parent.mkdir()
    write_tf1(str(out.complex), {"a/real": np.ones(3, np.float32), "b/rotary": np.array([1 + 2j, 3j], np.complex64)})
    # Names that share little prefix and an index past TF's 256 KiB table block: several data blocks.
    out.many_names = [f"{i * 2654435761 % 2**32:08x}/encoder/layer_{i}/attention/self/query/kernel/adam_m"
                      for i in range(4000)]
    out.many = root / "many" / "model.ckpt"
    out.many.parent.mkdir()
    write_tf1(str(out.many), {n: np.array(i, np.int32) for i, n in enumerate(out.many_names)})
    return out


def _same(got: np.ndarray, want: np.ndarray):
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()  # bit for bit: NaN, -0.0 and denormals included


# ---- reading what TensorFlow wrote ------------------------------------------------------------------------------
def test_every_dtype_reads_back_bit_for_bit(ck):
    arrays, left = read_tf1_checkpoint(ck.full)
    assert left == ["object_graph"]  # a string tensor is never a weight: left out, not an error
    assert sorted(arrays) == sorted(ARRAYS)
    for name, want in ARRAYS.items():
        _same(arrays[name], want)
        assert arrays[name].flags.writeable and arrays[name].flags.owndata


def test_entries_carry_what_tensorflow_recorded(ck):
    ckpt = TF1Checkpoint(ck.full.with_name("bert_model.ckpt.index"))
    assert ckpt.num_shards == 1 and not ckpt.big_endian
    assert list(ckpt.entries) == sorted(ckpt.entries, key=lambda n: n.encode())  # the table's order
    for name, want in ARRAYS.items():
        e = ckpt.entries[name]
        assert (e.shape, e.size, e.shard, e.sliced) == (want.shape, want.nbytes, 0, False)
        assert e.crc == masked_crc32c(want.tobytes())  # TF's own checksum, big tensor (the lane path) included
    assert ckpt.entries["bf16"].dtype_name == "bfloat16" and ckpt.entries["object_graph"].dtype_name == "string"
    with pytest.raises(TF1CheckpointError, match="string"):
        ckpt.read("object_graph")


def test_keep_leaves_names_out(ck):
    arrays, left = read_tf1_checkpoint(ck.full, keep=lambda n: n.startswith("bert/"))
    assert sorted(arrays) == sorted(n for n in ARRAYS if n.startswith("bert/"))
    assert sorted(left) == sorted([n for n in ARRAYS if not n.startswith("bert/")] + ["object_graph"])
    assert read_tf1_checkpoint(ck.full, keep=lambda n: False)[0] == {}


def test_progress_bar(ck):
    arrays, _ = read_tf1_checkpoint(ck.small, progress=True)
    assert sorted(arrays) == sorted(SMALL)


@pytest.mark.parametrize("n", [2, 3])
def test_sharded_checkpoints_merged_by_tensorflow(ck, n):
    prefix = getattr(ck, f"shards{n}")
    ckpt = TF1Checkpoint(prefix)
    assert ckpt.num_shards == n
    assert {e.shard for e in ckpt.entries.values()} == set(range(n))
    for k in range(n):
        assert (prefix.parent / f"model.ckpt.data-{k:05d}-of-{n:05d}").is_file()
    arrays, left = read_tf1_checkpoint(prefix.parent / f"model.ckpt.data-{n - 1:05d}-of-{n:05d}")
    assert left == [] and sorted(arrays) == sorted(SMALL)
    for name, want in SMALL.items():
        _same(arrays[name], want)


def test_an_index_of_several_blocks(ck):
    ckpt = TF1Checkpoint(ck.many)
    assert ckpt.index_file.stat().st_size > 256 * 1024  # past one TF table block
    assert sorted(ckpt.entries) == sorted(ck.many_names)
    for i in (0, 1, 3999):
        assert ckpt.read(ck.many_names[i]) == i


# ---- finding the checkpoint ---------------------------------------------------------------------------------------
def test_checkpoint_prefix_forms(ck, tmp_path):
    p = ck.full
    for given in (p, str(p), p.with_name(p.name + ".index"), p.with_name(p.name + ".data-00000-of-00001"), p.parent):
        assert checkpoint_prefix(given) == p, given
        assert is_tf1_checkpoint(given)
    q = ck.shards3
    assert checkpoint_prefix(q.with_name(q.name + ".data-00001-of-00003")) == q
    (tmp_path / "config.json").write_text("{}")
    for absent in (tmp_path / "nothing.ckpt", tmp_path / "nothing.ckpt.index", tmp_path, tmp_path / "config.json"):
        with pytest.raises(CheckpointNotFoundError) as e:
            checkpoint_prefix(absent)
        assert str(absent) in str(e.value)
        assert not is_tf1_checkpoint(absent)


def test_a_folder_of_two_checkpoints(ck, tmp_path):
    import tensorflow as tf

    one = _copy(ck.small, tmp_path, "model.ckpt-1000")
    two = _copy(ck.small, tmp_path, "model.ckpt-2000")
    with pytest.raises(TF1CheckpointError) as e:
        checkpoint_prefix(tmp_path)
    assert "model.ckpt-1000.index" in str(e.value) and "model.ckpt-2000.index" in str(e.value)
    assert str(tmp_path) in str(e.value)
    assert not is_tf1_checkpoint(tmp_path)
    # TF's own state file, with the relative names TF writes and with absolute ones.
    tf.compat.v1.train.update_checkpoint_state(str(tmp_path), one.name, all_model_checkpoint_paths=[one.name, two.name])
    assert 'model_checkpoint_path: "model.ckpt-1000"' in (tmp_path / "checkpoint").read_text()
    assert checkpoint_prefix(tmp_path) == one
    tf.compat.v1.train.update_checkpoint_state(str(tmp_path), str(two), all_model_checkpoint_paths=[str(one), str(two)])
    assert checkpoint_prefix(tmp_path) == two
    assert sorted(read_tf1_checkpoint(tmp_path)[0]) == sorted(SMALL)
    # The absolute path of the machine that trained, the folder since copied here.
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "/home/trainer/out/model.ckpt-1000"\n'
                                         'all_model_checkpoint_paths: "/home/trainer/out/model.ckpt-1000"\n')
    assert checkpoint_prefix(tmp_path) == one
    # A state file naming a checkpoint that is gone settles nothing.
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-3000"\n')
    with pytest.raises(TF1CheckpointError) as e:
        checkpoint_prefix(tmp_path)
    assert "model.ckpt-3000" in str(e.value) and "model.ckpt-1000.index" in str(e.value)


# ---- damage -------------------------------------------------------------------------------------------------------
def _index(prefix):
    return prefix.with_name(prefix.name + ".index")


def _error(path, *words, kind=TF1CheckpointError):
    """The error reading ``path``; every one of ``words`` appears in its message."""
    with pytest.raises(kind) as e:
        read_tf1_checkpoint(path)
    for word in words:
        assert str(word) in str(e.value), (word, str(e.value))
    return str(e.value)


def test_truncated_index_at_every_length(ck, tmp_path):
    prefix = _copy(ck.small, tmp_path)
    index = _index(prefix)
    data = index.read_bytes()
    # Inside the footer, the index block and its trailer, the data block; empty.
    for cut in sorted({*range(len(data) - 80, len(data)), *range(0, len(data), 7)}):
        index.write_bytes(data[:cut])
        message = _error(prefix, index)
        assert "truncated" in message, (cut, message)


@pytest.mark.parametrize("junk", [np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
                                  b'{"hidden_size": 768, "num_hidden_layers": 12, "vocab_size": 30522}\n',
                                  b"{}"], ids=["random", "json", "short"])
def test_an_index_that_is_not_a_table(ck, tmp_path, junk):
    prefix = _copy(ck.small, tmp_path)
    _index(prefix).write_bytes(junk)
    assert "not a TF checkpoint index" in _error(prefix, _index(prefix))


def test_every_flipped_index_byte_is_caught_or_harmless(ck, tmp_path):
    prefix = _copy(ck.small, tmp_path)
    index = _index(prefix)
    data = index.read_bytes()
    want = TF1Checkpoint(prefix).entries
    for at in range(len(data)):
        index.write_bytes(data[:at] + bytes([data[at] ^ (0x01 << at % 8)]) + data[at + 1:])
        try:
            got = TF1Checkpoint(prefix).entries
        except TF1CheckpointError as e:
            assert str(index) in str(e), (at, str(e))
            if at < len(data) - 100:  # the data block, every byte of which every read checks
                assert "CRC-32C" in str(e), (at, str(e))
            continue
        # Only bytes no reader looks at (the footer's padding, the empty metaindex block) may change silently.
        assert got == want, at


def test_a_block_with_a_bad_checksum(ck, tmp_path):
    prefix = _copy(ck.small, tmp_path)
    data = bytearray(_index(prefix).read_bytes())
    data[20] ^= 0x10
    _index(prefix).write_bytes(bytes(data))
    assert "fails its CRC-32C check" in _error(prefix, _index(prefix))


def test_a_truncated_data_shard(ck, tmp_path):
    prefix = _copy(ck.full, tmp_path)
    shard = prefix.with_name(prefix.name + ".data-00000-of-00001")
    entries = TF1Checkpoint(prefix).entries
    last = max(entries.values(), key=lambda e: e.offset + e.size)
    with open(shard, "r+b") as f:
        f.truncate(last.offset + last.size - 3)
    _error(prefix, shard, repr(last.name), "truncated")
    with pytest.raises(TF1CheckpointError) as e:  # read on its own, without check_shards first
        TF1Checkpoint(prefix).read(last.name)
    assert str(shard) in str(e.value) and repr(last.name) in str(e.value) and "truncated" in str(e.value)


@pytest.mark.parametrize("name", ["bert/encoder/layer_0/attention/self/query/kernel", "big", "bf16", "scalar/f32"])
def test_a_flipped_tensor_byte(ck, tmp_path, name):
    prefix = _copy(ck.full, tmp_path)
    shard = prefix.with_name(prefix.name + ".data-00000-of-00001")
    e = TF1Checkpoint(prefix).entries[name]
    data = bytearray(shard.read_bytes())
    data[e.offset + e.size // 2] ^= 0x04
    shard.write_bytes(bytes(data))
    _error(prefix, shard, repr(name), "CRC-32C")
    ckpt = TF1Checkpoint(prefix)
    other = next(n for n in ARRAYS if n != name)
    _same(ckpt.read(other), ARRAYS[other])  # the rest of the shard still reads


def test_a_missing_shard(ck, tmp_path):
    prefix = _copy(ck.shards2, tmp_path)
    gone = prefix.with_name(prefix.name + ".data-00001-of-00002")
    gone.unlink()
    ckpt = TF1Checkpoint(prefix)
    there = sorted(n for n, e in ckpt.entries.items() if e.shard == 1)
    message = _error(prefix, gone, "missing")
    assert any(repr(n) in message for n in there), message
    with pytest.raises(TF1CheckpointError) as e:
        ckpt.read(there[0])
    assert str(gone) in str(e.value) and repr(there[0]) in str(e.value)
    kept = next(n for n, e in ckpt.entries.items() if e.shard == 0)
    _same(ckpt.read(kept), SMALL[kept])


def test_a_dtype_we_do_not_read(ck):
    message = _error(ck.complex, _index(ck.complex), "'b/rotary'", "complex64")
    assert "a/real" not in message
    arrays, left = read_tf1_checkpoint(ck.complex, keep=lambda n: n != "b/rotary")
    assert left == ["b/rotary"] and list(arrays) == ["a/real"]


def test_a_partitioned_variable(ck):
    ckpt = TF1Checkpoint(ck.sliced)
    assert sorted(ckpt.entries) == ["bert/w", "plain"]  # the slices' own keys are no tensors
    assert ckpt.entries["bert/w"].sliced
    _error(ck.sliced, _index(ck.sliced), "'bert/w'", "partitioned")
    arrays, left = read_tf1_checkpoint(ck.sliced, keep=lambda n: n == "plain")
    assert left == ["bert/w"]
    _same(arrays["plain"], np.arange(3.0))


def test_an_absent_name(ck):
    ckpt = TF1Checkpoint(ck.small)
    with pytest.raises(KeyError) as e:
        ckpt.read("bert/pooler/dense/kernel")
    assert "bert/pooler/dense/kernel" in str(e.value) and str(ckpt.index_file) in str(e.value)


def test_errors_are_checkpoint_errors():
    assert issubclass(TF1CheckpointError, CheckpointError) and issubclass(TF1CheckpointError, OSError)
