"""Evaluation of a seq2seq model: loss on held-out pairs, and generated text scored with ROUGE.

ROUGE comes from Google's `rouge-score` package (the implementation the paper's and transformers' examples
report), with Porter stemming, F-measure, averaged over examples and scaled to 0..100. Evaluation leaves the
random number generators as it found them, so a run that evaluates every N steps trains exactly like one that
does not (and like a resumed one).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import torch

from .collators import IGNORE_INDEX, DataCollatorForSeq2Seq

__all__ = ["EvalResult", "rouge", "eval_loss", "generate_texts", "evaluate"]

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


@dataclass
class EvalResult:
    loss: float | None = None
    rouge1: float | None = None
    rouge2: float | None = None
    rougeL: float | None = None
    sources: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    predictions: list[str] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in ("loss", *ROUGE_TYPES) if getattr(self, k) is not None}


def rouge(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE-1/2/L F-measure (x100) of each prediction against its reference."""
    if len(predictions) != len(references):
        raise ValueError(f"got {len(predictions)} predictions for {len(references)} references")
    if not predictions:
        raise ValueError("ROUGE needs at least one prediction")
    try:
        from rouge_score import rouge_scorer
    except ImportError:
        raise ImportError("ROUGE needs the rouge-score package: pip install rouge-score") from None
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for pred, ref in zip(predictions, references):
        scores = scorer.score(ref, pred)  # (target, prediction) is rouge-score's argument order
        for k in ROUGE_TYPES:
            totals[k] += scores[k].fmeasure
    return {k: 100.0 * v / len(predictions) for k, v in totals.items()}


def _autocast(device: torch.device, bf16: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


@contextlib.contextmanager
def _eval_mode(model: torch.nn.Module):
    """model.eval() inside, its previous mode after; the torch generators untouched (see module docstring)."""
    was_training = model.training
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        model.eval()
        try:
            yield
        finally:
            model.train(was_training)


def eval_loss(model, features: Sequence[dict], collator: DataCollatorForSeq2Seq, *, batch_size: int = 64,
              device: torch.device | str = "cpu", bf16: bool = False) -> float:
    """Cross-entropy per target token over all `features` (token-weighted, so batch boundaries do not matter)."""
    if not features:
        raise ValueError("eval_loss got no examples")
    device = torch.device(device)
    total, count = 0.0, 0
    with _eval_mode(model), torch.inference_mode():
        for start in range(0, len(features), batch_size):
            batch = collator(list(features[start:start + batch_size]))
            batch = {k: v.to(device) for k, v in batch.items()}
            n = int((batch["labels"] != IGNORE_INDEX).sum())
            with _autocast(device, bf16):
                loss = model(**batch).loss
            total += float(loss) * n
            count += n
    return total / max(count, 1)


def generate_texts(model, tokenizer, sources: Sequence[str], *, decoder_tokenizer=None, batch_size: int = 64,
                   max_source_length: int | None = None, device: torch.device | str = "cpu", bf16: bool = False,
                   sort_by_length: bool = True, **generate_kwargs: Any) -> Iterator[list[str]]:
    """Generated texts for `sources`, yielded batch by batch in input order (so a caller can stream them).

    With `sort_by_length` the sources are batched by length (less padding) and the whole list is yielded once at
    the end, in input order. `generate_kwargs` go to `model.generate` (max_new_tokens, num_beams, ...).
    """
    device = torch.device(device)
    decoder_tokenizer = decoder_tokenizer or tokenizer
    sources = list(sources)
    order = sorted(range(len(sources)), key=lambda i: len(sources[i])) if sort_by_length else list(range(len(sources)))
    out: list[str | None] = [None] * len(sources)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        enc = tokenizer([sources[i] for i in idx], padding=True, truncation=max_source_length is not None,
                        max_length=max_source_length, return_tensors="pt")
        # The modes are entered per batch, not around the loop: a generator's caller runs between two yields
        # and must not find itself in inference mode.
        with _eval_mode(model), torch.inference_mode(), _autocast(device, bf16):
            ids = model.generate(input_ids=enc["input_ids"].to(device),
                                 attention_mask=enc["attention_mask"].to(device), **generate_kwargs)
        texts = [t.strip() for t in decoder_tokenizer.batch_decode(ids.tolist(), skip_special_tokens=True)]
        if not sort_by_length:
            yield texts
        for i, t in zip(idx, texts):
            out[i] = t
    if sort_by_length:
        yield out  # type: ignore[misc]


def evaluate(model, tokenizer, examples: Sequence, features: Sequence[dict] | None = None, *,
             collator: DataCollatorForSeq2Seq | None = None, decoder_tokenizer=None, batch_size: int = 64,
             max_source_length: int | None = None, device: torch.device | str = "cpu", bf16: bool = False,
             generate: bool = True, **generate_kwargs: Any) -> EvalResult:
    """Loss (when `features` are given) and ROUGE of generated text (when `generate`) on held-out `examples`
    (`Seq2SeqExample`s: `.source`, `.target`)."""
    result = EvalResult(sources=[e.source for e in examples], references=[e.target for e in examples])
    if features is not None:
        collator = collator or DataCollatorForSeq2Seq(tokenizer)
        result.loss = eval_loss(model, features, collator, batch_size=batch_size, device=device, bf16=bf16)
    if generate:
        batches = generate_texts(model, tokenizer, result.sources, decoder_tokenizer=decoder_tokenizer,
                                 batch_size=batch_size, max_source_length=max_source_length, device=device,
                                 bf16=bf16, **generate_kwargs)
        result.predictions = [t for batch in batches for t in batch]
        for k, v in rouge(result.predictions, result.references).items():
            setattr(result, k, v)
    return result
