"""Auto classes: the class for a config's ``model_type`` and a task, read from the family records."""
from __future__ import annotations

import os
from typing import Any

from ..config.auto import AutoConfig
from ..config.base import PretrainedConfig
from ..families import TASKS, UnknownFamilyError, family_for
from ..storage.options import LoadOptions

__all__ = ["AutoModel", "AutoModelForMaskedLM", "AutoModelForCausalLM", "AutoModelForSequenceClassification",
           "AutoModelForTokenClassification", "AutoModelForQuestionAnswering", "AutoModelForMultipleChoice",
           "AutoModelForPreTraining", "AutoModelForNextSentencePrediction", "AutoModelForSeq2SeqLM", "AUTO_CLASSES"]


class _AutoModel:
    task = ""
    framework = "pt"

    def __init__(self, *args: Any, **kwargs: Any):
        raise TypeError(f"{type(self).__name__} is not instantiable: use {type(self).__name__}.from_pretrained "
                        f"or .from_config")

    @classmethod
    def _class_for(cls, config: PretrainedConfig) -> type:
        try:
            return family_for(config).model_class(cls.task, cls.framework)
        except UnknownFamilyError as e:
            raise ValueError(f"{cls.__name__}: {e}") from None

    @classmethod
    def from_config(cls, config: PretrainedConfig, **kwargs: Any):
        return cls._class_for(config)(config, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *model_args: Any, **kwargs: Any):
        config = kwargs.pop("config", None)
        if config is None:
            options = LoadOptions.peek(kwargs)
            config = AutoConfig.from_pretrained(pretrained_model_name_or_path, **options)
        return cls._class_for(config).from_pretrained(pretrained_model_name_or_path, *model_args, config=config,
                                                      **kwargs)


def _auto(name: str, task: str, framework: str = "pt", module: str = __name__) -> type:
    assert task in TASKS, task
    return type(name, (_AutoModel,), {"task": task, "framework": framework, "__module__": module,
                                      "__doc__": f"Builds the {task} model of a config's model_type."})


AutoModel = _auto("AutoModel", "base")
AutoModelForMaskedLM = _auto("AutoModelForMaskedLM", "masked-lm")
AutoModelForCausalLM = _auto("AutoModelForCausalLM", "causal-lm")
AutoModelForSequenceClassification = _auto("AutoModelForSequenceClassification", "sequence-classification")
AutoModelForTokenClassification = _auto("AutoModelForTokenClassification", "token-classification")
AutoModelForQuestionAnswering = _auto("AutoModelForQuestionAnswering", "question-answering")
AutoModelForMultipleChoice = _auto("AutoModelForMultipleChoice", "multiple-choice")
AutoModelForPreTraining = _auto("AutoModelForPreTraining", "pretraining")
AutoModelForNextSentencePrediction = _auto("AutoModelForNextSentencePrediction", "next-sentence-prediction")
AutoModelForSeq2SeqLM = _auto("AutoModelForSeq2SeqLM", "seq2seq-lm")
AUTO_CLASSES = {c.task: c for c in (AutoModel, AutoModelForMaskedLM, AutoModelForCausalLM,
                                    AutoModelForSequenceClassification, AutoModelForTokenClassification,
                                    AutoModelForQuestionAnswering, AutoModelForMultipleChoice, AutoModelForPreTraining,
                                    AutoModelForNextSentencePrediction, AutoModelForSeq2SeqLM)}
