"""FlaxRoberta*: the BERT stack (stack.py) under v4's ``roberta`` tree, with RoBERTa's positions and LM head.

What differs from BERT is small and lives here: positions count from ``pad_token_id + 1`` over real tokens and
padding keeps position ``pad_token_id`` (as our PyTorch RoBERTa and v4), so the table holds two fewer usable
positions; the LM head is ``lm_head`` (dense, exact GELU, ``layer_norm``, then the tied embedding table + bias).
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from ..config.bert import RobertaConfig
from .bert import FlaxBertModel, _CausalLMHead, _MaskedLMHead
from .stack import ACTIVATIONS, FlaxBertModule, _init

__all__ = ["FlaxRobertaPreTrainedModel", "FlaxRobertaModel", "FlaxRobertaForMaskedLM", "FlaxRobertaForCausalLM"]


def roberta_positions(input_ids, pad_token_id: int):
    """pad + 1, pad + 2, ... over real tokens; pad on padding (fairseq's rule, which RoBERTa checkpoints learnt)."""
    real = (input_ids != pad_token_id).astype("i4")
    return jnp.cumsum(real, axis=-1) * real + pad_token_id


class FlaxRobertaLMHead(nn.Module):
    config: object
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        c = self.config
        self.dense = nn.Dense(c.hidden_size, kernel_init=_init(c), dtype=self.dtype)
        self.layer_norm = nn.LayerNorm(epsilon=c.layer_norm_eps, dtype=self.dtype)
        if not c.tie_word_embeddings:
            self.decoder = nn.Dense(c.vocab_size, use_bias=False, kernel_init=_init(c), dtype=self.dtype)
        self.bias = self.param("bias", jax.nn.initializers.zeros, (c.vocab_size,))

    def __call__(self, x, shared_embedding=None):
        x = self.layer_norm(ACTIVATIONS["gelu"](self.dense(x)))
        x = x @ jnp.asarray(shared_embedding, self.dtype).T if self.config.tie_word_embeddings else self.decoder(x)
        return x + jnp.asarray(self.bias, self.dtype)


class _RobertaLM(nn.Module):
    """``roberta`` backbone (no pooler) + ``lm_head``; causal or masked by the config's is_decoder."""

    config: object
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self):
        self.roberta = FlaxBertModule(self.config, dtype=self.dtype, add_pooling_layer=False,
                                      gradient_checkpointing=self.gradient_checkpointing)
        self.lm_head = FlaxRobertaLMHead(self.config, dtype=self.dtype)

    def __call__(self, *args, deterministic: bool = True, output_attentions=False, output_hidden_states=False,
                 **kwargs):
        out = self.roberta(*args, deterministic=deterministic, output_attentions=output_attentions,
                           output_hidden_states=output_hidden_states, **kwargs)
        shared = None
        if self.config.tie_word_embeddings:
            shared = self.roberta.variables["params"]["embeddings"]["word_embeddings"]["embedding"]
        return {"logits": self.lm_head(out["last_hidden_state"], shared), "hidden_states": out["hidden_states"],
                "attentions": out["attentions"], "cross_attentions": out["cross_attentions"]}


def _lm_module(config, dtype=jnp.float32, gradient_checkpointing=False):
    return _RobertaLM(config, dtype=dtype, gradient_checkpointing=gradient_checkpointing)


class FlaxRobertaPreTrainedModel:
    """RoBERTa's positions, shared by every FlaxRoberta* class (mixed in before the BERT wrappers)."""

    config_class = RobertaConfig
    base_model_prefix = "roberta"

    def _first_position(self) -> int:
        return self.config.pad_token_id + 1

    def _default_positions(self, input_ids):
        return roberta_positions(input_ids, self.config.pad_token_id)


class FlaxRobertaModel(FlaxRobertaPreTrainedModel, FlaxBertModel):
    """The bare RoBERTa encoder (v4 tree: embeddings / encoder / pooler at the top)."""


class FlaxRobertaForMaskedLM(FlaxRobertaPreTrainedModel, _MaskedLMHead):
    module_class = staticmethod(_lm_module)


class FlaxRobertaForCausalLM(FlaxRobertaPreTrainedModel, _CausalLMHead):
    """The decoder of roberta2roberta. With a cache, pass the positions: ``roberta_positions`` of the whole
    sequence, sliced to the tokens fed."""

    module_class = staticmethod(_lm_module)
