"""The fine-tuning loop behind `warmstart train`: warm-start (or load) an encoder-decoder, train it, evaluate it.

Rothe, Narayan & Severyn (2020), "Leveraging Pre-trained Checkpoints for Sequence Generation Tasks": both halves
start from public checkpoints, the decoder gains randomly initialised cross-attention, and the whole model is
fine-tuned with teacher forcing. For BERT the special tokens follow the classic bert2bert recipe: generation starts
from [CLS], stops at [SEP], pads with [PAD].

One code path serves a single process and torchrun's data parallelism (see distributed.py). An optimizer step
consumes `gradient_accumulation_steps` micro-batches on each rank; the loss of the step is the mean over *all* its
target tokens (every micro-batch of every rank), so the gradient does not depend on how the tokens were split into
micro-batches or ranks: 2 ranks x 1 micro-batch give the gradients of 1 rank x 2 micro-batches.

Everything that can be wrong with the inputs is checked before the model is loaded: the settings, the data files,
the tokenized lengths against the position tables, the output folder and the checkpoint to resume.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..storage.atomic import atomic_save
from .checkpointing import (CheckpointMismatch, TrainerState, capture_rng, checkpoint_dir, latest_checkpoint,
                            list_checkpoints, prune_checkpoints, read_checkpoint, restore_rng, save_checkpoint)
from .collators import IGNORE_INDEX, DataCollatorForSeq2Seq, LengthGroupedBatchSampler
from .config import TrainingConfig
from .data import check_source_lengths, check_target_lengths, position_limit, read_seq2seq, tokenize_seq2seq
from .distributed import (DistEnv, all_reduce_sum, barrier, gather_to_main, init_distributed, shutdown, wrap_model)
from .evaluate import EvalResult, evaluate

__all__ = ["train", "TrainResult", "lr_factor", "parameter_groups", "prepare_features", "special_ids", "set_seed",
           "compiled_loss"]

log = logging.getLogger("warmstart")
MODEL_DIR = "model"
DECODER_TOKENIZER_DIR = "decoder_tokenizer"
LOG_FILE = "train_log.json"


@dataclass
class TrainResult:
    global_step: int
    log_history: list[dict] = field(default_factory=list)
    eval_before: EvalResult | None = None
    eval_after: EvalResult | None = None
    model_dir: Path | None = None


# -- small pieces (public for tests and scripts) ---------------------------------------------------
def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def lr_factor(step: int, warmup: int, total: int, kind: str) -> float:
    """The multiplier of the peak learning rate before optimizer step `step` (0-based): linear warm-up from 0
    over `warmup` steps, then constant, linear decay to 0 at `total`, or half a cosine wave down to 0."""
    if step < warmup:
        return step / max(1, warmup)
    if kind == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    if kind == "linear":
        return max(0.0, 1.0 - progress)
    if kind == "cosine":
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
    raise ValueError(f"unknown lr_scheduler {kind!r}")


def parameter_groups(model: nn.Module, weight_decay: float) -> tuple[list[dict], list[str]]:
    """AdamW groups: weight decay on matrices and embedding tables, none on biases and LayerNorm parameters
    (decaying a norm's gain toward 0 fights its purpose). Also returns the parameter names, in optimizer order,
    so a resumed run can check that its optimizer state belongs to the same parameters."""
    no_decay = {id(p) for m in model.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters(recurse=False)}
    decay, plain, names = [], [], ([], [])
    for name, p in model.named_parameters():  # tied weights appear once
        if not p.requires_grad:
            continue
        if name.endswith("bias") or id(p) in no_decay:
            plain.append(p)
            names[1].append(name)
        else:
            decay.append(p)
            names[0].append(name)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]
    return groups, names[0] + names[1]


def special_ids(decoder_tokenizer) -> dict[str, int]:
    """decoder_start / eos / pad ids of the classic recipes: BERT [CLS] / [SEP] / [PAD]; RoBERTa <s> / </s> /
    <pad>; GPT-2 (no [CLS], [SEP] or pad) <|endoftext|> for all three."""
    t = decoder_tokenizer
    start = t.cls_token_id if t.cls_token_id is not None else t.bos_token_id
    eos = t.sep_token_id if t.sep_token_id is not None else t.eos_token_id
    pad = t.pad_token_id if t.pad_token_id is not None else eos
    if start is None or eos is None:
        raise ValueError(f"the decoder's tokenizer {type(t).__name__} has neither [CLS]/[SEP] nor bos/eos tokens, so "
                         f"there is no token to start generation from or to stop at")
    return {"decoder_start_token_id": start, "eos_token_id": eos, "pad_token_id": pad}


def prepare_features(examples, tokenizer, decoder_tokenizer, ids: dict[str, int], max_source_length: int | None,
                     max_target_length: int | None) -> list[dict]:
    """Tokenized pairs whose labels are what the decoder must produce after its start token: the target's
    tokens then eos. The tokenizer's own leading start token (BERT's [CLS]) is dropped — the decoder is fed it, so
    predicting it again would be a wasted step — and eos is appended where the tokenizer adds none (GPT-2)."""
    features = tokenize_seq2seq(examples, tokenizer, decoder_tokenizer, max_source_length, max_target_length)
    start, eos = ids["decoder_start_token_id"], ids["eos_token_id"]
    for f in features:
        y = f["labels"]
        if y and y[0] == start:
            y = y[1:]
        if not y or y[-1] != eos:
            if max_target_length is not None and len(y) >= max_target_length:
                y = y[:max_target_length - 1]
            y = y + [eos]
        f["labels"] = y
    return features


def checked_features(config: TrainingConfig, examples, tokenizer, decoder_tokenizer, ids: dict[str, int], enc_cfg,
                     dec_cfg) -> list[dict]:
    """prepare_features with the run's lengths, every source and target checked against the position tables."""
    feats = prepare_features(examples, tokenizer, decoder_tokenizer, ids, config.max_source_length,
                             config.max_target_length)
    check_source_lengths(feats, position_limit(enc_cfg, "encoder"), examples)
    check_target_lengths(feats, position_limit(dec_cfg, "decoder"), examples)
    return feats


# -- compiled steps ---------------------------------------------------------------------------------------------
# Batch shapes under --compile. dynamic=None is torch's automatic dynamic shapes: the first graph is compiled for the
# first batch's exact shape, the first batch of another shape recompiles once with symbolic lengths, and that graph
# serves every later shape. Two compiles in all; fixed buckets of lengths would compile once per bucket pair (tens of
# minutes on a small CPU), dynamic=True would give a fixed-shape run (a benchmark) slower symbolic kernels.
# Padding to a multiple of 8 keeps the vectorised kernels' rows whole.
COMPILE_DYNAMIC: bool | None = None
COMPILE_PAD_MULTIPLE = 8


def enable_compile_cache() -> str:
    """Turn on inductor's FX graph cache and AOT autograd's cache, on disk, so a second run of the same model reuses
    the compiled forward and backward instead of generating and building their C++ again. The folder is
    $TORCHINDUCTOR_CACHE_DIR when set, else ~/.cache/warmstart/inductor (torch's default is /tmp, lost on reboot)."""
    import torch._functorch.config
    import torch._inductor.config
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    current = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    # Importing torch._dynamo writes torch's default into the variable, so that value counts as not set. The caches
    # read the variable when they are used, so setting it now still counts.
    if not current or os.path.abspath(current) == os.path.abspath(default_cache_dir()):
        base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(base, "warmstart", "inductor")
    torch._inductor.config.fx_graph_cache = True
    torch._functorch.config.enable_autograd_cache = True
    return os.environ["TORCHINDUCTOR_CACHE_DIR"]


def compiled_loss(model: nn.Module, dynamic: bool | None = COMPILE_DYNAMIC) -> Callable[..., torch.Tensor]:
    """``model(**batch).loss`` through torch.compile with inductor: one graph for the whole forward and loss (and,
    through AOT autograd, one for the backward), in which dropout, residual adds and LayerNorm, softmax and GELU
    fuse into generated kernels. The model's data-dependent paths step aside under compile (nn.stack: no dropping
    of padding tokens, masks kept even when all ones; nn.dropout: the eager bit-sliced draw as one opaque op;
    nn.embeddings: a dense lookup; nn.losses: the loss as one expression, value checks left to the caller), so
    there is no graph break. The loop needs no value checks: its tokenizers were checked against the vocabularies.
    Works for any model whose output has ``.loss`` (bench/train.py compiles transformers' model with it, to compare
    like with like)."""
    enable_compile_cache()

    def loss(**batch):
        return model(**batch).loss

    compiled = torch.compile(loss, backend="inductor", dynamic=dynamic)
    first: list = []

    def call(**batch):
        # Automatic dynamic shapes make symbolic only the sizes that changed, so a later change of another size
        # (the epoch's last, smaller batch) would compile a third graph: at the first change, all sizes go symbolic.
        shapes = {k: tuple(v.shape) for k, v in batch.items() if isinstance(v, torch.Tensor)}
        if not first:
            first.append(shapes)
        elif dynamic is None and shapes != first[0]:
            for v in batch.values():
                if isinstance(v, torch.Tensor):
                    torch._dynamo.maybe_mark_dynamic(v, list(range(v.dim())))
        return compiled(**batch)

    return call


def _graphs_compiled() -> int:
    """How many graphs dynamo has produced in this process (a step that raised it compiled)."""
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"]


class _CompileClock:
    """Which steps compiled, and what compiling cost: a compiling step's time minus that of the next ordinary
    step (the same work without the compile)."""

    def __init__(self):
        self.graphs, self.pending, self.total = _graphs_compiled(), [], 0.0
        self.done: tuple[float, int, float] | None = None  # (compile seconds, steps, ordinary step) once known

    def compiled(self, seconds: float) -> bool:
        """Record a step's duration; True when it compiled. After the first ordinary step that follows compiling
        ones, ``done`` holds their estimate until the next call."""
        self.done = None
        now = _graphs_compiled()
        if now > self.graphs:
            self.graphs = now
            self.pending.append(seconds)
            return True
        if self.pending:
            self.done = sum(max(0.0, t - seconds) for t in self.pending), len(self.pending), seconds
            self.total += self.done[0]
            self.pending = []
        return False


# -- set-up --------------------------------------------------------------------------------------------
def _load_tokenizers(config: TrainingConfig):
    from ..tokenizers import AutoTokenizer

    source = config.tokenizer or config.model or config.encoder
    tokenizer = AutoTokenizer.from_pretrained(source)
    if config.decoder_tokenizer is not None:
        return tokenizer, AutoTokenizer.from_pretrained(config.decoder_tokenizer)
    if config.model is not None and (Path(config.model) / DECODER_TOKENIZER_DIR).is_dir():
        return tokenizer, AutoTokenizer.from_pretrained(Path(config.model) / DECODER_TOKENIZER_DIR)
    if config.tokenizer is None and config.decoder not in (None, config.encoder) and _has_tokenizer(config.decoder):
        return tokenizer, AutoTokenizer.from_pretrained(config.decoder)
    return tokenizer, tokenizer


def _has_tokenizer(folder: str) -> bool:
    names = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "spiece.model")
    return Path(folder).is_dir() and any((Path(folder) / n).is_file() for n in names)


def _model_configs(config: TrainingConfig):
    """(encoder config, decoder config) without loading any weights."""
    from ..config import AutoConfig

    if config.model is not None:
        composite = AutoConfig.from_pretrained(config.model)
        if getattr(composite, "model_type", None) != "encoder-decoder":
            raise ValueError(f"model={config.model!r} is a {getattr(composite, 'model_type', None)!r} checkpoint, not "
                             f"an EncoderDecoderModel; pass it as encoder= (and decoder=) to warm-start from it")
        return composite.encoder, composite.decoder
    return AutoConfig.from_pretrained(config.encoder), AutoConfig.from_pretrained(config.decoder)


def _check_vocab(tokenizer, model_config, side: str) -> None:
    if len(tokenizer) > model_config.vocab_size:
        raise ValueError(f"the {side}'s tokenizer has {len(tokenizer)} tokens but the {side}'s vocab_size is "
                         f"{model_config.vocab_size}: they do not belong together (pass --tokenizer / "
                         f"--decoder-tokenizer)")


def _build_model(config: TrainingConfig, ids: dict[str, int], resume_dir: Path | None):
    from ..models.encoder_decoder import EncoderDecoderConfig, EncoderDecoderModel

    if resume_dir is not None:
        model = EncoderDecoderModel.from_pretrained(resume_dir)
    elif config.model is not None:
        model = EncoderDecoderModel.from_pretrained(config.model)
    elif config.from_scratch:
        enc, dec = _model_configs(config)
        dec.is_decoder = dec.add_cross_attention = True
        enc.is_decoder = enc.add_cross_attention = False
        composite = EncoderDecoderConfig.from_encoder_decoder_configs(enc, dec)
        composite.tie_encoder_decoder = config.tie_encoder_decoder
        model = EncoderDecoderModel(composite)
    else:
        model = EncoderDecoderModel.from_encoder_decoder_pretrained(
            config.encoder, config.decoder, tie_encoder_decoder=config.tie_encoder_decoder)
    for key, value in ids.items():
        setattr(model.config, key, value)
    # The encoder's pooler never reaches a seq2seq loss; frozen, it stays out of the optimizer and of DDP's
    # gradient reduction (which would otherwise wait for gradients that never come).
    pooler = getattr(model.encoder, "pooler", None)
    if isinstance(pooler, nn.Module):
        pooler.requires_grad_(False)
    return model


def _make_optimizer(groups: list[dict], config: TrainingConfig) -> torch.optim.Optimizer:
    options = {"lr": config.learning_rate, "betas": (config.adam_beta1, config.adam_beta2), "eps": config.adam_epsilon}
    try:
        return torch.optim.AdamW(groups, fused=True, **options)  # one kernel for all tensors, CPU and CUDA
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.AdamW(groups, foreach=True, **options)


def _resume_folder(config: TrainingConfig, settings: dict, env: DistEnv) -> Path | None:
    """The checkpoint to resume (checked), or None for a fresh start into an output folder that allows one."""
    out = Path(config.output_dir)
    if config.resume:
        folder = latest_checkpoint(out) if config.resume is True else Path(config.resume)
        if folder is None:
            raise CheckpointMismatch(f"resume was asked for, but {out / 'checkpoints'} holds no checkpoint")
        read_checkpoint(folder, settings)  # raises with every differing setting named
        return folder
    if list_checkpoints(out) and not config.overwrite_output_dir:
        raise CheckpointMismatch(
            f"{out} already holds checkpoints ({list_checkpoints(out)[-1][1].name} is the newest): resume that run "
            f"with --resume, start over with --overwrite-output-dir, or pick another --output-dir")
    if list_checkpoints(out) and env.is_main:
        shutil.rmtree(out / "checkpoints")
    return None


# -- the run -------------------------------------------------------------------------------------------
def train(config: TrainingConfig, on_step: Callable[[int, float], None] | None = None) -> TrainResult:
    """Run `config` to the end and save the model in transformers' layout at OUTPUT/model.

    `on_step(step, loss)` is called on every rank after each optimizer step (and its checkpoint, if one is due).
    """
    import torch.distributed as dist

    owned = not (dist.is_available() and dist.is_initialized())
    env = init_distributed(config.device)
    try:
        return _Run(config, env, on_step).run()
    finally:
        if owned:
            shutdown(env)


class _Run:
    def __init__(self, config: TrainingConfig, env: DistEnv, on_step):
        self.config, self.env, self.on_step = config, env, on_step
        c = config
        if c.bf16 and env.device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError("bf16 was asked for, but this GPU does not support bfloat16")
        # 1. data and tokenizers, checked against the model's tables before any weights are loaded
        self.tokenizer, self.decoder_tokenizer = _load_tokenizers(c)
        enc_cfg, dec_cfg = _model_configs(c)
        _check_vocab(self.tokenizer, enc_cfg, "encoder")
        _check_vocab(self.decoder_tokenizer, dec_cfg, "decoder")
        self.ids = special_ids(self.decoder_tokenizer)
        self.examples = read_seq2seq(c.train_file, c.source_column, c.target_column)
        self.features = self._features(self.examples, enc_cfg, dec_cfg)
        self.eval_examples = self.eval_features = None
        if c.eval_file is not None:
            ev = read_seq2seq(c.eval_file, c.source_column, c.target_column)[:c.eval_examples]
            self.eval_examples, self.eval_features = ev, self._features(ev, enc_cfg, dec_cfg)
        # 2. the output folder and the checkpoint to resume
        self.settings = c.resume_settings(env.world_size)
        self.resume_dir = _resume_folder(c, self.settings, env)
        barrier(env)

    def _features(self, examples, enc_cfg, dec_cfg) -> list[dict]:
        return checked_features(self.config, examples, self.tokenizer, self.decoder_tokenizer, self.ids, enc_cfg,
                                dec_cfg)

    def say(self, message: str) -> None:
        if self.env.is_main and self.config.verbose:
            from tqdm.auto import tqdm

            tqdm.write(message)

    # -- model, optimizer, schedule ----------------------------------------------------------------
    def _setup_model(self) -> None:
        c, env = self.config, self.env
        set_seed(c.seed)  # same on every rank: the same random cross-attention / from-scratch weights
        model = _build_model(c, self.ids, self.resume_dir)
        if c.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        self.model = model.to(env.device).train()
        self.wrapped = wrap_model(self.model, env)
        self.loss_fn = compiled_loss(self.wrapped) if c.compile else (lambda **batch: self.wrapped(**batch).loss)
        groups, self.param_names = parameter_groups(self.model, c.weight_decay)
        self.params = [p for g in groups for p in g["params"]]
        self.optimizer = _make_optimizer(groups, c)
        sampler = self._sampler()
        per_epoch = -(-len(sampler) // c.gradient_accumulation_steps)
        self.total_steps = c.max_steps or per_epoch * c.num_epochs
        warmup, kind, total = c.warmup_steps, c.lr_scheduler, self.total_steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer,
                                                           lambda s: lr_factor(s, warmup, total, kind))
        self.state = TrainerState()
        if self.resume_dir is not None:
            saved, tensors = read_checkpoint(self.resume_dir, self.settings, env.device)
            if tensors["param_names"] != self.param_names:
                raise CheckpointMismatch(f"cannot resume from {self.resume_dir}: its optimizer state is for other "
                                         "parameters than this model's (was the model changed?)")
            self.optimizer.load_state_dict(tensors["optimizer"])
            self.scheduler.load_state_dict(tensors["scheduler"])
            if len(tensors["rng"]) != env.world_size:
                raise CheckpointMismatch(f"{self.resume_dir} holds {len(tensors['rng'])} ranks' RNG states for a "
                                         f"world of {env.world_size}")
            restore_rng(tensors["rng"][env.rank])
            self.state = saved
            self.say(f"resumed from {self.resume_dir} at step {saved.global_step} "
                     f"(epoch {saved.epoch}, batch {saved.batch_in_epoch})")
        else:
            set_seed(c.seed + env.rank)  # dropout draws differ between ranks, and are reproducible

    def _sampler(self) -> LengthGroupedBatchSampler:
        lengths = [len(f["input_ids"]) + len(f["labels"]) for f in self.features]
        return LengthGroupedBatchSampler(lengths, self.config.batch_size, seed=self.config.seed,
                                         num_replicas=self.env.world_size, rank=self.env.rank)

    # -- one optimizer step ------------------------------------------------------------------------
    def _step(self, batches: list[dict]) -> tuple[float, float, float, int]:
        """Forward/backward over the micro-batches, clip, update. Returns (loss, grad norm, the learning rate
        this update used, real tokens)."""
        c, env, dev = self.config, self.env, self.env.device
        counts = torch.tensor([[int((b["labels"] != IGNORE_INDEX).sum()), int(b["attention_mask"].sum())]
                               for b in batches], dtype=torch.float64)  # (micro-batches, 2)
        totals = all_reduce_sum(counts.sum(0), env)  # label tokens, source tokens over every rank
        label_total = float(totals[0])
        loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
        for k, batch in enumerate(batches):
            batch = {key: v.to(dev, non_blocking=True) for key, v in batch.items()}
            last = k == len(batches) - 1
            sync = contextlib.nullcontext() if last or not env.distributed else self.wrapped.no_sync()
            autocast = torch.autocast(dev.type, dtype=torch.bfloat16) if c.bf16 else contextlib.nullcontext()
            with sync:
                with autocast:
                    loss = self.loss_fn(**batch)  # mean over this micro-batch's label tokens
                # Scale to this micro-batch's share of all the step's tokens; DDP divides the summed gradients
                # by world_size, which the factor undoes.
                weight = float(counts[k, 0]) * env.world_size / max(label_total, 1.0)
                (loss * weight).backward()
            loss_sum += loss.detach().double() * float(counts[k, 0])
        # An infinite threshold measures the norm without clipping (max_grad_norm=0 turns clipping off).
        norm = float(torch.nn.utils.clip_grad_norm_(self.params, c.max_grad_norm or float("inf")))
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        step_loss = float(all_reduce_sum(loss_sum, env)) / max(label_total, 1.0)
        return step_loss, norm, lr, int(totals.sum())

    # -- evaluation and saving ---------------------------------------------------------------------
    def evaluate(self, what: str) -> EvalResult | None:
        if self.eval_examples is None:
            return None
        c, result = self.config, None
        if self.env.is_main:
            result = evaluate(self.model, self.tokenizer, self.eval_examples, self.eval_features,
                              collator=self.collator, decoder_tokenizer=self.decoder_tokenizer,
                              batch_size=c.eval_batch_size, max_source_length=c.max_source_length,
                              device=self.env.device, bf16=c.bf16, num_beams=c.num_beams,
                              max_new_tokens=c.max_new_tokens, no_repeat_ngram_size=c.no_repeat_ngram_size,
                              **self.ids)
            entry = {"step": self.state.global_step, **{f"eval_{k}": v for k, v in result.metrics().items()}}
            self.state.log_history.append(entry)
            self.say(f"{what}: eval loss {result.loss:.4f}, ROUGE-L {result.rougeL:.2f} (ROUGE-1 {result.rouge1:.2f}, "
                     f"ROUGE-2 {result.rouge2:.2f}) on {len(self.eval_examples)} held-out examples")
        barrier(self.env)
        return result

    def save_checkpoint(self) -> None:
        rng = gather_to_main(capture_rng(), self.env)  # every rank's dropout stream, for an exact resume
        if self.env.is_main:
            folder = checkpoint_dir(self.config.output_dir, self.state.global_step)
            save_checkpoint(folder, model=self.model, tokenizer=self.tokenizer, optimizer=self.optimizer,
                            scheduler=self.scheduler, state=self.state, settings=self.settings, rng_states=rng,
                            param_names=self.param_names)
            prune_checkpoints(self.config.output_dir, self.config.save_total_limit)
        barrier(self.env)

    def save_final(self) -> Path:
        out = Path(self.config.output_dir) / MODEL_DIR
        if self.env.is_main:
            def write(tmp: Path) -> None:
                self.model.save_pretrained(tmp)
                self.tokenizer.save_pretrained(tmp)
                if self.decoder_tokenizer is not self.tokenizer:
                    self.decoder_tokenizer.save_pretrained(tmp / DECODER_TOKENIZER_DIR)

            atomic_save(out, write)
            log_file = Path(self.config.output_dir) / LOG_FILE
            log_file.write_text(json.dumps(self.state.log_history, indent=1) + "\n", encoding="utf-8")
        barrier(self.env)
        return out

    # -- the loop ----------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        from tqdm.auto import tqdm

        self._setup_model()
        c, env, state = self.config, self.env, self.state
        self.collator = DataCollatorForSeq2Seq(self.tokenizer, label_pad_token_id=IGNORE_INDEX,
                                               pad_to_multiple_of=COMPILE_PAD_MULTIPLE if c.compile else None)
        result = TrainResult(global_step=state.global_step)
        n_params = sum(p.numel() for p in self.params)
        self.say(f"training {n_params / 1e6:.1f}M parameters on {len(self.features)} pairs, {self.total_steps} steps "
                 f"of {c.batch_size} x {c.gradient_accumulation_steps} x {env.world_size} examples on "
                 f"{env.device}{' (bf16 autocast)' if c.bf16 else ''}")
        if c.eval_before and state.global_step == 0:
            result.eval_before = self.evaluate("before fine-tuning")
        sampler = self._sampler()
        show_bar = env.is_main and c.progress and c.verbose
        bar = tqdm(total=self.total_steps, initial=state.global_step, desc="train", unit="step", dynamic_ncols=True,
                   disable=not show_bar)
        window_loss, window_steps, busy, tokens = 0.0, 0, 0.0, 0  # busy: seconds spent in training steps
        clock = _CompileClock() if c.compile else None
        if c.compile:
            self.say(f"compiling the training step with torch.compile (inductor); cache: {enable_compile_cache()}")
        while state.global_step < self.total_steps:
            sampler.set_epoch(state.epoch)
            order = list(sampler)  # this rank's micro-batches of the epoch, a pure function of (seed, epoch)
            epoch = state.epoch
            while state.epoch == epoch and state.global_step < self.total_steps:
                started = time.perf_counter()
                window = order[state.batch_in_epoch:state.batch_in_epoch + c.gradient_accumulation_steps]
                batches = [self.collator([self.features[i] for i in idx]) for idx in window]
                loss, norm, lr, n_tokens = self._step(batches)
                took = time.perf_counter() - started
                # tokens/s leaves evaluation and checkpoint time out, and compiling steps
                if clock is None or not clock.compiled(took):
                    busy, tokens = busy + took, tokens + n_tokens
                if clock is not None and clock.done:
                    spent, steps, ordinary = clock.done
                    self.say(f"step {state.global_step + 1}: compiling took {spent:.1f} s over {steps} step(s) "
                             f"({clock.total:.1f} s in all); a compiled step takes {ordinary:.2f} s")
                state.global_step += 1
                state.batch_in_epoch += len(window)
                state.tokens_seen += n_tokens
                if state.batch_in_epoch >= len(order):
                    state.epoch, state.batch_in_epoch = state.epoch + 1, 0
                window_loss, window_steps = window_loss + loss, window_steps + 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.2e}", tok_s=f"{tokens / max(busy, 1e-9):.0f}",
                                refresh=False)
                if state.global_step % c.logging_steps == 0 or state.global_step == self.total_steps:
                    entry = {"step": state.global_step, "epoch": state.epoch, "loss": window_loss / window_steps,
                             "grad_norm": norm, "learning_rate": lr,
                             "tokens_per_s": tokens / max(busy, 1e-9)}
                    if clock is not None:
                        entry["compile_s"] = clock.total + sum(clock.pending)
                    state.log_history.append(entry)
                    if not show_bar:  # the bar shows the same figures
                        self.say(" ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                          for k, v in entry.items()))
                    window_loss, window_steps = 0.0, 0
                if c.save_steps and state.global_step % c.save_steps == 0:
                    self.save_checkpoint()
                if c.eval_steps and state.global_step % c.eval_steps == 0 and state.global_step < self.total_steps:
                    self.evaluate(f"step {state.global_step}")
                if self.on_step is not None:
                    self.on_step(state.global_step, loss)
        bar.close()
        result.global_step = state.global_step
        result.eval_after = self.evaluate(f"after {state.global_step} steps")
        result.model_dir = self.save_final()
        result.log_history = state.log_history
        self.say(f"saved the model (transformers' layout) to {result.model_dir}")
        return result
