"""Output dataclasses with transformers' field names, framework-free (a field holds any framework's arrays).

Like transformers' ModelOutput, ``out[0]`` is the first field that is set (so ``loss`` when labels were given, else
the logits), ``out["logits"]`` and ``out.logits`` both work, and ``to_tuple()`` drops unset fields.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


class ModelOutput:
    def to_tuple(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None)

    def keys(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]

    def items(self):
        return [(k, getattr(self, k)) for k in self.keys()]

    def values(self):
        return [getattr(self, k) for k in self.keys()]

    def __getitem__(self, key):
        if isinstance(key, str):
            if key not in self.keys():
                raise KeyError(key)
            return getattr(self, key)
        return self.to_tuple()[key]

    def __contains__(self, key: str) -> bool:
        return key in self.keys()

    def __iter__(self):
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())


def _output(name: str, *names: str, doc: str = "") -> type:
    cls = dataclass(type(name, (ModelOutput,), {"__annotations__": {n: Any for n in names},
                                                **{n: None for n in names}, "__doc__": doc}))
    cls.__module__ = __name__
    return cls


BaseModelOutputWithPoolingAndCrossAttentions = _output(
    "BaseModelOutputWithPoolingAndCrossAttentions", "last_hidden_state", "pooler_output", "hidden_states",
    "past_key_values", "attentions", "cross_attentions")
BaseModelOutputWithPastAndCrossAttentions = _output(
    "BaseModelOutputWithPastAndCrossAttentions", "last_hidden_state", "past_key_values", "hidden_states",
    "attentions", "cross_attentions")
BaseModelOutput = _output("BaseModelOutput", "last_hidden_state", "hidden_states", "attentions")
BertForPreTrainingOutput = _output(
    "BertForPreTrainingOutput", "loss", "prediction_logits", "seq_relationship_logits", "hidden_states", "attentions")
CausalLMOutputWithCrossAttentions = _output(
    "CausalLMOutputWithCrossAttentions", "loss", "logits", "past_key_values", "hidden_states", "attentions",
    "cross_attentions")
MaskedLMOutput = _output("MaskedLMOutput", "loss", "logits", "hidden_states", "attentions")
NextSentencePredictorOutput = _output("NextSentencePredictorOutput", "loss", "logits", "hidden_states", "attentions")
SequenceClassifierOutput = _output("SequenceClassifierOutput", "loss", "logits", "hidden_states", "attentions")
MultipleChoiceModelOutput = _output("MultipleChoiceModelOutput", "loss", "logits", "hidden_states", "attentions")
TokenClassifierOutput = _output("TokenClassifierOutput", "loss", "logits", "hidden_states", "attentions")
QuestionAnsweringModelOutput = _output(
    "QuestionAnsweringModelOutput", "loss", "start_logits", "end_logits", "hidden_states", "attentions")
Seq2SeqLMOutput = _output(
    "Seq2SeqLMOutput", "loss", "logits", "past_key_values", "decoder_hidden_states", "decoder_attentions",
    "cross_attentions", "encoder_last_hidden_state", "encoder_hidden_states", "encoder_attentions")


def as_encoder_output(encoder_outputs: Any) -> Any:
    """Accept transformers' forms of ``encoder_outputs``: a tuple (last_hidden_state[, hidden_states[, attentions]])
    or an output object with ``last_hidden_state``; a bare array is refused with the fix."""
    if hasattr(encoder_outputs, "shape") and hasattr(encoder_outputs, "dtype"):
        raise TypeError("encoder_outputs must be a tuple (last_hidden_state, ...) or an encoder output object, got a "
                        "bare tensor; pass (tensor,)")
    if isinstance(encoder_outputs, (tuple, list)):
        if not 1 <= len(encoder_outputs) <= 3 or not hasattr(encoder_outputs[0], "shape"):
            raise ValueError("an encoder_outputs tuple must be (last_hidden_state[, hidden_states[, attentions]]), got "
                             f"{len(encoder_outputs)} items starting with {type(encoder_outputs[0]).__name__}"
                             if encoder_outputs else "encoder_outputs is an empty tuple")
        return BaseModelOutput(*encoder_outputs)
    if hasattr(getattr(encoder_outputs, "last_hidden_state", None), "shape"):
        return encoder_outputs
    raise TypeError(f"encoder_outputs must be a tuple or an encoder output object with last_hidden_state, "
                    f"got {type(encoder_outputs).__name__}")
