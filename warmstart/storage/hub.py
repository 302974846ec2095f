"""The one front door for loading: turn ``from_pretrained``'s first argument into a local folder.

Models, configs, generation configs and tokenizers all resolve a name here, with one set of options
(``LoadOptions``). A name is a local folder (used as is), or a Hugging Face repo id, found as transformers finds it:

- in the hub cache (``cache_dir``, default ``default_cache_dir()``), read through huggingface_hub's
  ``snapshot_download`` with ``local_files_only=True`` (``refs/<revision>`` -> ``snapshots/<commit>/``);
- when the network is allowed, downloaded through huggingface_hub (only the files the caller reads: configs,
  vocabularies, and for models safetensors weights, or ``.bin`` ones when the repo has no safetensors);
- never over the network when ``local_files_only=True`` or the environment says offline (``HF_HUB_OFFLINE=1``,
  or ``TRANSFORMERS_OFFLINE=1``): then a name missing from the cache is one error naming it and every place looked.

huggingface_hub is imported here at module load; the configs and tokenizers import this module only when a name
actually has to be resolved, so ``import warmstart`` and building a config from arguments stay fast.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from huggingface_hub import snapshot_download
from huggingface_hub.utils import HFValidationError, LocalEntryNotFoundError, validate_repo_id

from .atomic import recover_interrupted_save
from .files import CheckpointNotFoundError
from .options import LoadOptions, is_offline
from .weights import find_weights

try:  # huggingface_hub >= 1.x: the snapshot exists but its cached file listing says files are missing
    from huggingface_hub.errors import IncompleteSnapshotError
except ImportError:  # pragma: no cover - older huggingface_hub never raises it
    IncompleteSnapshotError = None

__all__ = ["LoadOptions", "resolve", "resolve_model_dir", "default_cache_dir", "is_offline",
           "MODEL_FILES", "TOKENIZER_FILES"]

_COMMIT_RE = re.compile(r"[0-9a-f]{40}")
# What a download fetches. Weights: safetensors first; `.bin` only when the repo has no safetensors (many old
# repos ship both, and we would read only one).
MODEL_FILES = ("*.json", "*.txt", "*.model", "*.safetensors")
_BIN_FILES = ("*.bin", "*.bin.index.json")
TOKENIZER_FILES = ("*.json", "*.txt", "*.model")


def default_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment now (not when huggingface_hub was
    imported): HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, else
    $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub — huggingface_hub's order."""
    env = os.environ
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if env.get(var):
            return Path(os.path.expandvars(os.path.expanduser(env[var])))
    home = env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return Path(os.path.expandvars(os.path.expanduser(home))) / "hub"


def resolve(path_or_repo_id: str | os.PathLike, options: LoadOptions | None = None, *,
            files: tuple[str, ...] = MODEL_FILES, what: str = "model") -> Path:
    """Return the local folder holding a checkpoint named by a path or a hub repo id.

    An existing local folder is used as is. Otherwise the id is looked up in the hub cache and, when the network
    is allowed, downloaded (``files``: the patterns to fetch). Raises FileNotFoundError (CheckpointNotFoundError)
    naming every place looked at, and NotADirectoryError when the path is a file.
    """
    options = options or LoadOptions()
    if not isinstance(path_or_repo_id, (str, os.PathLike)):
        raise TypeError(
            f"Expected a folder path or a hub repo id such as 'org/name', got "
            f"{type(path_or_repo_id).__name__}: {path_or_repo_id!r}"
        )
    raw = os.fspath(path_or_repo_id)
    if not raw:
        raise ValueError("Expected a folder path or a hub repo id, got an empty string")
    local = Path(raw)
    recover_interrupted_save(local)  # a save killed mid-swap must not look like a missing folder
    if local.exists():
        if not local.is_dir():
            raise NotADirectoryError(
                f"{raw!r} is a file, not a folder; pass the folder that holds config.json and the "
                f"weights (perhaps {str(local.parent)!r})"
            )
        return _subfolder(local.absolute(), options.subfolder, raw)

    cache = Path(options.cache_dir) if options.cache_dir is not None else default_cache_dir()
    looked = [f"a local folder {str(local.absolute())!r}: does not exist"]
    if _looks_like_path(raw) or not _is_repo_id(raw):
        looked.append("the hub cache: not searched, since this is not a repo id of the form 'org/name'")
        raise CheckpointNotFoundError(_not_found_message(raw, looked, cache, what, options))
    snapshot = None
    if not options.offline:
        snapshot = _download(raw, cache, options, files)
    if snapshot is None and not options.force_download:
        snapshot = _cached_snapshot(raw, cache, options.revision)
    if snapshot is None:
        looked.append(f"the hub cache {str(cache)!r}: {_cache_detail(raw, cache, options.revision)}")
        if options.offline:
            looked.append("the Hugging Face Hub: not asked, " + ("local_files_only=True" if options.local_files_only
                                                                 else "the environment says offline (HF_HUB_OFFLINE)"))
        raise CheckpointNotFoundError(_not_found_message(raw, looked, cache, what, options))
    return _subfolder(snapshot, options.subfolder, raw)


def resolve_model_dir(path_or_repo_id: str | os.PathLike, *, cache_dir: str | os.PathLike | None = None,
                      revision: str | None = None, local_files_only: bool = False, subfolder: str = "",
                      **options: Any) -> Path:
    """``resolve`` with the options as keywords (the older spelling, kept for callers and tests)."""
    return resolve(path_or_repo_id, LoadOptions(cache_dir=cache_dir, revision=revision, subfolder=subfolder or "",
                                                local_files_only=local_files_only, **options))


def _looks_like_path(raw: str) -> bool:
    # A repo id has at most one '/', and never starts with '.', '/' or '~'.
    return raw.startswith((".", "/", "~", os.sep)) or raw.count("/") > 1 or (os.sep != "/" and os.sep in raw)


def _is_repo_id(raw: str) -> bool:
    try:
        validate_repo_id(raw)
    except HFValidationError:
        return False
    return True


def _cached_snapshot(repo_id: str, cache: Path, revision: str | None) -> Path | None:
    try:
        return Path(snapshot_download(repo_id, revision=revision, cache_dir=cache, local_files_only=True))
    except LocalEntryNotFoundError as e:
        if IncompleteSnapshotError is not None and isinstance(e, IncompleteSnapshotError):
            # Only part of the repo was downloaded (transformers fetches just what it needs);
            # that part may well be enough, and find_weights reports it if it is not.
            return Path(e.snapshot_path)
    # snapshot_download resolves branch and tag names through refs/; a commit hash given
    # directly has no ref, but its snapshot folder is named after it.
    if revision is not None and _COMMIT_RE.fullmatch(revision):
        folder = _repo_cache_folder(repo_id, cache) / "snapshots" / revision
        if folder.is_dir():
            return folder
    return None


def _download(repo_id: str, cache: Path, options: LoadOptions, files: tuple[str, ...]) -> Path | None:
    """Fetch what is missing or stale; None when the Hub cannot be reached (the cache is tried next)."""
    hub = {"revision": options.revision, "cache_dir": cache, "force_download": options.force_download,
           "token": options.token}
    if options.proxies:
        hub["proxies"] = options.proxies
    try:
        folder = Path(snapshot_download(repo_id, allow_patterns=list(files), **hub))
        if files == MODEL_FILES:
            try:
                find_weights(_subfolder(folder, options.subfolder, repo_id) if options.subfolder else folder)
            except CheckpointNotFoundError:
                folder = Path(snapshot_download(repo_id, allow_patterns=list(_BIN_FILES), **hub))
        return folder
    except LocalEntryNotFoundError:
        # huggingface_hub raises this when the Hub is unreachable and nothing is cached.
        return None
    except OSError as e:
        if _is_missing_repo(e):
            raise CheckpointNotFoundError(
                f"{repo_id!r} is neither a local folder nor a repo on the Hugging Face Hub "
                f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
            ) from e
        raise


def _is_missing_repo(e: Exception) -> bool:
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    return isinstance(e, (RepositoryNotFoundError, RevisionNotFoundError))


def _repo_cache_folder(repo_id: str, cache: Path) -> Path:
    return cache / ("models--" + repo_id.replace("/", "--"))


def _cache_detail(repo_id: str, cache: Path, revision: str | None) -> str:
    """Say why the cache did not have it: no cache, no entry for the repo, or not that revision."""
    if not cache.is_dir():
        return "that folder does not exist"
    repo = _repo_cache_folder(repo_id, cache)
    if not repo.is_dir():
        return f"no entry {repo.name!r}"
    refs_dir = repo / "refs"
    refs = sorted(str(p.relative_to(refs_dir)) for p in refs_dir.rglob("*") if p.is_file()) if refs_dir.is_dir() else []
    snaps = sorted(p.name for p in (repo / "snapshots").iterdir()) if (repo / "snapshots").is_dir() else []
    return (
        f"{repo.name!r} has no snapshot for revision {revision or 'main'!r} "
        f"(cached refs: {refs or 'none'}; cached snapshots: {snaps or 'none'})"
    )


def _not_found_message(raw: str, looked: list[str], cache: Path, what: str, options: LoadOptions) -> str:
    places = "\n".join(f"  - {line}" for line in looked)
    how = ("unset HF_HUB_OFFLINE (and pass local_files_only=False) to download it now"
           if options.offline else "check the name")
    return (
        f"Cannot find {what} {raw!r}. Looked at:\n{places}\n"
        f"To fix: pass the path of a folder holding its files; or, on a machine "
        f"with network access, download it into the cache (`hf download {raw}` or "
        f"huggingface_hub.snapshot_download({raw!r})) and point cache_dir or HF_HUB_CACHE at that "
        f"cache if it is not {str(cache)!r}; or {how}."
    )


def _subfolder(base: Path, subfolder: str, raw: str) -> Path:
    if not subfolder:
        return base
    sub = Path(subfolder)
    if sub.is_absolute() or ".." in sub.parts:
        raise ValueError(f"subfolder must be a relative path inside {raw!r}, got {subfolder!r}")
    folder = base / sub
    if not folder.is_dir():
        raise CheckpointNotFoundError(
            f"{raw!r} was found at {str(base)!r}, but it has no sub-folder {subfolder!r}"
        )
    return folder
