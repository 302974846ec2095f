"""The Flax wing: linen modules and FlaxBert* models over the framework-free core (configs, family records).

Importing anything here needs jax and flax; without them the import fails once, saying what to install. Names
resolve lazily, so ``import warmstart.flax`` does not build the modules until one is used.
"""
from __future__ import annotations

import importlib

try:
    import flax  # noqa: F401
    import jax  # noqa: F401
except ImportError as err:  # one clear message instead of a bare "No module named 'jax'" from deep inside
    raise ImportError(f"the Flax models need jax and flax ({err}); install them with: pip install "
                      "'warmstart[flax]'") from err

_EXPORTS = {
    ".bert": ["FlaxBertPreTrainedModel", "FlaxBertModel", "FlaxBertForPreTraining", "FlaxBertForCausalLM",
              "FlaxBertForMaskedLM", "FlaxBertForNextSentencePrediction", "FlaxBertForSequenceClassification",
              "FlaxBertForMultipleChoice", "FlaxBertForTokenClassification", "FlaxBertForQuestionAnswering"],
    ".roberta": ["FlaxRobertaPreTrainedModel", "FlaxRobertaModel", "FlaxRobertaForCausalLM", "FlaxRobertaForMaskedLM"],
    ".gpt2": ["FlaxGPT2PreTrainedModel", "FlaxGPT2Model", "FlaxGPT2LMHeadModel"],
    ".auto": ["FlaxAutoModel", "FlaxAutoModelForMaskedLM", "FlaxAutoModelForCausalLM",
              "FlaxAutoModelForSequenceClassification", "FlaxAutoModelForTokenClassification",
              "FlaxAutoModelForQuestionAnswering", "FlaxAutoModelForMultipleChoice", "FlaxAutoModelForPreTraining",
              "FlaxAutoModelForNextSentencePrediction"],
    ".training": ["TrainState", "create_train_state", "train_step", "eval_step"],
    ".modeling": ["FlaxPreTrainedModel"],
    ".outputs": ["FlaxBaseModelOutputWithPoolingAndCrossAttentions", "FlaxBaseModelOutputWithPastAndCrossAttentions",
                 "FlaxMaskedLMOutput", "FlaxSequenceClassifierOutput", "FlaxTokenClassifierOutput",
                 "FlaxQuestionAnsweringModelOutput", "FlaxMultipleChoiceModelOutput",
                 "FlaxNextSentencePredictorOutput", "FlaxBertForPreTrainingOutput",
                 "FlaxCausalLMOutputWithCrossAttentions", "FlaxBaseModelOutput", "FlaxSeq2SeqLMOutput"],
    ".encoder_decoder": ["FlaxEncoderDecoderModel"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'warmstart.flax' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
