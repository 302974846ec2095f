"""FlaxAutoModel*: the Flax class for a config's ``model_type`` and a task, from the family records (v4 names)."""
from __future__ import annotations

from ..models.auto import _auto

__all__ = ["FlaxAutoModel", "FlaxAutoModelForMaskedLM", "FlaxAutoModelForCausalLM",
           "FlaxAutoModelForSequenceClassification", "FlaxAutoModelForTokenClassification",
           "FlaxAutoModelForQuestionAnswering", "FlaxAutoModelForMultipleChoice", "FlaxAutoModelForPreTraining",
           "FlaxAutoModelForNextSentencePrediction"]


def _flax_auto(name: str, task: str) -> type:
    return _auto(name, task, framework="flax", module=__name__)


FlaxAutoModel = _flax_auto("FlaxAutoModel", "base")
FlaxAutoModelForMaskedLM = _flax_auto("FlaxAutoModelForMaskedLM", "masked-lm")
FlaxAutoModelForCausalLM = _flax_auto("FlaxAutoModelForCausalLM", "causal-lm")
FlaxAutoModelForSequenceClassification = _flax_auto("FlaxAutoModelForSequenceClassification", "sequence-classification")
FlaxAutoModelForTokenClassification = _flax_auto("FlaxAutoModelForTokenClassification", "token-classification")
FlaxAutoModelForQuestionAnswering = _flax_auto("FlaxAutoModelForQuestionAnswering", "question-answering")
FlaxAutoModelForMultipleChoice = _flax_auto("FlaxAutoModelForMultipleChoice", "multiple-choice")
FlaxAutoModelForPreTraining = _flax_auto("FlaxAutoModelForPreTraining", "pretraining")
FlaxAutoModelForNextSentencePrediction = _flax_auto("FlaxAutoModelForNextSentencePrediction",
                                                    "next-sentence-prediction")
