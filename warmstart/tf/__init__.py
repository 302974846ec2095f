"""The TensorFlow wing: Keras 3 layers and TF* models over the framework-free core (configs, family records).

Importing anything here needs tensorflow and Keras 3; without them the import fails once, saying what to install.
Names resolve lazily, so ``import warmstart.tf`` builds nothing until one is used.
"""
from __future__ import annotations

import importlib

from . import backend  # noqa: F401  (the import check and the Keras backend choice)

_EXPORTS = {
    ".bert": ["TFBertPreTrainedModel", "TFBertModel", "TFBertForPreTraining", "TFBertLMHeadModel",
              "TFBertForMaskedLM", "TFBertForNextSentencePrediction", "TFBertForSequenceClassification",
              "TFBertForMultipleChoice", "TFBertForTokenClassification", "TFBertForQuestionAnswering"],
    ".roberta": ["TFRobertaPreTrainedModel", "TFRobertaModel", "TFRobertaForCausalLM", "TFRobertaForMaskedLM"],
    ".gpt2": ["TFGPT2PreTrainedModel", "TFGPT2Model", "TFGPT2LMHeadModel"],
    ".auto": ["TFAutoModel", "TFAutoModelForMaskedLM", "TFAutoModelForCausalLM",
              "TFAutoModelForSequenceClassification", "TFAutoModelForTokenClassification",
              "TFAutoModelForQuestionAnswering", "TFAutoModelForMultipleChoice", "TFAutoModelForPreTraining",
              "TFAutoModelForNextSentencePrediction"],
    ".encoder_decoder": ["TFEncoderDecoderModel"],
    ".generation": ["TFGreedySearchDecoderOnlyOutput", "TFGreedySearchEncoderDecoderOutput",
                    "TFSampleDecoderOnlyOutput", "TFSampleEncoderDecoderOutput", "TFBeamSearchDecoderOnlyOutput",
                    "TFBeamSearchEncoderDecoderOutput", "TFBeamSampleDecoderOnlyOutput",
                    "TFBeamSampleEncoderDecoderOutput"],
    ".modeling": ["TFPreTrainedModel"],
    ".tokenizer": ["TFBertTokenizer"],
    ".outputs": ["TFBaseModelOutputWithPoolingAndCrossAttentions", "TFBaseModelOutputWithPastAndCrossAttentions",
                 "TFMaskedLMOutput", "TFSequenceClassifierOutput", "TFTokenClassifierOutput",
                 "TFQuestionAnsweringModelOutput", "TFMultipleChoiceModelOutput", "TFNextSentencePredictorOutput",
                 "TFBertForPreTrainingOutput", "TFCausalLMOutputWithCrossAttentions", "TFCausalLMOutputWithPast",
                 "TFBaseModelOutputWithPast", "TFSeq2SeqLMOutput"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'warmstart.tf' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
