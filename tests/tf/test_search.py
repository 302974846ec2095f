"""The TF search loops and logits processors against the PyTorch wing's (token-identical to transformers) and the
Flax wing's, on a toy deterministic "model" (table lookups, so the three frameworks compute the same logits):
greedy and beam search tokens, sequences_scores, beam_indices, the returned length and the recorded scores; eager
== XLA (tf.function(jit_compile=True)); seeded sampling reproducible eagerly and compiled; every processor on
random scores and a random id buffer.

Each XLA program compiles in about a second, so the grid is small."""
import numpy as np
import pytest
import torch

from warmstart.config.generation import GenerationConfig
from warmstart.generation import build as pt_build
from warmstart.generation import search as pt_search
from warmstart.generation.plan import SearchSpec
from warmstart.tf import processors as tp
from warmstart.tf import search as ts
from warmstart.tf.backend import tf

V, T0, L = 24, 3, 10
EOS = (3, 7)
PAD = 0
_r = np.random.default_rng(0)
W = _r.normal(size=(V, V)).astype(np.float32)
W[:, list(EOS)] += 0.6  # EOS is often likely: beams and rows end early
U = (0.5 * _r.normal(size=(V, V))).astype(np.float32)  # dependence on the previous token: the cache must follow beams
P = (0.5 * _r.normal(size=(L + 1, V))).astype(np.float32)  # and on the position
BIAS = (0.5 * _r.normal(size=(2, V))).astype(np.float32)  # per input, as cross-attention would be
PROMPT = _r.integers(8, V, size=(2, T0)).astype(np.int32)
IGNORE = np.array([0, 1], np.int32)  # row 1 has one left-pad position


def _config(**kw):
    config = GenerationConfig(**kw)
    config.max_length = L
    return config


# ---- the toy in TF, torch and jnp -----------------------------------------------------------------------------------
def _tf_step(dec, tokens):
    logits = (tf.gather(W, tokens) + tf.gather(U, dec["cache"]["prev"]) + tf.gather(P, dec["pos"])
              + dec["cross"]["bias"])
    return logits, dict(cache=dict(prev=tokens), pos=dec["pos"] + 1, cross=dec["cross"])


def _tf_start(times: int):
    dec = dict(cache=dict(prev=tf.constant(PROMPT[:, -2])), pos=tf.fill((2,), T0 - 1), cross=dict(bias=BIAS))
    logits, dec = _tf_step(dec, tf.constant(PROMPT[:, -1]))
    return ts.repeat_rows(logits, times), ts.repeat_rows(dec, times)


class _TorchToy:
    last_output = None

    def __init__(self):
        self.prev, self.pos = torch.tensor(PROMPT[:, -2]).long(), torch.full((2,), T0 - 1)
        self.bias = torch.tensor(BIAS)

    def step(self, tokens):
        logits = torch.tensor(W)[tokens] + torch.tensor(U)[self.prev] + torch.tensor(P)[self.pos] + self.bias
        self.prev, self.pos = tokens, self.pos + 1
        return logits

    def expand(self, n):
        self.prev, self.pos, self.bias = (t.repeat_interleave(n, 0) for t in (self.prev, self.pos, self.bias))

    def reorder(self, idx):
        self.prev, self.pos = self.prev[idx], self.pos[idx]


def _torch_run(spec: SearchSpec, config, ignore=None):
    toy = _TorchToy()
    first = toy.step(torch.tensor(PROMPT[:, -1]).long())
    procs = pt_build.build_processors(config, prompt_length=T0, encoder_input_ids=None, eos_ids=list(EOS),
                                      prompt_ignore_length=None if ignore is None else torch.tensor(ignore),
                                      rows_per_input=spec.num_beams)
    run = pt_search.Run(decoder=toy, first_logits=first, input_ids=torch.tensor(PROMPT).long(), processors=procs,
                        stopping=pt_build.build_stopping(config, eos_ids=list(EOS)), max_length=L, do_sample=False,
                        num_beams=spec.num_beams, num_return_sequences=spec.num_return_sequences,
                        length_penalty=spec.length_penalty, early_stopping=spec.early_stopping, pad_token_id=PAD,
                        eos=torch.tensor(EOS), pad_finished=True, want={"scores": True})
    return (pt_search.beam_search if spec.num_beams > 1 else pt_search.greedy_or_sample)(run)


def _flax_sequences(spec: SearchSpec, config, ignore=None):
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    from warmstart.flax import processors as fp
    from warmstart.flax import search as fs

    def step(params, dec, tokens):
        logits = jnp.asarray(W)[tokens] + jnp.asarray(U)[dec["cache"]["prev"]] + jnp.asarray(P)[dec["pos"]]
        return logits + dec["cross"]["bias"], dict(cache=dict(prev=tokens), pos=dec["pos"] + 1, cross=dec["cross"])

    dec = dict(cache=dict(prev=jnp.asarray(PROMPT[:, -2])), pos=jnp.full((2,), T0 - 1, jnp.int32),
               cross=dict(bias=jnp.asarray(BIAS)))
    logits, dec = step(None, dec, jnp.asarray(PROMPT[:, -1]))
    nb = spec.num_beams
    logits, dec = fs.repeat_rows(logits, nb), fs.repeat_rows(dec, nb)
    rows_ignore = None if ignore is None else jnp.asarray(np.repeat(ignore, nb))
    procs = fp.build_processors(config, prompt_length=T0, eos_ids=list(EOS), ignore=rows_ignore)
    key = jax.random.PRNGKey(0)
    if nb > 1:
        return jax.jit(lambda lg, d: fs.beam_search(spec, step, procs, None, jnp.asarray(PROMPT), lg, d, key))(
            logits, dec)
    return jax.jit(lambda lg, d: fs.greedy_or_sample(spec, step, procs, None, jnp.asarray(PROMPT), lg, d, key))(
        logits, dec), None


def _tf_run(spec: SearchSpec, config, ignore=None, seed=(0, 0), jit=False):
    nb = spec.num_beams if spec.num_beams > 1 else spec.num_return_sequences
    rows_ignore = None if ignore is None else tf.constant(np.repeat(ignore, nb))
    procs = tp.build_processors(config, prompt_length=T0, eos_ids=list(EOS), ignore=rows_ignore)
    search = ts.beam_search if spec.num_beams > 1 else ts.greedy_or_sample
    prompt = PROMPT if spec.num_beams > 1 else np.repeat(PROMPT, nb, axis=0)

    def run(seed):
        logits, dec = _tf_start(nb)
        return search(spec, _tf_step, procs, tf.constant(prompt), logits, dec, seed)

    if jit:  # (autograph off: the loops are explicit, and rewriting them costs seconds per trace)
        run = tf.function(run, jit_compile=True, autograph=False)
    out = run(tf.constant(seed, tf.int32))
    return {k: None if v is None else v.numpy() for k, v in out.items()}


def _spec(**kw):
    return SearchSpec(max_length=L, prompt_length=T0, eos=EOS, pad=PAD, pad_finished=True, do_sample=False,
                      output_scores=True, **kw)


# ---- the searches ---------------------------------------------------------------------------------------------------
def test_greedy_equals_pytorch_and_flax():
    config = _config(repetition_penalty=1.3, no_repeat_ngram_size=2, min_new_tokens=2, bad_words_ids=[[9], [12, 13]])
    spec = _spec()
    want = _torch_run(spec, config, IGNORE)
    eager, xla = _tf_run(spec, config, IGNORE), _tf_run(spec, config, IGNORE, jit=True)
    n = want.sequences.shape[1]
    assert eager["length"] == n == xla["length"]
    np.testing.assert_array_equal(eager["sequences"][:, :n], want.sequences.numpy())
    assert (eager["sequences"][:, n:] == PAD).all()
    np.testing.assert_array_equal(xla["sequences"], eager["sequences"])
    np.testing.assert_allclose(eager["scores"][:n - T0], torch.stack(want.scores).numpy(), atol=1e-5)
    assert (eager["scores"][n - T0:] == 0).all()
    flax_seq, _ = _flax_sequences(spec, config, IGNORE)
    np.testing.assert_array_equal(np.asarray(flax_seq), eager["sequences"])


@pytest.mark.parametrize("early, lp, flax", [(True, 1.5, False), (False, 0.7, True), ("never", 1.3, False)])
def test_beam_search_equals_pytorch_and_flax(early, lp, flax):
    """(Flax and XLA are compared on one of the three settings, to save their compile time; tests/flax already
    holds Flax to PyTorch, and the eager loop, the same TF program op by op, meets PyTorch on all three.)"""
    config = _config(no_repeat_ngram_size=3) if early is False else _config()
    spec = _spec(num_beams=3, num_return_sequences=2, length_penalty=lp, early_stopping=early)
    want = _torch_run(spec, config)
    eager = _tf_run(spec, config)
    xla = _tf_run(spec, config, jit=True) if flax else eager
    n = want.sequences.shape[1]
    assert eager["length"] == n == xla["length"]
    np.testing.assert_array_equal(eager["sequences"][:, :n], want.sequences.numpy())
    np.testing.assert_allclose(eager["sequences_scores"], want.sequences_scores.numpy(), atol=1e-5)
    np.testing.assert_array_equal(eager["beam_indices"][:, :n - T0], want.beam_indices.numpy())
    assert (eager["beam_indices"][:, n - T0:] == -1).all()
    steps = len(want.scores)
    assert eager["cur"] == T0 + steps
    np.testing.assert_allclose(eager["scores"][:steps], torch.stack(want.scores).numpy(), atol=1e-5)
    for key in ("sequences", "beam_indices", "length", "cur"):
        np.testing.assert_array_equal(xla[key], eager[key])
    np.testing.assert_allclose(xla["sequences_scores"], eager["sequences_scores"], atol=1e-5)
    if not flax:
        return
    flax_seq, flax_scores = _flax_sequences(spec, config)
    np.testing.assert_array_equal(np.asarray(flax_seq), eager["sequences"])
    np.testing.assert_allclose(np.asarray(flax_scores), eager["sequences_scores"], atol=1e-5)


def test_beams_end_early_in_the_toy():
    """The toy exercises what it should: EOS ends hypotheses before max_length."""
    out = _tf_run(_spec(num_beams=3, num_return_sequences=2, early_stopping=True), _config())
    assert (out["beam_indices"] == -1).any() and np.isin(out["sequences"], EOS).any()


@pytest.mark.parametrize("beams", [1, 3])
def test_sampling_is_reproducible_eager_and_compiled(beams):
    kw = dict(do_sample=True, top_k=10, top_p=0.9, temperature=0.8)
    config = _config(**kw, num_beams=beams)
    spec = _spec(num_beams=beams, num_return_sequences=2)._replace(do_sample=True)
    a, b = _tf_run(spec, config, seed=(3, 4)), _tf_run(spec, config, seed=(3, 4))
    c = _tf_run(spec, config, seed=(5, 6))
    xla = _tf_run(spec, config, seed=(3, 4), jit=True)
    np.testing.assert_array_equal(a["sequences"], b["sequences"])
    np.testing.assert_array_equal(a["sequences"], xla["sequences"])
    assert (a["sequences"] != c["sequences"]).any()


def test_take_rows_keeps_cross():
    dec = dict(cache=dict(k=tf.constant([[1], [2], [3]])), pos=tf.constant([4, 5, 6]), step=tf.constant(7),
               cross=dict(k=tf.constant([[8], [9], [10]])))
    out = ts.take_rows(dec, tf.constant([2, 2, 0]))
    assert out["cache"]["k"].numpy().ravel().tolist() == [3, 3, 1] and out["pos"].numpy().tolist() == [6, 6, 4]
    assert int(out["step"]) == 7 and out["cross"]["k"].numpy().ravel().tolist() == [8, 9, 10]


# ---- the processors -------------------------------------------------------------------------------------------------
PROCESSORS = [
    dict(repetition_penalty=1.4),
    dict(no_repeat_ngram_size=2),
    dict(no_repeat_ngram_size=3),
    dict(bad_words_ids=[[5], [3], [6, 7], [1, 2, 4]]),
    dict(min_length=6),
    dict(min_new_tokens=3),
    dict(forced_bos_token_id=4),
    dict(forced_eos_token_id=[3, 7]),
    dict(suppress_tokens=[1, 4, 30]),
    dict(begin_suppress_tokens=[2, 5]),
    dict(do_sample=True, temperature=0.6),
    dict(do_sample=True, top_k=5),
    dict(do_sample=True, top_p=0.7),
    dict(do_sample=True, top_k=8, top_p=0.5, temperature=1.7),
]


@pytest.mark.parametrize("ignore", [False, True])
def test_processors_equal_pytorch(ignore):
    """Every processor (repetition_penalty also with per-row left padding skipped) on random scores and a random
    id buffer with repeats, at several fill levels, eagerly and under XLA."""
    g = np.random.default_rng(1)
    n, length = 3, 12
    ids = g.integers(0, 9, size=(n, length)).astype(np.int32)  # a small range: n-grams and bad words recur
    scores = g.normal(size=(n, V)).astype(np.float32) * 3
    skip = np.array([0, 2, 4], np.int32)
    settings = PROCESSORS[:1] if ignore else PROCESSORS
    built = []
    for kw in settings:
        config = _config(**kw)
        config.max_length = length
        tf_procs = tp.build_processors(config, prompt_length=T0, eos_ids=list(EOS),
                                       ignore=tf.constant(skip) if ignore else None)
        pt_procs = pt_build.build_processors(config, prompt_length=T0, encoder_input_ids=None, eos_ids=list(EOS),
                                             prompt_ignore_length=torch.tensor(skip) if ignore else None,
                                             rows_per_input=1)
        assert len(tf_procs) == len(pt_procs) >= 1, kw
        built.append((kw, tf_procs, pt_procs))

    @tf.function(jit_compile=True, autograph=False)
    def compiled(ids, cur, scores):
        return [tp.apply_processors(procs, ids, cur, scores) for _, procs, _ in built]

    for cur in (1, 2, T0, 6, length - 1):
        xla = compiled(tf.constant(ids), tf.constant(cur), tf.constant(scores))
        for (kw, tf_procs, pt_procs), got_xla in zip(built, xla):
            want = pt_procs(torch.tensor(ids[:, :cur]).long(), torch.tensor(scores)).numpy()
            got = tp.apply_processors(tf_procs, tf.constant(ids), tf.constant(cur), tf.constant(scores)).numpy()
            np.testing.assert_allclose(got, want, atol=1e-6, err_msg=f"{kw} at cur={cur}")
            np.testing.assert_allclose(got_xla.numpy(), want, atol=1e-6, err_msg=f"{kw} at cur={cur} (XLA)")


def test_custom_processor_and_refusals():
    def boost(input_ids, scores, cur_len):  # v4's TF protocol
        return scores + tf.cast(tf.one_hot(cur_len % V, V), scores.dtype)[None]

    procs = tp.build_processors(_config(do_sample=True, temperature=2.0), prompt_length=T0, eos_ids=list(EOS),
                                custom=[boost])
    out = tp.apply_processors(procs, tf.zeros((1, L), tf.int32), tf.constant(5), tf.zeros((1, V))).numpy()
    assert out[0, 5] == 0.5 and out[0, 4] == 0.0  # the custom one runs before the temperature warper
    with pytest.raises(ValueError, match="the TensorFlow generate\\(\\) does not implement the sequence_bias"):
        tp.build_processors(_config(sequence_bias={(5,): 1.0}), prompt_length=T0, eos_ids=list(EOS))
    with pytest.raises(ValueError, match="the TensorFlow generate\\(\\) does not support penalty_alpha"):
        tp.refuse_unsupported(_config(penalty_alpha=0.6, top_k=4))
