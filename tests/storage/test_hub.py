"""The resolver: local folders, offline lookups in a fake Hugging Face cache, when it downloads, and the errors.

(tests/storage/test_download.py downloads for real from a hub-like server on 127.0.0.1.)"""
import os
from pathlib import Path

import pytest
import torch

from warmstart.storage import hub
from warmstart.storage.hub import default_cache_dir, resolve_model_dir
from warmstart.checkpoint.io import CheckpointNotFoundError, load_state_dict, save_state_dict

COMMIT = "0123456789abcdef0123456789abcdef01234567"
OTHER = "fedcba9876543210fedcba9876543210fedcba98"


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every lookup must stay offline unless a test explicitly allows the network."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    real = hub.snapshot_download

    def offline_only(*args, **kwargs):
        assert kwargs.get("local_files_only") is True, "a lookup tried to reach the network"
        return real(*args, **kwargs)
    monkeypatch.setattr(hub, "snapshot_download", offline_only)


def _fake_cache(cache: Path, repo_id="org/name", refs=None, snapshots=(COMMIT,)) -> Path:
    """The layout huggingface_hub writes: blobs/, snapshots/<commit>/ linking to them, refs/<branch>."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "blobs").mkdir(parents=True)
    for commit in snapshots:
        snap = repo / "snapshots" / commit
        snap.mkdir(parents=True)
        blob = repo / "blobs" / f"cfg-{commit}"
        blob.write_text('{"model_type": "bert"}')
        (snap / "config.json").symlink_to(Path("..", "..", "blobs", blob.name))
    (repo / "refs").mkdir()
    for ref, commit in (refs if refs is not None else {"main": snapshots[0]}).items():
        (repo / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
    return repo


def test_local_folder_is_used_as_is(tmp_path, monkeypatch):
    (tmp_path / "model").mkdir()
    assert resolve_model_dir(tmp_path / "model") == tmp_path / "model"
    monkeypatch.chdir(tmp_path)
    assert resolve_model_dir("model") == tmp_path / "model"  # relative paths come back absolute


def test_a_file_is_not_a_folder(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(NotADirectoryError, match=r"is a file.*config.json"):
        resolve_model_dir(tmp_path / "model.safetensors")


def test_subfolder(tmp_path):
    (tmp_path / "m" / "encoder").mkdir(parents=True)
    assert resolve_model_dir(tmp_path / "m", subfolder="encoder") == tmp_path / "m" / "encoder"
    with pytest.raises(CheckpointNotFoundError, match="no sub-folder 'decoder'"):
        resolve_model_dir(tmp_path / "m", subfolder="decoder")
    with pytest.raises(ValueError, match="relative path"):
        resolve_model_dir(tmp_path / "m", subfolder="../m")


def test_bad_arguments():
    with pytest.raises(TypeError, match="repo id"):
        resolve_model_dir(42)
    with pytest.raises(ValueError, match="empty"):
        resolve_model_dir("")


def test_cached_repo_found_offline_by_branch_and_commit(tmp_path):
    cache = tmp_path / "cache"
    repo = _fake_cache(cache, refs={"main": COMMIT, "dev": OTHER}, snapshots=(COMMIT, OTHER))
    assert resolve_model_dir("org/name", cache_dir=cache) == repo / "snapshots" / COMMIT
    assert resolve_model_dir("org/name", cache_dir=cache, revision="dev") == repo / "snapshots" / OTHER
    assert resolve_model_dir("org/name", cache_dir=cache, revision=OTHER) == repo / "snapshots" / OTHER
    assert (resolve_model_dir("org/name", cache_dir=cache) / "config.json").read_text().startswith("{")


def test_cache_location_follows_the_environment_at_call_time(tmp_path, monkeypatch):
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "huggingface" / "hub"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "huggingface" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    repo = _fake_cache(tmp_path / "hf" / "hub")
    assert resolve_model_dir("org/name") == repo / "snapshots" / COMMIT
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hubcache"))
    repo = _fake_cache(tmp_path / "hubcache", repo_id="solo")
    assert resolve_model_dir("solo") == repo / "snapshots" / COMMIT


def test_not_found_names_the_id_every_place_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cache = tmp_path / "cache"
    cache.mkdir()
    with pytest.raises(FileNotFoundError) as e:
        resolve_model_dir("org/missing", cache_dir=cache)
    message = str(e.value)
    for part in ("'org/missing'", str(tmp_path / "org" / "missing"), str(cache), "no entry 'models--org--missing'",
                 "hf download org/missing", "HF_HUB_CACHE"):
        assert part in message, part
    assert isinstance(e.value, CheckpointNotFoundError)


def test_not_found_explains_a_missing_cache_and_an_unknown_revision(tmp_path):
    with pytest.raises(FileNotFoundError, match="that folder does not exist"):
        resolve_model_dir("org/name", cache_dir=tmp_path / "nowhere")
    _fake_cache(tmp_path / "cache")
    with pytest.raises(FileNotFoundError, match=rf"revision 'v2'.*refs: \['main'\].*snapshots: \['{COMMIT}'\]"):
        resolve_model_dir("org/name", cache_dir=tmp_path / "cache", revision="v2")


@pytest.mark.parametrize("raw", ["./no/such/dir", "/abs/no/such", "a/b/c", "bad id!"])
def test_paths_and_invalid_ids_skip_the_cache(tmp_path, raw):
    with pytest.raises(FileNotFoundError, match="not searched.*'org/name'"):
        resolve_model_dir(raw, cache_dir=tmp_path)


def test_partially_downloaded_snapshot_is_still_returned(tmp_path, monkeypatch):
    """huggingface_hub flags a snapshot whose cached file listing has more files than are on disk;
    transformers downloads only what it needs, so such a snapshot is normal and usable."""
    if hub.IncompleteSnapshotError is None:
        pytest.skip("this huggingface_hub has no IncompleteSnapshotError")
    snap = _fake_cache(tmp_path) / "snapshots" / COMMIT

    def incomplete(*args, **kwargs):
        raise hub.IncompleteSnapshotError("3 file(s) are missing", snapshot_path=str(snap))
    monkeypatch.setattr(hub, "snapshot_download", incomplete)
    assert resolve_model_dir("org/name", cache_dir=tmp_path) == snap


def test_downloads_only_when_the_network_is_allowed(tmp_path, monkeypatch):
    calls = []
    target = tmp_path / "downloaded"

    def fake_download(repo_id, **kwargs):
        calls.append(kwargs)
        if kwargs.get("local_files_only"):
            raise hub.LocalEntryNotFoundError("not cached")
        target.mkdir(exist_ok=True)
        if "*.bin" in kwargs["allow_patterns"]:
            torch.save({"w": torch.ones(1)}, target / "pytorch_model.bin")
        return str(target)
    monkeypatch.setattr(hub, "snapshot_download", fake_download)
    # HF_HUB_OFFLINE=1 (the fixture; make test sets it too): the cache only, whatever local_files_only says
    with pytest.raises(FileNotFoundError, match="not asked, the environment says offline"):
        resolve_model_dir("org/name", cache_dir=tmp_path / "c", local_files_only=False)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    with pytest.raises(FileNotFoundError, match="not asked, local_files_only=True"):
        resolve_model_dir("org/name", cache_dir=tmp_path / "c", local_files_only=True)
    assert len(calls) == 2 and all(c["local_files_only"] for c in calls)
    # network allowed: downloaded by default, as transformers does
    assert resolve_model_dir("org/name", cache_dir=tmp_path / "c") == target
    downloads = calls[2:]
    # safetensors first; .bin only because this repo has no safetensors weights
    assert "*.safetensors" in downloads[0]["allow_patterns"] and "*.bin" not in downloads[0]["allow_patterns"]
    assert downloads[1]["allow_patterns"] == ["*.bin", "*.bin.index.json"]


def test_a_save_killed_mid_swap_is_repaired_before_resolving(tmp_path):
    ck = tmp_path / "ck"
    save_state_dict({"w": torch.ones(2)}, ck)
    os.rename(ck, tmp_path / ".ck.ws-old-0000000000000001deadbeef")
    assert resolve_model_dir(ck) == ck
    assert torch.equal(load_state_dict(ck)["w"], torch.ones(2))


def test_cached_sharded_checkpoint_loads_through_blob_symlinks(tmp_path):
    repo = _fake_cache(tmp_path)
    snap = repo / "snapshots" / COMMIT
    sd = {f"w{i}": torch.full((30,), float(i)) for i in range(4)}
    staging = tmp_path / "staging"
    save_state_dict(sd, staging, max_shard_size="250B")
    for name in os.listdir(staging):
        os.rename(staging / name, repo / "blobs" / name)
        (snap / name).symlink_to(Path("..", "..", "blobs", name))
    folder = resolve_model_dir("org/name", cache_dir=tmp_path)
    loaded = load_state_dict(folder)
    assert all(torch.equal(loaded[k], v) for k, v in sd.items())
