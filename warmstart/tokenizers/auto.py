"""AutoTokenizer: choose the tokenizer class for a saved folder, as transformers' AutoTokenizer does.

The class is read, in order, from tokenizer_config.json's `tokenizer_class`, from config.json's
`model_type` (its family record names the tokenizer; for an encoder-decoder config, the encoder's), and
finally from the vocabulary files present. With use_fast=True (the default) a class's *Fast variant is used
when one exists. Classes from sentencepiece.py / bpe.py are imported only when needed.
"""

from __future__ import annotations

import importlib
import os

from ..families import FAMILIES
from ..storage.options import LoadOptions
from .base_io import RESOLVED_FOLDER_KWARG, TOKENIZER_CONFIG_FILE, _read_json, files_in, resolve_folder

# class name -> module (relative to this package) that defines it
TOKENIZER_CLASSES = {
    "BertTokenizer": ".wordpiece",
    "BertTokenizerFast": ".wordpiece",
    "BertGenerationTokenizer": ".sentencepiece",
    "GPT2Tokenizer": ".bpe",
    "GPT2TokenizerFast": ".bpe",
    "RobertaTokenizer": ".bpe",
    "RobertaTokenizerFast": ".bpe",
    "PreTrainedTokenizerFast": ".base_fast",
}

# transformers v5 writes these generic names for tokenizer.json-backed tokenizers
_ALIASES = {"TokenizersBackend": "PreTrainedTokenizerFast"}

# model_type -> tokenizer class name, as the family records declare it
MODEL_TYPE_TO_TOKENIZER = {t: f.tokenizer for t, f in FAMILIES.items() if f.tokenizer}

# (files that must all be present, class) in order of preference, for folders with no config at all
_FILE_HINTS = (
    (("vocab.txt",), "BertTokenizer"),
    (("spiece.model",), "BertGenerationTokenizer"),
    (("vocab.json", "merges.txt"), "GPT2Tokenizer"),
    (("tokenizer.json",), "PreTrainedTokenizerFast"),
)


def tokenizer_class_from_name(name: str, use_fast: bool = True):
    """'BertTokenizer' -> the class (its Fast variant when use_fast and one exists)."""
    name = _ALIASES.get(name, name)
    if use_fast and not name.endswith("Fast") and name + "Fast" in TOKENIZER_CLASSES:
        name += "Fast"
    elif not use_fast and name.endswith("Fast") and name[:-4] in TOKENIZER_CLASSES:
        name = name[:-4]
    module = TOKENIZER_CLASSES.get(name)
    if module is None:
        raise ValueError(f"Unknown tokenizer class {name!r}; warmstart provides {sorted(TOKENIZER_CLASSES)}")
    try:
        return getattr(importlib.import_module(module, __package__), name)
    except (ImportError, AttributeError) as err:
        raise ImportError(f"Tokenizer class {name} (warmstart.tokenizers{module}) is not available: {err}") from err


class AutoTokenizer:
    """Not instantiable: use `AutoTokenizer.from_pretrained(folder_or_repo_id)`."""

    def __init__(self):
        raise TypeError("AutoTokenizer is not instantiable; use AutoTokenizer.from_pretrained(path)")

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *inputs, use_fast: bool = True, **kwargs):
        path = os.fspath(pretrained_model_name_or_path)
        folder = resolve_folder(path, LoadOptions.of(LoadOptions.peek(kwargs)))
        resolve = files_in(folder)
        name = kwargs.pop("tokenizer_type", None)
        name = name if name is None else MODEL_TYPE_TO_TOKENIZER.get(name, name)
        if name is None:
            name = _read_json(resolve(TOKENIZER_CONFIG_FILE)).get("tokenizer_class")
        if name is None:
            name = _name_from_model_config(_read_json(resolve("config.json")))
        if name is None:
            for files, candidate in _FILE_HINTS:
                if all(resolve(f) for f in files):
                    name = candidate
                    break
        if name is None:
            raise ValueError(
                f"Cannot tell which tokenizer {path!r} needs: no tokenizer_class in tokenizer_config.json, no known "
                f"model_type in config.json ({sorted(MODEL_TYPE_TO_TOKENIZER)}), and no known vocabulary files"
            )
        # The class gets the user's name (kept as name_or_path) and the folder found for it, so it need not
        # resolve the name again.
        return tokenizer_class_from_name(name, use_fast).from_pretrained(path, *inputs, **kwargs,
                                                                         **{RESOLVED_FOLDER_KWARG: folder})


def _name_from_model_config(config: dict) -> str | None:
    model_type = config.get("model_type")
    if model_type == "encoder-decoder":  # an EncoderDecoderModel folder: its inputs go to the encoder
        model_type = (config.get("encoder") or {}).get("model_type")
    if model_type is None:
        return None
    if model_type not in MODEL_TYPE_TO_TOKENIZER:
        raise ValueError(f"No tokenizer for model_type {model_type!r}; known: {sorted(MODEL_TYPE_TO_TOKENIZER)}")
    return MODEL_TYPE_TO_TOKENIZER[model_type]
