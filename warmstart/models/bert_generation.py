"""BertGeneration (Rothe et al. 2020, "Leveraging Pre-trained Checkpoints for Sequence Generation Tasks").

BERT without token types and pooler, used as either side of an encoder-decoder. Warm-starting reads a plain BERT
checkpoint: its layers map one to one (the key map is BERT's), the segment table and pooler are reported unused, and
a decoder's cross-attention and output bias start fresh (reported as newly initialised). The decoder's projection is
tied to the word embeddings, as in the paper's shared-vocabulary setups.
"""
from __future__ import annotations

import logging

from ..config import BertGenerationConfig
from ..nn import Embeddings, LMHead, TransformerStack, backbone_args, run_backbone
from ..nn.losses import shifted_lm_loss
from .. import outputs as O
from .bert import BertPreTrainedModel

__all__ = ["BertGenerationPreTrainedModel", "BertGenerationEncoder", "BertGenerationDecoder"]

log = logging.getLogger("warmstart")


class BertGenerationPreTrainedModel(BertPreTrainedModel):
    config_class = BertGenerationConfig
    base_model_prefix = "bert"
    new_weights_ok = ("*.cross_attn.*", "*.cross_norm.*", "lm_head.*")


class BertGenerationEncoder(BertGenerationPreTrainedModel):
    """The bare stack; with ``is_decoder`` (and ``add_cross_attention``) the body of a BertGenerationDecoder.

    As in BertModel, rows where ``attention_mask`` is 0 are skipped when nothing returned reads them (their
    ``last_hidden_state`` rows are then zeros); ``model.skip_padding = False`` computes them.
    """

    base_model_prefix = ""

    def __init__(self, config: BertGenerationConfig):
        super().__init__(config)
        c = config
        # v4's BertGenerationEmbeddings always adds the absolute table, even with relative attention.
        self.embeddings = Embeddings(
            c.vocab_size, c.hidden_size, c.max_position_embeddings, pad_token_id=c.pad_token_id,
            layer_norm_eps=c.layer_norm_eps, dropout=c.hidden_dropout_prob,
        )
        self.encoder = TransformerStack(c)
        self.skip_padding = True
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, head_mask=None, inputs_embeds=None,
                encoder_hidden_states=None, encoder_attention_mask=None, past_key_values=None, use_cache=None,
                output_attentions=None, output_hidden_states=None, return_dict=None, *, token_type_ids=None,
                skip_padding=None):
        # token_type_ids is accepted so that a BERT tokenizer's output can be passed as is; there is no segment
        # table, so only all-zero ids are allowed (run_backbone raises otherwise).
        if skip_padding is None:
            skip_padding = self.skip_padding
        if past_key_values is None:  # a step continuing a cache feeds generated tokens (pad: a finished row)
            self.warn_if_padding_and_no_attention_mask(input_ids, attention_mask)
        out = run_backbone(self.embeddings, self.encoder, self.config, **backbone_args(locals()))
        return self._finish(O.BaseModelOutputWithPastAndCrossAttentions(
            last_hidden_state=out.last_hidden_state, past_key_values=out.past_key_values,
            hidden_states=out.hidden_states, attentions=out.attentions, cross_attentions=out.cross_attentions,
        ), return_dict)


class BertGenerationDecoder(BertGenerationPreTrainedModel):
    """Left-to-right LM: BertGenerationEncoder (is_decoder=True) and a bias-carrying projection to the vocabulary."""

    def __init__(self, config: BertGenerationConfig):
        super().__init__(config)
        if not config.is_decoder:
            log.warning("BertGenerationDecoder with is_decoder=False attends in both directions; pass "
                        "is_decoder=True to use it as a left-to-right decoder")
        self.bert = BertGenerationEncoder(config)
        self.lm_head = LMHead(config.hidden_size, config.vocab_size, transform=False)
        self.post_init()

    def get_output_embeddings(self):
        return self.lm_head.decoder

    def set_output_embeddings(self, new):
        self.lm_head.decoder = new

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, head_mask=None, inputs_embeds=None,
                encoder_hidden_states=None, encoder_attention_mask=None, labels=None, past_key_values=None,
                use_cache=None, output_attentions=None, output_hidden_states=None, return_dict=None, *,
                token_type_ids=None, skip_padding=None):
        if labels is not None:
            use_cache = False  # a training step never reads the cache
        out = self.bert(**backbone_args(locals(), labels, shift=1), return_dict=True)
        logits = self.lm_head(out.last_hidden_state)
        loss = shifted_lm_loss(logits, labels) if labels is not None else None
        return self._finish(O.CausalLMOutputWithCrossAttentions(
            loss=loss, logits=logits, past_key_values=out.past_key_values, hidden_states=out.hidden_states,
            attentions=out.attentions, cross_attentions=out.cross_attentions), return_dict)
