"""TFAutoModel*: the TensorFlow class for a config's ``model_type`` and a task, from the family records (v4 names)."""
from __future__ import annotations

from ..models.auto import _auto

__all__ = ["TFAutoModel", "TFAutoModelForMaskedLM", "TFAutoModelForCausalLM",
           "TFAutoModelForSequenceClassification", "TFAutoModelForTokenClassification",
           "TFAutoModelForQuestionAnswering", "TFAutoModelForMultipleChoice", "TFAutoModelForPreTraining",
           "TFAutoModelForNextSentencePrediction"]


def _tf_auto(name: str, task: str) -> type:
    return _auto(name, task, framework="tf", module=__name__)


TFAutoModel = _tf_auto("TFAutoModel", "base")
TFAutoModelForMaskedLM = _tf_auto("TFAutoModelForMaskedLM", "masked-lm")
TFAutoModelForCausalLM = _tf_auto("TFAutoModelForCausalLM", "causal-lm")
TFAutoModelForSequenceClassification = _tf_auto("TFAutoModelForSequenceClassification", "sequence-classification")
TFAutoModelForTokenClassification = _tf_auto("TFAutoModelForTokenClassification", "token-classification")
TFAutoModelForQuestionAnswering = _tf_auto("TFAutoModelForQuestionAnswering", "question-answering")
TFAutoModelForMultipleChoice = _tf_auto("TFAutoModelForMultipleChoice", "multiple-choice")
TFAutoModelForPreTraining = _tf_auto("TFAutoModelForPreTraining", "pretraining")
TFAutoModelForNextSentencePrediction = _tf_auto("TFAutoModelForNextSentencePrediction",
                                                    "next-sentence-prediction")
