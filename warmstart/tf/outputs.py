"""Output classes of the TF models, with v4's names; fields hold tf tensors.

They are the framework-free ``ModelOutput`` (``out.logits``, ``out["logits"]``, ``to_tuple()``) and speak
TensorFlow's nest protocol (``__tf_flatten__`` / ``__tf_unflatten__``), so a ``tf.function`` (XLA included) may
return one and Keras' ``fit`` can read it.
"""
from __future__ import annotations

from dataclasses import fields

from ..outputs import _output

__all__ = ["TFBaseModelOutputWithPoolingAndCrossAttentions", "TFBaseModelOutputWithPastAndCrossAttentions",
           "TFMaskedLMOutput", "TFSequenceClassifierOutput", "TFTokenClassifierOutput",
           "TFQuestionAnsweringModelOutput", "TFMultipleChoiceModelOutput", "TFNextSentencePredictorOutput",
           "TFBertForPreTrainingOutput", "TFCausalLMOutputWithCrossAttentions", "TFCausalLMOutputWithPast",
           "TFBaseModelOutputWithPast", "TFSeq2SeqLMOutput"]


def _tf_output(name: str, *names: str) -> type:
    cls = _output(name, *names)
    cls.__module__ = __name__
    keys = tuple(f.name for f in fields(cls))

    def __tf_flatten__(self):
        return keys, tuple(getattr(self, k) for k in keys)

    @classmethod
    def __tf_unflatten__(klass, metadata, components):
        return klass(**dict(zip(metadata, components)))

    cls.__tf_flatten__, cls.__tf_unflatten__ = __tf_flatten__, __tf_unflatten__
    return cls


TFBaseModelOutputWithPoolingAndCrossAttentions = _tf_output(
    "TFBaseModelOutputWithPoolingAndCrossAttentions", "last_hidden_state", "pooler_output", "past_key_values",
    "hidden_states", "attentions", "cross_attentions")
TFBaseModelOutputWithPastAndCrossAttentions = _tf_output(
    "TFBaseModelOutputWithPastAndCrossAttentions", "last_hidden_state", "past_key_values", "hidden_states",
    "attentions", "cross_attentions")
TFBaseModelOutputWithPast = _tf_output("TFBaseModelOutputWithPast", "last_hidden_state", "past_key_values",
                                       "hidden_states", "attentions")
TFMaskedLMOutput = _tf_output("TFMaskedLMOutput", "loss", "logits", "hidden_states", "attentions")
TFSequenceClassifierOutput = _tf_output("TFSequenceClassifierOutput", "loss", "logits", "hidden_states", "attentions")
TFTokenClassifierOutput = _tf_output("TFTokenClassifierOutput", "loss", "logits", "hidden_states", "attentions")
TFQuestionAnsweringModelOutput = _tf_output("TFQuestionAnsweringModelOutput", "loss", "start_logits", "end_logits",
                                            "hidden_states", "attentions")
TFMultipleChoiceModelOutput = _tf_output("TFMultipleChoiceModelOutput", "loss", "logits", "hidden_states",
                                         "attentions")
TFNextSentencePredictorOutput = _tf_output("TFNextSentencePredictorOutput", "loss", "logits", "hidden_states",
                                           "attentions")
TFBertForPreTrainingOutput = _tf_output("TFBertForPreTrainingOutput", "loss", "prediction_logits",
                                        "seq_relationship_logits", "hidden_states", "attentions")
TFCausalLMOutputWithCrossAttentions = _tf_output("TFCausalLMOutputWithCrossAttentions", "loss", "logits",
                                                 "past_key_values", "hidden_states", "attentions", "cross_attentions")
TFCausalLMOutputWithPast = _tf_output("TFCausalLMOutputWithPast", "loss", "logits", "past_key_values",
                                      "hidden_states", "attentions")
TFSeq2SeqLMOutput = _tf_output("TFSeq2SeqLMOutput", "loss", "logits", "past_key_values", "decoder_hidden_states",
                               "decoder_attentions", "cross_attentions", "encoder_last_hidden_state",
                               "encoder_hidden_states", "encoder_attentions")
