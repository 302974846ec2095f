"""flax_io: v4's flax_model.msgpack (single, sharded, chunked) and Flax-named safetensors, read and written with
numpy + msgpack only; every byte checked against files transformers 4.57.1 wrote (tests/assets/flax_v4)."""
import json
from pathlib import Path

import numpy as np
import pytest

msgpack = pytest.importorskip("msgpack")

from warmstart.checkpoint import flax_io as F  # noqa: E402
from warmstart.checkpoint.flax_layout import flatten_tree  # noqa: E402
from warmstart.storage.files import CheckpointError, CheckpointNotFoundError, is_weights_file  # noqa: E402

ROOT = Path(__file__).parent.parent / "assets" / "flax_v4"
CASES = sorted(p.name for p in ROOT.iterdir() if p.is_dir())
SEQ = ROOT / "bert_sequence_classification"


@pytest.mark.parametrize("name", CASES)
def test_v4_msgpack_reads_and_rewrites_byte_identical(name):
    path = ROOT / name / "flax_model.msgpack"
    tree = F.read_msgpack(path)
    listed = json.loads((ROOT / name / "tree.json").read_text())["params"]
    flat = flatten_tree(tree)
    assert list(flat) == list(listed)  # v4's key order, kept
    for key, entry in listed.items():
        assert list(flat[key].shape) == entry["shape"] and str(flat[key].dtype) == entry["dtype"], key
    assert F.msgpack_bytes(tree) == path.read_bytes()


def test_bf16_tree_round_trips():
    path = SEQ / "bf16" / "flax_model.msgpack"
    tree = F.read_msgpack(path)
    assert {str(v.dtype) for v in flatten_tree(tree).values()} == {"bfloat16"}
    assert F.msgpack_bytes(tree) == path.read_bytes()


def test_shards_are_v4s_byte_for_byte(tmp_path):
    tree = F.read_flax_weights(SEQ)
    names = F.write_flax_weights(tree, tmp_path, max_shard_size="30KB")
    assert names == ["flax_model-00001-of-00002.msgpack", "flax_model-00002-of-00002.msgpack", F.FLAX_INDEX]
    for name in names:
        assert (tmp_path / name).read_bytes() == (SEQ / "sharded" / name).read_bytes(), name
    back = flatten_tree(F.read_flax_weights(SEQ / "sharded"))
    for key, value in flatten_tree(tree).items():
        assert np.array_equal(back[key], value), key


def test_flax_safetensors_are_v4s_byte_for_byte(tmp_path):
    F.write_flax_safetensors(F.read_flax_weights(SEQ), tmp_path / "model.safetensors")
    assert (tmp_path / "model.safetensors").read_bytes() == (SEQ / "safetensors" / "model.safetensors").read_bytes()
    assert F.safetensors_format(tmp_path / "model.safetensors") == "flax"


def test_a_small_tree_is_one_file(tmp_path):
    assert F.write_flax_weights({"a": {"kernel": np.ones((2, 3), np.float32)}}, tmp_path) == [F.FLAX_WEIGHTS]


def test_chunked_arrays_match_flax_serialization(monkeypatch):
    serialization = pytest.importorskip("flax.serialization")
    monkeypatch.setattr(F, "_CHUNK_BYTES", 64)
    monkeypatch.setattr(serialization, "MAX_CHUNK_SIZE", 64)
    tree = {"emb": {"embedding": np.arange(70, dtype=np.float32).reshape(7, 10)}, "b": {"bias": np.ones(3, "f4")}}
    data = F.msgpack_bytes(tree)
    assert data == serialization.to_bytes(tree)
    back = F.read_msgpack_bytes(data)
    assert np.array_equal(back["emb"]["embedding"], tree["emb"]["embedding"])


def test_numpy_scalars_round_trip(tmp_path):
    tree = {"step": np.int32(7), "w": {"kernel": np.zeros((1, 1), np.float16)}}
    F.write_msgpack(tree, tmp_path / "x.msgpack")
    back = F.read_msgpack(tmp_path / "x.msgpack")
    assert back["step"] == 7 and back["step"].dtype == np.int32 and back["w"]["kernel"].dtype == np.float16


def test_truncated_msgpack_names_the_file(tmp_path):
    raw = (SEQ / "flax_model.msgpack").read_bytes()
    (tmp_path / F.FLAX_WEIGHTS).write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="flax_model.msgpack.*truncated or corrupt"):
        F.read_flax_weights(tmp_path)


def test_array_with_too_few_bytes_is_refused(tmp_path):
    payload = msgpack.packb(((4, 4), "float32", b"\0" * 12), use_bin_type=True)
    (tmp_path / "bad.msgpack").write_bytes(msgpack.packb({"k": msgpack.ExtType(1, payload)}, use_bin_type=True))
    with pytest.raises(CheckpointError, match=r"bad.msgpack.*\(4, 4\) float32 holds 12 bytes, not 64"):
        F.read_msgpack(tmp_path / "bad.msgpack")


def test_truncated_safetensors_names_the_file(tmp_path):
    raw = (SEQ / "safetensors" / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(raw[:-100])
    with pytest.raises(CheckpointError, match="model.safetensors.*truncated"):
        F.read_safetensors(tmp_path / "model.safetensors")


def test_index_cannot_point_outside_the_folder(tmp_path):
    (tmp_path / F.FLAX_INDEX).write_text(json.dumps({"weight_map": {"a/kernel": "../evil.msgpack"}}))
    with pytest.raises(CheckpointError, match="not a file name in the checkpoint folder"):
        F.read_flax_weights(tmp_path)


def test_index_naming_a_missing_shard(tmp_path):
    (tmp_path / F.FLAX_INDEX).write_text(json.dumps({"weight_map": {"a/kernel": "flax_model-00001-of-00002.msgpack"}}))
    with pytest.raises(CheckpointError, match="missing from the folder"):
        F.read_flax_weights(tmp_path)


def test_single_file_and_index_together_is_ambiguous(tmp_path):
    F.write_msgpack({"a": {"bias": np.zeros(2, "f4")}}, tmp_path / F.FLAX_WEIGHTS)
    (tmp_path / F.FLAX_INDEX).write_text("{}")
    with pytest.raises(CheckpointError, match="refusing to guess"):
        F.read_flax_weights(tmp_path)


def test_which_files_a_flax_model_reads(tmp_path):
    assert F.find_flax_weights(SEQ)[0] == "msgpack"
    assert F.find_flax_weights(SEQ / "safetensors")[0] == "safetensors"
    pt = ROOT / "bert_masked_lm" / "pt"
    assert F.find_flax_weights(pt)[0] == "safetensors"
    (tmp_path / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(CheckpointNotFoundError, match="pass from_pt=True"):
        F.find_flax_weights(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointNotFoundError, match="flax_model.msgpack"):
        F.find_flax_weights(empty)


def test_unstorable_leaves_are_refused():
    with pytest.raises(TypeError, match="cannot store a str"):
        F.msgpack_bytes({"a": "text"})
    with pytest.raises(ValueError, match="empty"):
        F.msgpack_bytes({"a": {}})


def test_flax_names_are_weight_files():
    for name in (F.FLAX_WEIGHTS, F.FLAX_INDEX, "flax_model-00002-of-00003.msgpack"):
        assert is_weights_file(name)
    assert not is_weights_file("flax_model.msgpack.bak")
