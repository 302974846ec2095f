"""TFBert*: every BERT head of the seeds as a Keras 3 model, on the stack in ``stack.py``.

A head's ``call`` is its own few lines: run the backbone (``_run``, which checks the inputs), apply the head,
compute v4's TF loss (``losses.py``) when labels are given, return v4's output class. Head layers carry v4's
names (``mlm___cls/predictions``, ``nsp___cls/seq_relationship``, ``classifier``, ``qa_outputs``), so v4's
``tf_model.h5`` files load and ours load in v4.
"""
from __future__ import annotations

import logging

from ..config.bert import BertConfig
from . import losses
from .backend import keras, tf
from .layers import Dense, Layer
from .modeling import TFPreTrainedModel, unpack_inputs
from .outputs import (TFBaseModelOutputWithPoolingAndCrossAttentions, TFBertForPreTrainingOutput,
                      TFCausalLMOutputWithCrossAttentions, TFMaskedLMOutput, TFMultipleChoiceModelOutput,
                      TFNextSentencePredictorOutput, TFQuestionAnsweringModelOutput, TFSequenceClassifierOutput,
                      TFTokenClassifierOutput)
from .stack import TFBertLMPredictionHead, TFBertMainLayer

__all__ = ["TFBertPreTrainedModel", "TFBertModel", "TFBertForPreTraining", "TFBertLMHeadModel", "TFBertForMaskedLM",
           "TFBertForNextSentencePrediction", "TFBertForSequenceClassification", "TFBertForMultipleChoice",
           "TFBertForTokenClassification", "TFBertForQuestionAnswering"]

log = logging.getLogger("warmstart")


class TFBertPreTrainedModel(TFPreTrainedModel):
    config_class = BertConfig
    base_model_prefix = "bert"
    main_layer_class = TFBertMainLayer

    def _backbone(self, add_pooling_layer: bool = True):
        main = self.main_layer_class(self.config, add_pooling_layer=add_pooling_layer)
        return self.sub(self.base_model_prefix, main)

    def _lm_head(self, main) -> None:
        """The vocabulary head under v4's name (``mlm___cls/predictions``; RoBERTa: ``lm_head``) as ``self.lm``."""
        head = TFBertLMPredictionHead(self.config, main.embeddings.word_embeddings)
        self.sub("mlm___cls", _Wrap("predictions", head), attr="lm")


class _Wrap(Layer):
    """A named container for one head layer (v4's ``mlm___cls`` holds ``predictions``)."""

    def __init__(self, name: str, layer, **kwargs):
        super().__init__(**kwargs)
        self.sub(name, layer, attr="inner")
        self.built = True

    def call(self, x):
        return self.inner(x)


def _dense(config, n_out: int) -> Dense:
    return Dense(config.hidden_size, n_out, config.initializer_range)


def _backbone_outputs(out: dict) -> dict:
    return {"hidden_states": out["hidden_states"], "attentions": out["attentions"]}


class TFBertModel(TFBertPreTrainedModel):
    _pt_is_base = True
    def __init__(self, config, *inputs, add_pooling_layer: bool = True, **kwargs):
        super().__init__(config, **kwargs)
        self._backbone(add_pooling_layer)
        self._finish_init()

    @unpack_inputs
    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None, past_key_values=None,
             use_cache=None, output_attentions=None, output_hidden_states=None, return_dict=None, training=False):
        out = self._run(training, input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                        position_ids=position_ids, head_mask=head_mask, inputs_embeds=inputs_embeds,
                        encoder_hidden_states=encoder_hidden_states, encoder_attention_mask=encoder_attention_mask,
                        past_key_values=past_key_values, use_cache=use_cache, output_attentions=output_attentions,
                        output_hidden_states=output_hidden_states)
        return self._return(TFBaseModelOutputWithPoolingAndCrossAttentions(**out), return_dict)


class TFBertForPreTraining(TFBertPreTrainedModel):
    def __init__(self, config, *inputs, **kwargs):
        super().__init__(config, **kwargs)
        main = self._backbone(True)
        self.sub("nsp___cls", _Wrap("seq_relationship", _dense(config, 2)), attr="nsp")
        self._lm_head(main)
        self._finish_init()

    @unpack_inputs
    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, labels=None,
             next_sentence_label=None, training=False):
        out = self._run(training, input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                        position_ids=position_ids, head_mask=head_mask, inputs_embeds=inputs_embeds,
                        output_attentions=output_attentions, output_hidden_states=output_hidden_states)
        scores = self.lm(out["last_hidden_state"])
        relationship = self.nsp(out["pooler_output"])
        loss = None
        if labels is not None and next_sentence_label is not None:
            loss = losses.pretraining_loss(labels, next_sentence_label, scores, relationship)
        return self._return(TFBertForPreTrainingOutput(loss=loss, prediction_logits=scores,
                                                       seq_relationship_logits=relationship,
                                                       **_backbone_outputs(out)), return_dict)


class TFBertForMaskedLM(TFBertPreTrainedModel):
    def __init__(self, config, *inputs, **kwargs):
        super().__init__(config, **kwargs)
        if config.is_decoder:
            log.warning("%s reads both directions, but is_decoder=True makes it attend causally: set "
                        "is_decoder=False (or use the causal LM class for left-to-right prediction)",
                        type(self).__name__)
        self._lm_head(self._backbone(False))
        self._finish_init()

    @unpack_inputs
    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None, output_attentions=None,
             output_hidden_states=None, return_dict=None, labels=None, training=False):
        out = self._run(training, input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                        position_ids=position_ids, head_mask=head_mask, inputs_embeds=inputs_embeds,
                        encoder_hidden_states=encoder_hidden_states, encoder_attention_mask=encoder_attention_mask,
                        output_attentions=output_attentions, output_hidden_states=output_hidden_states)
        logits = self.lm(out["last_hidden_state"])
        loss = None if labels is None else losses.token_loss(labels, logits)
        return self._return(TFMaskedLMOutput(loss=loss, logits=logits, **_backbone_outputs(out)), return_dict)


class TFBertLMHeadModel(TFBertPreTrainedModel):
    """Left-to-right BERT (a BertGeneration-style decoder in bert2bert): causal attention, v4's cache."""

    _is_causal = True
    _generates = True

    def __init__(self, config, *inputs, **kwargs):
        super().__init__(config, **kwargs)
        if not config.is_decoder:
            log.warning("%s is a left-to-right decoder: set is_decoder=True in its config, otherwise it "
                        "attends in both directions", type(self).__name__)
        self._lm_head(self._backbone(False))
        self._finish_init()

    @unpack_inputs
    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None, past_key_values=None,
             use_cache=None, output_attentions=None, output_hidden_states=None, return_dict=None, labels=None,
             training=False):
        out = self._run(training, input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                        position_ids=position_ids, head_mask=head_mask, inputs_embeds=inputs_embeds,
                        encoder_hidden_states=encoder_hidden_states, encoder_attention_mask=encoder_attention_mask,
                        past_key_values=past_key_values, use_cache=use_cache, output_attentions=output_attentions,
                        output_hidden_states=output_hidden_states)
        logits = self._lm_logits(out["last_hidden_state"])
        loss = None if labels is None else losses.shifted_lm_loss(labels, logits)
        return self._return(TFCausalLMOutputWithCrossAttentions(
            loss=loss, logits=logits, past_key_values=out["past_key_values"], hidden_states=out["hidden_states"],
            attentions=out["attentions"], cross_attentions=out["cross_attentions"]), return_dict)


    def _lm_logits(self, hidden):
        return self.lm(hidden)


class TFBertForNextSentencePrediction(TFBertPreTrainedModel):
    def __init__(self, config, *inputs, **kwargs):
        super().__init__(config, **kwargs)
        self._backbone(True)
        self.sub("nsp___cls", _Wrap("seq_relationship", _dense(config, 2)), attr="nsp")
        self._finish_init()

    @unpack_inputs
    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None,
             next_sentence_label=None, training=False):
        out = self._run(training, input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                        position_ids=position_ids, head_mask=head_mask, inputs_embeds=inputs_embeds,
                        output_attentions=output_attentions, output_hidden_states=output_hidden_states)
        logits = self.nsp(out["pooler_output"])
        loss = None if next_sentence_label is None else losses.next_sentence_loss(next_sentence_label, logits)
        return self._return(TFNextSentencePredictorOutput(loss=loss, logits=logits, **_backbone_outputs(out)),
                            return_dict)


def _classifier_dropout(config) -> float:
    rate = getattr(config, "classifier_dropout", None)
    return config.hidden_dropout_prob if rate is None else rate


class TFBertForSequenceClassification(TFBertPreTrainedModel):
    def __init__(self, config, *inputs, **kwargs):
        super().__init__(config, **kwargs)
        self._backbone(True)
        self.dropout = keras.layers.Dropout(_classifier_dropout(config))
        self.sub("classifier", _dense(config, config.num_labels))
        self._finish_init()

    @unpack_inputs
    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, labels=None,
             training=False):
        out = self._run(training, input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                        position_ids=position_ids, head_mask=head_mask, inputs_embeds=inputs_embeds,
                        output_attentions=output_attentions, output_hidden_states=output_hidden_states)
        logits = self.classifier(self.dropout(out["pooler_output"], training=training))
        loss = None if labels is None else losses.sequence_classification_loss(self.config, labels, logits)
        return self._return(TFSequenceClassifierOutput(loss=loss, logits=logits, **_backbone_outputs(out)),
                            return_dict)


class TFBertForMultipleChoice(TFBertPreTrainedModel):
    """Inputs are (B, num_choices, T); each choice is scored by the pooled vector and the scores compete."""

    def __init__(self, config, *inputs, **kwargs):
        super().__init__(config, **kwargs)
        self._backbone(True)
        self.dropout = keras.layers.Dropout(_classifier_dropout(config))
        self.sub("classifier", _dense(config, 1))
        self._finish_init()

    @property
    def dummy_inputs(self) -> dict:
        return {"input_ids": tf.constant([[[1, 2, 3, 0], [4, 5, 6, 7]]], tf.int32) % self.config.vocab_size}

    @unpack_inputs
    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, labels=None,
             training=False):
        from .modeling import _tensor

        first = _tensor("input_ids", input_ids) if input_ids is not None else _tensor("inputs_embeds", inputs_embeds)
        want = 3 if input_ids is not None else 4
        if first is None or first.shape.rank != want:
            raise ValueError(f"{type(self).__name__} takes (batch, num_choices, sequence) "
                             f"{'input_ids' if input_ids is not None else 'inputs_embeds'}, got shape "
                             f"{None if first is None else tuple(first.shape.as_list())}")
        choices = first.shape[1] if first.shape[1] is not None else tf.shape(first)[1]

        def flat(name, x, rank):  # (B, N, ...) -> (B*N, ...)
            x = _tensor(name, x)
            if x is None:
                return None
            if x.shape.rank != rank:
                raise ValueError(f"{name} must be (batch, num_choices, ...) like input_ids, got shape "
                                 f"{tuple(x.shape.as_list())}")
            return tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], 0))

        out = self._run(training, input_ids=flat("input_ids", input_ids, 3),
                        attention_mask=flat("attention_mask", attention_mask, 3),
                        token_type_ids=flat("token_type_ids", token_type_ids, 3),
                        position_ids=flat("position_ids", position_ids, 3), head_mask=head_mask,
                        inputs_embeds=flat("inputs_embeds", inputs_embeds, 4), output_attentions=output_attentions,
                        output_hidden_states=output_hidden_states)
        scores = self.classifier(self.dropout(out["pooler_output"], training=training))
        logits = tf.reshape(scores, [-1, choices])
        loss = None if labels is None else losses.example_loss(labels, logits)
        return self._return(TFMultipleChoiceModelOutput(loss=loss, logits=logits, **_backbone_outputs(out)),
                            return_dict)


class TFBertForTokenClassification(TFBertPreTrainedModel):
    def __init__(self, config, *inputs, **kwargs):
        super().__init__(config, **kwargs)
        self._backbone(False)
        self.dropout = keras.layers.Dropout(_classifier_dropout(config))
        self.sub("classifier", _dense(config, config.num_labels))
        self._finish_init()

    @unpack_inputs
    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, labels=None,
             training=False):
        out = self._run(training, input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                        position_ids=position_ids, head_mask=head_mask, inputs_embeds=inputs_embeds,
                        output_attentions=output_attentions, output_hidden_states=output_hidden_states)
        logits = self.classifier(self.dropout(out["last_hidden_state"], training=training))
        loss = None if labels is None else losses.token_loss(labels, logits)
        return self._return(TFTokenClassifierOutput(loss=loss, logits=logits, **_backbone_outputs(out)), return_dict)


class TFBertForQuestionAnswering(TFBertPreTrainedModel):
    def __init__(self, config, *inputs, **kwargs):
        super().__init__(config, **kwargs)
        self._backbone(False)
        self.sub("qa_outputs", _dense(config, config.num_labels))
        self._finish_init()

    @unpack_inputs
    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None,
             start_positions=None, end_positions=None, training=False):
        out = self._run(training, input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                        position_ids=position_ids, head_mask=head_mask, inputs_embeds=inputs_embeds,
                        output_attentions=output_attentions, output_hidden_states=output_hidden_states)
        logits = self.qa_outputs(out["last_hidden_state"])  # (B, T, 2)
        start, end = tf.unstack(logits, num=2, axis=-1)
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = losses.question_answering_loss(start_positions, end_positions, start, end)
        return self._return(TFQuestionAnsweringModelOutput(loss=loss, start_logits=start, end_logits=end,
                                                           **_backbone_outputs(out)), return_dict)
