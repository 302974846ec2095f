"""One Keras stack for BERT and RoBERTa (GPT-2's blocks, in ``gpt2.py``, share its attention and masks).

Layers and their recorded names follow transformers v4's TF classes, because the names *are* the file format:
``bert/encoder/layer_._0/attention/self/query/kernel`` (see ../shared/FORMATS.md). The arithmetic follows our
PyTorch stack (``warmstart/nn``), which is proven against transformers: post-norm residuals, dtype-min masking,
head masks on the probabilities, v4's cache of per-layer (key, value[, cross key, cross value]) tuples.
Layers take tensors and return tensors; only the public models build output classes.
"""
from __future__ import annotations

from .backend import keras, tf
from .layers import (Dense, Embedding, Layer, LayerNorm, activation, attend, attention_bias, split_heads,
                     vocab_logits, write_at)

__all__ = ["TFBertEmbeddings", "TFBertLayer", "TFBertMainLayer", "TFBertLMPredictionHead", "TFRobertaLMHead",
           "roberta_positions"]


def roberta_positions(input_ids, padding_idx: int, past: int = 0):
    """RoBERTa (fairseq) numbers positions after the padding index and only over non-pad tokens."""
    mask = tf.cast(tf.not_equal(input_ids, padding_idx), input_ids.dtype)
    return (tf.cumsum(mask, axis=1) + past) * mask + padding_idx


class TFBertEmbeddings(Layer):
    """Word + position + token-type vectors, LayerNorm, dropout."""

    def __init__(self, config, roberta: bool = False, **kwargs):
        super().__init__(**kwargs)
        c = config
        self.config, self.roberta = c, roberta
        self.padding_idx = c.pad_token_id if roberta else None
        r = c.initializer_range
        self.sub("word_embeddings", Embedding(c.vocab_size, c.hidden_size, r, leaf="weight"))
        self.sub("token_type_embeddings", Embedding(c.type_vocab_size, c.hidden_size, r))
        self.sub("position_embeddings", Embedding(c.max_position_embeddings, c.hidden_size, r))
        self.sub("LayerNorm", LayerNorm(c.hidden_size, c.layer_norm_eps), attr="norm")
        self.dropout = keras.layers.Dropout(c.hidden_dropout_prob)
        self.built = True

    def first_free_position(self) -> int:
        return self.padding_idx + 1 if self.roberta else 0

    def call(self, input_ids=None, position_ids=None, token_type_ids=None, inputs_embeds=None, past: int = 0,
             training: bool = False):
        x = self.word_embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        b, t = tf.shape(x)[0], tf.shape(x)[1]
        if position_ids is None:
            if self.roberta and input_ids is not None:
                position_ids = roberta_positions(input_ids, self.padding_idx, past)
            else:  # BERT, or RoBERTa from embeddings (no pad to see): consecutive after the cache / padding row
                position_ids = tf.range(t)[None] + (past + self.first_free_position())
        if token_type_ids is None:
            token_type_ids = tf.zeros([b, t], tf.int32)
        x = x + self.position_embeddings(position_ids) + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.norm(x), training=training)


class TFBertSelfAttention(Layer):
    """Query / key / value projections and scaled dot-product attention; cross-attention over ``kv`` when given.
    With a cache entry, self-attention appends the new keys and values (or, given ``start``, writes them into the
    fixed-size buffers of generate()) and cross-attention reuses the stored ones (the encoder states are projected
    once per generation, v4's rule)."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        c = config
        if c.hidden_size % c.num_attention_heads:
            raise ValueError(f"hidden_size ({c.hidden_size}) must be a multiple of num_attention_heads "
                             f"({c.num_attention_heads})")
        self.heads = c.num_attention_heads
        for name in ("query", "key", "value"):
            self.sub(name, Dense(c.hidden_size, c.hidden_size, c.initializer_range))
        self.dropout = keras.layers.Dropout(c.attention_probs_dropout_prob)
        self.built = True

    def call(self, x, bias, kv=None, head_mask=None, past=None, training: bool = False, start=None):
        q = split_heads(self.query(x), self.heads)
        if kv is not None and past is not None:  # cross-attention: the encoder's keys/values from the cache
            k, v = past
        else:
            source = x if kv is None else kv
            k, v = split_heads(self.key(source), self.heads), split_heads(self.value(source), self.heads)
            if past is not None and start is not None:  # generate()'s buffers: (B, H, L, D)
                k, v = write_at(past[0], k, start), write_at(past[1], v, start)
            elif past is not None:  # self-attention continuing a cache: (B, H, P + T, D)
                k, v = tf.concat([past[0], k], axis=2), tf.concat([past[1], v], axis=2)
        y, probs = attend(q, k, v, bias, head_mask, self.dropout, training)
        return y, probs, (k, v)


class TFBertSelfOutput(Layer):
    """Post-norm residual: LayerNorm(dropout(dense(h)) + x)."""

    def __init__(self, config, n_in: int | None = None, **kwargs):
        super().__init__(**kwargs)
        c = config
        self.sub("dense", Dense(n_in or c.hidden_size, c.hidden_size, c.initializer_range))
        self.sub("LayerNorm", LayerNorm(c.hidden_size, c.layer_norm_eps), attr="norm")
        self.dropout = keras.layers.Dropout(c.hidden_dropout_prob)
        self.built = True

    def call(self, h, residual, training: bool = False):
        return self.norm(self.dropout(self.dense(h), training=training) + residual)


class TFBertAttention(Layer):
    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.sub("self", TFBertSelfAttention(config), attr="attn")
        self.sub("output", TFBertSelfOutput(config), attr="out")
        self.built = True

    def call(self, x, bias, kv=None, head_mask=None, past=None, training: bool = False, start=None):
        h, probs, present = self.attn(x, bias, kv, head_mask, past, training=training, start=start)
        return self.out(h, x, training=training), probs, present


class TFBertLayer(Layer):
    """Self-attention, cross-attention (decoders with add_cross_attention), feed-forward."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        c = config
        self.sub("attention", TFBertAttention(c))
        self.cross = bool(c.add_cross_attention)
        if self.cross:
            self.sub("crossattention", TFBertAttention(c))
        self.sub("intermediate", _Intermediate(c))
        self.sub("output", TFBertSelfOutput(c, n_in=c.intermediate_size), attr="out")
        self.built = True

    def call(self, x, bias, enc=None, enc_bias=None, head_mask=None, past=None, training: bool = False, start=None):
        self_past = None if past is None else past[:2]
        x, probs, present = self.attention(x, bias, None, head_mask, self_past, training=training, start=start)
        cross = None
        if enc is not None:
            cross_past = None if past is None or len(past) < 4 else past[2:]
            x, cross, cross_kv = self.crossattention(x, enc_bias, enc, head_mask, cross_past, training=training)
            present = present + cross_kv
        return self.out(self.intermediate(x), x, training=training), probs, cross, present


class _Intermediate(Layer):
    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.sub("dense", Dense(config.hidden_size, config.intermediate_size, config.initializer_range))
        self.act = activation(config.hidden_act)
        self.built = True

    def call(self, x):
        return self.act(self.dense(x))


class TFBertEncoder(Layer):
    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        n = config.num_hidden_layers
        self.subs([f"layer_._{i}" for i in range(n)], [TFBertLayer(config) for _ in range(n)], attr="blocks")
        self.built = True

    def call(self, x, bias, enc, enc_bias, head_mask, past, use_cache, output_attentions, output_hidden_states,
             training: bool = False, start=None):
        hidden, attentions, crosses, presents = [], [], [], []
        for i, block in enumerate(self.blocks):
            if output_hidden_states:
                hidden.append(x)
            x, probs, cross, present = block(x, bias, enc, enc_bias, None if head_mask is None else head_mask[i],
                                             None if past is None else past[i], training=training, start=start)
            if output_attentions:
                attentions.append(probs)
                if cross is not None:
                    crosses.append(cross)
            if use_cache:
                presents.append(present)
        if output_hidden_states:
            hidden.append(x)
        return x, tuple(hidden), tuple(attentions), tuple(crosses), tuple(presents)


class TFBertPooler(Layer):
    """tanh(W h_0): the sentence vector from the first ([CLS]) token."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.sub("dense", Dense(config.hidden_size, config.hidden_size, config.initializer_range))
        self.built = True

    def call(self, x):  # (B, T, C) -> (B, C)
        return tf.tanh(self.dense(x[:, 0]))


class TFBertMainLayer(Layer):
    """The backbone (v4's ``bert`` / ``roberta`` main layer): embeddings, layers, optional pooler.

    Inputs arrive checked and normalised by the model (``modeling.py``); this returns a dict of tensors. With
    ``cache_start`` (generate()), ``past_key_values`` are fixed-size buffers the new keys and values are written
    into at that position, and ``attention_mask`` covers the whole buffer."""

    def __init__(self, config, add_pooling_layer: bool = True, roberta: bool = False, **kwargs):
        super().__init__(**kwargs)
        pos_type = getattr(config, "position_embedding_type", "absolute")
        if pos_type != "absolute":
            raise ValueError(f"the TensorFlow models support position_embedding_type='absolute' only, got "
                             f"{pos_type!r} (v4's TF BERT had no relative positions either); use the PyTorch model")
        if config.add_cross_attention and not config.is_decoder:
            raise ValueError("add_cross_attention=True needs is_decoder=True (cross-attention only exists in a "
                             "decoder); set config.is_decoder=True")
        self.config = config
        self.sub("embeddings", TFBertEmbeddings(config, roberta=roberta))
        self.sub("encoder", TFBertEncoder(config))
        self.pooler = self.sub("pooler", TFBertPooler(config)) if add_pooling_layer else None
        self.built = True

    def call(self, inputs: dict, training: bool = False) -> dict:
        c = self.config
        past, start = inputs.get("past_key_values"), inputs.get("cache_start")
        past_len = 0 if past is None else (start if start is not None else tf.shape(past[0][0])[2])
        x = self.embeddings(inputs.get("input_ids"), inputs.get("position_ids"), inputs.get("token_type_ids"),
                            inputs.get("inputs_embeds"), past_len, training=training)
        t = tf.shape(x)[1]
        keys = t + past_len if start is None else past[0][0].shape[2]
        bias = attention_bias(inputs.get("attention_mask"), bool(c.is_decoder), t, keys, start=start)
        enc, enc_bias = inputs.get("encoder_hidden_states"), None
        if enc is not None and inputs.get("encoder_attention_mask") is not None:
            enc_bias = attention_bias(inputs["encoder_attention_mask"], False, t, tf.shape(enc)[1])
        x, hidden, attentions, crosses, presents = self.encoder(
            x, bias, enc, enc_bias, inputs.get("head_mask"), past, inputs["use_cache"],
            inputs["output_attentions"], inputs["output_hidden_states"], training=training, start=start)
        return {
            "last_hidden_state": x,
            "pooler_output": self.pooler(x) if self.pooler is not None else None,
            "past_key_values": presents if inputs["use_cache"] else None,
            "hidden_states": hidden if inputs["output_hidden_states"] else None,
            "attentions": attentions if inputs["output_attentions"] else None,
            "cross_attentions": crosses if inputs["output_attentions"] and crosses else None,
        }


class _Transform(Layer):
    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        c = config
        self.sub("dense", Dense(c.hidden_size, c.hidden_size, c.initializer_range))
        self.act = activation(c.hidden_act)
        self.sub("LayerNorm", LayerNorm(c.hidden_size, c.layer_norm_eps), attr="norm")
        self.built = True

    def call(self, x):
        return self.norm(self.act(self.dense(x)))


class TFBertLMPredictionHead(Layer):
    """dense + activation + LayerNorm, then logits through the word table (v4's TF heads are always tied: the
    file holds no decoder kernel) plus the head's own bias."""

    def __init__(self, config, word_embeddings: Embedding, **kwargs):
        super().__init__(**kwargs)
        self.sub("transform", _Transform(config))
        self.bias = self.param("bias", (config.vocab_size,))
        object.__setattr__(self, "words", word_embeddings)  # shared, not owned: no second copy in the file
        self.built = True

    def call(self, x):
        return vocab_logits(self.transform(x), self.words.table, self.bias)


class TFRobertaLMHead(Layer):
    """RoBERTa's LM head: dense, gelu, ``layer_norm``, tied decoder, bias (v4 names: lm_head/dense, ...)."""

    def __init__(self, config, word_embeddings: Embedding, **kwargs):
        super().__init__(**kwargs)
        c = config
        self.sub("dense", Dense(c.hidden_size, c.hidden_size, c.initializer_range))
        self.sub("layer_norm", LayerNorm(c.hidden_size, c.layer_norm_eps), attr="norm")
        self.bias = self.param("bias", (c.vocab_size,))
        object.__setattr__(self, "words", word_embeddings)
        self.built = True

    def call(self, x):
        h = self.norm(tf.nn.gelu(self.dense(x), approximate=False))
        return vocab_logits(h, self.words.table, self.bias)
