"""``warmstart convert SRC OUT``: TF or Flax weights -> a transformers-layout PyTorch folder.

SRC is an original google-research/bert folder (``bert_config.json``, ``vocab.txt``, ``bert_model.ckpt.*``), a
TF-Hub bertseq2seq bundle, or a Hugging Face folder holding only ``tf_model.h5`` or ``flax_model.msgpack``. The
weights are read without TensorFlow or JAX (``checkpoint/foreign.py``) and fitted into our PyTorch class by the
loader ``from_pretrained`` uses, so nothing is silently dropped or invented: a missing backbone weight is an
error, a new head is reported. The class's ``save_pretrained`` writes the layout transformers loads. Tokenizer
files come along: a google folder's ``vocab.txt`` becomes a BERT tokenizer with the checkpoint's casing; an HF
folder's files are copied.

The class is read off the checkpoint when it says (config.json's ``architectures``), else off the heads a TF1
checkpoint holds: pretraining heads, a classifier (its label count from ``output_weights``), a SQuAD head, or
none (the bare encoder). ``architecture=`` overrides it (a token classifier looks like a sequence classifier).
"""
from __future__ import annotations

import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .checkpoint.foreign import detect_foreign, read_foreign, tf1_config_file
from .checkpoint.tf1_bundle import TF1Checkpoint
from .checkpoint.tf1_layout import is_hub_bundle, is_optimizer_state
from .storage.files import CONFIG_NAME, GOOGLE_CONFIG_NAME, read_json

__all__ = ["ConversionSummary", "convert_checkpoint", "detect_architecture", "vocab_is_cased"]

log = logging.getLogger("warmstart")

# v4's Flax / TF class names whose PyTorch class is named otherwise.
_PYTORCH_NAMES = {"BertForCausalLM": "BertLMHeadModel"}
# Tokenizer files of an HF folder, copied as they are.
_TOKENIZER_FILES = ("vocab.txt", "vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json",
                    "special_tokens_map.json", "added_tokens.json", "spiece.model", "sentencepiece.bpe.model")
_SPECIAL = re.compile(r"^\[[A-Za-z0-9_]+\]$|^<[^>]+>$")


@dataclass
class ConversionSummary:
    source: str
    kind: str
    architecture: str
    out: str
    mapped: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    new: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    tokenizer: str = "none"

    def lines(self) -> list[str]:
        out = [f"converted {self.source} ({self.kind}) -> {self.out} as {self.architecture}",
               f"  mapped: {self.mapped} tensors"]
        reasons: dict[str, list[str]] = {}
        for name, why in self.skipped.items():
            reasons.setdefault(why, []).append(name)
        for why, names in sorted(reasons.items()):
            out.append(f"  skipped: {len(names)} ({why}), e.g. {', '.join(sorted(names)[:3])}")
        if self.unused:
            out.append(f"  not used by {self.architecture}: {len(self.unused)}: {_few(self.unused)}")
        out.append(f"  newly initialised (train before use): {_few(self.new) if self.new else 'none'}")
        out.append(f"  tokenizer: {self.tokenizer}")
        return out


def _few(names: list[str], n: int = 6) -> str:
    return ", ".join(names[:n]) + (f" ... (+{len(names) - n} more)" if len(names) > n else "")


# ---- what the checkpoint is ------------------------------------------------------------------------------------
def detect_architecture(names, shapes: dict[str, tuple[int, ...]] | None = None) -> tuple[str, dict[str, Any]]:
    """(PyTorch class name, config fields it needs) for a TF1 checkpoint's tensor names."""
    names = {n for n in names if not is_optimizer_state(n)}
    shapes = shapes or {}
    if is_hub_bundle(names):  # TF-Hub bertseq2seq: encoder and decoder stacks (or one shared stack)
        return "EncoderDecoderModel", {}
    if "cls/squad/output_weights" in names:
        return "BertForQuestionAnswering", {}
    if "output_weights" in names:
        labels = shapes.get("output_weights", (2,))[0]
        return "BertForSequenceClassification", {"num_labels": int(labels)}
    has_mlm = any(n.startswith("cls/predictions/") for n in names)
    has_nsp = any(n.startswith("cls/seq_relationship/") for n in names)
    if has_mlm and has_nsp:
        return "BertForPreTraining", {}
    if has_mlm:
        return "BertForMaskedLM", {}
    if has_nsp:
        return "BertForNextSentencePrediction", {}
    return "BertModel", {}


def vocab_is_cased(vocab_file: Path) -> bool:
    """True when the vocabulary keeps capitals (a cased model): more than 0.1% of its plain tokens change when
    lower-cased. (bert-base-uncased's vocab holds "ℝ", which Unicode calls upper case but which has no lower case;
    a cased vocab has thousands of capitalised words.)"""
    plain = changed = 0
    with open(vocab_file, encoding="utf-8") as f:
        for line in f:
            token = line.rstrip("\n").strip()
            if token and not _SPECIAL.match(token):
                plain += 1
                changed += token.lower() != token
    return changed > 0.001 * plain


# google-research's released models by folder name (its tokenization.py checks the same names).
_LOWER_CASED_MODELS = ("uncased_L-24_H-1024_A-16", "uncased_L-12_H-768_A-12", "multilingual_L-12_H-768_A-12",
                       "chinese_L-12_H-768_A-12")
_CASED_MODELS = ("cased_L-12_H-768_A-12", "cased_L-24_H-1024_A-16", "multi_cased_L-12_H-768_A-12")


def _casing(folder: Path, lowercase: bool | None) -> tuple[bool, str]:
    """(do_lower_case, how it was decided): as asked, else by google's model name, else from the vocabulary."""
    if lowercase is not None:
        return lowercase, "as asked"
    if folder.name in _LOWER_CASED_MODELS or folder.name in _CASED_MODELS:
        return folder.name in _LOWER_CASED_MODELS, f"google's {folder.name}"
    return not vocab_is_cased(folder / "vocab.txt"), "from the vocabulary"


def _pytorch_class(name: str):
    from . import models

    name = _PYTORCH_NAMES.get(name, name)
    cls = getattr(models, name, None)
    if cls is None or not hasattr(cls, "from_pretrained"):
        raise ValueError(f"unknown architecture {name!r}: name a PyTorch class of warmstart (BertModel, "
                         "BertForSequenceClassification, EncoderDecoderModel, ...)")
    return cls


def _tf1_config(prefix: Path, config_arg, cls, fields: dict[str, Any]):
    """The config to build a TF1 conversion with: ``config`` (a file or folder), else the one beside it."""
    from .config.auto import config_class_for

    given = Path(config_arg) if config_arg is not None else None
    source = given if given is not None and not given.is_dir() else tf1_config_file(given or prefix)
    if source is None:
        raise FileNotFoundError(f"no {CONFIG_NAME} or {GOOGLE_CONFIG_NAME} in {str(given or prefix.parent)!r}: "
                                "pass --config")
    data = read_json(source)
    if cls.__name__ == "EncoderDecoderModel" and data.get("model_type") != "encoder-decoder":
        return _bert_generation_pair(data)
    config = config_class_for(data.pop("model_type", "bert"), str(source)).from_dict(data)  # google's names none
    for key, value in fields.items():
        setattr(config, key, value)
    return config


def _bert_generation_pair(data: dict[str, Any]):
    """A bertseq2seq bundle described by one BERT config: a BertGeneration encoder and decoder of that size."""
    from .config.bert import BertGenerationConfig
    from .config.encoder_decoder import EncoderDecoderConfig

    keep = {k: v for k, v in data.items() if k not in ("model_type", "type_vocab_size", "architectures")}
    encoder = BertGenerationConfig(**keep)
    decoder = BertGenerationConfig(**keep, is_decoder=True, add_cross_attention=True)
    return EncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)


# ---- the conversion --------------------------------------------------------------------------------------------
def convert_checkpoint(src: str | os.PathLike, out: str | os.PathLike, *, architecture: str | None = None,
                       config: str | os.PathLike | None = None, lowercase: bool | None = None,
                       overwrite: bool = False, progress: bool = True) -> ConversionSummary:
    src, out = Path(src), Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise FileExistsError(f"{str(out)!r} exists and is not empty; choose another folder or pass --overwrite")
    kind, location = detect_foreign(src)  # tf_model.h5, a TF1 checkpoint, msgpack, or TF / Flax safetensors

    if kind == "tf1":
        ckpt = TF1Checkpoint(location)
        found, fields = detect_architecture(ckpt.entries, {n: e.shape for n, e in ckpt.entries.items()})
        cls = _pytorch_class(architecture or found)
        # The label count read off output_weights holds for any head that names its layer `classifier`.
        model_config = _tf1_config(location, config, cls, fields)
    else:
        data = read_json(Path(config) if config is not None else location / CONFIG_NAME)
        named = (data.get("architectures") or [None])[0]
        cls = _pytorch_class(architecture or (named or "").removeprefix("TF").removeprefix("Flax") or "BertModel")
        model_config = cls.config_class.from_dict({k: v for k, v in data.items() if k != "model_type"})

    composite = cls.__name__ == "EncoderDecoderModel"
    side = "decoder" if getattr(model_config, "is_decoder", False) else "encoder"
    weights = read_foreign(kind, location, sides={s: s for s in ("encoder", "decoder")} if composite else None,
                           side=side, progress=progress)
    from .checkpoint.pretrained import numpy_to_torch

    state = {k: numpy_to_torch(k, v) for k, v in weights.state.items()}
    model, info = cls.from_pretrained(None, config=model_config, state_dict=state, output_loading_info=True)
    summary = ConversionSummary(source=str(src), kind=kind, architecture=cls.__name__, out=str(out),
                                mapped=len(state) - len(info["unexpected_keys"]), skipped=weights.skipped,
                                new=list(info["missing_keys"]), unused=list(info["unexpected_keys"]))

    from .storage.atomic import atomic_save

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp)
        summary.tokenizer = _write_tokenizer(weights.folder, tmp, lowercase)

    atomic_save(out, write)  # with --overwrite the old folder is replaced whole, or kept if anything fails
    return summary


def _write_tokenizer(folder: Path, tmp: Path, lowercase: bool | None) -> str:
    copied = [n for n in _TOKENIZER_FILES if (folder / n).is_file()]
    if (folder / "tokenizer_config.json").is_file() or (folder / "tokenizer.json").is_file():
        for name in copied:
            shutil.copyfile(folder / name, tmp / name)
        return "copied " + ", ".join(copied)
    if not (folder / "vocab.txt").is_file():
        return "none (no vocab.txt beside the checkpoint)"
    from .tokenizers.wordpiece import BertTokenizerFast

    lower, how = _casing(folder, lowercase)
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=lower)
    tokenizer.save_pretrained(tmp)
    return f"BertTokenizerFast from vocab.txt, do_lower_case={lower} ({how})"
