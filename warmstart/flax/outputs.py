"""Output classes of the Flax models, with v4's names; fields hold jax arrays.

They are the framework-free ``ModelOutput`` (``out.logits``, ``out["logits"]``, ``to_tuple()``), registered as
pytrees so a function under ``jax.jit`` or ``jax.grad`` may return one. ``loss`` leads where a head has labels
(beyond v4, whose Flax heads compute no loss); it is None otherwise, so ``to_tuple()`` is v4's.
"""
from __future__ import annotations

from dataclasses import fields

import jax

from ..outputs import _output

__all__ = ["FlaxBaseModelOutputWithPoolingAndCrossAttentions", "FlaxBaseModelOutputWithPastAndCrossAttentions",
           "FlaxMaskedLMOutput", "FlaxSequenceClassifierOutput", "FlaxTokenClassifierOutput",
           "FlaxQuestionAnsweringModelOutput", "FlaxMultipleChoiceModelOutput", "FlaxNextSentencePredictorOutput",
           "FlaxBertForPreTrainingOutput", "FlaxCausalLMOutputWithCrossAttentions", "FlaxBaseModelOutput",
           "FlaxSeq2SeqLMOutput"]


def _flax_output(name: str, *names: str) -> type:
    cls = _output(name, *names)
    cls.__module__ = __name__
    keys = [f.name for f in fields(cls)]
    jax.tree_util.register_pytree_node(
        cls, lambda o: (tuple(getattr(o, k) for k in keys), None), lambda _, children: cls(*children))
    return cls


FlaxBaseModelOutputWithPoolingAndCrossAttentions = _flax_output(
    "FlaxBaseModelOutputWithPoolingAndCrossAttentions", "last_hidden_state", "pooler_output", "hidden_states",
    "past_key_values", "attentions", "cross_attentions")
FlaxBaseModelOutputWithPastAndCrossAttentions = _flax_output(
    "FlaxBaseModelOutputWithPastAndCrossAttentions", "last_hidden_state", "past_key_values", "hidden_states",
    "attentions", "cross_attentions")
FlaxMaskedLMOutput = _flax_output("FlaxMaskedLMOutput", "loss", "logits", "hidden_states", "attentions")
FlaxSequenceClassifierOutput = _flax_output("FlaxSequenceClassifierOutput", "loss", "logits", "hidden_states",
                                            "attentions")
FlaxTokenClassifierOutput = _flax_output("FlaxTokenClassifierOutput", "loss", "logits", "hidden_states", "attentions")
FlaxMultipleChoiceModelOutput = _flax_output("FlaxMultipleChoiceModelOutput", "loss", "logits", "hidden_states",
                                             "attentions")
FlaxNextSentencePredictorOutput = _flax_output("FlaxNextSentencePredictorOutput", "loss", "logits", "hidden_states",
                                               "attentions")
FlaxQuestionAnsweringModelOutput = _flax_output("FlaxQuestionAnsweringModelOutput", "loss", "start_logits",
                                                "end_logits", "hidden_states", "attentions")
FlaxBertForPreTrainingOutput = _flax_output("FlaxBertForPreTrainingOutput", "loss", "prediction_logits",
                                            "seq_relationship_logits", "hidden_states", "attentions")
FlaxCausalLMOutputWithCrossAttentions = _flax_output(
    "FlaxCausalLMOutputWithCrossAttentions", "loss", "logits", "past_key_values", "hidden_states", "attentions",
    "cross_attentions")
FlaxBaseModelOutput = _flax_output("FlaxBaseModelOutput", "last_hidden_state", "hidden_states", "attentions")
FlaxSeq2SeqLMOutput = _flax_output(
    "FlaxSeq2SeqLMOutput", "loss", "logits", "past_key_values", "decoder_hidden_states", "decoder_attentions",
    "cross_attentions", "encoder_last_hidden_state", "encoder_hidden_states", "encoder_attentions")
