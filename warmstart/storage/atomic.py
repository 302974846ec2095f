"""All-or-nothing replacement of a checkpoint folder, safe against a kill at any moment.

`atomic_directory` hands out a fresh directory and swaps it in for the target folder when the
block ends; `recover_interrupted_save` repairs a swap that a killed process left half done.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from .files import BIN_INDEX, FLAX_INDEX, SAFE_INDEX, TF_INDEX, CheckpointError, is_weights_file

__all__ = ["atomic_save", "atomic_directory", "recover_interrupted_save"]

T = TypeVar("T")


def atomic_save(folder: str | os.PathLike, write_fn: Callable[[Path], T]) -> T:
    """Call `write_fn(tmp_dir)` to write a whole checkpoint, then swap it in at `folder` atomically.

    Returns what `write_fn` returns. Files of the old folder that `write_fn` did not write are
    carried over (old weight files are dropped if `write_fn` wrote weights). See `atomic_directory`.
    """
    with atomic_directory(folder) as tmp:
        return write_fn(tmp)


# ----------------------------------------------------------------------------------------------
# All-or-nothing folder replacement
# ----------------------------------------------------------------------------------------------
# Why rename-aside and not a directory-symlink flip: the flip is one atomic call, but it turns the
# user's folder into a symlink (surprising for cp/rsync/upload tools, needs privileges on Windows)
# and cannot turn an existing real folder into one atomically anyway. Rename-aside keeps a plain
# folder; its one non-atomic moment (old moved aside, new not yet in place) is repaired by
# `recover_interrupted_save`, which every loader runs first.
#
# Saving to parent/name, under the per-folder lock file `.name.ws-lock` (only saves and repairs
# take it, so under it any leftover belongs to a dead save):
#   1. restore an interrupted swap; delete leftovers of killed saves;
#   2. write into a fresh sibling `.name.ws-tmp-<id>`, carry over the old folder's other files,
#      fsync every file and directory;
#   3. rename name -> `.name.ws-old-<id>`, rename tmp -> name, fsync the parent;
#   4. rename old -> `.name.ws-trash-<id>` and delete that. A partial delete thus only ever hits a
#      `trash` dir, so an `old` dir is always complete and recovery can trust it.
# A SIGKILL at any point leaves `name` complete-old, complete-new, or missing beside a complete old.
_ACTIVE_TMP: set[str] = set()  # tmp dirs of saves in progress in this process
_SAVING: set[tuple[int, str]] = set()  # (thread, folder) saves in progress: nesting would deadlock
_STATE_LOCK = threading.Lock()


def _real_target(folder: str | os.PathLike) -> Path:
    # realpath: saving through a symlinked folder replaces the folder it points to, not the link.
    target = Path(os.path.realpath(folder))
    if target == target.parent:
        raise ValueError(f"Cannot save a checkpoint as the file system root {str(folder)!r}")
    return target


def _sibling(target: Path, kind: str) -> Path:
    # Fixed-width hex time first, so sorting `old` dirs by name sorts them by age.
    return target.with_name(f".{target.name}.ws-{kind}-{time.time_ns():016x}{secrets.token_hex(4)}")


def _leftovers(target: Path, kind: str | None = None) -> list[Path]:
    pattern = re.compile(rf"\.{re.escape(target.name)}\.ws-(tmp|old|trash)-[0-9a-f]{{24}}")
    try:
        names = sorted(os.listdir(target.parent))
    except OSError:
        return []
    return [target.parent / n for n in names
            if (m := pattern.fullmatch(n)) and kind in (None, m.group(1))]


@contextlib.contextmanager
def _folder_lock(target: Path) -> Iterator[bool]:
    """Hold the cross-process lock of one folder; yield False where locking is impossible
    (no fcntl on Windows, a read-only parent, a file system without locks)."""
    try:
        import fcntl
    except ImportError:
        yield False
        return
    try:
        fd = os.open(target.with_name(f".{target.name}.ws-lock"), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            locked = True
        except OSError:
            locked = False
        yield locked
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _restore_old(target: Path) -> bool:
    if os.path.lexists(target):
        return False
    olds = _leftovers(target, "old")
    if not olds:
        return False
    os.rename(olds[-1], target)  # the newest: older ones can only be stale
    _fsync_dir(target.parent)
    return True


def recover_interrupted_save(folder: str | os.PathLike) -> bool:
    """If a save was killed between its two renames, put the old checkpoint back at `folder`.

    Cheap when there is nothing to do (one stat). Returns True when it restored something.
    """
    target = Path(os.path.realpath(folder))
    if os.path.lexists(target) or not _leftovers(target, "old"):
        return False
    with _STATE_LOCK:
        if (threading.get_ident(), str(target)) in _SAVING:
            return False  # our own save is mid-swap; it repairs itself
    with _folder_lock(target):
        try:
            return _restore_old(target)
        except OSError:
            return False  # read-only parent, or another process restored it first


@contextlib.contextmanager
def atomic_directory(folder: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh empty directory; when the block exits normally it replaces `folder` at once.

    Readers see the complete old folder or the complete new one, even if this process is killed
    at any moment. Files of the old folder that the block did not write are carried over; if the
    block wrote weights, old weight files (another layout, stale shards) are not. If the block
    raises, the new directory is deleted and `folder` is untouched.
    """
    target = _real_target(folder)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"Cannot save a checkpoint to {str(folder)!r}: it is a file, not a folder")
    try:
        cwd = Path(os.getcwd())
    except OSError:
        cwd = None
    if cwd is not None and (cwd == target or target in cwd.parents):
        raise ValueError(
            f"Cannot replace {str(folder)!r}: it is (or contains) the current working directory; "
            f"save to a sub-folder or change directory first"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    # Other threads and processes wait for the folder lock; the same thread would wait forever.
    me = (threading.get_ident(), str(target))
    with _STATE_LOCK:
        if me in _SAVING:
            raise RuntimeError(f"A save into {str(target)!r} is already in progress in this thread")
        _SAVING.add(me)
    try:
        with _folder_lock(target) as locked:
            _restore_old(target)
            if locked:  # without the lock a leftover might be another process's live save
                for path in _leftovers(target):
                    shutil.rmtree(path, ignore_errors=True)
            tmp = _sibling(target, "tmp")
            try:
                os.mkdir(tmp)
            except OSError as e:
                raise CheckpointError(
                    f"Cannot save {str(folder)!r} atomically: the new checkpoint is built beside it, "
                    f"in {str(target.parent)!r}, and that failed ({e}). Make that folder writable, "
                    f"or save without atomicity (save_state_dict(..., atomic=False))."
                ) from e
            with _STATE_LOCK:
                _ACTIVE_TMP.add(str(tmp))
            try:
                yield tmp
                if target.is_dir():
                    shutil.copymode(target, tmp)
                    _carry_over(target, tmp)
                _fsync_tree(tmp)
                _swap_in(tmp, target)
            finally:
                with _STATE_LOCK:
                    _ACTIVE_TMP.discard(str(tmp))
                shutil.rmtree(tmp, ignore_errors=True)
                _restore_old(target)  # an exception between the two renames
    finally:
        with _STATE_LOCK:
            _SAVING.discard(me)


def _inside_atomic_save(folder: str | os.PathLike) -> bool:
    real = os.path.realpath(folder)
    with _STATE_LOCK:
        return any(real == t or real.startswith(t + os.sep) for t in _ACTIVE_TMP)


def _swap_in(tmp: Path, target: Path) -> None:
    if not os.path.lexists(target):
        os.rename(tmp, target)
        _fsync_dir(target.parent)
        return
    old = _sibling(target, "old")
    os.rename(target, old)
    # Killed here, there is no `target`: recover_interrupted_save renames `old` back.
    os.rename(tmp, target)
    _fsync_dir(target.parent)
    trash = _sibling(target, "trash")
    os.rename(old, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _carry_over(old: Path, new: Path) -> None:
    """Bring the old folder's other files (README, tokenizer files, ...) into the new one.

    A name the new save wrote wins whole (directories are not merged). Files are hard-linked
    when possible: instant and no extra space, and nothing here ever modifies a file in place.
    """
    written = set(os.listdir(new))
    skip = set(written)
    if any(is_weights_file(n) for n in written):
        skip |= {n for n in os.listdir(old) if is_weights_file(n)} | _indexed_shards(old)
    for entry in os.scandir(old):
        if entry.name not in skip and not entry.name.endswith(".ws-part"):
            _link_or_copy(Path(entry.path), new / entry.name)


def _indexed_shards(folder: Path) -> set[str]:
    """Top-level shard names an old index refers to, even ones not named like ours."""
    names: set[str] = set()
    for index in (SAFE_INDEX, BIN_INDEX, FLAX_INDEX, TF_INDEX):
        try:
            weight_map = json.loads((folder / index).read_text(encoding="utf-8"))["weight_map"]
            names |= {v for v in weight_map.values() if isinstance(v, str) and Path(v).name == v}
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            continue  # no index, or a broken one: nothing to drop
    return names


def _link_or_copy(src: Path, dst: Path) -> None:
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)  # relative links keep their meaning: same depth
    elif src.is_dir():
        os.mkdir(dst)
        shutil.copymode(src, dst)
        for entry in os.scandir(src):
            _link_or_copy(Path(entry.path), dst / entry.name)
    else:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)


def _fsync_tree(root: Path) -> None:
    """Flush the new folder before it becomes visible, so that after a power cut it cannot appear
    with empty files. (A killed process needs no fsync: the kernel still writes its data.)"""
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                _fsync_path(path)
        _fsync_dir(dirpath)


def _fsync_path(path: str | os.PathLike) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # directories cannot be opened on Windows; nothing to flush there
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems (and directories on some platforms) refuse fsync
    finally:
        os.close(fd)


_fsync_dir = _fsync_path
