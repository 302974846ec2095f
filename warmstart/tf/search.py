"""Greedy search, sampling, beam search and beam sampling as one ``tf.while_loop`` each, over a static cache.

Every tensor has its final shape from the start (the sequence buffer is (rows, max_length), the cache holds
max_length positions), so a whole generation compiles to one XLA program (``tf.function(jit_compile=True)``) and
runs the same eagerly. The token rules are the PyTorch wing's (warmstart/generation/search.py, token-identical to
transformers) and the Flax loops' (flax/search.py): argmax / a categorical draw of the processed scores, finished
rows padded; the vectorised beam search that keeps ``max(2, 1 + #eos) * num_beams`` candidates per step, retires
finished ones into ``num_beams`` hypotheses scored ``sum log p / length ** length_penalty`` and stops per
``early_stopping``; beam sampling draws the candidates without replacement with the Gumbel-top-k trick (Kool et
al. 2019), which samples from the same distribution as torch.multinomial.

Randomness is stateless: step ``cur`` draws from ``stateless_fold_in(seed, cur)``. TF's float samplers
(stateless_uniform, stateless_categorical) map the same random bits to different numbers eagerly and under XLA,
so the loops take the raw int32 bits (identical in both) and build the uniforms and the Gumbel noise themselves:
the same seed gives the same tokens eagerly and compiled.

The model is reached only through ``step(dec, tokens (rows,)) -> (logits (rows, V), dec)``, where ``dec`` is a
dict nest (cache, next positions, masks, encoder states) the loop carries and, for beams, reorders.
"""
from __future__ import annotations

from typing import Callable

from ..generation.plan import SearchSpec
from .backend import tf
from .processors import apply_processors

__all__ = ["SearchSpec", "greedy_or_sample", "beam_search", "repeat_rows", "take_rows"]

BIG = -1.0e9  # transformers' "impossible" beam score: finite, so sums of several stay ordered


def repeat_rows(tree, times: int):
    """Row i becomes rows i*times .. i*times+times-1 in every tensor leaf with a batch axis."""
    if times == 1:
        return tree
    return tf.nest.map_structure(lambda x: tf.repeat(x, times, axis=0) if len(x.shape) else x, tree)


def take_rows(dec, rows):
    """Rows ``rows`` of every tensor leaf with a batch axis, except ``dec["cross"]`` (cross-attention keys/values):
    beams reorder only within their input, whose rows share the same encoder states."""
    def take(x):
        return tf.gather(x, rows, axis=0) if len(x.shape) else x
    if isinstance(dec, dict):
        return {k: (v if k == "cross" else tf.nest.map_structure(take, v)) for k, v in dec.items()}
    return tf.nest.map_structure(take, dec)


def _is_eos(tokens, eos):
    if not eos:
        return tf.zeros(tf.shape(tokens), bool)
    return tf.reduce_any(tf.equal(tokens[..., None], tf.constant(eos, tokens.dtype)), axis=-1)


def _step_unless(done, step: Callable, dec, tokens, logits):
    """The next logits, skipped once the loop is done (the last token is never fed, as in PyTorch). Eagerly,
    tf.cond runs just the taken branch."""
    def run():
        new_logits, new_dec = step(dec, tokens)
        return tf.cast(new_logits, logits.dtype), new_dec
    return tf.cond(done, lambda: (logits, dec), run)


def _gumbel(seed, cur, shape):
    """Gumbel(0, 1) noise of step ``cur``: uniforms in (0, 1) from raw stateless bits (see the module doc)."""
    key = tf.random.experimental.stateless_fold_in(seed, cur, alg="philox")
    bits = tf.random.stateless_uniform(shape, key, dtype=tf.int32, minval=None, maxval=None, alg="philox")
    top = tf.bitwise.right_shift(tf.bitcast(bits, tf.uint32), tf.constant(9, tf.uint32))  # 23 bits
    u = (tf.cast(top, tf.float32) + 0.5) * (1.0 / (1 << 23))  # never 0 nor 1
    return -tf.math.log(-tf.math.log(u))


def _write_column(buf, value, at):
    """buf[..., at] = value for a traced ``at`` (a mask, so the shape never depends on it)."""
    hit = tf.equal(tf.range(buf.shape[-1], dtype=tf.int32), at)
    return tf.where(hit, tf.cast(value, buf.dtype)[..., None], buf)


def _scores_buffer(spec: SearchSpec, rows, vocab: int, t0: int):
    if not spec.output_scores:
        return tf.zeros((0,), tf.float32)  # a placeholder the loop carries untouched
    return tf.zeros(tf.stack([spec.max_length - t0, rows, vocab]), tf.float32)


def _record(spec: SearchSpec, buf, scores, at):
    if not spec.output_scores:
        return buf
    return tf.tensor_scatter_nd_update(buf, tf.reshape(at, (1, 1)), tf.cast(scores, tf.float32)[None])


# ---- greedy search and sampling -----------------------------------------------------------------------------------
def greedy_or_sample(spec: SearchSpec, step: Callable, processors, prompt, logits, dec, seed):
    """``prompt`` (rows, T0) ids, ``logits`` (rows, V) after the prefill, ``seed`` (2,) int32 (sampling). Returns
    {"sequences": (rows, max_length), "length": the filled length, "scores": (max_length - T0, rows, V) or None}."""
    t0, vocab = prompt.shape[1], logits.shape[-1]
    rows = tf.shape(prompt)[0]
    prompt = tf.cast(prompt, tf.int32)
    seq = tf.concat([prompt, tf.fill(tf.stack([rows, spec.max_length - t0]), spec.pad)], axis=1)
    seed = tf.zeros((2,), tf.int32) if seed is None else tf.cast(seed, tf.int32)
    state = dict(seq=seq, cur=tf.constant(t0, tf.int32), unfinished=tf.ones(tf.stack([rows]), bool),
                 logits=tf.cast(logits, tf.float32), dec=dec, scores=_scores_buffer(spec, rows, vocab, t0))

    def cond(s):
        return (s["cur"] < spec.max_length) & tf.reduce_any(s["unfinished"])

    def body(s):
        cur = s["cur"]
        scores = apply_processors(processors, s["seq"], cur, s["logits"])
        if spec.do_sample:  # Gumbel-max: a categorical draw from softmax(scores)
            tokens = tf.argmax(scores + _gumbel(seed, cur, tf.shape(scores)), axis=-1, output_type=tf.int32)
        else:
            tokens = tf.argmax(scores, axis=-1, output_type=tf.int32)
        unfinished = s["unfinished"]
        if spec.pad_finished:
            tokens = tf.where(unfinished, tokens, spec.pad)
        seq = _write_column(s["seq"], tokens, cur)
        recorded = _record(spec, s["scores"], scores, cur - t0)
        cur = cur + 1
        unfinished = unfinished & ~_is_eos(tokens, spec.eos)
        done = (cur >= spec.max_length) | ~tf.reduce_any(unfinished)
        logits, dec = _step_unless(done, step, s["dec"], tokens, s["logits"])
        return dict(seq=seq, cur=cur, unfinished=unfinished, logits=logits, dec=dec, scores=recorded)

    s = tf.while_loop(cond, lambda s: [body(s)], [state])[0]
    return dict(sequences=s["seq"], length=s["cur"], scores=s["scores"] if spec.output_scores else None)


# ---- beam search and beam sampling --------------------------------------------------------------------------------
def _gather(x, idx):
    """x[b, idx[b, j], ...] for (B, K, ...) tensors and (B, J) indices."""
    return tf.gather(x, idx, axis=1, batch_dims=1)


def beam_search(spec: SearchSpec, step: Callable, processors, prompt, logits, dec, seed):
    """``prompt`` (batch, T0), ``logits`` (batch * num_beams, V), ``dec`` already repeated per beam, ``seed`` (2,)
    int32 (beam sampling). Returns {"sequences": (batch * n, max_length), "sequences_scores": (batch * n,),
    "beam_indices": (batch * n, max_length - T0), "length", "cur", "scores": (max_length - T0, batch * nb, V) or
    None} for n = num_return_sequences; ``length`` is T0 plus the generated positions any returned sequence uses,
    ``cur`` T0 plus the steps run (PyTorch records ``cur - T0`` score rows, which can be more than ``length - T0``)."""
    nb, lp, early, max_len = spec.num_beams, spec.length_penalty, spec.early_stopping, spec.max_length
    batch, t0, vocab = prompt.shape[0], prompt.shape[1], logits.shape[-1]
    rows, steps = batch * nb, max_len - t0
    keep = max(2, 1 + len(spec.eos)) * nb  # candidates per input, so num_beams survive even if the best ones end
    top_nb = tf.range(keep) < nb
    prompt = tf.cast(prompt, tf.int32)
    running = tf.concat([prompt, tf.fill((batch, max_len - t0), spec.pad)], axis=1)
    running = tf.tile(running[:, None, :], (1, nb, 1))
    no_idx = tf.fill((batch, nb, steps), -1)
    seed = tf.zeros((2,), tf.int32) if seed is None else tf.cast(seed, tf.int32)
    first = tf.concat([tf.zeros((batch, 1)), tf.fill((batch, nb - 1), BIG)], axis=1)  # identical beams: one expands
    state = dict(
        running=running, done_seq=running, running_idx=no_idx, done_idx=no_idx, running_scores=first,
        done_scores=tf.fill((batch, nb), BIG), done_flag=tf.zeros((batch, nb), bool),
        improvable=tf.ones((batch, 1), bool), go_on=tf.constant(True), cur=tf.constant(t0, tf.int32),
        logits=tf.cast(logits, tf.float32), dec=dec, scores=_scores_buffer(spec, rows, vocab, t0))
    offset = (tf.range(batch) * nb)[:, None]

    def body(s):
        cur = s["cur"]
        logp = tf.nn.log_softmax(s["logits"], axis=-1)
        logp = apply_processors(processors, tf.reshape(s["running"], (rows, max_len)), cur, logp)
        recorded = _record(spec, s["scores"], logp, cur - t0)
        total = tf.reshape(tf.reshape(logp, (batch, nb, vocab)) + s["running_scores"][:, :, None],
                           (batch, nb * vocab))

        # a. the best (or sampled) continuations of all beams
        if spec.do_sample:
            cand = tf.math.top_k(total + _gumbel(seed, cur, tf.shape(total)), keep)[1]
            cand_scores = tf.gather(total, cand, batch_dims=1)
        else:
            cand_scores, cand = tf.math.top_k(total, keep)
        parent = cand // vocab
        tokens = cand % vocab
        cand_seq = _write_column(_gather(s["running"], parent), tokens, cur)
        cand_idx = _write_column(_gather(s["running_idx"], parent), parent + offset, cur - t0)

        # b. which continuations end here
        ended = (cur + 1 >= max_len) | _is_eos(tokens, spec.eos)

        # c. the num_beams best unfinished continuations run on
        live_scores = cand_scores + tf.cast(ended, tf.float32) * BIG
        nxt = tf.math.top_k(live_scores, nb)[1]
        running = _gather(cand_seq, nxt)
        running_scores = _gather(live_scores, nxt)
        running_idx = _gather(cand_idx, nxt)
        parents = tf.reshape(_gather(parent + offset, nxt), (rows,))

        # d. finished continuations among the top num_beams compete for the hypothesis list
        just_done = ended & top_nb[None, :]
        scored = cand_scores / (tf.cast(cur + 1 - t0, tf.float32) ** lp)
        full = tf.reduce_all(s["done_flag"], axis=-1, keepdims=True) & (early is True)
        scored = scored + tf.cast(full, tf.float32) * BIG
        scored = scored + tf.cast(~s["improvable"], tf.float32) * BIG
        scored = scored + tf.cast(~just_done, tf.float32) * BIG
        merged_scores = tf.concat([s["done_scores"], scored], axis=1)
        best = tf.math.top_k(merged_scores, nb)[1]
        done_seq = _gather(tf.concat([s["done_seq"], cand_seq], axis=1), best)
        done_idx = _gather(tf.concat([s["done_idx"], cand_idx], axis=1), best)
        done_scores = _gather(merged_scores, best)
        done_flag = _gather(tf.concat([s["done_flag"], just_done], axis=1), best)

        # e. the stopping rule, then the cache follows the surviving beams' parents and reads their last tokens
        cur = cur + 1
        improvable = _still_improvable(s["improvable"], running_scores, done_scores, done_flag, cur, max_len, t0,
                                       early, lp)
        go_on = (tf.reduce_any(improvable) & ~(tf.reduce_all(done_flag) & (early is True))
                 & ~tf.reduce_all(ended))
        dec = take_rows(s["dec"], parents)
        last = tf.reshape(tf.gather(running, cur - 1, axis=2), (rows,))
        logits, dec = _step_unless(~go_on, step, dec, last, s["logits"])
        return dict(running=running, done_seq=done_seq, running_idx=running_idx, done_idx=done_idx,
                    running_scores=running_scores, done_scores=done_scores, done_flag=done_flag,
                    improvable=improvable, go_on=go_on, cur=cur, logits=logits, dec=dec, scores=recorded)

    s = tf.while_loop(lambda s: s["go_on"], lambda s: [body(s)], [state])[0]
    n = spec.num_return_sequences
    indices = tf.reshape(s["done_idx"][:, :n], (batch * n, steps))
    generated = tf.reduce_max(tf.reduce_sum(tf.cast(indices != -1, tf.int32), axis=1))
    return dict(sequences=tf.reshape(s["done_seq"][:, :n], (batch * n, max_len)),
                sequences_scores=tf.reshape(s["done_scores"][:, :n], (batch * n,)), beam_indices=indices,
                length=t0 + generated, cur=s["cur"], scores=s["scores"] if spec.output_scores else None)


def _still_improvable(improvable, running_scores, done_scores, done_flag, cur, max_len, t0, early, lp):
    """Can the best running beam still beat the worst kept hypothesis? (the early_stopping rule)"""
    if early == "never" and lp > 0.0:
        best_length = tf.constant(max_len - t0, tf.float32)  # longer scores higher: assume it reaches max_length
    else:
        best_length = tf.cast(cur - t0, tf.float32)
    best_possible = running_scores[:, :1] / (best_length ** lp)
    worst_kept = tf.where(done_flag, tf.reduce_min(done_scores, axis=1, keepdims=True), BIG)
    return improvable & tf.reduce_any(best_possible > worst_kept, axis=-1, keepdims=True)
