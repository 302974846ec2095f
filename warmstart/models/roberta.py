"""RoBERTa (Liu et al. 2019): BERT's stack with fairseq's position numbering and its own LM head.

What differs from BERT is data, not structure: positions start after ``pad_token_id`` and padding tokens keep the
padding position (so a left- or right-padded sequence sees the same positions), the position table's padding row
gets no gradient, and the LM head always uses exact GELU. The backbone is therefore BertModel with other embedding
options; the checkpoint prefix is "roberta." and the head's names are "lm_head.*".
"""
from __future__ import annotations

import logging

from ..config import RobertaConfig
from ..nn import Embeddings, LMHead, Pooler, TransformerStack, backbone_args
from ..nn.losses import shifted_lm_loss, token_cross_entropy
from .. import outputs as O
from .base import PreTrainedModel
from .bert import BertModel, BertPreTrainedModel

__all__ = ["RobertaPreTrainedModel", "RobertaModel", "RobertaForCausalLM", "RobertaForMaskedLM"]

log = logging.getLogger("warmstart")


class RobertaPreTrainedModel(BertPreTrainedModel):
    config_class = RobertaConfig
    base_model_prefix = "roberta"
    new_weights_ok = ("pooler.*", "*.cross_attn.*", "*.cross_norm.*", "lm_head.*")


class RobertaModel(RobertaPreTrainedModel, BertModel):
    """BertModel (forward included) over RoBERTa's embeddings; see BertModel for ``skip_padding``."""

    base_model_prefix = ""

    def __init__(self, config: RobertaConfig, add_pooling_layer: bool = True):
        PreTrainedModel.__init__(self, config)  # BertModel.__init__ would build BERT's embeddings
        c = config
        self.embeddings = Embeddings(
            c.vocab_size, c.hidden_size, c.max_position_embeddings, type_vocab_size=c.type_vocab_size,
            pad_token_id=c.pad_token_id, add_positions=c.position_embedding_type == "absolute",
            position_offset_from_padding=True, layer_norm_eps=c.layer_norm_eps, dropout=c.hidden_dropout_prob,
        )
        self.encoder = TransformerStack(c)
        self.pooler = Pooler(c.hidden_size) if add_pooling_layer else None
        self.skip_padding = True
        self.post_init()


def _lm_head(config: RobertaConfig) -> LMHead:
    # RobertaLMHead applies exact GELU whatever hidden_act says.
    return LMHead(config.hidden_size, config.vocab_size, act="gelu", layer_norm_eps=config.layer_norm_eps)


class _RobertaLM(RobertaPreTrainedModel):
    def __init__(self, config: RobertaConfig):
        super().__init__(config)
        self.roberta = RobertaModel(config, add_pooling_layer=False)
        self.lm_head = _lm_head(config)
        self.post_init()

    def get_output_embeddings(self):
        return self.lm_head.decoder

    def set_output_embeddings(self, new):
        self.lm_head.decoder = new


class RobertaForCausalLM(_RobertaLM):
    """Left-to-right LM; with ``is_decoder`` and ``add_cross_attention`` the decoder of a roberta2roberta."""

    def __init__(self, config: RobertaConfig):
        if not config.is_decoder:
            log.warning("RobertaForCausalLM with is_decoder=False attends in both directions; pass "
                        "is_decoder=True to use it as a left-to-right decoder")
        super().__init__(config)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None, labels=None,
                past_key_values=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                return_dict=None, *, skip_padding=None):
        if labels is not None:
            use_cache = False  # a training step never reads the cache
        out = self.roberta(**backbone_args(locals(), labels, shift=1), return_dict=True)
        logits = self.lm_head(out.last_hidden_state)
        loss = shifted_lm_loss(logits, labels) if labels is not None else None
        return self._finish(O.CausalLMOutputWithCrossAttentions(
            loss=loss, logits=logits, past_key_values=out.past_key_values, hidden_states=out.hidden_states,
            attentions=out.attentions, cross_attentions=out.cross_attentions), return_dict)


class RobertaForMaskedLM(_RobertaLM):
    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None, labels=None,
                output_attentions=None, output_hidden_states=None, return_dict=None):
        out = self.roberta(**backbone_args(locals(), labels), return_dict=True)
        logits = self.lm_head(out.last_hidden_state)
        loss = token_cross_entropy(logits, labels) if labels is not None else None
        return self._finish(O.MaskedLMOutput(loss=loss, logits=logits, hidden_states=out.hidden_states,
                                             attentions=out.attentions), return_dict)
