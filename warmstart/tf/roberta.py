"""TFRoberta*: the BERT stack with RoBERTa's positions (numbered after the padding index) and its LM head
(``lm_head``: dense, gelu, ``layer_norm``, the tied word table, a bias), under v4's ``roberta`` main layer."""
from __future__ import annotations

from ..config.bert import RobertaConfig
from .bert import TFBertForMaskedLM, TFBertLMHeadModel, TFBertModel, TFBertPreTrainedModel
from .stack import TFBertMainLayer, TFRobertaLMHead

__all__ = ["TFRobertaPreTrainedModel", "TFRobertaModel", "TFRobertaForCausalLM", "TFRobertaForMaskedLM"]


class _RobertaMainLayer(TFBertMainLayer):
    def __init__(self, config, add_pooling_layer: bool = True, **kwargs):
        super().__init__(config, add_pooling_layer=add_pooling_layer, roberta=True, **kwargs)
        # v4's TF RoBERTa lists its weights encoder, pooler, embeddings: files keep that order.
        self._v4_children.sort(key=lambda item: item[0] == "embeddings")


class TFRobertaPreTrainedModel(TFBertPreTrainedModel):
    config_class = RobertaConfig
    base_model_prefix = "roberta"
    main_layer_class = _RobertaMainLayer

    def _lm_head(self, main) -> None:
        self.sub("lm_head", TFRobertaLMHead(self.config, main.embeddings.word_embeddings), attr="lm")


class TFRobertaModel(TFRobertaPreTrainedModel, TFBertModel):
    """TFBertModel over RoBERTa's backbone."""


class TFRobertaForMaskedLM(TFRobertaPreTrainedModel, TFBertForMaskedLM):
    """TFBertForMaskedLM's call over RoBERTa's backbone and ``lm_head``."""


class TFRobertaForCausalLM(TFRobertaPreTrainedModel, TFBertLMHeadModel):
    """The decoder of roberta2roberta: TFBertLMHeadModel's call (causal attention, v4's cache, the shifted LM
    loss) over RoBERTa's backbone and ``lm_head``."""
