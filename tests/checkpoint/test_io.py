"""Checkpoint file I/O: layouts, corrupt and unsafe files, atomic saves (including real SIGKILLs),
and round trips with transformers as the oracle."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from warmstart.checkpoint.io import (
    CheckpointError,
    CheckpointNotFoundError,
    atomic_directory,
    atomic_save,
    find_weights,
    load_state_dict,
    parse_size,
    recover_interrupted_save,
    save_state_dict,
)


def _tensors(n=4, size=(8, 8), offset=0.0):
    g = torch.Generator().manual_seed(0)
    return {f"layer{i}.weight": torch.randn(*size, generator=g) + offset for i in range(n)}


def _assert_same(a, b):
    assert list(a) == list(b) or sorted(a) == sorted(b)
    for k in b:
        assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k


def _siblings(folder: Path):
    """Names beside `folder` other than the folder itself, its lock file and the kill tests' warm-up."""
    skip = (folder.name, f".{folder.name}.ws-lock", "warm")
    return sorted(n for n in os.listdir(folder.parent) if n not in skip)


# --------------------------------------------------------------------------------------- sizes
@pytest.mark.parametrize("text,expected", [
    ("5GB", 5 * 10**9), ("10MB", 10**7), ("500KB", 500_000), ("5gb", 5 * 10**9), ("1.5GB", 1_500_000_000),
    ("1KiB", 1024), ("2MiB", 2 * 2**20), ("1GiB", 2**30), ("100B", 100), (" 3 MB ", 3 * 10**6), (1234, 1234),
])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["5XB", "", "GB", "-1MB", "0KB", 0, -5, "1e3MB"])
def test_parse_size_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="ize"):
        parse_size(bad)


@pytest.mark.parametrize("bad", [True, 1.5, None])
def test_parse_size_rejects_bad_types(bad):
    with pytest.raises(TypeError, match="max_shard_size"):
        parse_size(bad)


# ------------------------------------------------------------------------------ save and load
def test_single_file_round_trip_keeps_dtypes_and_odd_shapes(tmp_path):
    sd = {
        "f32": torch.randn(3, 4), "f16": torch.randn(5).half(), "bf16": torch.randn(2, 2).bfloat16(),
        "i64": torch.arange(7), "flag": torch.tensor([True, False]), "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 4),
    }
    assert save_state_dict(sd, tmp_path / "ck") == ["model.safetensors"]
    _assert_same(load_state_dict(tmp_path / "ck"), sd)
    assert load_file(tmp_path / "ck" / "model.safetensors").keys() == sd.keys()  # plain safetensors


def test_sharded_layout_is_transformers_layout(tmp_path):
    sd = _tensors(n=10, size=(50, 50))  # 10 000 bytes each
    names = save_state_dict(sd, tmp_path / "ck", max_shard_size="25KB")
    assert names == [f"model-0000{i}-of-00005.safetensors" for i in range(1, 6)] + ["model.safetensors.index.json"]
    text = (tmp_path / "ck" / "model.safetensors.index.json").read_text()
    index = json.loads(text)
    assert text == json.dumps(index, indent=2, sort_keys=True) + "\n"
    assert index["metadata"] == {"total_size": 100_000}
    assert index["weight_map"]["layer0.weight"] == "model-00001-of-00005.safetensors"
    assert index["weight_map"]["layer9.weight"] == "model-00005-of-00005.safetensors"
    for name in names[:-1]:
        assert (tmp_path / "ck" / name).stat().st_size < 25_000
    loc = find_weights(tmp_path / "ck")
    assert loc.is_sharded and loc.format == "safetensors" and len(loc.files) == 5
    _assert_same(load_state_dict(loc), sd)


def test_tensor_bigger_than_shard_gets_its_own_shard(tmp_path):
    sd = {"small": torch.ones(10), "big": torch.ones(1000), "tail": torch.ones(10)}
    save_state_dict(sd, tmp_path, max_shard_size="1000B")
    weight_map = json.loads((tmp_path / "model.safetensors.index.json").read_text())["weight_map"]
    # huggingface_hub's (and so transformers') split closes the oversized tensor's shard at once and
    # keeps filling the open one: big -> shard 1, small and tail -> shard 2.
    assert weight_map == {"big": "model-00001-of-00002.safetensors", "small": "model-00002-of-00002.safetensors",
                          "tail": "model-00002-of-00002.safetensors"}


def test_shared_views_and_strided_tensors_are_saved_by_value(tmp_path):
    base = torch.randn(6, 4)
    sd = {"a": base, "tied": base, "row_view": base[2:4], "transposed": base.t(), "col": base[:, 1]}
    before = base.clone()
    save_state_dict(sd, tmp_path, max_shard_size="60B")
    loaded = load_state_dict(tmp_path)
    for key, value in sd.items():
        assert torch.equal(loaded[key], value), key
    assert torch.equal(base, before)  # the caller's tensors are untouched
    assert not any(a.data_ptr() == b.data_ptr() for a in loaded.values() for b in loaded.values() if a is not b)


def test_save_rejects_bad_state_dicts(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        save_state_dict({}, tmp_path)
    with pytest.raises(TypeError, match="'x'.*list"):
        save_state_dict({"x": [1, 2]}, tmp_path)
    with pytest.raises(TypeError, match="keys must be str"):
        save_state_dict({1: torch.ones(1)}, tmp_path)
    with pytest.raises(ValueError, match="'m'.*meta"):
        save_state_dict({"m": torch.empty(2, device="meta")}, tmp_path)
    with pytest.raises(TypeError, match="metadata"):
        save_state_dict({"x": torch.ones(1)}, tmp_path, metadata={"step": 3})
    assert os.listdir(tmp_path) == []  # nothing half-written


def test_metadata_keeps_format_pt(tmp_path):
    from safetensors import safe_open
    save_state_dict({"x": torch.ones(1)}, tmp_path, metadata={"note": "hi"})
    with safe_open(tmp_path / "model.safetensors", "pt") as f:
        assert f.metadata() == {"format": "pt", "note": "hi"}


def test_dtype_casts_floats_only_and_device_is_checked(tmp_path):
    save_state_dict({"w": torch.randn(3), "ids": torch.arange(3)}, tmp_path)
    loaded = load_state_dict(tmp_path, dtype=torch.float16)
    assert loaded["w"].dtype == torch.float16 and loaded["ids"].dtype == torch.int64
    with pytest.raises(ValueError, match="'gpu7'"):
        load_state_dict(tmp_path, device="gpu7")
    with pytest.raises(TypeError, match="dtype"):
        load_state_dict(tmp_path, dtype="float16")


def test_load_one_file_directly(tmp_path):
    save_file({"x": torch.ones(2)}, tmp_path / "other.safetensors")
    torch.save({"y": torch.zeros(2)}, tmp_path / "other.bin")
    assert torch.equal(load_state_dict(tmp_path / "other.safetensors")["x"], torch.ones(2))
    assert torch.equal(load_state_dict(tmp_path / "other.bin")["y"], torch.zeros(2))


# --------------------------------------------------------------------------------- find_weights
def test_safetensors_preferred_over_bin(tmp_path):
    save_file({"x": torch.ones(2)}, tmp_path / "model.safetensors")
    torch.save({"x": torch.zeros(2)}, tmp_path / "pytorch_model.bin")
    assert find_weights(tmp_path).format == "safetensors"
    assert torch.equal(load_state_dict(tmp_path)["x"], torch.ones(2))


@pytest.mark.parametrize("legacy", [False, True])
def test_bin_single_file(tmp_path, legacy):
    sd = _tensors()
    torch.save(sd, tmp_path / "pytorch_model.bin", _use_new_zipfile_serialization=not legacy)
    assert find_weights(tmp_path).format == "bin"
    _assert_same(load_state_dict(tmp_path), sd)


def test_bin_sharded(tmp_path):
    sd = _tensors(n=4)
    weight_map = {}
    for i, keys in enumerate([["layer0.weight", "layer1.weight"], ["layer2.weight", "layer3.weight"]], 1):
        name = f"pytorch_model-0000{i}-of-00002.bin"
        torch.save({k: sd[k] for k in keys}, tmp_path / name)
        weight_map.update({k: name for k in keys})
    (tmp_path / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    loc = find_weights(tmp_path)
    assert loc.format == "bin" and loc.is_sharded
    _assert_same(load_state_dict(tmp_path), sd)


def test_no_weights_lists_what_was_looked_for_and_found(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CheckpointNotFoundError) as e:
        find_weights(tmp_path)
    for name in ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "config.json", str(tmp_path)):
        assert name in str(e.value)
    assert isinstance(e.value, FileNotFoundError)


def test_folder_missing_or_a_file(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="nope"):
        find_weights(tmp_path / "nope")
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file"):
        find_weights(tmp_path / "f")
    with pytest.raises(CheckpointError, match="'.*f'.*rejected"):  # loading one file: not a weights file
        load_state_dict(tmp_path / "f")


def test_single_file_and_index_together_is_ambiguous(tmp_path):
    save_state_dict(_tensors(), tmp_path, max_shard_size="300B")
    save_file({"x": torch.ones(1)}, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"'model.safetensors'.*'model.safetensors.index.json'"):
        find_weights(tmp_path)


def _write_index(folder: Path, weight_map, name="model.safetensors.index.json"):
    (folder / name).write_text(json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}))


@pytest.mark.parametrize("entry", ["/etc/passwd", "../outside.safetensors", "sub/../../outside.safetensors"])
def test_index_pointing_outside_is_refused(tmp_path, entry):
    ck = tmp_path / "ck"
    ck.mkdir()
    save_file({"x": torch.ones(1)}, tmp_path / "outside.safetensors")
    _write_index(ck, {"x": entry})
    with pytest.raises(CheckpointError, match=f"'x'.*{entry}"):
        find_weights(ck)


def test_index_escaping_through_symlinks_is_refused(tmp_path):
    ck, elsewhere = tmp_path / "ck", tmp_path / "elsewhere"
    ck.mkdir(), elsewhere.mkdir()
    save_file({"x": torch.ones(1)}, elsewhere / "shard.safetensors")
    (ck / "sub").symlink_to(elsewhere, target_is_directory=True)
    (ck / "link.safetensors").symlink_to(elsewhere / "shard.safetensors")
    for entry in ("sub/shard.safetensors", "link.safetensors"):
        _write_index(ck, {"x": entry})
        with pytest.raises(CheckpointError, match=f"'{entry}'.*outside"):
            find_weights(ck)


def test_index_symlinks_into_the_hub_blobs_are_fine(tmp_path):
    """The Hugging Face cache stores files in blobs/ and links them from snapshots/<rev>/."""
    repo = tmp_path / "models--org--name"
    snap, blobs = repo / "snapshots" / "abc", repo / "blobs"
    snap.mkdir(parents=True), blobs.mkdir()
    save_state_dict(_tensors(), blobs, max_shard_size="300B", atomic=False)
    for name in os.listdir(blobs):
        (snap / name).symlink_to(Path("..", "..", "blobs", name))
    _assert_same(load_state_dict(snap), _tensors())


def test_index_naming_a_missing_shard(tmp_path):
    save_state_dict(_tensors(), tmp_path, max_shard_size="300B")
    (tmp_path / "model-00002-of-00004.safetensors").unlink()
    with pytest.raises(CheckpointError, match="missing.*model-00002-of-00004.safetensors"):
        find_weights(tmp_path)


@pytest.mark.parametrize("text,match", [
    ("{not json", "not valid JSON"), ('{"weight_map": {}}', "no non-empty 'weight_map'"), ("[1]", "weight_map"),
    ('{"weight_map": {"x": 3}}', "'x' to 3"),
])
def test_malformed_index_names_the_file(tmp_path, text, match):
    (tmp_path / "model.safetensors.index.json").write_text(text)
    with pytest.raises(CheckpointError, match=match) as e:
        find_weights(tmp_path)
    assert "model.safetensors.index.json" in str(e.value)


def test_duplicate_key_across_shards(tmp_path):
    save_file({"x": torch.ones(1), "y": torch.ones(1)}, tmp_path / "a.safetensors")
    save_file({"x": torch.zeros(1)}, tmp_path / "b.safetensors")
    _write_index(tmp_path, {"x": "b.safetensors", "y": "a.safetensors"})
    with pytest.raises(CheckpointError, match=r"'x' is stored twice.*b\.safetensors.*a\.safetensors"):
        load_state_dict(tmp_path)


def test_index_key_absent_from_its_shard(tmp_path):
    save_file({"x": torch.ones(1)}, tmp_path / "a.safetensors")
    _write_index(tmp_path, {"x": "a.safetensors", "ghost": "a.safetensors"})
    with pytest.raises(CheckpointError, match="ghost"):
        load_state_dict(tmp_path)


# ------------------------------------------------------------------------- corrupt and unsafe
@pytest.mark.parametrize("damage", ["cut_one_byte", "cut_half", "cut_to_4", "append", "length_prefix", "header_json",
                                    "header_offsets"])
def test_corrupt_safetensors_is_reported_with_the_file(tmp_path, damage):
    save_file(_tensors(), tmp_path / "model.safetensors")
    path = tmp_path / "model.safetensors"
    data = bytearray(path.read_bytes())
    n = int.from_bytes(data[:8], "little")
    if damage == "cut_one_byte":
        data = data[:-1]
    elif damage == "cut_half":
        data = data[: len(data) // 2]
    elif damage == "cut_to_4":
        data = data[:4]
    elif damage == "append":
        data += b"\0" * 16
    elif damage == "length_prefix":
        data[:8] = (n + 3).to_bytes(8, "little")
    elif damage == "header_json":
        data[8] = ord("]")
    elif damage == "header_offsets":  # a plausible header whose offsets disagree with the dtype/shape
        header = json.loads(bytes(data[8:8 + n]))
        header["layer0.weight"]["shape"] = [8, 9]
        raw = json.dumps(header, separators=(",", ":")).encode()
        assert len(raw) <= n
        data[8:8 + n] = raw.ljust(n)  # safetensors pads its header with spaces too
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as e:
        load_state_dict(tmp_path)
    assert str(path) in str(e.value)


def _evil_payload(sentinel: Path):
    class Evil:
        def __reduce__(self):  # unpickling would call open(sentinel, "w"): the file would appear
            return (open, (str(sentinel), "w"))
    return Evil()


@pytest.mark.parametrize("container", ["torch_zip", "raw_pickle"])
def test_malicious_pickle_is_refused_without_running(tmp_path, container):
    import pickle
    sentinel = tmp_path / "pwned"
    path = tmp_path / "pytorch_model.bin"
    if container == "torch_zip":
        torch.save({"w": torch.ones(2), "evil": _evil_payload(sentinel)}, path)
    else:
        path.write_bytes(pickle.dumps({"evil": _evil_payload(sentinel)}, protocol=2))
    with pytest.raises(CheckpointError, match="Refusing to load.*GLOBAL .*open") as e:
        load_state_dict(tmp_path)
    assert str(path) in str(e.value)
    assert not sentinel.exists()


@pytest.mark.parametrize("payload,match", [
    ({"state_dict": {"w": torch.ones(1)}}, "'state_dict' is a dict.*training checkpoint"),
    ([torch.ones(1)], "holds a list"),
    ({"w": torch.ones(1), "step": 3}, "'step' is a int"),
])
def test_bin_must_be_a_flat_dict_of_tensors(tmp_path, payload, match):
    torch.save(payload, tmp_path / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match=match):
        load_state_dict(tmp_path)


def test_truncated_bin(tmp_path):
    path = tmp_path / "pytorch_model.bin"
    torch.save(_tensors(), path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(CheckpointError, match="pytorch_model.bin"):
        load_state_dict(tmp_path)


# ---------------------------------------------------------------------------- atomic saving
def test_resave_keeps_other_files_and_drops_stale_weights(tmp_path):
    ck = tmp_path / "ck"
    save_state_dict(_tensors(), ck, max_shard_size="300B")
    (ck / "README.md").write_text("mine")
    (ck / "pytorch_model.bin").write_bytes(b"old format")
    (ck / "extras").mkdir()
    (ck / "extras" / "notes.txt").write_text("n")
    save_state_dict({"x": torch.ones(1)}, ck)  # single file now: no old shards/index/bin may survive
    assert sorted(os.listdir(ck)) == ["README.md", "extras", "model.safetensors"]
    assert (ck / "extras" / "notes.txt").read_text() == "n"
    save_state_dict(_tensors(), ck, max_shard_size="300B")  # and back to shards: the single file goes
    assert "model.safetensors" not in os.listdir(ck) and (ck / "README.md").exists()
    _assert_same(load_state_dict(ck), _tensors())
    assert _siblings(ck) == []


def test_shards_named_by_an_old_index_are_dropped(tmp_path):
    save_file({"x": torch.ones(1)}, tmp_path / "weights-a.safetensors")
    _write_index(tmp_path, {"x": "weights-a.safetensors"})
    save_state_dict({"y": torch.ones(1)}, tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["model.safetensors"]


def test_a_save_without_weights_keeps_the_weights(tmp_path):
    """The tokenizer is saved after the model into the same folder, in a second atomic save."""
    ck = tmp_path / "ck"
    atomic_save(ck, lambda tmp: (save_state_dict(_tensors(), tmp), (tmp / "config.json").write_text("{}")))
    result = atomic_save(ck, lambda tmp: (tmp / "tokenizer.json").write_text("{}") and "done")
    assert result == "done"
    assert sorted(os.listdir(ck)) == ["config.json", "model.safetensors", "tokenizer.json"]
    _assert_same(load_state_dict(ck), _tensors())


def test_failed_save_leaves_old_checkpoint_and_no_leftovers(tmp_path):
    ck = tmp_path / "ck"
    save_state_dict(_tensors(), ck)

    def boom(tmp):
        save_state_dict({"new": torch.ones(1)}, tmp)
        raise RuntimeError("disk full, say")
    with pytest.raises(RuntimeError, match="disk full"):
        atomic_save(ck, boom)
    _assert_same(load_state_dict(ck), _tensors())
    assert _siblings(ck) == []


def test_recovery_after_kill_between_the_renames(tmp_path):
    """Fake the state a SIGKILL between `folder -> .old` and `tmp -> folder` leaves behind."""
    ck = tmp_path / "ck"
    save_state_dict(_tensors(), ck)
    old = tmp_path / ".ck.ws-old-0000000000000001deadbeef"
    os.rename(ck, old)
    (tmp_path / ".ck.ws-tmp-0000000000000002deadbeef").mkdir()  # the new one, maybe incomplete
    _assert_same(load_state_dict(ck), _tensors())  # the loader repairs first
    assert ck.is_dir() and not old.exists()
    save_state_dict({"x": torch.ones(1)}, ck)  # the next save sweeps the rest
    assert _siblings(ck) == []
    assert recover_interrupted_save(ck) is False


def test_saving_through_a_symlink_replaces_its_target(tmp_path):
    real, link = tmp_path / "real", tmp_path / "link"
    save_state_dict({"a": torch.ones(1)}, real)
    link.symlink_to(real, target_is_directory=True)
    save_state_dict({"b": torch.ones(1)}, link)
    assert link.is_symlink() and list(load_state_dict(real)) == ["b"]


def test_atomic_save_refuses_files_cwd_and_nesting(tmp_path, monkeypatch):
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file"):
        save_state_dict({"x": torch.ones(1)}, tmp_path / "f")
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    with pytest.raises(ValueError, match="current working directory"):
        save_state_dict({"x": torch.ones(1)}, ".")
    with pytest.raises(RuntimeError, match="already in progress"):
        with atomic_directory(tmp_path / "n"):
            with atomic_directory(tmp_path / "n"):
                pass
    assert not (tmp_path / "n").exists()


def test_concurrent_saves_from_threads_take_turns(tmp_path):
    import threading
    ck = tmp_path / "ck"
    versions = {v: _tensors(n=3, size=(40, 40), offset=float(v)) for v in range(4)}
    errors = []

    def worker(v):
        try:
            for _ in range(5):
                atomic_save(ck, lambda tmp: (save_state_dict(versions[v], tmp, max_shard_size="7KB"),
                                             (tmp / "config.json").write_text(json.dumps({"v": v}))))
        except BaseException as e:  # surfaced below: a thread's exception is otherwise lost
            errors.append(e)
    threads = [threading.Thread(target=worker, args=(v,)) for v in versions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    v = json.loads((ck / "config.json").read_text())["v"]
    _assert_same(load_state_dict(ck), versions[v])
    assert _siblings(ck) == []


def test_unwritable_parent_is_explained(tmp_path, monkeypatch):
    real_mkdir = os.mkdir

    def mkdir(path, *args, **kwargs):  # as if the parent were read-only (root ignores chmod)
        if ".ws-tmp-" in str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_mkdir(path, *args, **kwargs)
    monkeypatch.setattr(os, "mkdir", mkdir)
    with pytest.raises(CheckpointError, match=rf"'{tmp_path}'.*writable.*atomic=False"):
        save_state_dict({"x": torch.ones(1)}, tmp_path / "ck")
    save_state_dict({"x": torch.ones(1)}, tmp_path / "ck", atomic=False)
    assert os.listdir(tmp_path / "ck") == ["model.safetensors"]


def test_new_folder_keeps_the_old_folder_permissions(tmp_path):
    ck = tmp_path / "ck"
    ck.mkdir(mode=0o750)
    os.chmod(ck, 0o750)
    save_state_dict({"x": torch.ones(1)}, ck)
    assert ck.stat().st_mode & 0o777 == 0o750


# --------------------------------------------------------------- real SIGKILLs in a subprocess
# The child and the test share the definition of each version's tensors: every tensor of version
# v is base + v, and config.json says v, so any mix of two versions is caught.
_COMMON = """
import json, os, sys, torch
from warmstart.checkpoint import io as wio

def versioned(version):
    g = torch.Generator().manual_seed(0)
    return {f"layer{i}.weight": torch.randn(256, 512, generator=g) + version for i in range(24)}  # 12.6 MB

def save(folder, version, sd=None):
    sd = versioned(version) if sd is None else sd
    def write(tmp):  # even versions: 6 shards; odd: one file (exercises stale-file removal)
        wio.save_state_dict(sd, tmp, max_shard_size="2.2MB" if version % 2 == 0 else "1GB")
        (tmp / "config.json").write_text(json.dumps({"version": version}))
    wio.atomic_save(folder, write)
"""

_CHILD = _COMMON + """
import signal
folder, mode, arg = sys.argv[1], sys.argv[2], int(sys.argv[3])
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
if mode == "loop":  # save new versions back to back until killed
    # Warm up elsewhere first: the first save in a process pays one-off imports.
    wio.save_state_dict({"x": torch.ones(1)}, os.path.join(os.path.dirname(folder), "warm", "up"))
    print("ready", flush=True)
    v = arg
    while True:
        save(folder, v)
        v += 1
else:  # die at a chosen rename of the swap (mode 'rename', arg = which) or inside the final delete
    sd = versioned(7)
    real_rename, real_unlink, calls = os.rename, os.unlink, []
    def rename(src, dst):
        calls.append(1)
        if mode == "rename" and len(calls) == arg:
            die()
        real_rename(src, dst)
        if len(calls) == 3 and mode == "delete":
            def unlink(*a, **k):
                calls.append(0)
                if len(calls) == 5:  # after one file of the old folder is gone
                    die()
                return real_unlink(*a, **k)
            os.unlink = unlink
    os.rename = rename
    save(folder, 7, sd)
    print("finished", flush=True)
"""


def _common():
    ns = {}
    exec(_COMMON, ns)
    return ns


def _check_consistent(folder: Path, versioned, allowed):
    """The folder must load as exactly one version, and its config.json must agree."""
    state = load_state_dict(folder)
    version = json.loads((folder / "config.json").read_text())["version"]
    assert version in allowed, version
    _assert_same(state, versioned(version))
    return version


@pytest.mark.parametrize("mode,arg,expected", [
    ("rename", 1, 0),  # before moving the old folder aside
    ("rename", 2, 0),  # old moved aside, new not in place: the loader must restore the old one
    ("rename", 3, 7),  # new in place, old not yet renamed for deletion
    ("delete", 0, 7),  # while the old folder is being deleted
])
def test_kill_at_each_step_of_the_swap(tmp_path, mode, arg, expected):
    ns = _common()
    ck = tmp_path / "ck"
    ns["save"](ck, 0)
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(ck), mode, str(arg)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert _check_consistent(ck, ns["versioned"], {expected}) == expected
    ns["save"](ck, 8)  # a later save works and sweeps every leftover
    assert _check_consistent(ck, ns["versioned"], {8}) == 8
    assert _siblings(ck) == []


@pytest.mark.slow
def test_kill_at_random_moments_never_leaves_a_mix(tmp_path):
    ns = _common()
    ck = tmp_path / "ck"
    ns["save"](ck, 0)
    rng = random.Random(1234)
    version, seen = 0, set()
    for _ in range(6):
        start = version + 1
        child = subprocess.Popen([sys.executable, "-c", _CHILD, str(ck), "loop", str(start)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline().strip() == "ready", child.stderr.read()
            time.sleep(rng.uniform(0.0, 0.5))
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=60)
            child.stdout.close(), child.stderr.close()
        # The loop saved start, start+1, ...; the folder holds the last complete one (or the old).
        version = _check_consistent(ck, ns["versioned"], {version} | set(range(start, start + 10_000)))
        seen.add(version)
    ns["save"](ck, version + 1)
    assert _siblings(ck) == []
    assert len(seen) > 1  # the kills did land at different points


# ------------------------------------------------------------------------ transformers oracle
def _tiny_bert():
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=37, max_position_embeddings=64)
    torch.manual_seed(0)
    return transformers, transformers.BertModel(config).eval()


def test_transformers_loads_our_sharded_checkpoint(tmp_path):
    transformers, model = _tiny_bert()
    sd = model.state_dict()

    def write(tmp):
        save_state_dict(sd, tmp, max_shard_size="20KB")
        model.config.save_pretrained(tmp)
    atomic_save(tmp_path / "ours", write)
    assert find_weights(tmp_path / "ours").is_sharded
    theirs = transformers.BertModel.from_pretrained(tmp_path / "ours").state_dict()
    _assert_same(theirs, sd)


def test_we_load_transformers_sharded_checkpoint_with_the_same_layout(tmp_path):
    transformers, model = _tiny_bert()
    model.save_pretrained(tmp_path / "theirs", max_shard_size="20KB")
    _assert_same(load_state_dict(tmp_path / "theirs"), model.state_dict())
    save_state_dict(model.state_dict(), tmp_path / "ours", max_shard_size="20KB")
    index = {d: json.loads((tmp_path / d / "model.safetensors.index.json").read_text()) for d in ("theirs", "ours")}
    assert index["ours"]["weight_map"] == index["theirs"]["weight_map"]
    assert index["ours"]["metadata"]["total_size"] == index["theirs"]["metadata"]["total_size"]


def test_real_minilm_checkpoint(minilm_dir):
    loc = find_weights(minilm_dir)
    assert loc.format == "safetensors" and not loc.is_sharded
    _assert_same(load_state_dict(minilm_dir), load_file(minilm_dir / "model.safetensors"))


def test_a_read_racing_a_save_is_redone_rather_than_mixed(tmp_path, monkeypatch):
    """A save swaps in a new folder after the reader took the first shard of the old one."""
    from warmstart.checkpoint import io as wio
    ck = tmp_path / "ck"
    old, new = _tensors(n=4, offset=0.0), _tensors(n=4, offset=1.0)
    save_state_dict(old, ck, max_shard_size="300B")
    real_read, calls = wio._read_safetensors, []

    def read_then_swap(path, device):
        calls.append(path)
        out = real_read(path, device)
        if len(calls) == 1:
            save_state_dict(new, ck, max_shard_size="300B")
        return out
    monkeypatch.setattr(wio, "_read_safetensors", read_then_swap)
    _assert_same(load_state_dict(ck), new)
    assert len(calls) > 4  # the first pass was abandoned
