"""warmstart: BERT-family models and warm-started encoder-decoders, interchangeable with transformers.

Names are resolved lazily so ``import warmstart`` costs little beyond ``import torch``.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "warmstart.config": ["PretrainedConfig", "BertConfig", "AutoConfig", "BertGenerationConfig", "RobertaConfig",
                         "GPT2Config"],
    "warmstart.models": [
        "BertModel", "BertForPreTraining", "BertLMHeadModel", "BertForMaskedLM", "BertForNextSentencePrediction",
        "BertForSequenceClassification", "BertForMultipleChoice", "BertForTokenClassification",
        "BertForQuestionAnswering", "BertPreTrainedModel", "AutoModel", "AutoModelForMaskedLM",
        "AutoModelForCausalLM", "AutoModelForSequenceClassification", "AutoModelForTokenClassification",
        "AutoModelForQuestionAnswering", "AutoModelForMultipleChoice", "AutoModelForPreTraining",
        "AutoModelForNextSentencePrediction", "AutoModelForSeq2SeqLM",
        "BertGenerationEncoder", "BertGenerationDecoder", "BertGenerationPreTrainedModel", "RobertaModel",
        "RobertaForCausalLM", "RobertaForMaskedLM", "RobertaPreTrainedModel", "GPT2Model", "GPT2LMHeadModel",
        "GPT2PreTrainedModel",
    ],
    "warmstart.models.base": ["PreTrainedModel"],
    "warmstart.models.encoder_decoder": ["EncoderDecoderModel", "EncoderDecoderConfig"],
    "warmstart.nn.cache": ["KVCache"],
    "warmstart.train": ["DataCollatorForSeq2Seq", "DataCollatorForLanguageModeling"],
    "warmstart.generation": ["GenerationConfig", "GenerationMixin", "TextStreamer", "TextIteratorStreamer",
                             "LogitsProcessor", "LogitsProcessorList", "StoppingCriteria", "StoppingCriteriaList"],
    "warmstart.tokenizers": ["BertTokenizer", "BertTokenizerFast", "BertGenerationTokenizer", "GPT2Tokenizer",
                             "GPT2TokenizerFast", "RobertaTokenizer", "RobertaTokenizerFast", "AutoTokenizer",
                             "BatchEncoding", "PreTrainedTokenizer", "PreTrainedTokenizerFast"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'warmstart' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
