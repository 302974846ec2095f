"""One jit-compiled AdamW step over any Flax model that takes labels (a FlaxBert* head, FlaxEncoderDecoderModel),
with the PyTorch trainer's recipe.

What matches ``warmstart.train`` (the PyTorch loop), so a run means the same thing on either wing:
- the learning rate before update ``step`` (0-based) is ``lr_factor``: linear warm-up from 0 over ``warmup_steps``,
  then constant, linear decay or half a cosine down to 0 at ``total_steps`` (so with warm-up the first update has
  learning rate 0, as with torch's LambdaLR);
- gradients are clipped as ``torch.nn.utils.clip_grad_norm_`` does: scaled by ``min(1, max_norm / (norm + 1e-6))``
  (optax's own clip has no 1e-6); ``max_grad_norm=0`` turns clipping off;
- decoupled weight decay (torch.optim.AdamW) on matrices and embedding tables, none on biases and LayerNorm scales.

The step drives the model through its public ``__call__(..., params=, dropout_rng=, train=True).loss``, so any model
with v4's call surface and a PyTorch loss trains the same way; for seq2seq that is the PyTorch EncoderDecoderModel's
loss (labels shifted right behind the start token become the decoder inputs, -100 ignored, mean over target tokens).
Dropout is on in ``train_step`` and draws from a fresh key each step (split off the state's key). Batches are the
dicts our collators and tokenizers make (numpy, or torch tensors, which are read as numpy); they are checked in
numpy before any tracing: keys the model does not take, missing labels, labels all ignored, non-integer ids, batch
sizes that disagree, and then every check the model itself makes on values (ids in range, label range): under
jit the model sees tracers and skips those, so they run first on the real batch through ``jax.eval_shape``, which
executes the model's Python (its checks) but computes nothing.
A list of batches is one update over micro-batches (gradient accumulation), weighted by label tokens as the
PyTorch loop weights them. The step is compiled once per model and batch shape (jax's jit cache).
"""
from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Mapping, Sequence
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from flax.traverse_util import path_aware_map

__all__ = ["TrainState", "Recipe", "create_train_state", "train_step", "eval_step", "lr_schedule", "SCHEDULERS"]

SCHEDULERS = ("linear", "cosine", "constant")
INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "decoder_input_ids",
              "decoder_attention_mask", "decoder_position_ids")
MASK_KEYS = ("attention_mask", "decoder_attention_mask")  # may be boolean
LABEL_KEYS = ("labels", "start_positions", "end_positions", "next_sentence_label")
IGNORE_INDEX = -100
NO_DECAY = ("bias", "scale")  # Flax leaf names of biases and LayerNorm gains


@dataclasses.dataclass(frozen=True)
class Recipe:
    """The optimizer settings a state was built with. Hashable and compared by value, so the jitted step, which
    takes it as a static argument, compiles once for all states built with equal settings (a fresh optax chain
    per state would be a new static value, and a new compile, each time)."""

    learning_rate: float
    weight_decay: float
    warmup_steps: int
    total_steps: int | None
    lr_scheduler: str
    max_grad_norm: float
    betas: tuple[float, float]
    adam_epsilon: float
    frozen: Callable[[tuple], bool] | None = None  # compared by identity: pass the same function to share

    @property
    def schedule(self) -> Callable:
        return lr_schedule(float(self.learning_rate), self.warmup_steps, self.total_steps, self.lr_scheduler)

    @property
    def tx(self) -> optax.GradientTransformation:
        frozen = self.frozen
        is_frozen = (lambda path: False) if frozen is None else (lambda path: bool(frozen(tuple(path))))
        adamw = optax.adamw(self.schedule, b1=self.betas[0], b2=self.betas[1], eps=self.adam_epsilon,
                            weight_decay=self.weight_decay, mask=lambda tree: decay_mask(tree, is_frozen))
        parts = [clip_like_torch(self.max_grad_norm), adamw] if self.max_grad_norm else [adamw]
        if frozen is not None:
            parts.insert(0, optax.masked(optax.set_to_zero(),
                                         lambda tree: path_aware_map(lambda p, _: is_frozen(p), tree)))
        return optax.chain(*parts) if len(parts) > 1 else adamw


@struct.dataclass
class TrainState:
    """Everything a step changes (a pytree), plus the recipe of its optimizer and schedule (static)."""

    step: jax.Array
    params: Any
    opt_state: Any
    rng: jax.Array
    recipe: Recipe = struct.field(pytree_node=False)

    @property
    def tx(self) -> optax.GradientTransformation:
        return self.recipe.tx

    @property
    def schedule(self) -> Callable:
        return self.recipe.schedule


# ---- the optimizer ----------------------------------------------------------------------------------------------
def lr_schedule(learning_rate: float, warmup_steps: int, total_steps: int | None, kind: str) -> Callable:
    """``learning_rate * lr_factor(count)`` of warmstart.train.loop, in jnp (optax calls it with the update count)."""
    warm, total = max(1, warmup_steps), max(1, (total_steps or 0) - warmup_steps)

    def schedule(count):
        step = jnp.asarray(count, jnp.float32)
        progress = (step - warmup_steps) / total
        if kind == "constant":
            after = jnp.ones_like(step)
        elif kind == "linear":
            after = jnp.maximum(0.0, 1.0 - progress)
        else:
            after = jnp.maximum(0.0, 0.5 * (1.0 + jnp.cos(math.pi * progress)))
        return learning_rate * jnp.where(step < warmup_steps, step / warm, after)

    return schedule


def clip_like_torch(max_norm: float) -> optax.GradientTransformation:
    """torch.nn.utils.clip_grad_norm_: one global 2-norm; gradients scaled by min(1, max_norm / (norm + 1e-6))."""
    def update(updates, state, params=None):
        coef = jnp.minimum(1.0, max_norm / (optax.tree.norm(updates) + 1e-6))
        return jax.tree_util.tree_map(lambda g: (g * coef).astype(g.dtype), updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def decay_mask(params, frozen: Callable[[tuple], bool] = lambda path: False):
    """True where weight decay applies: every leaf but biases, LayerNorm scales (as the PyTorch trainer) and
    frozen leaves."""
    return path_aware_map(lambda path, _: path[-1] not in NO_DECAY and not frozen(tuple(path)), params)


def _check_options(learning_rate, weight_decay, warmup_steps, total_steps, lr_scheduler, max_grad_norm, betas,
                   adam_epsilon, seed) -> None:
    def number(name, value, low, high=None, low_open=False):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        ok = ok and (value > low if low_open else value >= low) and (high is None or value < high)
        if not ok:
            bound = f"{'>' if low_open else '>='} {low}" + (f" and < {high}" if high is not None else "")
            raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")

    number("learning_rate", learning_rate, 0.0)
    number("weight_decay", weight_decay, 0.0)
    number("max_grad_norm", max_grad_norm, 0.0)
    number("adam_epsilon", adam_epsilon, 0.0)
    for name, beta in zip(("adam_beta1", "adam_beta2"), betas):
        number(name, beta, 0.0, 1.0)
    for name, value in (("warmup_steps", warmup_steps), ("seed", seed)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    if lr_scheduler not in SCHEDULERS:
        raise ValueError(f"lr_scheduler must be one of {SCHEDULERS}, got {lr_scheduler!r}")
    if total_steps is None:
        if lr_scheduler != "constant":
            raise ValueError(f"lr_scheduler={lr_scheduler!r} decays to 0 at total_steps, so it needs total_steps=; "
                             "pass it, or lr_scheduler='constant'")
    elif not isinstance(total_steps, int) or isinstance(total_steps, bool) or total_steps < 1:
        raise ValueError(f"total_steps must be a positive int or None, got {total_steps!r}")


def create_train_state(model, *, learning_rate: float = 5e-5, weight_decay: float = 0.0, warmup_steps: int = 0,
                       total_steps: int | None = None, lr_scheduler: str = "linear", max_grad_norm: float = 1.0,
                       adam_beta1: float = 0.9, adam_beta2: float = 0.999, adam_epsilon: float = 1e-8,
                       seed: int = 0, params=None, frozen: Callable[[tuple], bool] | None = None) -> TrainState:
    """A fresh TrainState over ``params`` (default: the model's); the defaults are the PyTorch trainer's.

    ``frozen(path) -> bool`` names leaves (by their path of keys, e.g. ``("encoder", "pooler", "dense", "bias")``)
    that stay as they are, as PyTorch parameters with ``requires_grad=False``: their gradients are zeroed before
    clipping (so the clipping norm is over the trained ones, as clip_grad_norm_ over the optimizer's parameters)
    and they get no weight decay, so Adam moves them by exactly 0."""
    _check_options(learning_rate, weight_decay, warmup_steps, total_steps, lr_scheduler, max_grad_norm,
                   (adam_beta1, adam_beta2), adam_epsilon, seed)
    if frozen is not None and not callable(frozen):
        raise TypeError(f"frozen must be a function of a leaf's path (a tuple of keys), got {type(frozen).__name__}")
    params = jax.tree_util.tree_map(jnp.asarray, model.params if params is None else params)
    recipe = Recipe(float(learning_rate), float(weight_decay), warmup_steps, total_steps, lr_scheduler,
                    float(max_grad_norm), (float(adam_beta1), float(adam_beta2)), float(adam_epsilon), frozen)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=recipe.tx.init(params),
                      rng=jax.random.PRNGKey(seed), recipe=recipe)


# ---- batches ----------------------------------------------------------------------------------------------------
def _accepted(model) -> tuple[list[str], list[str]]:
    """(input keys, label keys) the model's ``__call__`` takes, read from its signature."""
    names = inspect.signature(type(model).__call__).parameters
    return [k for k in INPUT_KEYS if k in names], [k for k in LABEL_KEYS if k in names]


def _takes_float_labels(model) -> bool:
    return (type(model).__name__.endswith("ForSequenceClassification")
            and model.config.problem_type in (None, "regression", "multi_label_classification"))


def _check_batch(model, batch, need_labels: bool) -> tuple[dict, dict]:
    """The batch as numpy (inputs, labels), the model-independent checks done before tracing."""
    name = type(model).__name__
    if not isinstance(batch, Mapping):
        raise TypeError(f"a batch must be a dict of arrays (a collator's or tokenizer's output), got "
                        f"{type(batch).__name__}")
    inputs_ok, labels_ok = _accepted(model)
    unknown = sorted(k for k in batch if k not in inputs_ok + labels_ok)
    if unknown:
        raise ValueError(f"{name} takes no {unknown} (it takes {inputs_ok + labels_ok}); drop those keys from "
                         f"the batch")
    if "input_ids" not in batch:
        raise ValueError(f"the batch has no 'input_ids' (keys: {sorted(batch)})")
    arrays = {}
    for key, value in batch.items():
        if value is None:
            continue
        array = np.asarray(value)  # torch tensors and jax arrays too: the checks read values on the host
        kind = array.dtype.kind
        float_ok = key == "labels" and _takes_float_labels(model)
        if kind not in "iu" and not (key in MASK_KEYS and kind == "b") and not (float_ok and kind == "f"):
            raise TypeError(f"batch[{key!r}] must hold integers, got dtype {array.dtype}")
        arrays[key] = array
    rows = arrays["input_ids"].shape[:1]
    bad = {k: a.shape for k, a in arrays.items() if a.shape[:1] != rows}
    if bad:
        raise ValueError(f"batch arrays disagree on the batch size: input_ids has {rows[0] if rows else None} rows, "
                         f"but {bad}")
    labels = {k: arrays.pop(k) for k in labels_ok if k in arrays}
    if need_labels and not labels:
        raise ValueError(f"the batch has no labels, so {name} has no loss to train on: add "
                         + (" or ".join(repr(k) for k in labels_ok) if labels_ok else "nothing; it has no head with "
                            "a loss (use a *For... head)"))
    if "start_positions" in labels and "end_positions" not in labels or \
            "end_positions" in labels and "start_positions" not in labels:
        raise ValueError("question answering needs both 'start_positions' and 'end_positions' in the batch, got "
                         f"only {sorted(labels)}")
    if need_labels:
        _check_something_counts(arrays["input_ids"], labels)
    return arrays, labels


def _check_something_counts(input_ids, labels) -> None:
    """A batch whose every label is ignored has a NaN loss (0 / 0), whose gradients would poison every param."""
    y = labels.get("labels")
    if y is not None and y.dtype.kind in "iu" and y.size and (y == IGNORE_INDEX).all():
        raise ValueError(f"every label in the batch is {IGNORE_INDEX} (ignored), so the loss is NaN; skip the batch")
    start = labels.get("start_positions")
    if start is not None and start.size and (start >= input_ids.shape[-1]).all():
        raise ValueError(f"every start position is past the sequence (length {input_ids.shape[-1]}), so the loss is "
                         "NaN; skip the batch")


def _call(model, params, arrays, dropout_rng, train: bool):
    """The model's public forward: what a user would write, so the step knows no model's insides."""
    return model(**arrays, params=params, dropout_rng=dropout_rng, train=train)


def _prepare(model, batch, params, need_labels: bool, train: bool) -> dict:
    """The checked batch as jax arrays (inputs and labels in one dict, the model's keyword names).

    The model's own value checks (ids within the vocabulary, labels within range, a sequence classifier's
    problem_type inferred from its labels) read concrete values, and inside the jitted step they see tracers; so
    its ``__call__`` runs here first on the numpy batch under ``jax.eval_shape``: its Python runs, its checks with
    it, while the params stay abstract and no array is computed."""
    inputs, labels = _check_batch(model, batch, need_labels)
    arrays = {**inputs, **labels}
    key = jax.random.PRNGKey(0) if train else None
    out = jax.eval_shape(lambda p: _call(model, p, arrays, key, train), params)
    if need_labels and getattr(out, "loss", None) is None:
        raise ValueError(f"{type(model).__name__} returned no loss for a batch with {sorted(labels)}; it needs "
                         "all of its labels to compute one")
    return {k: jnp.asarray(v) for k, v in arrays.items()}


def _label_tokens(batch: dict) -> int:
    """How many targets a batch scores: label entries not ignored (token labels), else rows."""
    y = batch.get("labels")
    if y is not None and jnp.issubdtype(y.dtype, jnp.integer):
        return int((np.asarray(y) != IGNORE_INDEX).sum())
    return int(batch["input_ids"].shape[0])


# ---- steps ------------------------------------------------------------------------------------------------------
def _loss(model, params, arrays, dropout_rng):
    return _call(model, params, arrays, dropout_rng, True).loss


def _train_step(model, state: TrainState, arrays):
    rng, dropout_rng = jax.random.split(state.rng)
    loss, grads = jax.value_and_grad(lambda p: _loss(model, p, arrays, dropout_rng))(state.params)
    return _update(state, grads, loss, rng)


def _update(state: TrainState, grads, loss, rng):
    updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
    metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads), "learning_rate": state.schedule(state.step)}
    new = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                        opt_state=opt_state, rng=rng)
    return new, metrics


def _micro_step(model, params, rng, arrays, weight, loss_sum, grad_sum):
    """One micro-batch of an accumulated update: its mean loss and gradients scaled by its share of the tokens,
    added to the running sums (the PyTorch loop scales each micro-batch's loss the same way)."""
    rng, dropout_rng = jax.random.split(rng)
    loss, grads = jax.value_and_grad(lambda p: _loss(model, p, arrays, dropout_rng))(params)
    grad_sum = jax.tree_util.tree_map(lambda s, g: s + weight * g, grad_sum, grads)
    return rng, loss_sum + weight * loss, grad_sum


# The model is a static argument (hashed by identity): one compiled program per model and batch shape.
_train_step_jit = jax.jit(_train_step, static_argnums=0)
_micro_step_jit = jax.jit(_micro_step, static_argnums=0, donate_argnums=(5, 6))
_update_jit = jax.jit(_update)


def train_step(model, state: TrainState, batch: Mapping | Sequence[Mapping]) -> tuple[TrainState, dict]:
    """One AdamW update with dropout on. Returns (new state, metrics): ``loss`` (before the update), ``grad_norm``
    (before clipping, as clip_grad_norm_ returns it) and the ``learning_rate`` this update used.

    ``batch`` may be a list of micro-batches (gradient accumulation): the update then follows the mean loss over
    all their label tokens, as one batch holding them all would (the PyTorch loop's weighting); each micro-batch
    draws its own dropout key. Every micro-batch is checked before any is run."""
    if not isinstance(state, TrainState):
        raise TypeError(f"state must be a TrainState (from create_train_state), got {type(state).__name__}")
    if isinstance(batch, Mapping):
        return _train_step_jit(model, state, _prepare(model, batch, state.params, need_labels=True, train=True))
    if isinstance(batch, (str, bytes)) or not isinstance(batch, Sequence) or not batch:
        raise TypeError(f"a batch must be a dict of arrays, or a non-empty list of them (micro-batches), got "
                        f"{type(batch).__name__}")
    micro = [_prepare(model, b, state.params, need_labels=True, train=True) for b in batch]
    counts = [_label_tokens(m) for m in micro]
    rng, loss = state.rng, jnp.zeros((), jnp.float32)
    grads = jax.tree_util.tree_map(jnp.zeros_like, state.params)
    for arrays, n in zip(micro, counts):
        rng, loss, grads = _micro_step_jit(model, state.params, rng, arrays, jnp.float32(n / sum(counts)), loss,
                                           grads)
    return _update_jit(state, grads, loss, rng)


def eval_step(model, state: TrainState, batch: Mapping) -> dict:
    """The model's outputs without dropout (``loss`` too when the batch has labels), as a dict of arrays.
    ``state`` may also be a bare params tree."""
    params = state.params if isinstance(state, TrainState) else state
    # The model's __call__ is already one jitted program; wrapping it in another jit would only re-fuse it.
    out = _call(model, params, _prepare(model, batch, params, need_labels=False, train=False), None, False)
    return {k: v for k, v in out.items() if v is not None}
