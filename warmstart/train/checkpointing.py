"""Training checkpoints: written all-or-nothing every N steps, and resumed exactly.

A checkpoint is a folder ``OUTPUT/checkpoints/step-00000300`` holding everything the next step depends on:

- the model in transformers' layout (``config.json``, ``model.safetensors``) and the tokenizer, so a checkpoint
  is also a usable model folder (``warmstart generate OUTPUT/checkpoints/step-00000300``);
- ``optimizer.pt`` and ``scheduler.pt`` (their ``state_dict()``s);
- ``rng_state.pt``: python / numpy / torch (CPU and CUDA) generator states of every rank, so dropout draws
  continue as if the run had never stopped;
- ``trainer_state.json``: the step, the data position (epoch + micro-batches of that epoch already consumed,
  an index into the seeded, deterministic batch order), the log so far, and the run's *settings*.

Each folder is written through `warmstart.checkpoint.atomic_save`: a kill at any moment leaves the previous
checkpoints intact and this one either complete or absent. Resuming compares the checkpoint's settings with the
current run's and refuses, naming every difference, when they disagree (another run's checkpoint, a changed
learning rate, a different data file...), before any training happens.
"""
from __future__ import annotations

import json
import os
import random
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..storage.atomic import atomic_save

__all__ = ["TrainerState", "CheckpointMismatch", "capture_rng", "restore_rng", "checkpoint_dir", "list_checkpoints",
           "latest_checkpoint", "save_checkpoint", "read_checkpoint", "settings_differences", "prune_checkpoints",
           "STATE_FILE"]

CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.pt"
SCHEDULER_FILE = "scheduler.pt"
RNG_FILE = "rng_state.pt"
_STEP_DIR = re.compile(r"step-(\d{8,})")
FORMAT_VERSION = 1


class CheckpointMismatch(ValueError):
    """A checkpoint cannot be resumed by this run: another run's, or written with different settings."""


@dataclass
class TrainerState:
    """Where training stands after `global_step` optimizer steps."""

    global_step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # micro-batches of `epoch` already consumed (this rank's share of the batch order)
    tokens_seen: int = 0  # real (non-padding) source + target tokens over all ranks
    log_history: list[dict] = field(default_factory=list)


# -- random number generators ----------------------------------------------------------------------
def capture_rng() -> dict[str, Any]:
    """This process's generator states, in a form `torch.load(weights_only=True)` reads back."""
    version, keys, gauss = random.getstate()
    np_state = np.random.get_state(legacy=True)
    state = {
        "python": [version, list(keys), gauss],
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    version, keys, gauss = state["python"]
    random.setstate((version, tuple(keys), gauss))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        if len(state["cuda"]) != torch.cuda.device_count():
            raise CheckpointMismatch(f"the checkpoint holds CUDA generator states of {len(state['cuda'])} devices but "
                                     f"this machine has {torch.cuda.device_count()}: dropout could not continue "
                                     f"exactly")
        torch.cuda.set_rng_state_all(state["cuda"])


# -- finding checkpoints ---------------------------------------------------------------------------
def checkpoint_dir(output_dir: str | os.PathLike, step: int) -> Path:
    return Path(output_dir) / CHECKPOINTS / f"step-{step:08d}"


def list_checkpoints(output_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """(step, folder) of the complete checkpoints under `output_dir`, oldest first. Atomic saves mean a folder
    with the step-N name is complete; the hidden work folders of an interrupted save are not listed."""
    root = Path(output_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.fullmatch(p.name)) and p.is_dir()]
    return sorted(found)


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    found = list_checkpoints(output_dir)
    return found[-1][1] if found else None


def prune_checkpoints(output_dir: str | os.PathLike, keep: int | None) -> None:
    """Delete all but the newest `keep` checkpoints (None or 0: keep all). Each is renamed aside first, so an
    interrupted delete never leaves a half-deleted folder under a step-N name."""
    if not keep:
        return
    for _, folder in list_checkpoints(output_dir)[:-keep]:
        trash = folder.with_name(f".{folder.name}.deleting")
        shutil.rmtree(trash, ignore_errors=True)
        os.rename(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)


# -- writing ---------------------------------------------------------------------------------------
def save_checkpoint(folder: str | os.PathLike, *, model, tokenizer, optimizer: torch.optim.Optimizer, scheduler,
                    state: TrainerState, settings: dict[str, Any], rng_states: list[dict[str, Any]],
                    param_names: list[str]) -> Path:
    """Write one checkpoint folder all-or-nothing (see the module docstring for its contents)."""
    folder = Path(folder)

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        torch.save(optimizer.state_dict(), tmp / OPTIMIZER_FILE)
        torch.save(scheduler.state_dict(), tmp / SCHEDULER_FILE)
        torch.save({"ranks": rng_states}, tmp / RNG_FILE)
        record = {"format_version": FORMAT_VERSION, **asdict(state), "settings": settings,
                  "param_names": param_names}
        (tmp / STATE_FILE).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")

    atomic_save(folder, write)
    return folder


# -- reading ---------------------------------------------------------------------------------------
def settings_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Human-readable `name: saved -> current` lines for every setting that differs."""
    lines = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key, "<absent>"), current.get(key, "<absent>")
        if a != b:
            lines.append(f"{key}: {a!r} in the checkpoint, {b!r} now")
    return lines


def read_checkpoint(folder: str | os.PathLike, settings: dict[str, Any], device: torch.device | str = "cpu"
                    ) -> tuple[TrainerState, dict[str, Any]]:
    """The state of a checkpoint folder and its tensors (`optimizer`, `scheduler`, `rng` per rank,
    `param_names`), after checking that it is a complete training checkpoint whose settings equal `settings`.

    Raises CheckpointMismatch (a ValueError) naming the problem otherwise.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointMismatch(f"cannot resume from {folder}: no such folder")
    record_file = folder / STATE_FILE
    if not record_file.is_file():
        raise CheckpointMismatch(f"cannot resume from {folder}: it has no {STATE_FILE}, so it is not a warmstart "
                                 f"training checkpoint (a model folder? then pass it as the model to start from)")
    try:
        record = json.loads(record_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointMismatch(f"cannot resume from {folder}: {STATE_FILE} is not valid JSON ({e})") from None
    if record.get("format_version") != FORMAT_VERSION:
        raise CheckpointMismatch(f"cannot resume from {folder}: checkpoint format {record.get('format_version')!r}, "
                                 f"this version of warmstart reads format {FORMAT_VERSION}")
    diffs = settings_differences(record.get("settings", {}), settings)
    if diffs:
        raise CheckpointMismatch(
            f"cannot resume from {folder}: it was written by a run with different settings, so resuming would not "
            f"continue that run:\n  " + "\n  ".join(diffs)
            + "\nResume with the checkpoint's settings, or start a new run in another --output-dir")
    missing = [n for n in (OPTIMIZER_FILE, SCHEDULER_FILE, RNG_FILE) if not (folder / n).is_file()]
    if missing:
        raise CheckpointMismatch(f"cannot resume from {folder}: {missing} missing (files deleted by hand?)")
    tensors = {
        "optimizer": torch.load(folder / OPTIMIZER_FILE, map_location=device, weights_only=True),
        "scheduler": torch.load(folder / SCHEDULER_FILE, weights_only=True),
        "rng": torch.load(folder / RNG_FILE, weights_only=True)["ranks"],
        "param_names": record.get("param_names", []),
    }
    names = {f.name for f in TrainerState.__dataclass_fields__.values()}
    state = TrainerState(**{k: v for k, v in record.items() if k in names})
    return state, tensors
