"""`warmstart train --framework flax`: the PyTorch loop's seq2seq recipe, run in JAX.

Everything up to the batches is the PyTorch loop's own (loop.py): tokenizers, the checks against the model's tables,
special ids, features, the length-grouped sampler and the collator (numpy out, padded to multiples of 16 so a few
shapes cover a run: each new shape is one XLA compilation). The update is ``warmstart.flax.training.train_step``
(AdamW, clipping, the schedule and token-weighted gradient accumulation as the PyTorch loop; the encoder's pooler
frozen). Evaluation is token-weighted eval loss and ROUGE of ``generate`` output. The final model is written with
PyTorch names (``save_pretrained(for_pytorch=True)``), so EncoderDecoderModel, FlaxEncoderDecoderModel and
transformers all load it, and ``warmstart generate`` / ``evaluate`` work on it.

Not here (refused by name): resumable checkpoints (``save_steps``, ``resume``), ``bf16``, ``from_scratch``,
``tie_encoder_decoder``, ``device`` (JAX picks its own), ``compile`` (jax.jit compiles anyway) and multi-process runs.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..storage.atomic import atomic_save
from .collators import IGNORE_INDEX, DataCollatorForSeq2Seq, LengthGroupedBatchSampler
from .config import TrainingConfig
from .data import read_seq2seq
from .evaluate import EvalResult, rouge
from .loop import (DECODER_TOKENIZER_DIR, LOG_FILE, MODEL_DIR, TrainResult, _check_vocab, _load_tokenizers,
                   _model_configs, checked_features, special_ids)

__all__ = ["train"]

PAD_MULTIPLE = 16
_UNSUPPORTED = {"save_steps": 0, "resume": False, "bf16": False, "from_scratch": False,
                "tie_encoder_decoder": False, "device": None, "compile": False}


def _frozen(path: tuple) -> bool:
    return tuple(path[:2]) == ("encoder", "pooler")  # no seq2seq loss reaches it (as the PyTorch loop)


def _check_supported(config: TrainingConfig) -> None:
    for name, default in _UNSUPPORTED.items():
        value = getattr(config, name)
        if value != default:
            raise ValueError(f"--framework flax does not support {name}={value!r} (only {default!r}); the PyTorch "
                             "loop (the default --framework pt) does")


def _build_model(config: TrainingConfig, ids: dict[str, int]):
    from ..flax.encoder_decoder import FlaxEncoderDecoderModel

    if config.model is not None:
        model = FlaxEncoderDecoderModel.from_pretrained(config.model, from_pt=True)
    else:  # from_pt reads PyTorch files first and falls back to flax_model.msgpack
        model = FlaxEncoderDecoderModel.from_encoder_decoder_pretrained(
            config.encoder, config.decoder, encoder_from_pt=True, decoder_from_pt=True, seed=config.seed)
    for key, value in ids.items():
        setattr(model.config, key, value)
    if config.gradient_checkpointing:
        model.enable_gradient_checkpointing()
    return model


class _FlaxRun:
    def __init__(self, config: TrainingConfig, on_step: Callable[[int, float], None] | None):
        _check_supported(config)
        self.config, self.on_step = config, on_step
        c = config
        self.tokenizer, self.decoder_tokenizer = _load_tokenizers(c)
        enc_cfg, dec_cfg = _model_configs(c)
        _check_vocab(self.tokenizer, enc_cfg, "encoder")
        _check_vocab(self.decoder_tokenizer, dec_cfg, "decoder")
        self.ids = special_ids(self.decoder_tokenizer)
        def features(examples):  # the PyTorch loop's tokenizing and length checks, unchanged
            return checked_features(c, examples, self.tokenizer, self.decoder_tokenizer, self.ids, enc_cfg, dec_cfg)

        self.examples = read_seq2seq(c.train_file, c.source_column, c.target_column)
        self.features = features(self.examples)
        self.eval_examples = self.eval_features = None
        if c.eval_file is not None:
            ev = read_seq2seq(c.eval_file, c.source_column, c.target_column)[:c.eval_examples]
            self.eval_examples, self.eval_features = ev, features(ev)
        self.collator = DataCollatorForSeq2Seq(self.tokenizer, label_pad_token_id=IGNORE_INDEX,
                                               pad_to_multiple_of=PAD_MULTIPLE, return_tensors="np")
        self.log_history: list[dict] = []

    def say(self, message: str) -> None:
        if self.config.verbose:
            from tqdm.auto import tqdm

            tqdm.write(message)

    def _batch(self, indices) -> dict:
        return {k: np.asarray(v) for k, v in self.collator([self.features[i] for i in indices]).items()}

    def evaluate(self, what: str, step: int) -> EvalResult | None:
        from ..flax.training import eval_step

        if self.eval_examples is None:
            return None
        c = self.config
        result = EvalResult(sources=[e.source for e in self.eval_examples],
                            references=[e.target for e in self.eval_examples])
        total, tokens = 0.0, 0
        for i in range(0, len(self.eval_features), c.eval_batch_size):
            batch = {k: np.asarray(v) for k, v in self.collator(self.eval_features[i:i + c.eval_batch_size]).items()}
            n = int((batch["labels"] != IGNORE_INDEX).sum())
            total += float(eval_step(self.model, self.state, batch)["loss"]) * n
            tokens += n
        result.loss = total / max(tokens, 1)
        for i in range(0, len(result.sources), c.eval_batch_size):
            enc = self.tokenizer(result.sources[i:i + c.eval_batch_size], truncation=c.max_source_length is not None,
                                 max_length=c.max_source_length, padding=True, return_tensors="np")
            inputs = {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
            out = self.model.generate(**inputs, params=self.state.params, num_beams=c.num_beams,
                                      max_new_tokens=c.max_new_tokens, no_repeat_ngram_size=c.no_repeat_ngram_size,
                                      **self.ids)
            result.predictions += self.decoder_tokenizer.batch_decode(np.asarray(out.sequences),
                                                                      skip_special_tokens=True)
        for k, v in rouge(result.predictions, result.references).items():
            setattr(result, k, v)
        self.log_history.append({"step": step, **{f"eval_{k}": v for k, v in result.metrics().items()}})
        self.say(f"{what}: eval loss {result.loss:.4f}, ROUGE-L {result.rougeL:.2f} (ROUGE-1 {result.rouge1:.2f}, "
                 f"ROUGE-2 {result.rouge2:.2f}) on {len(self.eval_examples)} held-out examples")
        return result

    def save_final(self) -> Path:
        out = Path(self.config.output_dir) / MODEL_DIR

        def write(tmp: Path) -> None:
            self.model.save_pretrained(tmp, params=self.state.params, for_pytorch=True)
            self.tokenizer.save_pretrained(tmp)
            if self.decoder_tokenizer is not self.tokenizer:
                self.decoder_tokenizer.save_pretrained(tmp / DECODER_TOKENIZER_DIR)

        atomic_save(out, write)
        log_file = Path(self.config.output_dir) / LOG_FILE
        log_file.write_text(json.dumps(self.log_history, indent=1) + "\n", encoding="utf-8")
        return out

    def run(self) -> TrainResult:
        import jax
        from tqdm.auto import tqdm

        from ..flax.training import create_train_state, train_step

        c = self.config
        self.model = _build_model(c, self.ids)
        lengths = [len(f["input_ids"]) + len(f["labels"]) for f in self.features]
        sampler = LengthGroupedBatchSampler(lengths, c.batch_size, seed=c.seed)
        per_epoch = -(-len(sampler) // c.gradient_accumulation_steps)
        total = c.max_steps or per_epoch * c.num_epochs
        self.state = create_train_state(
            self.model, learning_rate=c.learning_rate, weight_decay=c.weight_decay, warmup_steps=c.warmup_steps,
            total_steps=total, lr_scheduler=c.lr_scheduler, max_grad_norm=c.max_grad_norm, adam_beta1=c.adam_beta1,
            adam_beta2=c.adam_beta2, adam_epsilon=c.adam_epsilon, seed=c.seed, frozen=_frozen)
        result = TrainResult(global_step=0)
        n_params = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(self.state.params))
        self.say(f"training {n_params / 1e6:.1f}M parameters in JAX on {len(self.features)} pairs, {total} steps of "
                 f"{c.batch_size} x {c.gradient_accumulation_steps} examples")
        if c.eval_before:
            result.eval_before = self.evaluate("before fine-tuning", 0)
        bar = tqdm(total=total, desc="train", unit="step", dynamic_ncols=True, disable=not (c.progress and c.verbose))
        step, epoch, window_loss, window_steps, busy, tokens = 0, 0, 0.0, 0, 0.0, 0
        while step < total:
            sampler.set_epoch(epoch)
            order = list(sampler)
            for start in range(0, len(order), c.gradient_accumulation_steps):
                if step >= total:
                    break
                began = time.perf_counter()
                batches = [self._batch(idx) for idx in order[start:start + c.gradient_accumulation_steps]]
                self.state, metrics = train_step(self.model, self.state, batches)
                loss = float(metrics["loss"])  # waits for the step: the timing below is the step's
                busy += time.perf_counter() - began
                step += 1
                tokens += sum(int(b["attention_mask"].sum()) + int((b["labels"] != IGNORE_INDEX).sum())
                              for b in batches)
                window_loss, window_steps = window_loss + loss, window_steps + 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
                if step % c.logging_steps == 0 or step == total:
                    entry = {"step": step, "epoch": epoch, "loss": window_loss / window_steps,
                             "grad_norm": float(metrics["grad_norm"]),
                             "learning_rate": float(metrics["learning_rate"]), "tokens_per_s": tokens / busy}
                    self.log_history.append(entry)
                    if bar.disable:  # the bar shows the same figures
                        self.say(" ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                          for k, v in entry.items()))
                    window_loss, window_steps = 0.0, 0
                if c.eval_steps and step % c.eval_steps == 0 and step < total:
                    self.evaluate(f"step {step}", step)
                if self.on_step is not None:
                    self.on_step(step, loss)
            epoch += 1
        bar.close()
        result.global_step = step
        result.eval_after = self.evaluate(f"after {step} steps", step)
        result.model_dir = self.save_final()
        result.log_history = self.log_history
        self.say(f"saved the model (PyTorch names: both wings and transformers load it) to {result.model_dir}")
        return result


def train(config: TrainingConfig, on_step: Callable[[int, float], None] | None = None) -> TrainResult:
    """Run `config` in JAX to the end and save the model at OUTPUT/model (see the module docstring)."""
    return _FlaxRun(config, on_step).run()
