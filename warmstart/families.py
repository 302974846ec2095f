"""One record per model family: everything the Auto classes, the loaders, the tokenizers and generation need to
know about a ``model_type``, declared once.

Classes are named by import path ("module:Class") and imported on first use, so this module imports nothing
from the package: the configs, the key maps, the tokenizers and every framework wing can all read it without
an import cycle, and reading a record never pulls in torch (or TensorFlow, or JAX) unless that class is asked for.

Adding a family is: its config class, its key map (``checkpoint/keymaps.py``), its heads, and one record here.
"""
from __future__ import annotations

import importlib
from types import MappingProxyType

__all__ = ["Family", "FAMILIES", "TASKS", "FRAMEWORKS", "family", "family_for", "load_object", "UnknownFamilyError",
           "is_causal"]

# The Auto classes' tasks, one name each (AutoModelForX -> "x").
TASKS = ("base", "masked-lm", "causal-lm", "sequence-classification", "token-classification", "question-answering",
         "multiple-choice", "pretraining", "next-sentence-prediction", "seq2seq-lm")
FRAMEWORKS = ("pt", "tf", "flax")


class UnknownFamilyError(ValueError):
    """A model_type (or a task of one) this library does not implement."""


def load_object(path: str) -> object:
    """'package.module:Name' -> the object (the module is imported now)."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


class Family:
    """What is true of every model of one ``model_type``.

    A plain class, not a dataclass: ``import warmstart`` reads these records, and importing dataclasses (and
    typing) would triple its cost.
    """

    __slots__ = ("model_type", "config", "keymap", "tokenizers", "classes", "is_causal")

    def __init__(self, model_type: str, config: str, *, keymap: str | None = None, tokenizers: tuple[str, ...] = (),
                 classes: dict[str, dict[str, str]] | None = None, is_causal: bool = False):
        self.model_type = model_type
        self.config = config          # import path of the config class
        self.keymap = keymap          # name in checkpoint.keymaps.KEYMAPS (None: a composite mapped per part)
        # Tokenizer class names in warmstart.tokenizers, the slow one first (AutoTokenizer picks "Fast" when asked).
        self.tokenizers = tuple(tokenizers)
        # framework -> task -> import path of the class
        self.classes = MappingProxyType({fw: MappingProxyType(dict(t)) for fw, t in (classes or {}).items()})
        # The stack is left-to-right whatever config.is_decoder says (GPT-2); others are causal only as decoders.
        self.is_causal = is_causal

    def __setattr__(self, name: str, value: object) -> None:
        # Records are facts shared by the whole process: set once in __init__, read-only after.
        if hasattr(self, name):
            raise AttributeError(f"Family records are read-only: cannot set {name!r} of {self.model_type!r}")
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return f"Family({self.model_type!r}, tasks={ {fw: sorted(t) for fw, t in self.classes.items()} })"

    @property
    def tokenizer(self) -> str | None:
        return self.tokenizers[0] if self.tokenizers else None

    def config_class(self) -> type:
        return load_object(self.config)

    def class_path(self, task: str, framework: str = "pt") -> str:
        table = self.classes.get(framework, {})
        if task not in table:
            raise UnknownFamilyError(
                f"model_type {self.model_type!r} has no {task!r} model for {framework!r}; it has "
                f"{sorted(table) or 'none'}" + ("" if table else f" (frameworks with models: {sorted(self.classes)})"))
        return table[task]

    def model_class(self, task: str, framework: str = "pt") -> type:
        return load_object(self.class_path(task, framework))

    def causal(self, config: object) -> bool:
        """Whether a model of this family with ``config`` attends left to right only."""
        return self.is_causal or bool(getattr(config, "is_decoder", False))


def _tasks(module: str, **tasks: str) -> dict[str, str]:
    return {task.replace("_", "-"): f"{module}:{name}" for task, name in tasks.items()}


_BERT_PT = _tasks(
    "warmstart.models.bert", base="BertModel", masked_lm="BertForMaskedLM", causal_lm="BertLMHeadModel",
    sequence_classification="BertForSequenceClassification", token_classification="BertForTokenClassification",
    question_answering="BertForQuestionAnswering", multiple_choice="BertForMultipleChoice",
    pretraining="BertForPreTraining", next_sentence_prediction="BertForNextSentencePrediction")

_BERT_FLAX = _tasks(
    "warmstart.flax.bert", base="FlaxBertModel", masked_lm="FlaxBertForMaskedLM", causal_lm="FlaxBertForCausalLM",
    sequence_classification="FlaxBertForSequenceClassification",
    token_classification="FlaxBertForTokenClassification", question_answering="FlaxBertForQuestionAnswering",
    multiple_choice="FlaxBertForMultipleChoice", pretraining="FlaxBertForPreTraining",
    next_sentence_prediction="FlaxBertForNextSentencePrediction")

_BERT_TF = _tasks(
    "warmstart.tf.bert", base="TFBertModel", masked_lm="TFBertForMaskedLM", causal_lm="TFBertLMHeadModel",
    sequence_classification="TFBertForSequenceClassification", token_classification="TFBertForTokenClassification",
    question_answering="TFBertForQuestionAnswering", multiple_choice="TFBertForMultipleChoice",
    pretraining="TFBertForPreTraining", next_sentence_prediction="TFBertForNextSentencePrediction")

_RECORDS = (
    Family("bert", "warmstart.config.bert:BertConfig", keymap="bert", tokenizers=("BertTokenizer", "BertTokenizerFast"),
           classes={"pt": _BERT_PT, "flax": _BERT_FLAX, "tf": _BERT_TF}),
    Family("roberta", "warmstart.config.bert:RobertaConfig", keymap="roberta", tokenizers=("RobertaTokenizer", "RobertaTokenizerFast"),
           classes={"pt": _tasks("warmstart.models.roberta", base="RobertaModel", masked_lm="RobertaForMaskedLM",
                                 causal_lm="RobertaForCausalLM"),
                    "flax": _tasks("warmstart.flax.roberta", base="FlaxRobertaModel",
                                   masked_lm="FlaxRobertaForMaskedLM", causal_lm="FlaxRobertaForCausalLM"),
                    "tf": _tasks("warmstart.tf.roberta", base="TFRobertaModel", masked_lm="TFRobertaForMaskedLM",
                                 causal_lm="TFRobertaForCausalLM")}),
    Family("bert-generation", "warmstart.config.bert:BertGenerationConfig", keymap="bert-generation",
           tokenizers=("BertGenerationTokenizer",),
           classes={"pt": _tasks("warmstart.models.bert_generation", base="BertGenerationEncoder",
                                 causal_lm="BertGenerationDecoder")}),
    Family("gpt2", "warmstart.config.gpt2:GPT2Config", keymap="gpt2", tokenizers=("GPT2Tokenizer", "GPT2TokenizerFast"), is_causal=True,
           classes={"pt": _tasks("warmstart.models.gpt2", base="GPT2Model", causal_lm="GPT2LMHeadModel"),
                    "flax": _tasks("warmstart.flax.gpt2", base="FlaxGPT2Model", causal_lm="FlaxGPT2LMHeadModel"),
                    "tf": _tasks("warmstart.tf.gpt2", base="TFGPT2Model", causal_lm="TFGPT2LMHeadModel")}),
    # A composite: each side is mapped by its own family's key map; the tokenizer is the encoder's.
    Family("encoder-decoder", "warmstart.config.encoder_decoder:EncoderDecoderConfig",
           classes={"pt": _tasks("warmstart.models.encoder_decoder", seq2seq_lm="EncoderDecoderModel"),
                    "flax": _tasks("warmstart.flax.encoder_decoder", seq2seq_lm="FlaxEncoderDecoderModel"),
                    "tf": _tasks("warmstart.tf.encoder_decoder", seq2seq_lm="TFEncoderDecoderModel")}),
)
FAMILIES = MappingProxyType({f.model_type: f for f in _RECORDS})


def family(model_type: object, where: str = "") -> Family:
    """The record of ``model_type``; an UnknownFamilyError naming it (and where it was read) otherwise."""
    if model_type not in FAMILIES:
        raise UnknownFamilyError(f"unknown model_type {model_type!r}{' in ' + where if where else ''}; warmstart "
                                 f"knows {sorted(FAMILIES)}")
    return FAMILIES[model_type]


def family_for(config: object) -> Family:
    """The record of a config object (by its ``model_type``)."""
    return family(getattr(config, "model_type", None), type(config).__name__)


def is_causal(config: object) -> bool:
    """Whether a model with ``config`` attends left to right only: its family's fact, or ``config.is_decoder``."""
    record = FAMILIES.get(getattr(config, "model_type", None))
    return record.causal(config) if record is not None else bool(getattr(config, "is_decoder", False))
