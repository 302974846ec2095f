"""One linen transformer stack for the BERT-shaped families (BERT now; RoBERTa and GPT-2 by options next).

Modules and their attribute names follow transformers v4's Flax classes, because the parameter tree *is* the file
format: ``bert/encoder/layer/0/attention/self/query/kernel`` must come out of ``model.init`` for a v4
``flax_model.msgpack`` to load (see ../shared/FORMATS.md). Everything else (masks, head masks, relative positions,
losses) follows our PyTorch stack (``warmstart/nn``), which is proven against transformers.

Modules take arrays and return arrays (a dict for the backbone); only the public models build output classes.
Shape notation: B batch, T query length, S key length, H heads, D head size, C hidden size.
"""
from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = ["ACTIVATIONS", "FlaxBertEmbeddings", "FlaxBertLayer", "FlaxBertEncoder", "FlaxBertPooler",
           "FlaxBertModule", "FlaxBertLMPredictionHead", "attention_bias", "attend", "cache_step",
           "cross_cache_step"]


def _gelu_tanh(x):
    # GPT-2's tanh approximation (``gelu_new`` / ``gelu_pytorch_tanh``).
    return 0.5 * x * (1.0 + jnp.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


ACTIVATIONS = {
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),  # erf form, as torch's F.gelu
    "gelu_new": _gelu_tanh, "gelu_fast": _gelu_tanh, "gelu_accurate": _gelu_tanh, "gelu_pytorch_tanh": _gelu_tanh,
    "quick_gelu": lambda x: x * jax.nn.sigmoid(1.702 * x),
    "relu": jax.nn.relu, "silu": jax.nn.silu, "swish": jax.nn.silu, "tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid,
    "mish": lambda x: x * jnp.tanh(jax.nn.softplus(x)), "linear": lambda x: x,
}


def _act(name: str):
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; known: {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def _init(config):
    return jax.nn.initializers.normal(config.initializer_range)


def attention_bias(mask, causal: bool, length: int, dtype):
    """(B, S) 1/0 padding mask (or None) -> additive bias broadcastable to (B, H, T, S): 0 where attended,
    dtype-min elsewhere; ``causal`` adds the left-to-right rule (T = S = ``length``).

    One ``where`` instead of adding a padding and a causal bias, so a position hidden twice is min, not -inf
    (what our PyTorch stack's masked_fill gives too).
    """
    if mask is None and not causal:
        return None
    allowed = None if mask is None else (mask[:, None, None, :] > 0)  # (B, 1, 1, S)
    if causal:
        allowed = _with_causal(allowed, length)
    return _bias(allowed, dtype)


def _with_causal(allowed, t: int):
    future = jnp.tril(jnp.ones((t, t), dtype=bool))[None, None]  # (1, 1, T, T): query i sees keys 0..i
    return future if allowed is None else allowed & future


def _bias(allowed, dtype):
    return jnp.where(allowed, jnp.zeros((), dtype), jnp.asarray(jnp.finfo(dtype).min, dtype))


def attend(q, k, v, bias, head_mask, dropout, deterministic: bool, extra_scores=None):
    """softmax((q·k [+ extra_scores]) / sqrt(D) + bias) · v for (B, T, H, D) queries and (B, S, H, D) keys/values.

    The one attention of every family here; ``extra_scores`` (B, H, T, S) are the relative-position terms, added
    before the scaling as in our PyTorch stack. Returns ((B, T, H*D), the (B, H, T, S) probabilities)."""
    scores = jnp.einsum("bthd,bshd->bhts", q, k)
    if extra_scores is not None:
        scores = scores + extra_scores
    scores = scores / jnp.sqrt(jnp.asarray(q.shape[-1], scores.dtype))
    if bias is not None:
        scores = scores + bias
    probs = dropout(jax.nn.softmax(scores, axis=-1), deterministic=deterministic)
    if head_mask is not None:
        probs = probs * head_mask[None, :, None, None].astype(probs.dtype)  # (H,) float: 1 keeps, 0 silences
    y = jnp.einsum("bhts,bshd->bthd", probs, v)
    return y.reshape(y.shape[:2] + (-1,)), probs


def cache_step(module: nn.Module, k, v, decode_mask):
    """v4's decoding cache, kept in the ``cache`` collection of ``module`` as ``cached_key`` / ``cached_value``
    (B, L, H, D) and ``cache_index`` (): the new keys and values are written at the index, which moves on by T.

    Called with ``decode_mask`` (the (B, L) padding mask of the whole cache) once the cache exists; returns the
    full keys, values, the bias (causal within the cache, padding, unwritten slots hidden) and the first new
    position. Before the cache exists (``init_cache``) it only creates it, sized by the dummy input."""
    exists = module.has_variable("cache", "cached_key")
    key = module.variable("cache", "cached_key", jnp.zeros, k.shape, k.dtype)
    value = module.variable("cache", "cached_value", jnp.zeros, v.shape, v.dtype)
    index = module.variable("cache", "cache_index", lambda: jnp.array(0, dtype=jnp.int32))
    if not exists or decode_mask is None:
        return None
    start, t, length = index.value, k.shape[1], key.value.shape[1]
    key.value = jax.lax.dynamic_update_slice(key.value, k.astype(key.value.dtype), (0, start, 0, 0))
    value.value = jax.lax.dynamic_update_slice(value.value, v.astype(value.value.dtype), (0, start, 0, 0))
    index.value = start + t
    query_pos = start + jnp.arange(t)
    allowed = jnp.arange(length)[None, :] <= query_pos[:, None]  # (T, L): causal, and never an unwritten slot
    allowed = allowed[None, None] & (decode_mask[:, None, None, :] > 0)
    return key.value, value.value, _bias(allowed, k.dtype), start


def cross_cache_step(module: nn.Module, mode: str, project):
    """Cross-attention keys/values computed once per generation (``mode`` "fill", the prefill: ``project()`` runs
    and its (B, S, H, D) result is kept in the ``cache`` collection as ``cross_key`` / ``cross_value``) and read
    back at every later step (``mode`` "read": no projection of the encoder states at all). Beyond v4, whose Flax
    decoders re-project the encoder states at every step; only generate() uses it, so v4's cache tree is
    unchanged for everyone else."""
    if mode not in ("fill", "read"):
        raise ValueError(f"cross_cache must be 'off', 'fill' or 'read', got {mode!r}")
    if mode == "fill":
        k, v = project()
        module.variable("cache", "cross_key", jnp.zeros, k.shape, k.dtype).value = k
        module.variable("cache", "cross_value", jnp.zeros, v.shape, v.dtype).value = v
        return k, v
    if not module.has_variable("cache", "cross_key"):
        raise ValueError("cross_cache='read' before a 'fill' call: the cache holds no cross-attention keys")
    return module.get_variable("cache", "cross_key"), module.get_variable("cache", "cross_value")


class FlaxBertEmbeddings(nn.Module):
    """Word + position + token-type vectors, LayerNorm, dropout (v4 names: word_embeddings, LayerNorm, ...)."""

    config: object
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        c, init = self.config, _init(self.config)
        self.word_embeddings = nn.Embed(c.vocab_size, c.hidden_size, embedding_init=init, dtype=self.dtype)
        self.position_embeddings = nn.Embed(c.max_position_embeddings, c.hidden_size, embedding_init=init,
                                            dtype=self.dtype)
        self.token_type_embeddings = (nn.Embed(c.type_vocab_size, c.hidden_size, embedding_init=init,
                                               dtype=self.dtype) if c.type_vocab_size else None)
        self.LayerNorm = nn.LayerNorm(epsilon=c.layer_norm_eps, dtype=self.dtype)
        self.dropout = nn.Dropout(rate=c.hidden_dropout_prob)

    def __call__(self, input_ids, token_type_ids, position_ids, deterministic: bool = True):
        x = self.word_embeddings(input_ids.astype("i4"))  # (B, T, C)
        positions = self.position_embeddings(position_ids.astype("i4"))
        # With relative positions the absolute table is kept (checkpoints carry it) but not added, as in PyTorch.
        if getattr(self.config, "position_embedding_type", "absolute") == "absolute":
            x = x + positions
        if self.token_type_embeddings is not None:
            x = x + self.token_type_embeddings(token_type_ids.astype("i4"))
        return self.dropout(self.LayerNorm(x), deterministic=deterministic)


class FlaxBertSelfAttention(nn.Module):
    """Scaled dot-product attention over ``query`` / ``key`` / ``value`` projections; cross-attention when
    ``kv`` (the encoder states) is given. Relative positions as in our PyTorch Attention (Shaw et al. 2018;
    Huang et al. 2020): a learned vector per clipped distance is dotted with the query (and the key) and added to
    q·k before the 1/sqrt(D) scaling."""

    config: object
    relative: bool = True  # cross-attention never uses the distance table
    dtype: jnp.dtype = jnp.float32

    # compact, not setup: the decoding cache's variables are sized by the first call (v4's tree keeps them beside
    # query/key/value, so they cannot live in a child module).
    @nn.compact
    def __call__(self, x, bias=None, kv=None, head_mask=None, deterministic: bool = True, decode_mask=None,
                 causal: bool = False, cross_cache: str = "off"):
        c = self.config
        if c.hidden_size % c.num_attention_heads:
            raise ValueError(f"hidden_size ({c.hidden_size}) must be a multiple of num_attention_heads "
                             f"({c.num_attention_heads})")
        heads, head_dim = c.num_attention_heads, c.hidden_size // c.num_attention_heads

        def project(name, source):  # (B, T, C) -> (B, T, H, D)
            y = nn.Dense(c.hidden_size, kernel_init=_init(c), dtype=self.dtype, name=name)(source)
            return y.reshape(y.shape[:2] + (heads, head_dim))

        q = project("query", x)
        if kv is not None and cross_cache != "off":
            k, v = cross_cache_step(self, cross_cache, lambda: (project("key", kv), project("value", kv)))
        else:
            source = x if kv is None else kv
            k, v = project("key", source), project("value", source)
        start = 0
        if causal and kv is None and (decode_mask is not None or self.is_initializing()
                                      or self.has_variable("cache", "cached_key")):
            cached = cache_step(self, k, v, decode_mask)
            if cached is not None:
                k, v, bias, start = cached
        position_type = getattr(c, "position_embedding_type", "absolute") if self.relative else "absolute"
        extra = None
        if position_type != "absolute":
            # One vector per distance in [-(P-1), P-1] (the v4 PyTorch layout, ``distance_embedding``).
            table = nn.Embed(2 * c.max_position_embeddings - 1, head_dim, embedding_init=_init(c), dtype=self.dtype,
                             name="distance_embedding")
            t, s = q.shape[1], k.shape[1]
            distance = (start + jnp.arange(t))[:, None] - jnp.arange(s)[None, :] + c.max_position_embeddings - 1
            vectors = table(distance)  # (T, S, D)
            extra = jnp.einsum("bthd,tsd->bhts", q, vectors)
            if position_type == "relative_key_query":
                extra = extra + jnp.einsum("bshd,tsd->bhts", k, vectors)
        dropout = nn.Dropout(rate=c.attention_probs_dropout_prob)
        return attend(q, k, v, bias, head_mask, dropout, deterministic, extra)


class FlaxBertSelfOutput(nn.Module):
    config: object
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        c = self.config
        self.dense = nn.Dense(c.hidden_size, kernel_init=_init(c), dtype=self.dtype)
        self.LayerNorm = nn.LayerNorm(epsilon=c.layer_norm_eps, dtype=self.dtype)
        self.dropout = nn.Dropout(rate=c.hidden_dropout_prob)

    def __call__(self, h, residual, deterministic: bool = True):
        # Post-norm (BERT): LN(x + dropout(W h)).
        return self.LayerNorm(self.dropout(self.dense(h), deterministic=deterministic) + residual)


class FlaxBertAttention(nn.Module):
    config: object
    relative: bool = True
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        self.self = FlaxBertSelfAttention(self.config, relative=self.relative, dtype=self.dtype)
        self.output = FlaxBertSelfOutput(self.config, dtype=self.dtype)

    def __call__(self, x, bias=None, kv=None, head_mask=None, deterministic: bool = True, decode_mask=None,
                 causal: bool = False, cross_cache: str = "off"):
        h, probs = self.self(x, bias, kv, head_mask, deterministic, decode_mask, causal, cross_cache)
        return self.output(h, x, deterministic), probs


class FlaxBertIntermediate(nn.Module):
    config: object
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        c = self.config
        self.dense = nn.Dense(c.intermediate_size, kernel_init=_init(c), dtype=self.dtype)
        self.act = _act(c.hidden_act)

    def __call__(self, x):
        return self.act(self.dense(x))


class FlaxBertLayer(nn.Module):
    """Self-attention, optional cross-attention (decoders), feed-forward; post-norm residuals."""

    config: object
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        c = self.config
        self.attention = FlaxBertAttention(c, dtype=self.dtype)
        if c.add_cross_attention:
            self.crossattention = FlaxBertAttention(c, relative=False, dtype=self.dtype)
        self.intermediate = FlaxBertIntermediate(c, dtype=self.dtype)
        self.output = FlaxBertSelfOutput(c, dtype=self.dtype)

    def __call__(self, x, bias, enc, enc_bias, head_mask, deterministic: bool = True, decode_mask=None,
                 cross_cache: str = "off"):
        x, probs = self.attention(x, bias, None, head_mask, deterministic, decode_mask, bool(self.config.is_decoder))
        cross = None
        if enc is not None:
            x, cross = self.crossattention(x, enc_bias, enc, None, deterministic, cross_cache=cross_cache)
        return self.output(self.intermediate(x), x, deterministic), probs, cross


class FlaxBertLayerCollection(nn.Module):
    """The layers, named "0", "1", ... (v4's tree: encoder/layer/<i>/...)."""

    config: object
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self):
        # Rematerialise each layer in backward: memory for compute. Arguments 6 (deterministic) and 8 (cross_cache)
        # are Python values.
        cls = nn.remat(FlaxBertLayer, static_argnums=(6, 8)) if self.gradient_checkpointing else FlaxBertLayer
        self.layers = [cls(self.config, dtype=self.dtype, name=str(i)) for i in range(self.config.num_hidden_layers)]

    def __call__(self, x, bias, enc, enc_bias, head_mask, deterministic, output_attentions, output_hidden_states,
                 decode_mask=None, cross_cache: str = "off"):
        hidden, attentions, cross = [], [], []
        for i, layer in enumerate(self.layers):
            if output_hidden_states:
                hidden.append(x)
            x, probs, cross_probs = layer(x, bias, enc, enc_bias, None if head_mask is None else head_mask[i],
                                          deterministic, decode_mask, cross_cache)
            if output_attentions:
                attentions.append(probs)
                if cross_probs is not None:
                    cross.append(cross_probs)
        if output_hidden_states:
            hidden.append(x)
        return x, tuple(hidden), tuple(attentions), tuple(cross)


class FlaxBertEncoder(nn.Module):
    config: object
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self):
        self.layer = FlaxBertLayerCollection(self.config, dtype=self.dtype,
                                             gradient_checkpointing=self.gradient_checkpointing)

    def __call__(self, *args):
        return self.layer(*args)


class FlaxBertPooler(nn.Module):
    """tanh(W h_0): the sentence vector from the first ([CLS]) token."""

    config: object
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        self.dense = nn.Dense(self.config.hidden_size, kernel_init=_init(self.config), dtype=self.dtype)

    def __call__(self, x):  # (B, T, C) -> (B, C)
        return jnp.tanh(self.dense(x[:, 0]))


class FlaxBertModule(nn.Module):
    """The backbone: embeddings, layers, optional pooler. Returns a dict of arrays (tuples for per-layer ones)."""

    config: object
    dtype: jnp.dtype = jnp.float32
    add_pooling_layer: bool = True
    gradient_checkpointing: bool = False

    def setup(self):
        self.embeddings = FlaxBertEmbeddings(self.config, dtype=self.dtype)
        self.encoder = FlaxBertEncoder(self.config, dtype=self.dtype,
                                       gradient_checkpointing=self.gradient_checkpointing)
        if self.add_pooling_layer:
            self.pooler = FlaxBertPooler(self.config, dtype=self.dtype)

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                 encoder_hidden_states=None, encoder_attention_mask=None, deterministic: bool = True,
                 output_attentions: bool = False, output_hidden_states: bool = False, decode: bool = False,
                 cross_cache: str = "off"):
        c = self.config
        x = self.embeddings(input_ids, token_type_ids, position_ids, deterministic)
        # Decoding with a cache, attention_mask covers the whole cache (B, L): each attention builds its own bias.
        decode_mask = attention_mask if decode else None
        bias = None if decode else attention_bias(attention_mask, bool(c.is_decoder), input_ids.shape[1], self.dtype)
        enc_bias = None
        if encoder_hidden_states is not None and encoder_attention_mask is not None:
            enc_bias = attention_bias(encoder_attention_mask, False, 0, self.dtype)
        x, hidden, attentions, cross = self.encoder(
            x, bias, encoder_hidden_states, enc_bias, head_mask, deterministic, output_attentions,
            output_hidden_states, decode_mask, cross_cache)
        return {
            "last_hidden_state": x,
            "pooler_output": self.pooler(x) if self.add_pooling_layer else None,
            "hidden_states": hidden if output_hidden_states else None,
            "attentions": attentions if output_attentions else None,
            "cross_attentions": cross if output_attentions and cross else None,
        }


class FlaxBertLMPredictionHead(nn.Module):
    """dense + activation + LayerNorm, then vocabulary logits. Tied (the default), the projection is the word
    embedding table itself, so the tree holds no ``decoder/kernel`` (v4's layout); the bias is its own."""

    config: object
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        c = self.config
        self.transform = _Transform(c, dtype=self.dtype)
        if not c.tie_word_embeddings:
            self.decoder = nn.Dense(c.vocab_size, use_bias=False, kernel_init=_init(c), dtype=self.dtype)
        self.bias = self.param("bias", jax.nn.initializers.zeros, (c.vocab_size,))

    def __call__(self, x, shared_embedding=None):
        x = self.transform(x)
        if self.config.tie_word_embeddings:
            x = x @ jnp.asarray(shared_embedding, self.dtype).T  # (B, T, C) @ (C, V)
        else:
            x = self.decoder(x)
        return x + jnp.asarray(self.bias, self.dtype)


class _Transform(nn.Module):
    config: object
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        c = self.config
        self.dense = nn.Dense(c.hidden_size, kernel_init=_init(c), dtype=self.dtype)
        self.act = _act(c.hidden_act)
        self.LayerNorm = nn.LayerNorm(epsilon=c.layer_norm_eps, dtype=self.dtype)

    def __call__(self, x):
        return self.LayerNorm(self.act(self.dense(x)))
