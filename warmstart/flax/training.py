"""One jit-compiled AdamW step over any FlaxBert* head that takes labels, with the PyTorch trainer's recipe.

What matches ``warmstart.train`` (the PyTorch loop), so a run means the same thing on either wing:
- the learning rate before update ``step`` (0-based) is ``lr_factor``: linear warm-up from 0 over ``warmup_steps``,
  then constant, linear decay or half a cosine down to 0 at ``total_steps`` (so with warm-up the first update has
  learning rate 0, as with torch's LambdaLR);
- gradients are clipped as ``torch.nn.utils.clip_grad_norm_`` does: scaled by ``min(1, max_norm / (norm + 1e-6))``
  (optax's own clip has no 1e-6); ``max_grad_norm=0`` turns clipping off;
- decoupled weight decay (torch.optim.AdamW) on matrices and embedding tables, none on biases and LayerNorm scales.

Dropout is on in ``train_step`` and draws from a fresh key each step (split off the state's key). Batches are the
dicts our collators and tokenizers make (numpy, or torch tensors, which are read as numpy); they are checked in
numpy before any tracing: keys the head does not take, missing labels, non-integer ids, batch sizes that disagree.
The step is compiled once per model and batch shape (jax's jit cache).
"""
from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from flax.traverse_util import path_aware_map

__all__ = ["TrainState", "create_train_state", "train_step", "eval_step", "lr_schedule", "SCHEDULERS"]

SCHEDULERS = ("linear", "cosine", "constant")
INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids", "position_ids")
LABEL_KEYS = ("labels", "start_positions", "end_positions", "next_sentence_label")
IGNORE_INDEX = -100
NO_DECAY = ("bias", "scale")  # Flax leaf names of biases and LayerNorm gains


@struct.dataclass
class TrainState:
    """Everything a step changes (a pytree), plus the optimizer and schedule it was built with (static)."""

    step: jax.Array
    params: Any
    opt_state: Any
    rng: jax.Array
    tx: optax.GradientTransformation = struct.field(pytree_node=False)
    schedule: Callable = struct.field(pytree_node=False)


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


def decay_mask(params):
    """True where weight decay applies: every leaf but biases and LayerNorm scales (as the PyTorch trainer)."""
    return path_aware_map(lambda path, _: path[-1] not in NO_DECAY, params)


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
                       seed: int = 0, params=None) -> TrainState:
    """A fresh TrainState over ``params`` (default: the model's); the defaults are the PyTorch trainer's."""
    _check_options(learning_rate, weight_decay, warmup_steps, total_steps, lr_scheduler, max_grad_norm,
                   (adam_beta1, adam_beta2), adam_epsilon, seed)
    params = jax.tree_util.tree_map(jnp.asarray, model.params if params is None else params)
    schedule = lr_schedule(float(learning_rate), warmup_steps, total_steps, lr_scheduler)
    adamw = optax.adamw(schedule, b1=adam_beta1, b2=adam_beta2, eps=adam_epsilon, weight_decay=weight_decay,
                        mask=decay_mask)
    tx = optax.chain(clip_like_torch(max_grad_norm), adamw) if max_grad_norm else adamw
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                      rng=jax.random.PRNGKey(seed), tx=tx, schedule=schedule)


# ---- batches ----------------------------------------------------------------------------------------------------
def _accepted(model) -> tuple[list[str], list[str]]:
    """(input keys, label keys) the model's ``__call__`` takes, read from its signature."""
    names = inspect.signature(type(model).__call__).parameters
    return [k for k in INPUT_KEYS if k in names], [k for k in LABEL_KEYS if k in names]


def _takes_float_labels(model) -> bool:
    return (type(model).__name__.endswith("ForSequenceClassification")
            and model.config.problem_type in (None, "regression", "multi_label_classification"))


def _check_batch(model, batch, need_labels: bool) -> tuple[dict, dict]:
    """The batch as numpy (inputs, labels), every check done before tracing."""
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
        if kind not in "iu" and not (key == "attention_mask" and kind == "b") and not (float_ok and kind == "f"):
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


def _prepare(model, batch, need_labels: bool, train: bool, rng):
    """Checked (inputs, labels) as the model's jitted forward takes them; the model's own input checks included."""
    arrays, labels = _check_batch(model, batch, need_labels)
    get = arrays.get
    model._check_backbone_inputs(get("input_ids"), get("attention_mask"), get("token_type_ids"),
                                 get("position_ids"), None, train, rng)
    if labels:
        model._check_labels(labels)  # range checks; infers a sequence classifier's problem_type
    inputs = model._backbone_inputs(get("input_ids"), get("attention_mask"), get("token_type_ids"),
                                    get("position_ids"), None)
    return inputs, {k: jnp.asarray(v) for k, v in labels.items()} or None


# ---- steps ------------------------------------------------------------------------------------------------------
def _loss(model, params, inputs, labels, dropout_rng):
    return model._forward(params, inputs, labels, dropout_rng, True, False, False)["loss"]


def _train_step(model, state: TrainState, inputs, labels):
    rng, dropout_rng = jax.random.split(state.rng)
    loss, grads = jax.value_and_grad(lambda p: _loss(model, p, inputs, labels, dropout_rng))(state.params)
    updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
    metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads), "learning_rate": state.schedule(state.step)}
    new = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                        opt_state=opt_state, rng=rng)
    return new, metrics


def _eval_step(model, params, inputs, labels):
    out = model._forward(params, inputs, labels, None, False, False, False)
    return {k: v for k, v in out.items() if v is not None}


# The model is a static argument (hashed by identity): one compiled program per model and batch shape.
_train_step_jit = jax.jit(_train_step, static_argnums=0)
_eval_step_jit = jax.jit(_eval_step, static_argnums=0)


def train_step(model, state: TrainState, batch: Mapping) -> tuple[TrainState, dict]:
    """One AdamW update with dropout on. Returns (new state, metrics): ``loss`` (before the update), ``grad_norm``
    (before clipping, as clip_grad_norm_ returns it) and the ``learning_rate`` this update used."""
    if not isinstance(state, TrainState):
        raise TypeError(f"state must be a TrainState (from create_train_state), got {type(state).__name__}")
    inputs, labels = _prepare(model, batch, need_labels=True, train=True, rng=state.rng)
    return _train_step_jit(model, state, inputs, labels)


def eval_step(model, state: TrainState, batch: Mapping) -> dict:
    """The head's outputs without dropout (``loss`` too when the batch has labels), as a dict of arrays.
    ``state`` may also be a bare params tree."""
    params = state.params if isinstance(state, TrainState) else state
    inputs, labels = _prepare(model, batch, need_labels=False, train=False, rng=None)
    return _eval_step_jit(model, params, inputs, labels)
