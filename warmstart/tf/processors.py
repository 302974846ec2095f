"""Logits processors of the TensorFlow generate(): TF functions ``p(ids (N, L), cur, scores (N, V)) -> scores``.

``ids`` is the whole preallocated sequence buffer and ``cur`` (a scalar tensor) how much of it is filled, so every
processor keeps one static shape and compiles with XLA inside ``tf.while_loop``: no slice or pad that depends on
``cur`` (XLA wants those constant, and would compile once per value), only masks, gathers and scatters. The rules,
their order and their settings are the PyTorch wing's (warmstart/generation/processors.py, which match
transformers) and the Flax wing's (flax/processors.py), in the shared plan's order (generation/plan.py): the same
config gives the same scores. A plan step without a TF version here, or a strategy the loop lacks
(``refuse_unsupported``), is refused by name before anything is traced.
"""
from __future__ import annotations

import sys
from typing import Callable, Sequence

import numpy as np

from ..generation.host import compiled_processors
from ..generation.host import refuse_unsupported as refuse_compiled
from .backend import tf

__all__ = ["build_processors", "refuse_unsupported", "apply_processors", "NEG_INF"]

NEG_INF = float("-inf")

def refuse_unsupported(config) -> None:
    refuse_compiled(config, "the TensorFlow generate()")


def apply_processors(processors: Sequence[Callable], ids, cur, scores):
    cur = tf.cast(cur, tf.int32)
    for p in processors:
        scores = p(ids, cur, scores)
    return scores


def _mask_of(ids: Sequence[int], vocab: int):
    """(V,) constant bool mask of the listed ids (ids outside the vocabulary are ignored)."""
    mask = np.zeros((vocab,), bool)
    mask[[i for i in ids if 0 <= i < vocab]] = True
    return tf.constant(mask)


def _neg_inf_like(s):
    return tf.constant(NEG_INF, s.dtype)


def _where_ids(ids: Sequence[int]):
    """Scores of the listed token ids set to NEG_INF (impossible)."""
    def apply(scores):
        return tf.where(_mask_of(ids, scores.shape[-1]), _neg_inf_like(scores), scores)
    return apply


def _only(ids: Sequence[int]):
    """Every score NEG_INF but the listed ids, which get 0 (a forced token)."""
    def apply(scores):
        return tf.where(_mask_of(ids, scores.shape[-1]), tf.zeros((), scores.dtype), _neg_inf_like(scores))
    return apply


def _present(targets, vocab: int):
    """(N, V) bool: which ids of ``targets`` (N, K) occur in each row; ids outside [0, V) (the value V marks "none")
    land in a spare column that is dropped. A scatter of ones, so its shape never depends on the data."""
    targets = tf.where((targets < 0) | (targets > vocab), vocab, targets)
    n = tf.shape(targets)[0]
    rows = tf.broadcast_to(tf.range(n, dtype=targets.dtype)[:, None], tf.shape(targets))
    idx = tf.reshape(tf.stack([rows, targets], axis=-1), (-1, 2))
    counts = tf.scatter_nd(idx, tf.ones(tf.shape(idx)[:1], tf.int32), tf.stack([n, vocab + 1]))
    return counts[:, :vocab] > 0


# ---- the processors, each a closure over its (static) settings ----------------------------------------------------
def min_length(length: int, eos_ids: list[int]):
    hide = _where_ids(eos_ids)
    return lambda ids, cur, s: tf.where(cur < length, hide(s), s)


def forced_bos(bos: int):
    force = _only([bos])
    return lambda ids, cur, s: tf.where(tf.equal(cur, 1), force(s), s)


def forced_eos(max_length: int, eos_ids: list[int]):
    force = _only(eos_ids)
    return lambda ids, cur, s: tf.where(tf.equal(cur, max_length - 1), force(s), s)


def suppress(tokens: list[int], at: int | None = None):
    hide = _where_ids(tokens)
    if at is None:
        return lambda ids, cur, s: hide(s)
    return lambda ids, cur, s: tf.where(tf.equal(cur, at), hide(s), s)


def repetition_penalty(penalty: float, ignore=None):
    """CTRL's penalty (Keskar et al. 2019) on every token present in ids[:, ignore:cur] (``ignore`` (N,): left
    padding, or None); positive scores are divided, negative ones multiplied."""
    def apply(ids, cur, s):
        length, vocab = ids.shape[1], s.shape[-1]
        pos = tf.range(length, dtype=tf.int32)[None, :]
        live = pos < cur
        if ignore is not None:
            live = live & (pos >= tf.cast(ignore, tf.int32)[:, None])
        present = _present(tf.where(live, tf.cast(ids, tf.int32), vocab), vocab)
        penalised = tf.where(s < 0, s * penalty, s / penalty)
        return tf.where(present, penalised, s)
    return apply


def no_repeat_ngram(size: int):
    """No n-gram of ``size`` tokens occurs twice in the sequence (prompt included)."""
    def apply(ids, cur, s):
        length, vocab = ids.shape[1], s.shape[-1]
        if length < size:
            return s
        ids = tf.cast(ids, tf.int32)
        w = length - size + 1  # windows starting at 0 .. length - size
        windows = tf.stack([ids[:, i:i + w] for i in range(size)], axis=-1)  # (N, W, size)
        start = tf.maximum(cur - size + 1, 0)
        prefix = tf.gather(ids, start + tf.range(size - 1), axis=1)  # (N, size - 1): a gather, not a traced slice
        hit = tf.reduce_all(tf.equal(windows[..., :-1], prefix[:, None, :]), axis=-1)  # (N, W)
        hit = hit & (tf.range(w, dtype=tf.int32)[None, :] <= cur - size)  # only windows inside the filled part
        banned = _present(tf.where(hit, windows[..., -1], vocab), vocab)
        return tf.where((cur >= size) & banned, _neg_inf_like(s), s)
    return apply


def bad_words(sequences: list[list[int]], eos_ids: list[int] | None):
    """Never complete a listed sequence (a lone EOS stays allowed: it must remain reachable)."""
    eos = set(eos_ids or [])
    kept = [list(seq) for seq in sequences if not (len(seq) == 1 and seq[0] in eos)]
    singles = [seq[0] for seq in kept if len(seq) == 1]
    multi = [seq for seq in kept if len(seq) > 1]

    def apply(ids, cur, s):
        length, vocab = ids.shape[1], s.shape[-1]
        ids = tf.cast(ids, tf.int32)
        banned = tf.broadcast_to(_mask_of(singles, vocab), tf.shape(s))
        for seq in multi:  # static: one comparison per listed sequence
            p = len(seq) - 1
            if p > length or not 0 <= seq[-1] < vocab:
                continue  # longer than the whole buffer, or a last token no row can pick: never completed
            tail = tf.gather(ids, tf.maximum(cur - p, 0) + tf.range(p), axis=1)  # (N, p)
            match = tf.reduce_all(tf.equal(tail, tf.constant(seq[:-1], tf.int32)), axis=-1) & (cur >= p)  # (N,)
            banned = banned | (match[:, None] & _mask_of([seq[-1]], vocab)[None, :])
        return tf.where(banned, _neg_inf_like(s), s)
    return apply


def temperature(t: float):
    return lambda ids, cur, s: s / t


def top_k(k: int, keep: int):
    k = max(k, keep)

    def apply(ids, cur, s):
        kth = tf.math.top_k(s, min(k, s.shape[-1]))[0][..., -1:]
        return tf.where(s < kth, _neg_inf_like(s), s)
    return apply


def top_p(p: float, keep: int):
    """Nucleus sampling (Holtzman et al. 2020): drop the least likely tail holding at most 1 - p of the mass."""
    def apply(ids, cur, s):
        n, vocab = tf.shape(s)[0], s.shape[-1]
        order = tf.argsort(s, axis=-1, direction="ASCENDING", stable=True)
        ascending = tf.gather(s, order, batch_dims=1)
        drop = tf.cumsum(tf.nn.softmax(ascending, axis=-1), axis=-1) <= (1 - p)
        kept = min(keep, vocab)
        drop = tf.concat([drop[:, :vocab - kept], tf.zeros(tf.stack([n, kept]), bool)], axis=-1)
        # back to vocabulary order: ``order`` is a permutation, so each column receives exactly one flag
        rows = tf.broadcast_to(tf.range(n, dtype=order.dtype)[:, None], tf.shape(order))
        idx = tf.reshape(tf.stack([rows, order], axis=-1), (-1, 2))
        drop = tf.scatter_nd(idx, tf.reshape(tf.cast(drop, tf.int32), (-1,)), tf.stack([n, vocab])) > 0
        return tf.where(drop, _neg_inf_like(s), s)
    return apply


# ---- the plan -----------------------------------------------------------------------------------------------------
def build_processors(config, *, prompt_length: int, eos_ids: list[int] | None, ignore=None,
                     custom: Sequence[Callable] | None = None) -> list[Callable]:
    """This module's processors for the shared plan (generation/host.py: compiled_processors). ``ignore``: (N,)
    int32 left-padding lengths the repetition penalty skips, or None."""
    return compiled_processors(config, sys.modules[__name__], "the TensorFlow generate()", prompt_length=prompt_length,
                               eos_ids=eos_ids, ignore=ignore, custom=custom)
