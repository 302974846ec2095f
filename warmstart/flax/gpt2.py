"""FlaxGPT2*: GPT-2 under v4's ``transformer`` tree, over the shared attention math and cache (stack.py).

GPT-2's own parts are layout, not math: pre-LayerNorm blocks, one fused ``c_attn`` projection (q, k, v side by
side), Conv1D layers whose Flax kernels v4 stores (out, in), always-causal self-attention, a final ``ln_f``, no
token types, and an LM head tied to ``wte`` with no bias. The decoder of bert2gpt2 cross-attends through
``crossattention`` (``q_attn`` for queries, ``c_attn`` for keys and values) after ``ln_cross_attn``.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from ..config.gpt2 import GPT2Config
from . import outputs as O
from .bert import _CausalLMHead
from .modeling import FlaxPreTrainedModel
from .stack import FlaxBertLayerCollection, _act, _init, attend, attention_bias, cache_step, cross_cache_step

__all__ = ["FlaxGPT2PreTrainedModel", "FlaxGPT2Model", "FlaxGPT2LMHeadModel"]


class FlaxConv1D(nn.Module):
    """x · Wᵀ + b with W stored (features, in): v4's Flax layout of GPT-2's Conv1D (PyTorch stores (in, out))."""

    features: int
    config: object
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", _init(self.config), (self.features, x.shape[-1]))
        bias = self.param("bias", jax.nn.initializers.zeros, (self.features,))
        return x @ jnp.asarray(kernel, self.dtype).T + jnp.asarray(bias, self.dtype)


class FlaxGPT2Attention(nn.Module):
    """Causal self-attention (``cross=False``) or cross-attention to the encoder states."""

    config: object
    cross: bool = False
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, bias, kv=None, head_mask=None, deterministic: bool = True, decode_mask=None,
                 cross_cache: str = "off"):
        c = self.config
        heads, head_dim = c.n_head, c.n_embd // c.n_head

        def split(y):  # (B, T, H*D) -> (B, T, H, D)
            return y.reshape(y.shape[:2] + (heads, head_dim))

        if self.cross:
            q = split(FlaxConv1D(c.n_embd, c, self.dtype, name="q_attn")(x))
            def project():
                k, v = jnp.split(FlaxConv1D(2 * c.n_embd, c, self.dtype, name="c_attn")(kv), 2, axis=-1)
                return split(k), split(v)
            k, v = project() if cross_cache == "off" else cross_cache_step(self, cross_cache, project)
        else:
            q, k, v = map(split, jnp.split(FlaxConv1D(3 * c.n_embd, c, self.dtype, name="c_attn")(x), 3, axis=-1))
            if decode_mask is not None or self.is_initializing() or self.has_variable("cache", "cached_key"):
                cached = cache_step(self, k, v, decode_mask)
                if cached is not None:
                    k, v, bias, _ = cached
        y, probs = attend(q, k, v, bias, head_mask, nn.Dropout(rate=c.attn_pdrop), deterministic)
        y = FlaxConv1D(c.n_embd, c, self.dtype, name="c_proj")(y)
        return nn.Dropout(rate=c.resid_pdrop)(y, deterministic=deterministic), probs


class FlaxGPT2MLP(nn.Module):
    config: object
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, deterministic: bool = True):
        c = self.config
        inner = c.n_inner if c.n_inner is not None else 4 * c.n_embd
        x = _act(c.activation_function)(FlaxConv1D(inner, c, self.dtype, name="c_fc")(x))
        x = FlaxConv1D(c.n_embd, c, self.dtype, name="c_proj")(x)
        return nn.Dropout(rate=c.resid_pdrop)(x, deterministic=deterministic)


class FlaxGPT2Block(nn.Module):
    """Pre-norm residual block: x + attn(ln_1 x) [+ cross(ln_cross_attn x)] + mlp(ln_2 x)."""

    config: object
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        c = self.config
        norm = dict(epsilon=c.layer_norm_epsilon, dtype=self.dtype)
        self.ln_1, self.ln_2 = nn.LayerNorm(**norm), nn.LayerNorm(**norm)
        self.attn = FlaxGPT2Attention(c, dtype=self.dtype)
        if c.add_cross_attention:
            self.ln_cross_attn = nn.LayerNorm(**norm)
            self.crossattention = FlaxGPT2Attention(c, cross=True, dtype=self.dtype)
        self.mlp = FlaxGPT2MLP(c, dtype=self.dtype)

    def __call__(self, x, bias, enc, enc_bias, head_mask, deterministic: bool = True, decode_mask=None,
                 cross_cache: str = "off"):
        h, probs = self.attn(self.ln_1(x), bias, None, head_mask, deterministic, decode_mask)
        x = x + h
        cross = None
        if enc is not None:
            h, cross = self.crossattention(self.ln_cross_attn(x), enc_bias, enc, None, deterministic,
                                           cross_cache=cross_cache)
            x = x + h
        return x + self.mlp(self.ln_2(x), deterministic), probs, cross


class FlaxGPT2Blocks(FlaxBertLayerCollection):
    """The blocks, named "0", "1", ... under ``h`` (v4's tree), run as the BERT layers are."""

    def setup(self):
        block = nn.remat(FlaxGPT2Block, static_argnums=(6, 8)) if self.gradient_checkpointing else FlaxGPT2Block
        self.layers = [block(self.config, dtype=self.dtype, name=str(i)) for i in range(self.config.n_layer)]


class FlaxGPT2Module(nn.Module):
    """wte + wpe, dropout, the blocks (``h/<i>``), ``ln_f``. The last hidden state is taken after ln_f."""

    config: object
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self):
        c = self.config
        for name in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"):
            if getattr(c, name, False):
                raise ValueError(f"the Flax GPT-2 does not implement {name}=True (nor did transformers v4's)")
        if not getattr(c, "scale_attn_weights", True):
            raise ValueError("the Flax GPT-2 does not implement scale_attn_weights=False (nor did transformers v4's)")
        init = _init(c)
        self.wte = nn.Embed(c.vocab_size, c.n_embd, embedding_init=init, dtype=self.dtype)
        self.wpe = nn.Embed(c.n_positions, c.n_embd, embedding_init=init, dtype=self.dtype)
        self.dropout = nn.Dropout(rate=c.embd_pdrop)
        self.h = FlaxGPT2Blocks(c, dtype=self.dtype, gradient_checkpointing=self.gradient_checkpointing)
        self.ln_f = nn.LayerNorm(epsilon=c.layer_norm_epsilon, dtype=self.dtype)

    def __call__(self, input_ids, attention_mask=None, position_ids=None, head_mask=None,
                 encoder_hidden_states=None, encoder_attention_mask=None, deterministic: bool = True,
                 output_attentions: bool = False, output_hidden_states: bool = False, decode: bool = False,
                 cross_cache: str = "off"):
        x = self.wte(input_ids.astype("i4")) + self.wpe(position_ids.astype("i4"))
        x = self.dropout(x, deterministic=deterministic)
        decode_mask = attention_mask if decode else None
        bias = None if decode else attention_bias(attention_mask, True, input_ids.shape[1], self.dtype)
        enc_bias = None
        if encoder_hidden_states is not None and encoder_attention_mask is not None:
            enc_bias = attention_bias(encoder_attention_mask, False, 0, self.dtype)
        x, hidden, attentions, cross = self.h(x, bias, encoder_hidden_states, enc_bias, head_mask, deterministic,
                                              output_attentions, output_hidden_states, decode_mask, cross_cache)
        hidden = list(hidden)
        x = self.ln_f(x)
        if output_hidden_states:
            hidden[-1] = x  # the last entry is taken after ln_f (v4, and our PyTorch GPT-2)
        return {"last_hidden_state": x, "hidden_states": tuple(hidden) if output_hidden_states else None,
                "attentions": attentions if output_attentions else None,
                "cross_attentions": cross if output_attentions and cross else None}


class _GPT2LM(nn.Module):
    config: object
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self):
        self.transformer = FlaxGPT2Module(self.config, dtype=self.dtype,
                                          gradient_checkpointing=self.gradient_checkpointing)
        if not self.config.tie_word_embeddings:
            self.lm_head = nn.Dense(self.config.vocab_size, use_bias=False, kernel_init=_init(self.config),
                                    dtype=self.dtype)

    def __call__(self, *args, **kwargs):
        out = self.transformer(*args, **kwargs)
        h = out.pop("last_hidden_state")
        if self.config.tie_word_embeddings:
            table = self.transformer.variables["params"]["wte"]["embedding"]
            logits = h @ jnp.asarray(table, self.dtype).T
        else:
            logits = self.lm_head(h)
        return dict(out, logits=logits)


class FlaxGPT2PreTrainedModel(FlaxPreTrainedModel):
    """GPT-2's inputs: no token types (v4's Flax GPT-2 takes none), always causal, positions 0.. by default."""

    config_class = GPT2Config
    base_model_prefix = "transformer"
    takes_token_types = False

    def _is_causal(self) -> bool:
        return True


class FlaxGPT2Model(FlaxGPT2PreTrainedModel):
    module_class = FlaxGPT2Module

    def __call__(self, input_ids, attention_mask=None, position_ids=None, encoder_hidden_states=None,
                 encoder_attention_mask=None, params=None, past_key_values=None, dropout_rng=None,
                 train: bool = False, output_attentions=None, output_hidden_states=None, return_dict=None,
                 head_mask=None):
        out = self._run(input_ids, attention_mask, None, position_ids, head_mask, encoder_hidden_states,
                        encoder_attention_mask, params, dropout_rng, train, output_attentions, output_hidden_states,
                        None, past_key_values)
        return self._finish(O.FlaxBaseModelOutputWithPastAndCrossAttentions(
            last_hidden_state=out["last_hidden_state"], past_key_values=out.get("past_key_values"),
            hidden_states=out["hidden_states"], attentions=out["attentions"],
            cross_attentions=out["cross_attentions"]), return_dict)


def _lm_module(config, dtype=jnp.float32, gradient_checkpointing=False):
    return _GPT2LM(config, dtype=dtype, gradient_checkpointing=gradient_checkpointing)


class FlaxGPT2LMHeadModel(FlaxGPT2PreTrainedModel, _CausalLMHead):
    """The decoder of bert2gpt2: logits tied to ``wte``; v4's cache; ``labels`` give the shifted LM loss."""

    module_class = staticmethod(_lm_module)

    def __call__(self, input_ids, attention_mask=None, position_ids=None, encoder_hidden_states=None,
                 encoder_attention_mask=None, params=None, past_key_values=None, dropout_rng=None,
                 train: bool = False, output_attentions=None, output_hidden_states=None, return_dict=None,
                 head_mask=None, labels=None):
        return _CausalLMHead.__call__(self, input_ids, attention_mask, None, position_ids, head_mask,
                                      encoder_hidden_states, encoder_attention_mask, params, dropout_rng, train,
                                      output_attentions, output_hidden_states, return_dict, past_key_values,
                                      labels)
