"""Auto classes: a registry from (task, model_type) to our class, filled by each model family."""
from __future__ import annotations

import os
from typing import Any

from ..config import AutoConfig, PretrainedConfig

__all__ = ["register_model", "AutoModel", "AutoModelForMaskedLM", "AutoModelForCausalLM",
           "AutoModelForSequenceClassification", "AutoModelForTokenClassification", "AutoModelForQuestionAnswering",
           "AutoModelForMultipleChoice", "AutoModelForPreTraining", "AutoModelForNextSentencePrediction",
           "AutoModelForSeq2SeqLM"]

# task -> model_type -> class
_REGISTRY: dict[str, dict[str, type]] = {}


def register_model(task: str, model_type: str, model_class: type) -> None:
    _REGISTRY.setdefault(task, {})[model_type] = model_class


class _AutoModel:
    task = ""

    def __init__(self, *args: Any, **kwargs: Any):
        raise TypeError(f"{type(self).__name__} is not instantiable: use {type(self).__name__}.from_pretrained "
                        f"or .from_config")

    @classmethod
    def _class_for(cls, config: PretrainedConfig) -> type:
        table = _REGISTRY.get(cls.task, {})
        if config.model_type not in table:
            raise ValueError(f"{cls.__name__} has no model for model_type {config.model_type!r}; "
                             f"registered: {sorted(table)}")
        return table[config.model_type]

    @classmethod
    def from_config(cls, config: PretrainedConfig, **kwargs: Any):
        return cls._class_for(config)(config, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *model_args: Any, **kwargs: Any):
        config = kwargs.pop("config", None)
        if config is None:
            hub = {k: kwargs[k] for k in ("cache_dir", "revision", "subfolder") if k in kwargs}
            config = AutoConfig.from_pretrained(pretrained_model_name_or_path, **hub)
        return cls._class_for(config).from_pretrained(pretrained_model_name_or_path, *model_args, config=config,
                                                      **kwargs)


def _auto(name: str, task: str) -> type:
    return type(name, (_AutoModel,), {"task": task, "__module__": __name__,
                                      "__doc__": f"Builds the {task} model registered for a config's model_type."})


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
