"""GPT-2's config, under OpenAI's field names."""
from __future__ import annotations

from .base import ConfigError, PretrainedConfig, check_activation, check_heads

__all__ = ["GPT2Config"]


class GPT2Config(PretrainedConfig):
    """GPT-2 (Radford et al. 2019) under OpenAI's field names, as transformers writes them to config.json.

    The shared stack reads BERT's names (hidden_size, layer_norm_eps, ...); ``attribute_map`` makes those
    aliases of GPT-2's fields, so ``config.hidden_size`` is ``config.n_embd`` and setting either sets both.
    """

    model_type = "gpt2"
    attribute_map = {
        "hidden_size": "n_embd",
        "max_position_embeddings": "n_positions",
        "num_attention_heads": "n_head",
        "num_hidden_layers": "n_layer",
        "intermediate_size": "n_inner",
        "hidden_act": "activation_function",
        "layer_norm_eps": "layer_norm_epsilon",
        "hidden_dropout_prob": "resid_pdrop",
        "attention_probs_dropout_prob": "attn_pdrop",
    }
    SUMMARY_TYPES = ("last", "first", "mean", "cls_index", "attn")
    FIELDS = {
        "vocab_size": (50257, "int"),
        "n_positions": (1024, "int"),
        "n_embd": (768, "int"),
        "n_layer": (12, "int"),
        "n_head": (12, "int"),
        "n_inner": (None, "int|none"),
        "activation_function": ("gelu_new", "str"),
        "resid_pdrop": (0.1, "float"),
        "embd_pdrop": (0.1, "float"),
        "attn_pdrop": (0.1, "float"),
        "layer_norm_epsilon": (1e-5, "float"),
        "initializer_range": (0.02, "float"),
        "summary_type": ("cls_index", "str"),
        "summary_use_proj": (True, "bool"),
        "summary_activation": (None, "str|none"),
        "summary_proj_to_labels": (True, "bool"),
        "summary_first_dropout": (0.1, "float"),
        "scale_attn_weights": (True, "bool"),
        "use_cache": (True, "bool"),
        "bos_token_id": (50256, "int|none"),
        "eos_token_id": (50256, "int|int_list|none"),
        "scale_attn_by_inverse_layer_idx": (False, "bool"),
        # Accepted for compatibility; it only changes rounding under mixed precision (see models/gpt2.py).
        "reorder_and_upcast_attn": (False, "bool"),
    }

    def validate(self) -> None:
        super().validate()
        self._check_positive("vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "layer_norm_epsilon")
        if self.n_inner is not None:
            self._check_positive("n_inner")
        self._check_probability("resid_pdrop", "embd_pdrop", "attn_pdrop", "summary_first_dropout")
        check_heads(self, "n_embd", "n_head")
        check_activation(self, "activation_function")
        if self.summary_type not in self.SUMMARY_TYPES:
            raise ConfigError(f"summary_type must be one of {self.SUMMARY_TYPES}, got {self.summary_type!r}")
