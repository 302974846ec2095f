"""warmstart: BERT-family models and warm-started encoder-decoders, interchangeable with transformers.

Names are resolved lazily, so ``import warmstart`` imports neither torch, TensorFlow nor JAX: a name is imported
when first used. Model, config and tokenizer classes are found through the family records (``warmstart.families``),
so a new family needs no line here.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

# Names that no family record declares.
_EXPORTS = {
    "warmstart.config": ["PretrainedConfig", "AutoConfig", "EncoderDecoderConfig", "GenerationConfig"],
    "warmstart.models.auto": [
        "AutoModel", "AutoModelForMaskedLM", "AutoModelForCausalLM", "AutoModelForSequenceClassification",
        "AutoModelForTokenClassification", "AutoModelForQuestionAnswering", "AutoModelForMultipleChoice",
        "AutoModelForPreTraining", "AutoModelForNextSentencePrediction", "AutoModelForSeq2SeqLM"],
    "warmstart.models.base": ["PreTrainedModel"],
    "warmstart.models.bert": ["BertPreTrainedModel"],
    "warmstart.models.bert_generation": ["BertGenerationPreTrainedModel"],
    "warmstart.models.roberta": ["RobertaPreTrainedModel"],
    "warmstart.models.gpt2": ["GPT2PreTrainedModel"],
    "warmstart.nn.cache": ["KVCache"],
    "warmstart.train": ["DataCollatorForSeq2Seq", "DataCollatorForLanguageModeling"],
    "warmstart.generation": ["GenerationMixin", "TextStreamer", "TextIteratorStreamer", "LogitsProcessor",
                             "LogitsProcessorList", "StoppingCriteria", "StoppingCriteriaList"],
    "warmstart.generation.constraints": ["Constraint", "PhrasalConstraint", "DisjunctiveConstraint",
                                         "ConstraintListState"],
    "warmstart.tokenizers": ["AutoTokenizer", "BatchEncoding", "PreTrainedTokenizer", "PreTrainedTokenizerFast"],
    # The Flax wing: importing any of these needs jax and flax (one ImportError saying what to install).
    "warmstart.flax.modeling": ["FlaxPreTrainedModel"],
    "warmstart.flax.bert": ["FlaxBertPreTrainedModel"],
    "warmstart.flax.auto": ["FlaxAutoModel", "FlaxAutoModelForMaskedLM", "FlaxAutoModelForCausalLM",
                            "FlaxAutoModelForSequenceClassification", "FlaxAutoModelForTokenClassification",
                            "FlaxAutoModelForQuestionAnswering", "FlaxAutoModelForMultipleChoice",
                            "FlaxAutoModelForPreTraining", "FlaxAutoModelForNextSentencePrediction"],
    # The TF wing: importing any of these needs tensorflow (one ImportError saying what to install).
    "warmstart.tf.modeling": ["TFPreTrainedModel"],
    "warmstart.tf.bert": ["TFBertPreTrainedModel"],
    "warmstart.tf.roberta": ["TFRobertaPreTrainedModel"],
    "warmstart.tf.gpt2": ["TFGPT2PreTrainedModel"],
    "warmstart.tf.tokenizer": ["TFBertTokenizer"],
    "warmstart.tf.auto": ["TFAutoModel", "TFAutoModelForMaskedLM", "TFAutoModelForCausalLM",
                          "TFAutoModelForSequenceClassification", "TFAutoModelForTokenClassification",
                          "TFAutoModelForQuestionAnswering", "TFAutoModelForMultipleChoice",
                          "TFAutoModelForPreTraining", "TFAutoModelForNextSentencePrediction"],
}


def _family_names() -> dict[str, str]:
    """Every config, model and tokenizer class the family records name -> its module."""
    from .families import FAMILIES

    out: dict[str, str] = {}
    for record in FAMILIES.values():
        paths = [record.config, *(path for table in record.classes.values() for path in table.values())]
        for path in paths:
            module, _, name = path.partition(":")
            out[name] = module
        for name in record.tokenizers:
            out[name] = "warmstart.tokenizers"
    return out


_WHERE: dict[str, str] = {}  # name -> module, filled on first use (the records are read then, not at import)


def _where() -> dict[str, str]:
    if not _WHERE:
        _WHERE.update(_family_names())
        _WHERE.update({name: module for module, names in _EXPORTS.items() for name in names})
    return _WHERE


def __getattr__(name: str):
    if name == "__all__":
        return sorted(_where())
    module = _where().get(name)
    if module is None:
        raise AttributeError(f"module 'warmstart' has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(module), name)
    except AttributeError:
        raise AttributeError(f"module 'warmstart' has no attribute {name!r} ({module} does not define it)") from None
    globals()[name] = value
    return value


def __dir__():
    return sorted(_where())
