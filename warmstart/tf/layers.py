"""Keras 3 building blocks whose weights carry transformers v4's TF names.

Keras 3 names variables by position and ignores name scopes, so it cannot give ``bert/encoder/layer_._0/attention/
self/query/kernel`` by itself. Each of our layers therefore records its children and weights under v4's names
(``sub`` / ``param``) and ``named_weights`` walks that record: the paths it yields are v4's ``tf_model.h5`` names
without the model-name component and ``:0``, which is what ``checkpoint/tf_io.py`` and ``tf_layout.py`` speak.
Python attribute names are free (Keras reserves ``output``, ``input``, ``weights``...), the recorded names are not.

Weights are created in ``__init__`` from the config (shapes never depend on the input), so a model can be loaded
before its first call and ``built`` is set at once. Shape notation: B batch, T query length, S key length, H heads,
D head size, C hidden size.
"""
from __future__ import annotations

import math

from .backend import keras, tf

__all__ = ["Layer", "Dense", "Conv1D", "LayerNorm", "Embedding", "activation", "named_weights", "attention_bias",
           "attend", "split_heads", "merge_heads", "truncated_normal", "write_at", "vocab_logits"]


def truncated_normal(stddev: float):
    # v4's TF models draw every kernel and table from a truncated normal with the config's initializer_range.
    return keras.initializers.TruncatedNormal(stddev=stddev)


class Layer(keras.layers.Layer):
    """A Keras layer that remembers its children and weights under v4's names."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # Plain lists set past Keras' attribute tracking: Keras tracks the same objects through the attributes.
        object.__setattr__(self, "_v4_children", [])
        object.__setattr__(self, "_v4_params", [])

    def __call__(self, *args, **kwargs):
        # Inner layers take tensors, flags and tuples as they are: Keras' __call__ (input conversion, build, name
        # scopes, mask propagation) has nothing to add here, refuses non-tensor positional arguments, and costs
        # tens of microseconds per call in eager mode. The public models keep Keras' own __call__.
        return self.call(*args, **kwargs)

    def sub(self, name: str, layer, attr: str | None = None):
        """Attach ``layer`` as ``self.<attr>`` (Keras tracks it) under the v4 name ``name``."""
        setattr(self, attr or name, layer)
        self._v4_children.append((name, layer))
        return layer

    def subs(self, names: list[str], layers: list, attr: str) -> list:
        setattr(self, attr, list(layers))
        self._v4_children.extend(zip(names, layers))
        return getattr(self, attr)

    def param(self, name: str, shape, initializer="zeros", trainable: bool = True):
        var = self.add_weight(name=name, shape=tuple(shape), initializer=initializer, dtype="float32",
                              trainable=trainable)
        self._v4_params.append((name, var))
        return var


def named_weights(layer: Layer, prefix: str = ""):
    """(v4 name relative to the model, variable) for every weight under ``layer``, in creation order."""
    lead = prefix + "/" if prefix else ""
    for name, var in layer._v4_params:
        yield lead + name, var
    for name, child in layer._v4_children:
        yield from named_weights(child, lead + name)


class Dense(Layer):
    """x · kernel + bias with a (in, out) kernel (v4's Keras Dense)."""

    def __init__(self, n_in: int, n_out: int, stddev: float, use_bias: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.kernel = self.param("kernel", (n_in, n_out), truncated_normal(stddev))
        self.bias = self.param("bias", (n_out,)) if use_bias else None
        self.built = True

    def call(self, x):
        y = tf.tensordot(x, self.kernel, 1) if x.shape.rank != 2 else tf.matmul(x, self.kernel)
        return y if self.bias is None else y + self.bias


class Conv1D(Layer):
    """GPT-2's projection: x · weight + bias with ``weight`` stored (in, out), as in the PyTorch checkpoints, and
    v4's (1, out) bias."""

    def __init__(self, n_in: int, n_out: int, stddev: float, **kwargs):
        super().__init__(**kwargs)
        self.weight = self.param("weight", (n_in, n_out), keras.initializers.RandomNormal(stddev=stddev))
        self.bias = self.param("bias", (1, n_out))
        self.built = True

    def call(self, x):
        return tf.tensordot(x, self.weight, 1) + self.bias[0]


class LayerNorm(Layer):
    """(x - mean) / sqrt(var + eps) · gamma + beta over the last axis, in float32 (v4: gamma / beta)."""

    def __init__(self, size: int, eps: float, **kwargs):
        super().__init__(**kwargs)
        self.eps = float(eps)
        self.gamma = self.param("gamma", (size,), "ones")
        self.beta = self.param("beta", (size,))
        self.built = True

    def call(self, x):
        mean, var = tf.nn.moments(x, axes=[-1], keepdims=True)
        return (x - mean) * tf.math.rsqrt(var + self.eps) * self.gamma + self.beta


class Embedding(Layer):
    """A lookup table; v4 calls it ``weight`` for word tables and ``embeddings`` for position / segment tables."""

    def __init__(self, rows: int, size: int, stddev: float, leaf: str = "embeddings", **kwargs):
        super().__init__(**kwargs)
        self.rows = int(rows)
        self.table = self.param(leaf, (rows, size), truncated_normal(stddev))
        self.built = True

    def call(self, ids):
        # Ids are checked against the table before the stack runs; gather would clamp or fail late otherwise.
        return tf.gather(self.table, ids)


def _gelu_tanh(x):
    # GPT-2's tanh approximation (gelu_new / gelu_pytorch_tanh).
    return 0.5 * x * (1.0 + tf.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * tf.pow(x, 3))))


_ACTIVATIONS = {
    "gelu": lambda x: tf.nn.gelu(x, approximate=False),  # erf form, as torch's F.gelu
    "gelu_new": _gelu_tanh, "gelu_fast": _gelu_tanh, "gelu_accurate": _gelu_tanh, "gelu_pytorch_tanh": _gelu_tanh,
    "quick_gelu": lambda x: x * tf.sigmoid(1.702 * x),
    "relu": tf.nn.relu, "silu": tf.nn.silu, "swish": tf.nn.silu, "tanh": tf.tanh, "sigmoid": tf.sigmoid,
    "mish": lambda x: x * tf.tanh(tf.math.softplus(x)), "linear": lambda x: x,
}


def activation(name: str):
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; known: {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]


# ---- attention -------------------------------------------------------------------------------------------------
def attention_bias(mask, causal: bool, t: int, s: int, dtype=tf.float32, start=None):
    """A padding mask (B, S) of 1/0, a (B, T, S) per-query mask, or None -> an additive bias broadcastable to
    (B, H, T, S): 0 where attended, dtype-min elsewhere. ``causal`` lets query i see keys 0 .. start+i, where the
    queries sit at positions start .. start+T-1 of the S keys (default: the last T; generation's fixed-size cache
    passes where they were written). One ``where`` rather than summed biases, so a position hidden twice is min,
    not -inf (our PyTorch stack's rule)."""
    if mask is None and not causal:
        return None
    allowed = None
    if mask is not None:
        mask = tf.cast(mask, tf.bool) if mask.dtype != tf.bool else mask
        allowed = mask[:, None, :, :] if mask.shape.rank == 3 else mask[:, None, None, :]
    if causal:
        query = tf.range(t)[:, None] + ((s - t) if start is None else start)
        future = (tf.range(s)[None, :] <= query)[None, None]  # (1, 1, T, S)
        allowed = future if allowed is None else tf.logical_and(allowed, future)
    return tf.where(allowed, tf.zeros((), dtype), tf.constant(dtype.min, dtype))


def vocab_logits(x, table, bias=None):
    """(..., C) states -> (..., V) scores through the (V, C) word table. Flattened to one 2-D product: XLA's CPU
    backend lowers a 3-D batched product with the bias add fused into it to a generic loop ~9x slower than the
    2-D product (MiniLM's 30522-word head: 82 ms vs 9 ms a decoding step), and a single step is all head."""
    flat = tf.matmul(tf.reshape(x, [-1, x.shape[-1]]), table, transpose_b=True)
    if bias is not None:
        flat = flat + bias
    return tf.reshape(flat, tf.concat([tf.shape(x)[:-1], [table.shape[0]]], axis=0))


def write_at(buffer, new, start):
    """``buffer`` (B, H, L, D) with ``new`` (B, H, T, D) written at positions start .. start+T-1: generation's
    fixed-size cache. A gather and a select over the L positions, not a scatter: the same program for every
    ``start``, so a whole decoding loop compiles once under XLA."""
    length, t = buffer.shape[2], tf.shape(new)[2]
    pos = tf.range(length)
    inside = tf.logical_and(pos >= start, pos < start + t)
    spread = tf.gather(new, tf.clip_by_value(pos - start, 0, t - 1), axis=2)
    return tf.where(inside[None, None, :, None], spread, buffer)


def split_heads(x, heads: int):
    """(B, T, H*D) -> (B, H, T, D)."""
    b, t = tf.shape(x)[0], tf.shape(x)[1]
    return tf.transpose(tf.reshape(x, [b, t, heads, x.shape[-1] // heads]), [0, 2, 1, 3])


def merge_heads(x):
    """(B, H, T, D) -> (B, T, H*D)."""
    b, t = tf.shape(x)[0], tf.shape(x)[2]
    return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [b, t, x.shape[1] * x.shape[3]])


def attend(q, k, v, bias, head_mask, dropout, training: bool, scale: bool = True):
    """softmax(q·kᵀ / sqrt(D) + bias) · v for (B, H, T, D) queries and (B, H, S, D) keys and values: the one
    attention of every family here. Returns ((B, T, H*D), the (B, H, T, S) probabilities)."""
    scores = tf.matmul(q, k, transpose_b=True)
    if scale:
        scores = scores / tf.math.sqrt(tf.cast(q.shape[-1], scores.dtype))
    if bias is not None:
        scores = scores + bias
    probs = tf.nn.softmax(scores, axis=-1)
    probs_used = dropout(probs, training=training)
    if head_mask is not None:
        probs_used = probs_used * tf.cast(head_mask, probs.dtype)[None, :, None, None]  # (H,): 1 keeps, 0 silences
    return merge_heads(tf.matmul(probs_used, v)), probs_used
