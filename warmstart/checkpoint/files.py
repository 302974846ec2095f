"""What both halves of checkpoint I/O share: the weight file names and the error types.

Kept apart so that `io` (reading and writing weights) and `atomic` (replacing whole folders)
can both use them without importing each other.
"""
from __future__ import annotations

import re

__all__ = [
    "CheckpointError",
    "CheckpointNotFoundError",
    "SAFE_WEIGHTS",
    "SAFE_INDEX",
    "BIN_WEIGHTS",
    "BIN_INDEX",
    "is_weights_file",
]

SAFE_WEIGHTS = "model.safetensors"
SAFE_INDEX = "model.safetensors.index.json"
BIN_WEIGHTS = "pytorch_model.bin"
BIN_INDEX = "pytorch_model.bin.index.json"
# Every name a transformers-style save of the weights can produce; used to tell a caller's own
# files (README, tokenizer, config) from weights when an old folder is replaced.
_WEIGHT_FILE_RE = re.compile(
    r"(model\.safetensors(\.index\.json)?|model-\d{5}-of-\d{5}\.safetensors"
    r"|pytorch_model\.bin(\.index\.json)?|pytorch_model-\d{5}-of-\d{5}\.bin)"
)


class CheckpointError(OSError):
    """A checkpoint folder or file is unreadable, unsafe, ambiguous or inconsistent."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The folder holds no weights file in any layout we read."""


def is_weights_file(name: str) -> bool:
    """True for the file names a weights save owns (single files, shards, indexes)."""
    return _WEIGHT_FILE_RE.fullmatch(name) is not None
