"""TFGPT2*: GPT-2 under v4's ``transformer`` main layer, over the shared attention and masks (layers.py).

GPT-2's own parts are layout, not math: pre-LayerNorm blocks, one fused ``c_attn`` projection (q, k, v side by
side), Conv1D weights stored (in, out) with (1, out) biases (v4's TF layout), always-causal self-attention, a final
``ln_f``, token types looked up in the word table, and an LM head tied to ``wte`` with no bias. The decoder of
bert2gpt2 cross-attends through ``crossattention`` (``q_attn`` for queries, ``c_attn`` for keys and values) after
``ln_cross_attn``. v4's cache: one (2, B, H, S, D) tensor of stacked self-attention keys and values per layer.
generate() keeps its own: per layer (key, value) buffers of the full length, plus the encoder's projected keys
and values (computed once, where v4 re-projected them at every step).
"""
from __future__ import annotations

from ..config.gpt2 import GPT2Config
from . import losses
from .backend import keras, tf
from .layers import (Conv1D, Embedding, Layer, LayerNorm, activation, attend, attention_bias, split_heads,
                     vocab_logits, write_at)
from .modeling import TFPreTrainedModel, unpack_inputs
from .outputs import TFBaseModelOutputWithPastAndCrossAttentions, TFCausalLMOutputWithCrossAttentions

__all__ = ["TFGPT2PreTrainedModel", "TFGPT2Model", "TFGPT2LMHeadModel", "TFGPT2MainLayer"]


class TFGPT2Attention(Layer):
    """Causal self-attention (``cross=False``) or cross-attention to the encoder states."""

    def __init__(self, config, cross: bool = False, **kwargs):
        super().__init__(**kwargs)
        c = config
        self.heads, self.cross, width, r = c.n_head, cross, c.n_embd, c.initializer_range
        if cross:
            self.sub("c_attn", Conv1D(width, 2 * width, r))
            self.sub("q_attn", Conv1D(width, width, r))
        else:
            self.sub("c_attn", Conv1D(width, 3 * width, r))
        self.sub("c_proj", Conv1D(width, width, r))
        self.attn_dropout = keras.layers.Dropout(c.attn_pdrop)
        self.resid_dropout = keras.layers.Dropout(c.resid_pdrop)
        self.built = True

    def call(self, x, bias, kv=None, head_mask=None, past=None, training: bool = False, start=None):
        if self.cross:
            q = split_heads(self.q_attn(x), self.heads)
            if past is not None:  # the encoder's keys/values, projected once
                k, v = past[0], past[1]
            else:
                k, v = (split_heads(t, self.heads) for t in tf.split(self.c_attn(kv), 2, axis=-1))
        else:
            q, k, v = (split_heads(t, self.heads) for t in tf.split(self.c_attn(x), 3, axis=-1))
            if past is not None and start is not None:  # generate()'s buffers: (B, H, L, D)
                k, v = write_at(past[0], k, start), write_at(past[1], v, start)
            elif past is not None:  # (2, B, H, P, D)
                k, v = tf.concat([past[0], k], axis=2), tf.concat([past[1], v], axis=2)
        y, probs = attend(q, k, v, bias, head_mask, self.attn_dropout, training)
        y = self.resid_dropout(self.c_proj(y), training=training)
        return y, probs, (k, v)


class _MLP(Layer):
    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        c = config
        inner = c.n_inner if c.n_inner is not None else 4 * c.n_embd
        self.sub("c_fc", Conv1D(c.n_embd, inner, c.initializer_range))
        self.sub("c_proj", Conv1D(inner, c.n_embd, c.initializer_range))
        self.act = activation(c.activation_function)
        self.dropout = keras.layers.Dropout(c.resid_pdrop)
        self.built = True

    def call(self, x, training: bool = False):
        return self.dropout(self.c_proj(self.act(self.c_fc(x))), training=training)


class TFGPT2Block(Layer):
    """Pre-norm residual block: x + attn(ln_1 x) [+ cross(ln_cross_attn x)] + mlp(ln_2 x)."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        c = config
        self.sub("ln_1", LayerNorm(c.n_embd, c.layer_norm_epsilon))
        self.sub("attn", TFGPT2Attention(c))
        self.sub("ln_2", LayerNorm(c.n_embd, c.layer_norm_epsilon))
        self.has_cross = bool(c.add_cross_attention)
        if self.has_cross:  # before mlp: v4's weight order, which its files keep
            self.sub("crossattention", TFGPT2Attention(c, cross=True))
            self.sub("ln_cross_attn", LayerNorm(c.n_embd, c.layer_norm_epsilon))
        self.sub("mlp", _MLP(c))
        self.built = True

    def call(self, x, bias, enc=None, enc_bias=None, head_mask=None, past=None, training: bool = False, start=None):
        self_past = None if past is None else past[:2]
        h, probs, present = self.attn(self.ln_1(x), bias, None, head_mask, self_past, training=training,
                                      start=start)
        x = x + h
        cross = None
        if enc is not None:
            # v4's GPT-2 cache holds self-attention only (one stacked tensor cannot hold two lengths), so the
            # encoder states are projected again at each step; generate()'s cache (``start``) keeps them.
            cross_past = past[2:] if start is not None and len(past) == 4 else None
            h, cross, cross_kv = self.crossattention(self.ln_cross_attn(x), enc_bias, enc, head_mask, cross_past,
                                                     training=training)
            x = x + h
            if start is not None:
                present = present + cross_kv
        if start is None:
            present = tf.stack(present, axis=0)
        return x + self.mlp(self.ln_2(x), training=training), probs, cross, present


class TFGPT2MainLayer(Layer):
    """wte + wpe (+ token types through wte), dropout, the blocks (``h_._<i>``), ``ln_f``."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        c = config
        for name in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"):
            if getattr(c, name, False):
                raise ValueError(f"the TF GPT-2 does not implement {name}=True (nor did transformers v4's)")
        if not getattr(c, "scale_attn_weights", True):
            raise ValueError("the TF GPT-2 does not implement scale_attn_weights=False (nor did transformers v4's)")
        self.config = c
        self.sub("wte", Embedding(c.vocab_size, c.n_embd, c.initializer_range))
        self.sub("wpe", Embedding(c.n_positions, c.n_embd, c.initializer_range))
        self.dropout = keras.layers.Dropout(c.embd_pdrop)
        self.subs([f"h_._{i}" for i in range(c.n_layer)], [TFGPT2Block(c) for _ in range(c.n_layer)], attr="h")
        self.sub("ln_f", LayerNorm(c.n_embd, c.layer_norm_epsilon))
        self.built = True

    def call(self, inputs: dict, training: bool = False) -> dict:
        past, start = inputs.get("past_key_values"), inputs.get("cache_start")
        past_len = 0 if past is None else (start if start is not None else tf.shape(past[0])[3])
        ids, embeds = inputs.get("input_ids"), inputs.get("inputs_embeds")
        x = self.wte(ids) if embeds is None else embeds
        t = tf.shape(x)[1]
        positions = inputs.get("position_ids")
        if positions is None:
            positions = tf.range(t)[None] + past_len
        x = x + self.wpe(positions)
        if inputs.get("token_type_ids") is not None:
            x = x + self.wte(inputs["token_type_ids"])
        x = self.dropout(x, training=training)
        keys = t + past_len if start is None else past[0][0].shape[2]
        bias = attention_bias(inputs.get("attention_mask"), True, t, keys, start=start)
        enc, enc_bias = inputs.get("encoder_hidden_states"), None
        if enc is not None and inputs.get("encoder_attention_mask") is not None:
            enc_bias = attention_bias(inputs["encoder_attention_mask"], False, t, tf.shape(enc)[1])
        head_mask = inputs.get("head_mask")
        hidden, attentions, crosses, presents = [], [], [], []
        for i, block in enumerate(self.h):
            if inputs["output_hidden_states"]:
                hidden.append(x)
            x, probs, cross, present = block(x, bias, enc, enc_bias, None if head_mask is None else head_mask[i],
                                             None if past is None else past[i], training=training, start=start)
            if inputs["output_attentions"]:
                attentions.append(probs)
                if cross is not None:
                    crosses.append(cross)
            if inputs["use_cache"]:
                presents.append(present)
        x = self.ln_f(x)
        if inputs["output_hidden_states"]:
            hidden.append(x)  # the last entry is taken after ln_f (v4, and our PyTorch GPT-2)
        return {"last_hidden_state": x, "past_key_values": tuple(presents) if inputs["use_cache"] else None,
                "hidden_states": tuple(hidden) if inputs["output_hidden_states"] else None,
                "attentions": tuple(attentions) if inputs["output_attentions"] else None,
                "cross_attentions": tuple(crosses) if inputs["output_attentions"] and crosses else None}


class TFGPT2PreTrainedModel(TFPreTrainedModel):
    """Always causal, so a cache is kept whenever use_cache is on (GPT-2's config says is_decoder=False)."""

    config_class = GPT2Config
    base_model_prefix = "transformer"
    takes_token_types = False
    _is_causal = True

    def get_input_embeddings(self):
        return self.transformer.wte

    def _check_past(self, past, batch):
        if past is None:
            return None, 0
        n = self.config.n_layer
        if not isinstance(past, (list, tuple)) or len(past) != n:
            raise ValueError(f"past_key_values must hold one (2, batch, heads, past, head_size) tensor per layer "
                             f"({n}), got {type(past).__name__} of length "
                             f"{len(past) if hasattr(past, '__len__') else '?'}")
        from .modeling import _tensor

        past = tuple(_tensor("past_key_values", tf.stack(layer) if isinstance(layer, (list, tuple)) else layer)
                     for layer in past)
        if past[0].shape.rank != 5:
            raise ValueError(f"each past_key_values entry must be (2, batch, heads, past, head_size), got shape "
                             f"{tuple(past[0].shape.as_list())}")
        length = past[0].shape[3]
        return past, (length if length is not None else tf.shape(past[0])[3])

    def _gpt2_run(self, training, **inputs) -> dict:
        return self._run(training, is_decoder=True, **inputs)


class TFGPT2Model(TFGPT2PreTrainedModel):
    _pt_is_base = True
    def __init__(self, config, *inputs, **kwargs):
        super().__init__(config, **kwargs)
        self.sub("transformer", TFGPT2MainLayer(config))
        self._finish_init()

    @unpack_inputs
    def call(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
             position_ids=None, head_mask=None, inputs_embeds=None, encoder_hidden_states=None,
             encoder_attention_mask=None, use_cache=None, output_attentions=None, output_hidden_states=None,
             return_dict=None, training=False):
        out = self._gpt2_run(training, input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids, position_ids=position_ids, head_mask=head_mask,
                             inputs_embeds=inputs_embeds, encoder_hidden_states=encoder_hidden_states,
                             encoder_attention_mask=encoder_attention_mask, past_key_values=past_key_values,
                             use_cache=use_cache, output_attentions=output_attentions,
                             output_hidden_states=output_hidden_states)
        return self._return(TFBaseModelOutputWithPastAndCrossAttentions(**out), return_dict)


class TFGPT2LMHeadModel(TFGPT2PreTrainedModel):
    """The decoder of bert2gpt2: logits through ``wte`` (tied, no bias); ``labels`` give the shifted LM loss."""

    _generates = True

    def __init__(self, config, *inputs, **kwargs):
        super().__init__(config, **kwargs)
        self.sub("transformer", TFGPT2MainLayer(config))
        self._finish_init()

    @unpack_inputs
    def call(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
             position_ids=None, head_mask=None, inputs_embeds=None, encoder_hidden_states=None,
             encoder_attention_mask=None, use_cache=None, output_attentions=None, output_hidden_states=None,
             return_dict=None, labels=None, training=False):
        out = self._gpt2_run(training, input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids, position_ids=position_ids, head_mask=head_mask,
                             inputs_embeds=inputs_embeds, encoder_hidden_states=encoder_hidden_states,
                             encoder_attention_mask=encoder_attention_mask, past_key_values=past_key_values,
                             use_cache=use_cache, output_attentions=output_attentions,
                             output_hidden_states=output_hidden_states)
        logits = self._lm_logits(out["last_hidden_state"])
        loss = None if labels is None else losses.shifted_lm_loss(labels, logits)
        return self._return(TFCausalLMOutputWithCrossAttentions(
            loss=loss, logits=logits, past_key_values=out["past_key_values"], hidden_states=out["hidden_states"],
            attentions=out["attentions"], cross_attentions=out["cross_attentions"]), return_dict)

    def _lm_logits(self, hidden):
        return vocab_logits(hidden, self.transformer.wte.table)
