"""Logits processors of the Flax generate(): pure jnp functions ``p(ids (N, L), cur, scores (N, V)) -> scores``.

``ids`` is the whole preallocated sequence buffer and ``cur`` (a traced scalar) how much of it is filled, so every
processor has one static shape and runs inside ``lax.while_loop``. The rules, their order and their settings are
the PyTorch wing's (warmstart/generation/processors.py), which match transformers, and their order is the shared
plan's (warmstart/generation/plan.py): the same config gives the same scores. A plan step without a jnp version
here, or a strategy the loop lacks (``refuse_unsupported``), is refused by name before tracing.
"""
from __future__ import annotations

import sys
from typing import Callable, Sequence

import jax
import jax.numpy as jnp

from ..generation.host import compiled_processors
from ..generation.host import refuse_unsupported as refuse_compiled

__all__ = ["build_processors", "refuse_unsupported", "apply_processors", "NEG_INF"]

NEG_INF = -jnp.inf

def refuse_unsupported(config) -> None:
    refuse_compiled(config, "the Flax generate()")


def apply_processors(processors: Sequence[Callable], ids, cur, scores):
    for p in processors:
        scores = p(ids, cur, scores)
    return scores


def _mask_of(ids: Sequence[int], vocab: int):
    return jnp.zeros((vocab,), bool).at[jnp.asarray([i for i in ids if i < vocab], jnp.int32)].set(True)


def _where_ids(ids: Sequence[int], value: float = NEG_INF):
    """Scores of the listed token ids set to ``value`` (NEG_INF: impossible)."""
    def apply(scores):
        return jnp.where(_mask_of(ids, scores.shape[-1]), jnp.asarray(value, scores.dtype), scores)
    return apply


def _only(ids: Sequence[int]):
    """Every score NEG_INF but the listed ids, which get 0 (a forced token)."""
    def apply(scores):
        return jnp.where(_mask_of(ids, scores.shape[-1]), jnp.zeros((), scores.dtype),
                         jnp.asarray(NEG_INF, scores.dtype))
    return apply


# ---- the processors, each a closure over its (static) settings ----------------------------------------------------
def min_length(length: int, eos_ids: list[int]):
    hide = _where_ids(eos_ids)
    return lambda ids, cur, s: jnp.where(cur < length, hide(s), s)


def forced_bos(bos: int):
    force = _only([bos])
    return lambda ids, cur, s: jnp.where(cur == 1, force(s), s)


def forced_eos(max_length: int, eos_ids: list[int]):
    force = _only(eos_ids)
    return lambda ids, cur, s: jnp.where(cur == max_length - 1, force(s), s)


def suppress(tokens: list[int], at: int | None = None):
    hide = _where_ids(tokens)
    if at is None:
        return lambda ids, cur, s: hide(s)
    return lambda ids, cur, s: jnp.where(cur == at, hide(s), s)


def repetition_penalty(penalty: float, ignore=None):
    """CTRL's penalty (Keskar et al. 2019) on every token present in ids[:, ignore:cur] (``ignore`` (N,): left
    padding, or None); positive scores are divided, negative ones multiplied."""
    def apply(ids, cur, s):
        n, length = ids.shape
        vocab = s.shape[-1]
        pos = jnp.arange(length)[None, :]
        live = pos < cur
        if ignore is not None:
            live = live & (pos >= ignore[:, None])
        target = jnp.where(live, jnp.minimum(ids, vocab), vocab)  # ignored and out-of-vocabulary ids: spare column
        present = jnp.zeros((n, vocab + 1), bool).at[jnp.arange(n)[:, None], target].set(True)[:, :vocab]
        penalised = jnp.where(s < 0, s * penalty, s / penalty)
        return jnp.where(present, penalised, s)
    return apply


def no_repeat_ngram(size: int):
    """No n-gram of ``size`` tokens occurs twice in the sequence (prompt included)."""
    def apply(ids, cur, s):
        n, length = ids.shape
        vocab = s.shape[-1]
        if length < size:
            return s
        w = length - size + 1  # windows starting at 0 .. length - size
        windows = jnp.stack([ids[:, i:i + w] for i in range(size)], axis=-1)  # (N, W, size)
        start = jnp.maximum(cur - size + 1, 0)
        prefix = jax.lax.dynamic_slice_in_dim(ids, start, size - 1, axis=1) if size > 1 else ids[:, :0]
        hit = jnp.all(windows[..., :-1] == prefix[:, None, :], axis=-1)  # (N, W)
        hit = hit & (jnp.arange(w)[None, :] <= cur - size)  # only windows inside the filled part
        banned = jnp.where(hit, jnp.minimum(windows[..., -1], vocab), vocab)
        mask = jnp.zeros((n, vocab + 1), bool).at[jnp.arange(n)[:, None], banned].set(True)[:, :vocab]
        return jnp.where((cur >= size) & mask, jnp.asarray(NEG_INF, s.dtype), s)
    return apply


def bad_words(sequences: list[list[int]], eos_ids: list[int] | None):
    """Never complete a listed sequence (a lone EOS stays allowed: it must remain reachable)."""
    eos = set(eos_ids or [])
    kept = [list(seq) for seq in sequences if not (len(seq) == 1 and seq[0] in eos)]
    singles = [seq[0] for seq in kept if len(seq) == 1]
    multi = [seq for seq in kept if len(seq) > 1]

    def apply(ids, cur, s):
        vocab = s.shape[-1]
        banned = jnp.broadcast_to(_mask_of(singles, vocab), s.shape)
        for seq in multi:  # static: one comparison per listed sequence
            p = len(seq) - 1
            tail = jax.lax.dynamic_slice_in_dim(ids, jnp.maximum(cur - p, 0), p, axis=1)  # (N, p)
            match = jnp.all(tail == jnp.asarray(seq[:-1], ids.dtype), axis=-1) & (cur >= p)  # (N,)
            banned = banned.at[:, seq[-1]].set(banned[:, seq[-1]] | match)
        return jnp.where(banned, jnp.asarray(NEG_INF, s.dtype), s)
    return apply


def temperature(t: float):
    return lambda ids, cur, s: s / t


def top_k(k: int, keep: int):
    k = max(k, keep)

    def apply(ids, cur, s):
        kth = jax.lax.top_k(s, min(k, s.shape[-1]))[0][..., -1:]
        return jnp.where(s < kth, jnp.asarray(NEG_INF, s.dtype), s)
    return apply


def top_p(p: float, keep: int):
    """Nucleus sampling (Holtzman et al. 2020): drop the least likely tail holding at most 1 - p of the mass."""
    def apply(ids, cur, s):
        order = jnp.argsort(s, axis=-1)  # ascending
        ascending = jnp.take_along_axis(s, order, axis=-1)
        drop = jnp.cumsum(jax.nn.softmax(ascending, axis=-1), axis=-1) <= (1 - p)
        drop = drop.at[..., -keep:].set(False)
        rows = jnp.arange(s.shape[0])[:, None]
        drop = jnp.zeros_like(drop).at[rows, order].set(drop)  # back to vocabulary order
        return jnp.where(drop, jnp.asarray(NEG_INF, s.dtype), s)
    return apply


# ---- the plan -----------------------------------------------------------------------------------------------------
def build_processors(config, *, prompt_length: int, eos_ids: list[int] | None, ignore=None,
                     custom: Sequence[Callable] | None = None) -> list[Callable]:
    """This module's processors for the shared plan (generation/host.py: compiled_processors). ``ignore``: (N,)
    int32 left-padding lengths the repetition penalty skips, or None."""
    return compiled_processors(config, sys.modules[__name__], "the Flax generate()", prompt_length=prompt_length,
                               eos_ids=eos_ids, ignore=ignore, custom=custom)
