"""The PyTorch heads' losses (warmstart/nn/losses.py, models/bert.py) in jnp, so a Flax head with ``labels``
returns the same number: mean cross-entropy over labels != ignore_index (NaN when none, as torch), the shifted
causal-LM loss, MSE and multi-label BCE."""
from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["token_cross_entropy", "shifted_lm_loss", "mse", "bce_with_logits"]


def token_cross_entropy(logits, labels, ignore_index: int = -100):
    """(..., V) logits against (...) integer labels, computed in float32."""
    logits = logits.reshape(-1, logits.shape[-1]).astype(jnp.float32)
    labels = labels.reshape(-1)
    valid = labels != ignore_index
    safe = jnp.where(valid, labels, 0)
    lse = jax.nn.logsumexp(logits, axis=-1)
    picked = jnp.take_along_axis(logits, safe[:, None], axis=-1)[:, 0]
    return jnp.sum(jnp.where(valid, lse - picked, 0.0)) / jnp.sum(valid)


def shifted_lm_loss(logits, labels):
    """Position t scored against label t+1 (labels given unshifted, as transformers' LM heads take them)."""
    return token_cross_entropy(logits[:, :-1], labels[:, 1:])


def mse(pred, target):
    return jnp.mean((pred.astype(jnp.float32) - target.astype(jnp.float32)) ** 2)


def bce_with_logits(logits, targets):
    x, y = logits.astype(jnp.float32), targets.astype(jnp.float32)
    # max(x, 0) - x*y + log(1 + exp(-|x|)): stable for large |x| (torch's formulation).
    return jnp.mean(jnp.maximum(x, 0) - x * y + jnp.log1p(jnp.exp(-jnp.abs(x))))
