"""BERT (Devlin et al. 2018) and its eight task heads, assembled from the shared stack.

Loss semantics follow transformers: -100 labels are ignored, sequence classification picks regression /
single-label / multi-label from ``config.problem_type`` (inferred from num_labels and the label dtype when unset),
question answering clamps out-of-range positions to an ignored index, the causal LM shifts labels by one.

Every head's forward has transformers' v4 signature and the same four lines: the backbone on the arguments it
shares with the head (``backbone_args``), the head, the loss, the output class.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import BertConfig
from ..nn import Embeddings, LMHead, Pooler, TransformerStack, backbone_args, run_backbone
from ..nn.dropout import Dropout
from ..nn.losses import shifted_lm_loss, token_cross_entropy
from .. import outputs as O
from .base import PreTrainedModel

__all__ = [
    "BertPreTrainedModel", "BertModel", "BertForPreTraining", "BertLMHeadModel", "BertForMaskedLM",
    "BertForNextSentencePrediction", "BertForSequenceClassification", "BertForMultipleChoice",
    "BertForTokenClassification", "BertForQuestionAnswering",
]


class BertPreTrainedModel(PreTrainedModel):
    config_class = BertConfig
    base_model_prefix = "bert"
    # Heads, the pooler and cross-attention may be new when warm-starting from a plain BERT checkpoint.
    new_weights_ok = ("pooler.*", "*.cross_attn.*", "*.cross_norm.*", "cls.*", "seq_relationship.*",
                      "classifier.*", "qa_outputs.*")

    def _finish(self, out, return_dict):
        return out if (self.config.return_dict if return_dict is None else return_dict) else out.to_tuple()


class BertModel(BertPreTrainedModel):
    """The bare encoder (or, with ``is_decoder``, a causal decoder with optional cross-attention).

    Positions where ``attention_mask`` is 0 are not computed when nothing returned depends on them (no
    attentions, no per-layer hidden states, no cache): their rows of ``last_hidden_state`` are zeros instead of
    transformers' values, which nothing should read. Set ``model.skip_padding = False`` to compute them.
    """

    base_model_prefix = ""

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        c = config
        self.embeddings = Embeddings(
            c.vocab_size, c.hidden_size, c.max_position_embeddings, type_vocab_size=c.type_vocab_size,
            pad_token_id=c.pad_token_id, add_positions=c.position_embedding_type == "absolute",
            layer_norm_eps=c.layer_norm_eps, dropout=c.hidden_dropout_prob,
        )
        self.encoder = TransformerStack(c)
        self.pooler = Pooler(c.hidden_size) if add_pooling_layer else None
        self.skip_padding = True
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None, past_key_values=None,
                use_cache=None, output_attentions=None, output_hidden_states=None, return_dict=None, *,
                skip_padding=None):
        if skip_padding is None:
            skip_padding = self.skip_padding
        if past_key_values is None:  # a step continuing a cache feeds generated tokens (pad: a finished row)
            self.warn_if_padding_and_no_attention_mask(input_ids, attention_mask)
        out = run_backbone(self.embeddings, self.encoder, self.config, **backbone_args(locals()))
        pooled = self.pooler(out.last_hidden_state) if self.pooler is not None else None
        return self._finish(O.BaseModelOutputWithPoolingAndCrossAttentions(
            last_hidden_state=out.last_hidden_state, pooler_output=pooled, hidden_states=out.hidden_states,
            past_key_values=out.past_key_values, attentions=out.attentions, cross_attentions=out.cross_attentions,
        ), return_dict)


def _lm_head(config: BertConfig) -> LMHead:
    return LMHead(config.hidden_size, config.vocab_size, act=config.hidden_act, layer_norm_eps=config.layer_norm_eps)


class _WithLMHead(BertPreTrainedModel):
    def get_output_embeddings(self):
        return self.cls.decoder

    def set_output_embeddings(self, new):
        self.cls.decoder = new


class BertForPreTraining(_WithLMHead):
    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config)
        self.cls = _lm_head(config)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, next_sentence_label=None, output_attentions=None,
                output_hidden_states=None, return_dict=None):
        out = self.bert(**backbone_args(locals(), labels), return_dict=True)
        scores = self.cls(out.last_hidden_state)
        nsp = self.seq_relationship(out.pooler_output)
        loss = None
        if labels is not None and next_sentence_label is not None:
            loss = token_cross_entropy(scores, labels) + token_cross_entropy(nsp, next_sentence_label)
        return self._finish(O.BertForPreTrainingOutput(
            loss=loss, prediction_logits=scores, seq_relationship_logits=nsp, hidden_states=out.hidden_states,
            attentions=out.attentions), return_dict)


class BertLMHeadModel(_WithLMHead):
    """Left-to-right LM head; with ``is_decoder`` and ``add_cross_attention`` the decoder of a bert2bert."""

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.cls = _lm_head(config)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None, labels=None,
                past_key_values=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                return_dict=None, *, skip_padding=None):
        if labels is not None:
            use_cache = False  # a training step never reads the cache
        out = self.bert(**backbone_args(locals(), labels, shift=1), return_dict=True)
        logits = self.cls(out.last_hidden_state)
        loss = shifted_lm_loss(logits, labels) if labels is not None else None
        return self._finish(O.CausalLMOutputWithCrossAttentions(
            loss=loss, logits=logits, past_key_values=out.past_key_values, hidden_states=out.hidden_states,
            attentions=out.attentions, cross_attentions=out.cross_attentions), return_dict)


class BertForMaskedLM(_WithLMHead):
    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.cls = _lm_head(config)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None, labels=None,
                output_attentions=None, output_hidden_states=None, return_dict=None):
        out = self.bert(**backbone_args(locals(), labels), return_dict=True)
        logits = self.cls(out.last_hidden_state)
        loss = token_cross_entropy(logits, labels) if labels is not None else None
        return self._finish(O.MaskedLMOutput(loss=loss, logits=logits, hidden_states=out.hidden_states,
                                             attentions=out.attentions), return_dict)


class BertForNextSentencePrediction(BertPreTrainedModel):
    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                return_dict=None, **kwargs):
        if "next_sentence_label" in kwargs:  # v3 name, still accepted by v4
            labels = kwargs.pop("next_sentence_label")
        if kwargs:
            raise TypeError(f"{type(self).__name__}.forward() got unexpected arguments {sorted(kwargs)}")
        out = self.bert(**backbone_args(locals()), return_dict=True)
        logits = self.seq_relationship(out.pooler_output)
        loss = token_cross_entropy(logits, labels) if labels is not None else None
        return self._finish(O.NextSentencePredictorOutput(loss=loss, logits=logits, hidden_states=out.hidden_states,
                                                          attentions=out.attentions), return_dict)


class _Classifier(BertPreTrainedModel):
    def _classifier(self, config: BertConfig, n_out: int, pooling: bool) -> None:
        self.num_labels = config.num_labels
        self.bert = BertModel(config, add_pooling_layer=pooling)
        p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = Dropout(p)
        self.classifier = nn.Linear(config.hidden_size, n_out)
        self.post_init()


class BertForSequenceClassification(_Classifier):
    def __init__(self, config: BertConfig):
        super().__init__(config)
        self._classifier(config, config.num_labels, pooling=True)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                return_dict=None):
        out = self.bert(**backbone_args(locals()), return_dict=True)
        logits = self.classifier(self.dropout(out.pooler_output))
        loss = self._loss(logits, labels) if labels is not None else None
        return self._finish(O.SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=out.hidden_states,
                                                       attentions=out.attentions), return_dict)

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        c = self.config
        if c.problem_type is None:
            if self.num_labels == 1:
                c.problem_type = "regression"
            elif labels.dtype in (torch.long, torch.int):
                c.problem_type = "single_label_classification"
            else:
                c.problem_type = "multi_label_classification"
        if c.problem_type == "regression":
            if self.num_labels == 1:
                return F.mse_loss(logits.squeeze(), labels.squeeze().to(logits.dtype))
            return F.mse_loss(logits, labels.to(logits.dtype))
        if c.problem_type == "single_label_classification":
            return token_cross_entropy(logits, labels)
        if labels.shape != logits.shape:
            raise ValueError(f"multi-label classification needs labels shaped like the logits {tuple(logits.shape)}, "
                             f"got {tuple(labels.shape)}")
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))


class BertForMultipleChoice(_Classifier):
    def __init__(self, config: BertConfig):
        super().__init__(config)
        self._classifier(config, 1, pooling=True)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                return_dict=None):
        ref = input_ids if input_ids is not None else inputs_embeds
        if ref is None or ref.dim() < 3:
            raise ValueError("multiple choice inputs must be (batch, num_choices, sequence[, hidden]), got "
                             f"{None if ref is None else tuple(ref.shape)}")
        num_choices = ref.shape[1]

        def flat(t, keep=1):  # (B, K, T[, C]) -> (B*K, T[, C])
            return None if t is None else t.reshape(-1, *t.shape[-keep:])

        # Every choice is one row of the backbone's batch.
        input_ids, attention_mask, token_type_ids, position_ids = (
            flat(input_ids), flat(attention_mask), flat(token_type_ids), flat(position_ids))
        inputs_embeds = flat(inputs_embeds, 2)
        out = self.bert(**backbone_args(locals()), return_dict=True)
        logits = self.classifier(self.dropout(out.pooler_output)).view(-1, num_choices)
        loss = token_cross_entropy(logits, labels) if labels is not None else None
        return self._finish(O.MultipleChoiceModelOutput(loss=loss, logits=logits, hidden_states=out.hidden_states,
                                                        attentions=out.attentions), return_dict)


class BertForTokenClassification(_Classifier):
    def __init__(self, config: BertConfig):
        super().__init__(config)
        self._classifier(config, config.num_labels, pooling=False)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                return_dict=None):
        out = self.bert(**backbone_args(locals(), labels), return_dict=True)
        logits = self.classifier(self.dropout(out.last_hidden_state))
        loss = token_cross_entropy(logits, labels) if labels is not None else None
        return self._finish(O.TokenClassifierOutput(loss=loss, logits=logits, hidden_states=out.hidden_states,
                                                    attentions=out.attentions), return_dict)


class BertForQuestionAnswering(BertPreTrainedModel):
    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = BertModel(config, add_pooling_layer=False)
        self.qa_outputs = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, start_positions=None, end_positions=None, output_attentions=None,
                output_hidden_states=None, return_dict=None):
        # Span logits are normalised over every position, padding included: none is skipped.
        out = self.bert(**backbone_args(locals()), return_dict=True, skip_padding=False)
        start, end = self.qa_outputs(out.last_hidden_state).split(1, dim=-1)
        start, end = start.squeeze(-1).contiguous(), end.squeeze(-1).contiguous()  # (B, T) each
        loss = None
        if start_positions is not None and end_positions is not None:
            # Answers outside the (truncated) sequence point at index T, which the loss ignores.
            ignored = start.shape[1]
            s = start_positions.reshape(-1).clamp(0, ignored)
            e = end_positions.reshape(-1).clamp(0, ignored)
            loss = (token_cross_entropy(start, s, ignore_index=ignored)
                    + token_cross_entropy(end, e, ignore_index=ignored)) / 2
        return self._finish(O.QuestionAnsweringModelOutput(
            loss=loss, start_logits=start, end_logits=end, hidden_states=out.hidden_states,
            attentions=out.attentions), return_dict)
