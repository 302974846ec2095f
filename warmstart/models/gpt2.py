"""GPT-2 (Radford et al. 2019): the shared stack in its pre-norm arrangement, causal whatever the config says.

Differences from BERT are options of the shared modules: pre-norm blocks (x + f(LN(x))) and a final LayerNorm
(``ln_f``); no embedding LayerNorm and no segment table (token_type_ids index the word table); no padding row in
the word table; attention scaled by 1/sqrt(d) only when ``scale_attn_weights``, and further by 1/(layer+1) with
``scale_attn_by_inverse_layer_idx``. Conv1D weights, stored (in, out), are transposed by the key map.

``reorder_and_upcast_attn`` is accepted and ignored: it only changes where rounding happens under mixed precision
(transformers applies it on its eager path only); fp32 results are the same.
"""
from __future__ import annotations

import math

from torch import nn

from ..config import GPT2Config
from ..nn import Embeddings, TransformerStack, backbone_args, run_backbone
from ..nn.losses import shifted_lm_loss
from .. import outputs as O
from .base import PreTrainedModel

__all__ = ["GPT2PreTrainedModel", "GPT2Model", "GPT2LMHeadModel"]


class GPT2PreTrainedModel(PreTrainedModel):
    config_class = GPT2Config
    base_model_prefix = "transformer"
    new_weights_ok = ("*.cross_attn.*", "*.cross_norm.*", "lm_head.*")

    def _finish(self, out, return_dict):
        return out if (self.config.return_dict if return_dict is None else return_dict) else out.to_tuple()

    def post_init(self) -> None:
        super().post_init()
        # GPT-2 paper, section 2.3: weights of layers that write into the residual stream are scaled at init by
        # 1/sqrt(N), N = the number of residual writes (2 per block: attention and MLP).
        std = self.config.initializer_range / math.sqrt(2 * self.config.n_layer)
        for block in self.base_model.encoder.layer:
            for proj in (block.attn.out, block.mlp.fc_out) + ((block.cross_attn.out,) if block.cross_attn else ()):
                nn.init.normal_(proj.weight, mean=0.0, std=std)


class GPT2Model(GPT2PreTrainedModel):
    """The bare decoder stack. Always causal; with ``add_cross_attention`` it also attends to an encoder.

    As in BertModel, rows where ``attention_mask`` is 0 are skipped (zeros in ``last_hidden_state``) when nothing
    returned reads them and the padding is on the right; ``model.skip_padding = False`` computes them.
    """

    base_model_prefix = ""

    def __init__(self, config: GPT2Config):
        super().__init__(config)
        c = config
        self.embeddings = Embeddings(
            c.vocab_size, c.n_embd, c.n_positions, norm=False, token_types_from_words=True, dropout=c.embd_pdrop,
        )
        base_scale = (c.n_embd // c.n_head) ** -0.5 if c.scale_attn_weights else 1.0

        def attn_scale(layer_idx: int) -> float:
            return base_scale / (layer_idx + 1) if c.scale_attn_by_inverse_layer_idx else base_scale

        self.encoder = TransformerStack(c, pre_norm=True, attn_scale=attn_scale, is_decoder=True)
        self.ln_f = nn.LayerNorm(c.n_embd, eps=c.layer_norm_epsilon)
        self.skip_padding = True
        self.post_init()

    # transformers' attribute names, for code that reaches into the model.
    @property
    def wte(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    @property
    def wpe(self) -> nn.Embedding:
        return self.embeddings.position_embeddings

    @property
    def h(self) -> nn.ModuleList:
        return self.encoder.layer

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
                position_ids=None, head_mask=None, inputs_embeds=None, encoder_hidden_states=None,
                encoder_attention_mask=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                return_dict=None, *, skip_padding=None):
        if skip_padding is None:
            skip_padding = self.skip_padding
        if past_key_values is None:  # a step continuing a cache feeds generated tokens (pad: a finished row)
            self.warn_if_padding_and_no_attention_mask(input_ids, attention_mask)
        out = run_backbone(self.embeddings, self.encoder, self.config, final_norm=self.ln_f, is_decoder=True,
                           **backbone_args(locals()))
        return self._finish(O.BaseModelOutputWithPastAndCrossAttentions(
            last_hidden_state=out.last_hidden_state, past_key_values=out.past_key_values,
            hidden_states=out.hidden_states, attentions=out.attentions, cross_attentions=out.cross_attentions,
        ), return_dict)


class GPT2LMHeadModel(GPT2PreTrainedModel):
    """GPT2Model and a bias-free projection to the vocabulary, tied to the word embeddings."""

    def __init__(self, config: GPT2Config):
        super().__init__(config)
        self.transformer = GPT2Model(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.post_init()

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, new):
        self.lm_head = new

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
                position_ids=None, head_mask=None, inputs_embeds=None, encoder_hidden_states=None,
                encoder_attention_mask=None, labels=None, use_cache=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, *, skip_padding=None):
        out = self.transformer(**backbone_args(locals(), labels, shift=1), return_dict=True)
        logits = self.lm_head(out.last_hidden_state)
        loss = shifted_lm_loss(logits, labels) if labels is not None else None
        return self._finish(O.CausalLMOutputWithCrossAttentions(
            loss=loss, logits=logits, past_key_values=out.past_key_values, hidden_states=out.hidden_states,
            attentions=out.attentions, cross_attentions=out.cross_attentions), return_dict)
