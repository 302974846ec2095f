"""Greedy search, sampling, beam search and beam sampling as one ``lax.while_loop`` each, over a static cache.

Every array has its final shape from the start (the sequence buffer is (rows, max_length), the cache holds
max_length positions), so a whole generation is one compiled program. The token rules are the PyTorch wing's
(warmstart/generation/search.py, itself token-identical to transformers): argmax / a categorical draw of the
processed scores, finished rows padded; the vectorised beam search that keeps ``max(2, 1 + #eos) * num_beams``
candidates per step, retires finished ones into ``num_beams`` hypotheses scored ``sum log p / length **
length_penalty`` and stops per ``early_stopping``. Beam sampling draws the candidates without replacement with the
Gumbel-top-k trick (Kool et al. 2019), which samples from the same distribution as torch.multinomial.

The model is reached only through ``step(params, dec, tokens (rows,)) -> (logits (rows, V), dec)``, where ``dec``
is a pytree (cache, next positions, masks, encoder states) the loop carries and, for beams, reorders.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from ..generation.plan import SearchSpec
from .processors import apply_processors

__all__ = ["SearchSpec", "greedy_or_sample", "beam_search", "repeat_rows", "take_rows"]

BIG = -1.0e9  # transformers' "impossible" beam score: finite, so sums of several stay ordered


def repeat_rows(tree, times: int):
    """Row i becomes rows i*times .. i*times+times-1 in every array leaf with a batch axis."""
    if times == 1:
        return tree
    return jax.tree_util.tree_map(lambda x: jnp.repeat(x, times, axis=0) if jnp.ndim(x) else x, tree)


def take_rows(tree, rows):
    """Rows ``rows`` of every array leaf with a batch axis, except the cross-attention cache: beams reorder only
    within their input, whose rows share the same encoder keys/values."""
    def take(path, x):
        if not jnp.ndim(x) or any("cross" in str(getattr(p, "key", "")) for p in path):
            return x
        return jnp.take(x, rows, axis=0)
    return jax.tree_util.tree_map_with_path(take, tree)


def _while(cond, body, state, trace: bool):
    """lax.while_loop, or (trace=False, v4's debugging mode) the same loop in Python."""
    if trace:
        return jax.lax.while_loop(cond, body, state)
    while bool(cond(state)):
        state = body(state)
    return state


def _is_eos(tokens, eos):
    return jnp.isin(tokens, jnp.asarray(eos, tokens.dtype)) if eos else jnp.zeros(tokens.shape, bool)


def _step_unless(done, step: Callable, params, dec, tokens, logits, trace: bool):
    """The next logits, skipped once the loop is done (the last token is never fed, as in PyTorch). Eagerly
    (trace=False) a Python branch: lax.cond outside jit would compile its branches at every step."""
    if not trace:
        return (logits, dec) if bool(done) else step(params, dec, tokens)
    return jax.lax.cond(done, lambda: (logits, dec), lambda: step(params, dec, tokens))


# ---- greedy search and sampling -----------------------------------------------------------------------------------
def greedy_or_sample(spec: SearchSpec, step: Callable, processors, params, prompt, logits, dec, rng,
                     trace: bool = True):
    """``prompt`` (rows, T0) ids, ``logits`` (rows, V) after the prefill; returns the (rows, max_length) buffer."""
    rows, t0 = prompt.shape
    seq = jnp.full((rows, spec.max_length), spec.pad, jnp.int32).at[:, :t0].set(prompt.astype(jnp.int32))
    state = dict(seq=seq, cur=jnp.asarray(t0, jnp.int32), unfinished=jnp.ones((rows,), bool), logits=logits, dec=dec,
                 rng=rng)

    def cond(s):
        return (s["cur"] < spec.max_length) & jnp.any(s["unfinished"])

    def body(s):
        scores = apply_processors(processors, s["seq"], s["cur"], s["logits"])
        rng = s["rng"]
        if spec.do_sample:
            rng, key = jax.random.split(rng)
            tokens = jax.random.categorical(key, scores, axis=-1).astype(jnp.int32)
        else:
            tokens = jnp.argmax(scores, axis=-1).astype(jnp.int32)
        unfinished = s["unfinished"]
        if spec.pad_finished:
            tokens = jnp.where(unfinished, tokens, spec.pad)
        seq = jax.lax.dynamic_update_slice(s["seq"], tokens[:, None], (0, s["cur"]))
        cur = s["cur"] + 1
        unfinished = unfinished & ~_is_eos(tokens, spec.eos)
        done = (cur >= spec.max_length) | ~jnp.any(unfinished)
        logits, dec = _step_unless(done, step, params, s["dec"], tokens, s["logits"], trace)
        return dict(seq=seq, cur=cur, unfinished=unfinished, logits=logits, dec=dec, rng=rng)

    return _while(cond, body, state, trace)["seq"]


# ---- beam search and beam sampling --------------------------------------------------------------------------------
def _gather(x, idx):
    """x[b, idx[b, j], ...] for (B, K, ...) arrays and (B, J) indices."""
    idx = idx.reshape(idx.shape + (1,) * (x.ndim - 2))
    return jnp.take_along_axis(x, idx, axis=1)


def beam_search(spec: SearchSpec, step: Callable, processors, params, prompt, logits, dec, rng, trace: bool = True):
    """``prompt`` (batch, T0), ``logits`` (batch * num_beams, V), ``dec`` already repeated per beam. Returns
    (sequences (batch * num_return_sequences, max_length), their scores (batch * num_return_sequences,))."""
    nb, lp, early, max_len = spec.num_beams, spec.length_penalty, spec.early_stopping, spec.max_length
    batch, t0 = prompt.shape
    rows = batch * nb
    keep = max(2, 1 + len(spec.eos)) * nb  # candidates per input, so num_beams survive even if the best ones end
    top_nb = jnp.arange(keep) < nb
    running = jnp.full((batch, nb, max_len), spec.pad, jnp.int32).at[:, :, :t0].set(
        prompt.astype(jnp.int32)[:, None, :])
    state = dict(
        running=running, done_seq=running,
        running_scores=jnp.zeros((batch, nb), jnp.float32).at[:, 1:].set(BIG),  # identical beams: one expands
        done_scores=jnp.full((batch, nb), BIG, jnp.float32), done_flag=jnp.zeros((batch, nb), bool),
        improvable=jnp.ones((batch, 1), bool), go_on=jnp.asarray(True), cur=jnp.asarray(t0, jnp.int32),
        logits=logits, dec=dec, rng=rng)
    offset = (jnp.arange(batch) * nb)[:, None]

    def body(s):
        cur = s["cur"]
        logp = jax.nn.log_softmax(s["logits"], axis=-1)
        logp = apply_processors(processors, s["running"].reshape(rows, max_len), cur, logp)
        vocab = logp.shape[-1]
        total = (logp.reshape(batch, nb, vocab) + s["running_scores"][:, :, None]).reshape(batch, nb * vocab)

        # a. the best (or sampled) continuations of all beams
        rng = s["rng"]
        if spec.do_sample:
            rng, key = jax.random.split(rng)
            cand = jax.lax.top_k(total + jax.random.gumbel(key, total.shape, total.dtype), keep)[1]
            cand_scores = jnp.take_along_axis(total, cand, axis=1)
        else:
            cand_scores, cand = jax.lax.top_k(total, keep)
        parent = cand // vocab
        tokens = (cand % vocab).astype(jnp.int32)
        cand_seq = _gather(s["running"], parent)
        cand_seq = jax.lax.dynamic_update_slice(cand_seq, tokens[:, :, None], (0, 0, cur))

        # b. which continuations end here
        ended = (cur + 1 >= max_len) | _is_eos(tokens, spec.eos)

        # c. the num_beams best unfinished continuations run on
        live_scores = cand_scores + ended.astype(jnp.float32) * BIG
        nxt = jax.lax.top_k(live_scores, nb)[1]
        running = _gather(cand_seq, nxt)
        running_scores = _gather(live_scores, nxt)
        parents = _gather(parent + offset, nxt).reshape(rows)

        # d. finished continuations among the top num_beams compete for the hypothesis list
        just_done = ended & top_nb[None, :]
        scored = cand_scores / ((cur + 1 - t0).astype(jnp.float32) ** lp)
        full = jnp.all(s["done_flag"], axis=-1, keepdims=True) & (early is True)
        scored = scored + full.astype(jnp.float32) * BIG
        scored = scored + (~s["improvable"]).astype(jnp.float32) * BIG
        scored = scored + (~just_done).astype(jnp.float32) * BIG
        merged_scores = jnp.concatenate([s["done_scores"], scored], axis=1)
        best = jax.lax.top_k(merged_scores, nb)[1]
        done_seq = _gather(jnp.concatenate([s["done_seq"], cand_seq], axis=1), best)
        done_scores = _gather(merged_scores, best)
        done_flag = _gather(jnp.concatenate([s["done_flag"], just_done], axis=1), best)

        # e. the stopping rule, then the cache follows the surviving beams' parents and reads their last tokens
        cur = cur + 1
        improvable = _still_improvable(s["improvable"], running_scores, done_scores, done_flag, cur, max_len, t0,
                                       early, lp)
        go_on = jnp.any(improvable) & ~(jnp.all(done_flag) & (early is True)) & ~jnp.all(ended)
        dec = dict(s["dec"], cache=take_rows(s["dec"]["cache"], parents))
        last = jax.lax.dynamic_slice_in_dim(running, cur - 1, 1, axis=2).reshape(rows)
        logits, dec = _step_unless(~go_on, step, params, dec, last, s["logits"], trace)
        return dict(running=running, done_seq=done_seq, running_scores=running_scores, done_scores=done_scores,
                    done_flag=done_flag, improvable=improvable, go_on=go_on, cur=cur, logits=logits, dec=dec,
                    rng=rng)

    s = _while(lambda s: s["go_on"], body, state, trace)
    n = spec.num_return_sequences
    return s["done_seq"][:, :n].reshape(batch * n, max_len), s["done_scores"][:, :n].reshape(batch * n)


def _still_improvable(improvable, running_scores, done_scores, done_flag, cur, max_len, t0, early, lp):
    """Can the best running beam still beat the worst kept hypothesis? (the early_stopping rule)"""
    if early == "never" and lp > 0.0:
        best_length = jnp.asarray(max_len - t0, jnp.float32)  # longer scores higher: assume it reaches max_length
    else:
        best_length = (cur - t0).astype(jnp.float32)
    best_possible = running_scores[:, :1] / (best_length ** lp)
    worst_kept = jnp.where(done_flag, jnp.min(done_scores, axis=1, keepdims=True), BIG)
    return improvable & jnp.any(best_possible > worst_kept, axis=-1, keepdims=True)
