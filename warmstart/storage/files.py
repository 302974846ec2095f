"""What every reader and writer of a checkpoint folder shares: file names, error types, the JSON reader.

Kept apart so that `weights` (finding weight files), `atomic` (replacing whole folders), the configs and the
tokenizers can all use them without importing each other.
"""
from __future__ import annotations

import json
import os
import re

__all__ = [
    "CheckpointError",
    "CheckpointNotFoundError",
    "SAFE_WEIGHTS",
    "SAFE_INDEX",
    "BIN_WEIGHTS",
    "BIN_INDEX",
    "FLAX_WEIGHTS",
    "FLAX_INDEX",
    "TF_WEIGHTS",
    "TF_INDEX",
    "is_weights_file",
    "read_json",
    "CONFIG_NAME",
    "GOOGLE_CONFIG_NAME",
]

CONFIG_NAME = "config.json"
# google-research/bert's config (no model_type; always a BERT), beside its TF1 checkpoints.
GOOGLE_CONFIG_NAME = "bert_config.json"

SAFE_WEIGHTS = "model.safetensors"
SAFE_INDEX = "model.safetensors.index.json"
BIN_WEIGHTS = "pytorch_model.bin"
BIN_INDEX = "pytorch_model.bin.index.json"
FLAX_WEIGHTS = "flax_model.msgpack"
FLAX_INDEX = "flax_model.msgpack.index.json"
TF_WEIGHTS = "tf_model.h5"
TF_INDEX = "tf_model.h5.index.json"
# Every name a transformers-style save of the weights can produce; used to tell a caller's own
# files (README, tokenizer, config) from weights when an old folder is replaced.
_WEIGHT_FILE_RE = re.compile(
    r"(model\.safetensors(\.index\.json)?|model-\d{5}-of-\d{5}\.safetensors"
    r"|pytorch_model\.bin(\.index\.json)?|pytorch_model-\d{5}-of-\d{5}\.bin"
    r"|flax_model\.msgpack(\.index\.json)?|flax_model-\d{5}-of-\d{5}\.msgpack"
    r"|tf_model\.h5(\.index\.json)?|tf_model-\d{5}-of-\d{5}\.h5"
    r"|saved_model)"  # the folder save_pretrained(saved_model=True) writes: stale weights once others are saved
)


class CheckpointError(OSError):
    """A checkpoint folder or file is unreadable, unsafe, ambiguous or inconsistent."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The folder holds no weights file in any layout we read."""


def is_weights_file(name: str) -> bool:
    """True for the file names a weights save owns (single files, shards, indexes)."""
    return _WEIGHT_FILE_RE.fullmatch(name) is not None


def read_json(path: str | os.PathLike, error: type[Exception] = ValueError) -> dict:
    """The one reader of the small JSON files a checkpoint folder holds (config.json, tokenizer_config.json, ...).

    ``error`` is the exception type the caller's users expect (configs raise ConfigError, a ValueError).
    """
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise error(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data
