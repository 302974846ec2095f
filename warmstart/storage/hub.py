"""The one front door for loading: turn ``from_pretrained``'s first argument into a local folder.

Models, configs, generation configs and tokenizers all resolve a name here, with one set of options
(``LoadOptions``). A name is a local folder (used as is), or a Hugging Face repo id, found as transformers finds it:

- in the hub cache (``cache_dir``, default ``default_cache_dir()``), read through huggingface_hub's
  ``snapshot_download`` with ``local_files_only=True`` (``refs/<revision>`` -> ``snapshots/<commit>/``);
- when the network is allowed, downloaded through huggingface_hub (only the files the caller reads, from the
  repo's root or its ``subfolder`` and not from folders nested in it: configs, vocabularies, and for models
  safetensors weights, or ``.bin`` ones when the repo has no safetensors);
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
           "MODEL_FILES", "FLAX_MODEL_FILES", "TF_MODEL_FILES", "TF1_MODEL_FILES", "TOKENIZER_FILES", "CONFIG_FILES"]

_COMMIT_RE = re.compile(r"[0-9a-f]{40}")
# What a download fetches. Weights: safetensors first; `.bin` only when the repo has no safetensors (many old
# repos ship both, and we would read only one).
MODEL_FILES = ("*.json", "*.txt", "*.model", "*.safetensors")
_BIN_FILES = ("*.bin", "*.bin.index.json")
TOKENIZER_FILES = ("*.json", "*.txt", "*.model", "*.jinja", "additional_chat_templates/*.jinja")
# A Flax model reads flax_model.msgpack (or its shards) first, then safetensors; `.bin` only with from_pt.
FLAX_MODEL_FILES = ("*.json", "*.txt", "*.model", "*.msgpack", "*.safetensors")
# A TF model reads tf_model.h5 (or its shards) first, then safetensors; `.bin` only with from_pt.
TF_MODEL_FILES = ("*.json", "*.txt", "*.model", "*.h5", "*.safetensors")
# A TF1 checkpoint (from_tf=True on a google-research repo): the bundle, TF's "checkpoint" state file, the vocab.
TF1_MODEL_FILES = ("*.index", "*.data-*", "checkpoint")
CONFIG_FILES = ("*.json",)  # config.json / generation_config.json: a config load never fetches weights


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
    snapshot = unreachable = None
    if not options.offline:
        snapshot, unreachable = _download(raw, cache, options, files, what)
    if snapshot is None and not options.force_download:
        snapshot = _cached_snapshot(raw, cache, options.revision)
    if snapshot is None:
        looked.append(f"the hub cache {str(cache)!r}: {_cache_detail(raw, cache, options.revision)}")
        if options.offline:
            looked.append("the Hugging Face Hub: not asked, " + ("local_files_only=True" if options.local_files_only
                                                                 else "the environment says offline (HF_HUB_OFFLINE)"))
        elif unreachable is not None:
            # Without this line the message would read as if the Hub had been asked and had no such repo.
            looked.append(f"the Hugging Face Hub at {_endpoint()}: could not be reached ({unreachable})")
        raise CheckpointNotFoundError(_not_found_message(raw, looked, cache, what, options,
                                                         unreachable=unreachable is not None))
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


def _download(repo_id: str, cache: Path, options: LoadOptions, files: tuple[str, ...],
              what: str) -> tuple[Path | None, str | None]:
    """Fetch what is missing or stale: (the snapshot folder, None), or (None, why) when the Hub could not be
    reached or answered with a server error (the cache is tried next, as transformers does)."""
    hub = {"revision": options.revision, "cache_dir": cache, "force_download": options.force_download,
           "token": options.token}
    if options.proxies:
        hub["proxies"] = options.proxies
    try:
        folder = Path(snapshot_download(repo_id, **_patterns(files, options.subfolder), **hub))
        if files == MODEL_FILES:
            try:
                find_weights(_subfolder(folder, options.subfolder, repo_id) if options.subfolder else folder)
            except CheckpointNotFoundError:
                folder = Path(snapshot_download(repo_id, **_patterns(_BIN_FILES, options.subfolder), **hub))
        return folder, None
    except LocalEntryNotFoundError as e:
        # huggingface_hub raises this when the Hub is unreachable (or failed) and nothing usable is cached;
        # the cause it chains is the connection or HTTP error itself.
        return None, _first_line(e.__cause__ or e)
    except OSError as e:
        missing = _missing_repo_message(e, repo_id, options.revision, what)
        if missing is not None:
            raise CheckpointNotFoundError(missing) from e
        raise


def _patterns(files: tuple[str, ...], subfolder: str) -> dict[str, list[str]]:
    """snapshot_download's filters for the files of one folder of the repo (the root, or ``subfolder``).

    Its patterns are fnmatch ones, where ``*`` also matches ``/``: ``*.safetensors`` alone would fetch every
    nested copy too (``onnx/``, ``checkpoint-500/``, other models' sub-folders), which no loader reads."""
    sub = subfolder.strip("/")
    if not sub:
        return {"allow_patterns": list(files), "ignore_patterns": ["*/*"]}
    return {"allow_patterns": [f"{sub}/{p}" for p in files], "ignore_patterns": [f"{sub}/*/*"]}


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__


def _endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def _missing_repo_message(e: OSError, repo_id: str, revision: str | None, what: str) -> str | None:
    """The message for a Hub that answered 'no such repo' (or revision, or a gated one); None for other errors."""
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    if not isinstance(e, (RepositoryNotFoundError, RevisionNotFoundError)):
        return None
    said = _hub_answer(e)
    at = f"the Hugging Face Hub at {_endpoint()}"
    if isinstance(e, GatedRepoError):  # a subclass of RepositoryNotFoundError: check it first
        return (f"Cannot load {what} {repo_id!r}: it is a gated repo on {at} ({said}); ask for access on its page, "
                f"then log in (`hf auth login`) or pass token=...")
    if isinstance(e, RevisionNotFoundError):
        return (f"Cannot find {what} {repo_id!r} at revision {revision!r}: {at} has the repo but no such branch, "
                f"tag or commit ({said})")
    return (f"Cannot find {what} {repo_id!r}: it is not a local folder, and {at} has no such repo ({said}). "
            f"Check the name; if it is a private or gated repo, log in (`hf auth login`) or pass token=...")


def _hub_answer(e: OSError) -> str:
    """'RepositoryNotFoundError: HTTP 404 from <url>' — the status and the URL asked, not huggingface_hub's
    whole multi-line explanation."""
    response = getattr(e, "response", None)
    try:
        return f"{type(e).__name__}: HTTP {response.status_code} from {response.url}"
    except (AttributeError, RuntimeError):  # no response, or an httpx response without its request
        return _first_line(e)


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


def _not_found_message(raw: str, looked: list[str], cache: Path, what: str, options: LoadOptions,
                       unreachable: bool = False) -> str:
    places = "\n".join(f"  - {line}" for line in looked)
    if options.offline:
        how = "unset HF_HUB_OFFLINE (and pass local_files_only=False) to download it now"
    elif unreachable:
        how = "check the network connection (and HF_ENDPOINT, if it is set) and try again"
    else:
        how = "check the name"
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
