"""Configs of the post-norm BERT-shaped families: BERT, RoBERTa and BertGeneration."""
from __future__ import annotations

from .base import ConfigError, PretrainedConfig, check_activation, check_heads

__all__ = ["BertConfig", "RobertaConfig", "BertGenerationConfig"]


class _BertLikeConfig(PretrainedConfig):
    """Checks shared by the post-norm BERT-shaped families (BERT, RoBERTa, BertGeneration)."""

    POSITION_TYPES = ("absolute", "relative_key", "relative_key_query")

    def validate(self) -> None:
        super().validate()
        self._check_positive("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                             "intermediate_size", "max_position_embeddings", "layer_norm_eps")
        self._check_probability("hidden_dropout_prob", "attention_probs_dropout_prob")
        check_heads(self, "hidden_size", "num_attention_heads")
        check_activation(self, "hidden_act")
        if self.position_embedding_type not in self.POSITION_TYPES:
            raise ConfigError(
                f"position_embedding_type must be one of {self.POSITION_TYPES}, got {self.position_embedding_type!r}"
            )
        if self.pad_token_id is not None and not 0 <= self.pad_token_id < self.vocab_size:
            raise ConfigError(f"pad_token_id {self.pad_token_id} is outside the vocabulary (size {self.vocab_size})")


class BertConfig(_BertLikeConfig):
    """Configuration of BERT (fields and defaults of bert-base-uncased, as in the v4 docs)."""

    model_type = "bert"
    FIELDS = {
        "vocab_size": (30522, "int"),
        "hidden_size": (768, "int"),
        "num_hidden_layers": (12, "int"),
        "num_attention_heads": (12, "int"),
        "intermediate_size": (3072, "int"),
        "hidden_act": ("gelu", "str"),
        "hidden_dropout_prob": (0.1, "float"),
        "attention_probs_dropout_prob": (0.1, "float"),
        "max_position_embeddings": (512, "int"),
        "type_vocab_size": (2, "int"),
        "initializer_range": (0.02, "float"),
        "layer_norm_eps": (1e-12, "float"),
        "pad_token_id": (0, "int|none"),
        "position_embedding_type": ("absolute", "str"),
        "classifier_dropout": (None, "float|none"),
    }

    def validate(self) -> None:
        super().validate()
        self._check_positive("type_vocab_size", allow_zero=("type_vocab_size",))
        self._check_probability("classifier_dropout")


class RobertaConfig(BertConfig):
    """RoBERTa (Liu et al. 2019): BERT's fields with roberta-base's vocabulary and special ids.

    Positions are numbered after ``pad_token_id`` (fairseq's convention), so a sequence may hold at most
    ``max_position_embeddings - pad_token_id - 1`` tokens (512 for roberta-base's 514-row table).
    """

    model_type = "roberta"
    FIELDS = {
        "vocab_size": (50265, "int"),
        "pad_token_id": (1, "int|none"),
        "bos_token_id": (0, "int|none"),
        "eos_token_id": (2, "int|int_list|none"),
    }

    def validate(self) -> None:
        super().validate()
        if self.pad_token_id is None:
            raise ConfigError("RobertaConfig.pad_token_id must be set: RoBERTa numbers positions after it")
        if self.pad_token_id + 1 >= self.max_position_embeddings:
            raise ConfigError(
                f"RobertaConfig.max_position_embeddings ({self.max_position_embeddings}) leaves no position for "
                f"tokens: positions start after pad_token_id ({self.pad_token_id})"
            )


class BertGenerationConfig(_BertLikeConfig):
    """BertGeneration (Rothe et al. 2020): BERT without segments or pooler, as an encoder or a decoder.

    Defaults are those of google/bert_for_seq_generation_L-24_bbc_encoder (v4 docs).
    """

    model_type = "bert-generation"
    FIELDS = {
        "vocab_size": (50358, "int"),
        "hidden_size": (1024, "int"),
        "num_hidden_layers": (24, "int"),
        "num_attention_heads": (16, "int"),
        "intermediate_size": (4096, "int"),
        "hidden_act": ("gelu", "str"),
        "hidden_dropout_prob": (0.1, "float"),
        "attention_probs_dropout_prob": (0.1, "float"),
        "max_position_embeddings": (512, "int"),
        "initializer_range": (0.02, "float"),
        "layer_norm_eps": (1e-12, "float"),
        "pad_token_id": (0, "int|none"),
        "bos_token_id": (2, "int|none"),
        "eos_token_id": (1, "int|int_list|none"),
        "position_embedding_type": ("absolute", "str"),
    }
