"""FlaxBert* models: a linen module per head over the one stack (stack.py), each wrapped by FlaxPreTrainedModel.

Heads follow v4's Flax tree (``bert``, ``cls/predictions``, ``classifier``, ``qa_outputs``) and, beyond v4, take
labels and return the PyTorch heads' losses (warmstart/models/bert.py semantics).
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from ..config.bert import BertConfig
from . import losses as L
from . import outputs as O
from .modeling import FlaxPreTrainedModel, _is_tracer
from .stack import FlaxBertLMPredictionHead, FlaxBertModule, _init

__all__ = ["FlaxBertPreTrainedModel", "FlaxBertModel", "FlaxBertForPreTraining", "FlaxBertForCausalLM",
           "FlaxBertForMaskedLM", "FlaxBertForNextSentencePrediction", "FlaxBertForSequenceClassification",
           "FlaxBertForMultipleChoice", "FlaxBertForTokenClassification", "FlaxBertForQuestionAnswering"]


class _Head(nn.Module):
    """``bert`` backbone + one head; ``kind`` picks the head (options, not a class per head)."""

    config: object
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False
    kind: str = "masked-lm"

    def setup(self):
        c, kind = self.config, self.kind
        pooling = kind in ("sequence-classification", "multiple-choice", "pretraining", "next-sentence")
        self.bert = FlaxBertModule(c, dtype=self.dtype, add_pooling_layer=pooling,
                                   gradient_checkpointing=self.gradient_checkpointing)
        if kind in ("masked-lm", "causal-lm", "pretraining", "next-sentence"):
            self.cls = _MLMHead(c, dtype=self.dtype, predictions=kind != "next-sentence",
                                seq_relationship=kind in ("pretraining", "next-sentence"))
        elif kind in ("sequence-classification", "token-classification", "multiple-choice"):
            p = c.classifier_dropout if c.classifier_dropout is not None else c.hidden_dropout_prob
            self.dropout = nn.Dropout(rate=p)
            n = 1 if kind == "multiple-choice" else c.num_labels
            self.classifier = nn.Dense(n, kernel_init=_init(c), dtype=self.dtype)
        elif kind == "question-answering":
            self.qa_outputs = nn.Dense(c.num_labels, kernel_init=_init(c), dtype=self.dtype)

    def __call__(self, *args, deterministic: bool = True, output_attentions=False, output_hidden_states=False,
                 **kwargs):
        out = self.bert(*args, deterministic=deterministic, output_attentions=output_attentions,
                        output_hidden_states=output_hidden_states, **kwargs)
        keep = {"hidden_states": out["hidden_states"], "attentions": out["attentions"]}
        h = out["last_hidden_state"]
        shared = None
        if self.config.tie_word_embeddings and self.kind in ("masked-lm", "causal-lm", "pretraining"):
            shared = self.bert.variables["params"]["embeddings"]["word_embeddings"]["embedding"]
        if self.kind == "masked-lm":
            return dict(keep, logits=self.cls(h, shared))
        if self.kind == "causal-lm":
            return dict(keep, logits=self.cls(h, shared), cross_attentions=out["cross_attentions"])
        if self.kind == "pretraining":
            mlm, nsp = self.cls(h, shared, out["pooler_output"])
            return dict(keep, prediction_logits=mlm, seq_relationship_logits=nsp)
        if self.kind == "next-sentence":
            return dict(keep, logits=self.cls(None, None, out["pooler_output"])[1])
        if self.kind == "multiple-choice":
            pooled = self.dropout(out["pooler_output"], deterministic=deterministic)
            return dict(keep, logits=self.classifier(pooled))  # (B*C, 1); the model reshapes to (B, C)
        if self.kind == "sequence-classification":
            return dict(keep, logits=self.classifier(self.dropout(out["pooler_output"], deterministic=deterministic)))
        if self.kind == "token-classification":
            return dict(keep, logits=self.classifier(self.dropout(h, deterministic=deterministic)))
        logits = self.qa_outputs(h)  # (B, T, 2)
        return dict(keep, start_logits=logits[..., 0], end_logits=logits[..., 1])


class _MLMHead(nn.Module):
    """v4's ``cls``: ``predictions`` (vocabulary logits) and/or ``seq_relationship`` (is-next logits)."""

    config: object
    dtype: jnp.dtype = jnp.float32
    predictions: bool = True
    seq_relationship: bool = False

    def setup(self):
        if self.predictions:
            self.predictions_head = FlaxBertLMPredictionHead(self.config, dtype=self.dtype, name="predictions")
        if self.seq_relationship:
            self.seq_relationship_head = nn.Dense(2, kernel_init=_init(self.config), dtype=self.dtype,
                                                  name="seq_relationship")

    def __call__(self, x, shared=None, pooled=None):
        if not self.seq_relationship:
            return self.predictions_head(x, shared)
        nsp = self.seq_relationship_head(pooled)
        return (self.predictions_head(x, shared) if self.predictions else None), nsp


def _head_module(kind: str):
    def build(config, dtype=jnp.float32, gradient_checkpointing=False):
        return _Head(config, dtype=dtype, gradient_checkpointing=gradient_checkpointing, kind=kind)
    return build


class FlaxBertPreTrainedModel(FlaxPreTrainedModel):
    config_class = BertConfig
    base_model_prefix = "bert"


class FlaxBertModel(FlaxBertPreTrainedModel):
    """The bare encoder; ``add_pooling_layer=False`` drops the pooler."""

    module_class = FlaxBertModule

    def __init__(self, config, input_shape=(1, 1), seed=0, dtype=jnp.float32, _do_init=True,
                 add_pooling_layer: bool = True, gradient_checkpointing: bool = False):
        super().__init__(config, input_shape, seed, dtype, _do_init, gradient_checkpointing=gradient_checkpointing,
                         add_pooling_layer=add_pooling_layer)

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                 encoder_hidden_states=None, encoder_attention_mask=None, params=None, dropout_rng=None,
                 train: bool = False, output_attentions=None, output_hidden_states=None, return_dict=None):
        out = self._run(input_ids, attention_mask, token_type_ids, position_ids, head_mask, encoder_hidden_states,
                        encoder_attention_mask, params, dropout_rng, train, output_attentions, output_hidden_states)
        return self._finish(O.FlaxBaseModelOutputWithPoolingAndCrossAttentions(
            last_hidden_state=out["last_hidden_state"], pooler_output=out["pooler_output"],
            hidden_states=out["hidden_states"], attentions=out["attentions"],
            cross_attentions=out["cross_attentions"]), return_dict)


class _FlaxBertHead(FlaxBertPreTrainedModel):
    output_class = None
    fields = ("logits",)

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                 params=None, dropout_rng=None, train: bool = False, output_attentions=None,
                 output_hidden_states=None, return_dict=None, labels=None):
        out = self._run(input_ids, attention_mask, token_type_ids, position_ids, head_mask, params=params,
                        dropout_rng=dropout_rng, train=train, output_attentions=output_attentions,
                        output_hidden_states=output_hidden_states, labels=self._labels(labels))
        return self._finish(self.output_class(
            loss=out.get("loss"), **{f: out[f] for f in self.fields}, hidden_states=out["hidden_states"],
            attentions=out["attentions"]), return_dict)

    def _labels(self, labels):
        return {"labels": labels}


def _check_label_range(labels, upper: int, ignore_index: int = -100, what: str = "the vocabulary size"):
    if labels is None or _is_tracer(labels):  # under the caller's jit: values unknown until run
        return
    values = np.asarray(labels)
    bad = values[(values != ignore_index) & ((values < 0) | (values >= upper))]
    if bad.size:
        raise ValueError(f"labels contain {int(bad[0])}, outside [0, {upper}) ({what}); use {ignore_index} for "
                         "positions the loss should ignore")


class _MaskedLMHead(_FlaxBertHead):
    output_class = O.FlaxMaskedLMOutput

    def _check_labels(self, labels):
        _check_label_range(labels["labels"], self.config.vocab_size)

    def _loss(self, out, labels):
        return L.token_cross_entropy(out["logits"], labels["labels"])


class FlaxBertForMaskedLM(_MaskedLMHead):
    module_class = staticmethod(_head_module("masked-lm"))


class FlaxBertForTokenClassification(_FlaxBertHead):
    module_class = staticmethod(_head_module("token-classification"))
    output_class = O.FlaxTokenClassifierOutput

    def _check_labels(self, labels):
        _check_label_range(labels["labels"], self.config.num_labels, what="num_labels")

    def _loss(self, out, labels):
        return L.token_cross_entropy(out["logits"], labels["labels"])


class FlaxBertForSequenceClassification(_FlaxBertHead):
    """problem_type as in PyTorch: regression (num_labels == 1), single-label (integer labels) or multi-label,
    inferred on the first labelled call when the config leaves it unset."""

    module_class = staticmethod(_head_module("sequence-classification"))
    output_class = O.FlaxSequenceClassifierOutput

    def _check_labels(self, labels):
        c = self.config
        if c.problem_type is None:
            if c.num_labels == 1:
                c.problem_type = "regression"
            elif np.issubdtype(np.dtype(labels["labels"].dtype), np.integer):
                c.problem_type = "single_label_classification"
            else:
                c.problem_type = "multi_label_classification"
        if c.problem_type == "single_label_classification":
            _check_label_range(labels["labels"], c.num_labels, what="num_labels")
        elif c.problem_type == "multi_label_classification" and tuple(labels["labels"].shape)[-1:] != (c.num_labels,):
            raise ValueError(f"multi-label classification needs labels shaped (batch, {c.num_labels}), got "
                             f"{tuple(labels['labels'].shape)}")

    def _loss(self, out, labels):
        logits, y, c = out["logits"], labels["labels"], self.config
        if c.problem_type == "regression":
            return L.mse(logits.squeeze(), y.squeeze()) if c.num_labels == 1 else L.mse(logits, y)
        if c.problem_type == "single_label_classification":
            return L.token_cross_entropy(logits, y)
        return L.bce_with_logits(logits, y)


class FlaxBertForQuestionAnswering(_FlaxBertHead):
    """Span logits; the loss takes ``start_positions`` / ``end_positions`` (positions past the sequence are
    clamped to T and ignored, as in PyTorch)."""

    module_class = staticmethod(_head_module("question-answering"))
    output_class = O.FlaxQuestionAnsweringModelOutput
    fields = ("start_logits", "end_logits")

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                 params=None, dropout_rng=None, train: bool = False, output_attentions=None,
                 output_hidden_states=None, return_dict=None, start_positions=None, end_positions=None):
        labels = None
        if start_positions is not None and end_positions is not None:
            labels = (start_positions, end_positions)
        return super().__call__(input_ids, attention_mask, token_type_ids, position_ids, head_mask, params,
                                dropout_rng, train, output_attentions, output_hidden_states, return_dict, labels)

    def _labels(self, labels):
        return None if labels is None else {"start_positions": labels[0], "end_positions": labels[1]}

    def _loss(self, out, labels):
        t = out["start_logits"].shape[1]
        s = jnp.clip(labels["start_positions"].reshape(-1), 0, t)
        e = jnp.clip(labels["end_positions"].reshape(-1), 0, t)
        return (L.token_cross_entropy(out["start_logits"], s, ignore_index=t)
                + L.token_cross_entropy(out["end_logits"], e, ignore_index=t)) / 2


class FlaxBertForPreTraining(_FlaxBertHead):
    """Masked-LM and next-sentence logits; the loss sums both, as PyTorch's BertForPreTraining (``labels`` for
    the tokens, ``next_sentence_label`` for the pairs)."""

    module_class = staticmethod(_head_module("pretraining"))
    output_class = O.FlaxBertForPreTrainingOutput
    fields = ("prediction_logits", "seq_relationship_logits")

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                 params=None, dropout_rng=None, train: bool = False, output_attentions=None,
                 output_hidden_states=None, return_dict=None, labels=None, next_sentence_label=None):
        both = None if labels is None or next_sentence_label is None else (labels, next_sentence_label)
        return super().__call__(input_ids, attention_mask, token_type_ids, position_ids, head_mask, params,
                                dropout_rng, train, output_attentions, output_hidden_states, return_dict, both)

    def _labels(self, labels):
        return None if labels is None else {"labels": labels[0], "next_sentence_label": labels[1]}

    def _check_labels(self, labels):
        _check_label_range(labels["labels"], self.config.vocab_size)
        _check_label_range(labels["next_sentence_label"], 2, what="is-next classes")

    def _loss(self, out, labels):
        return (L.token_cross_entropy(out["prediction_logits"], labels["labels"])
                + L.token_cross_entropy(out["seq_relationship_logits"], labels["next_sentence_label"]))


class FlaxBertForNextSentencePrediction(_FlaxBertHead):
    """Is-next logits (0: B follows A, 1: B is random); ``labels`` (B,) give the loss."""

    module_class = staticmethod(_head_module("next-sentence"))
    output_class = O.FlaxNextSentencePredictorOutput

    def _check_labels(self, labels):
        _check_label_range(labels["labels"], 2, what="is-next classes")

    def _loss(self, out, labels):
        return L.token_cross_entropy(out["logits"], labels["labels"])


class FlaxBertForMultipleChoice(_FlaxBertHead):
    """(B, C, T) inputs, one row per choice; logits (B, C). Hidden states and attentions cover the B*C rows (v4)."""

    module_class = staticmethod(_head_module("multiple-choice"))
    output_class = O.FlaxMultipleChoiceModelOutput

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                 params=None, dropout_rng=None, train: bool = False, output_attentions=None,
                 output_hidden_states=None, return_dict=None, labels=None):
        if getattr(input_ids, "ndim", None) != 3:
            raise ValueError(f"multiple choice takes input_ids shaped (batch, num_choices, sequence), got "
                             f"{None if input_ids is None else tuple(np.shape(input_ids))}")
        b, n, t = input_ids.shape
        flat = []
        for name, x in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids),
                        ("position_ids", position_ids)):
            if x is not None and tuple(x.shape) != (b, n, t):
                raise ValueError(f"{name} shape {tuple(x.shape)} does not match input_ids {(b, n, t)}")
            flat.append(None if x is None else x.reshape(b * n, t))
        if labels is not None:
            _check_label_range(labels, n, what="num_choices")
        out = super().__call__(input_ids.reshape(b * n, t), *flat, head_mask, params, dropout_rng, train,
                               output_attentions, output_hidden_states, True)
        logits = out.logits.reshape(b, n)
        # Outside the jitted forward: the number of choices is not in the flattened shapes it is cached by.
        loss = None if labels is None else L.token_cross_entropy(logits, jnp.asarray(labels))
        return self._finish(self.output_class(loss=loss, logits=logits, hidden_states=out.hidden_states,
                                              attentions=out.attentions), return_dict)


class _CausalLMHead(_FlaxBertHead):
    """Left-to-right LM (``is_decoder=True``), optionally cross-attending to ``encoder_hidden_states``; v4's
    cache through ``init_cache`` / ``past_key_values``; ``labels`` (unshifted) give the shifted LM loss."""

    output_class = O.FlaxCausalLMOutputWithCrossAttentions
    _generates = True  # generate() drives it

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                 encoder_hidden_states=None, encoder_attention_mask=None, params=None, dropout_rng=None,
                 train: bool = False, output_attentions=None, output_hidden_states=None, return_dict=None,
                 past_key_values=None, labels=None):
        out = self._run(input_ids, attention_mask, token_type_ids, position_ids, head_mask, encoder_hidden_states,
                        encoder_attention_mask, params, dropout_rng, train, output_attentions, output_hidden_states,
                        self._labels(labels), past_key_values)
        return self._finish(self.output_class(
            loss=out.get("loss"), logits=out["logits"], past_key_values=out.get("past_key_values"),
            hidden_states=out["hidden_states"], attentions=out["attentions"],
            cross_attentions=out.get("cross_attentions")), return_dict)

    def _check_labels(self, labels):
        _check_label_range(labels["labels"], self.config.vocab_size)

    def _loss(self, out, labels):
        return L.shifted_lm_loss(out["logits"], labels["labels"])


class FlaxBertForCausalLM(_CausalLMHead):
    __doc__ = _CausalLMHead.__doc__
    module_class = staticmethod(_head_module("causal-lm"))
