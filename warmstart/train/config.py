"""TrainingConfig: every setting of a `warmstart train` run, checked before anything is loaded.

Field names follow transformers' TrainingArguments / Seq2SeqTrainingArguments where one exists
(``learning_rate``, ``gradient_accumulation_steps``, ``warmup_steps``, ``max_grad_norm``, ``save_steps``,
``save_total_limit``, ``eval_steps``, ``logging_steps``, ``seed``, ``bf16``, ``gradient_checkpointing``...), and so
do the defaults (weight decay 0, betas 0.9/0.999, eps 1e-8, clipping at 1.0, a linear schedule), so a comparison
with transformers' Trainer uses the same numbers without restating them.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

__all__ = ["TrainingConfig", "SCHEDULERS"]

SCHEDULERS = ("linear", "cosine", "constant")

# Settings a resumed run may change: they steer where things go and how often they are reported, not the sequence
# of parameter updates. Every other field must equal the checkpoint's (see TrainingConfig.resume_settings); for
# train_file that is its contents (train_data_sha256), not its path.
_FREE_ON_RESUME = {"output_dir", "eval_file", "eval_steps", "eval_before", "eval_examples", "eval_batch_size",
                   "num_beams", "max_new_tokens", "no_repeat_ngram_size", "logging_steps", "save_steps",
                   "save_total_limit", "resume", "overwrite_output_dir", "device", "progress", "verbose",
                   "gradient_checkpointing", "compile", "train_file"}


@dataclass
class TrainingConfig:
    output_dir: str
    train_file: str
    eval_file: str | None = None
    # where the model comes from: encoder (+ decoder, default the same) checkpoints, or an EncoderDecoderModel folder
    encoder: str | None = None
    decoder: str | None = None
    model: str | None = None
    from_scratch: bool = False  # same architecture as encoder/decoder, random weights (the paper's baseline)
    tie_encoder_decoder: bool = False  # the paper's "share" variant: one set of weights for both sides
    tokenizer: str | None = None  # default: the model folder, else the encoder's
    decoder_tokenizer: str | None = None  # default: the tokenizer, or the decoder's own when it is another family
    # data
    source_column: str = "source"
    target_column: str = "target"
    max_source_length: int | None = 128
    max_target_length: int | None = 128
    # optimisation
    batch_size: int = 16  # per process
    gradient_accumulation_steps: int = 1
    learning_rate: float = 5e-5
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0  # 0: no clipping
    lr_scheduler: str = "linear"
    warmup_steps: int = 0
    max_steps: int | None = None  # overrides num_epochs
    num_epochs: int = 1
    seed: int = 42
    bf16: bool = False
    gradient_checkpointing: bool = False
    compile: bool = False  # torch.compile (inductor) the forward and loss: the same updates, computed faster
    # checkpoints and evaluation
    save_steps: int = 0  # 0: no intermediate checkpoints (the final model is always saved)
    save_total_limit: int | None = 2
    eval_steps: int = 0  # 0: evaluate at the end only
    eval_before: bool = False
    eval_examples: int | None = 200  # the first N pairs of eval_file (None: all)
    eval_batch_size: int = 64
    num_beams: int = 1
    max_new_tokens: int = 32
    no_repeat_ngram_size: int = 0  # 3 keeps short-trained models from looping ("a genus of the genus of the...")
    logging_steps: int = 10
    resume: bool | str = False  # True: the newest checkpoint in output_dir; a path: that checkpoint
    overwrite_output_dir: bool = False
    device: str | None = None  # "cpu" / "cuda"; default CUDA when available
    progress: bool = True
    verbose: bool = True

    def __post_init__(self):
        for name in ("output_dir", "train_file", "eval_file", "encoder", "decoder", "model", "tokenizer",
                     "decoder_tokenizer", "resume"):
            if isinstance(getattr(self, name), os.PathLike):
                setattr(self, name, os.fspath(getattr(self, name)))
        if self.decoder is None and self.model is None:
            self.decoder = self.encoder  # bert2bert: both halves from one checkpoint
        self.validate()

    # -- checks ------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ValueError naming the first bad setting and its value."""
        for name in ("output_dir", "train_file"):
            if not isinstance(getattr(self, name), (str, os.PathLike)) or not str(getattr(self, name)):
                raise ValueError(f"{name} must be a path, got {getattr(self, name)!r}")
        if self.model is not None and (self.encoder is not None or self.decoder is not None):
            raise ValueError(f"give either model= (an EncoderDecoderModel folder, got {self.model!r}) or encoder=/"
                             f"decoder= checkpoints (got {self.encoder!r} / {self.decoder!r}), not both")
        if self.model is None and self.encoder is None:
            raise ValueError("say what to train: encoder= (and decoder=, default the encoder) checkpoints to "
                             "warm-start from, or model= an EncoderDecoderModel folder")
        if self.from_scratch and self.model is not None:
            raise ValueError("from_scratch builds the encoder/decoder architecture with random weights; it needs "
                             "encoder= (and decoder=), not model=")
        positive = ("batch_size", "gradient_accumulation_steps", "num_epochs", "eval_batch_size", "num_beams",
                    "max_new_tokens", "logging_steps")
        for name in positive:
            _check_int(name, getattr(self, name), low=1)
        for name in ("warmup_steps", "save_steps", "eval_steps", "seed", "no_repeat_ngram_size"):
            _check_int(name, getattr(self, name), low=0)
        for name in ("max_steps", "max_source_length", "max_target_length", "save_total_limit", "eval_examples"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), low=1 if name != "save_total_limit" else 0)
        for name, low, high in (("learning_rate", 0.0, None), ("weight_decay", 0.0, None), ("adam_epsilon", 0.0, None),
                                ("max_grad_norm", 0.0, None), ("adam_beta1", 0.0, 1.0), ("adam_beta2", 0.0, 1.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low or (
                    high is not None and value >= high) or value != value:
                span = f"[{low}, {high})" if high is not None else f">= {low}"
                raise ValueError(f"{name} must be a number {span}, got {value!r}")
        if self.learning_rate == 0:
            raise ValueError("learning_rate must be > 0, got 0")
        if self.lr_scheduler not in SCHEDULERS:
            raise ValueError(f"lr_scheduler must be one of {SCHEDULERS}, got {self.lr_scheduler!r}")
        if self.device not in (None, "cpu", "cuda"):
            raise ValueError(f"device must be 'cpu', 'cuda' or None (automatic), got {self.device!r}")
        if not isinstance(self.resume, (bool, str, os.PathLike)):
            raise ValueError(f"resume must be True/False or a checkpoint folder, got {self.resume!r}")
        if (self.eval_steps or self.eval_before) and self.eval_file is None:
            raise ValueError("eval_steps / eval_before need an eval_file")

    # -- resuming ------------------------------------------------------------------------------------
    def resume_settings(self, world_size: int) -> dict[str, Any]:
        """The settings that fix the sequence of parameter updates; a checkpoint resumes only under equal ones."""
        out = {k: v for k, v in asdict(self).items() if k not in _FREE_ON_RESUME}
        for key in ("encoder", "decoder", "model", "tokenizer", "decoder_tokenizer"):
            if out[key] is not None and Path(out[key]).exists():
                out[key] = str(Path(out[key]).resolve())  # the same folder named two ways is the same folder
        out["train_data_sha256"] = file_sha256(self.train_file)
        out["world_size"] = world_size
        return out

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def file_sha256(path: str | os.PathLike) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None  # reading the data reports a missing file, with a better message
    return digest.hexdigest()
