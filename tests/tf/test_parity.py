"""The TF models equal our PyTorch models (proven against transformers) on the same weights, moved through
PyTorch save_pretrained -> TF from_pretrained: every output field, hidden state and attention, with padding in
the mask; losses (v4's TF shapes, their mean = PyTorch's scalar); gradients; eager == XLA; cached decoding ==
one uncached call == PyTorch; TFAuto* picks the class."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from support import (ATOL, assert_close, bert_config, compare, encoder_states, gpt2_config,  # noqa: E402
                     ids_and_mask, max_diff, pair, roberta_config, to_np)

import warmstart.tf as wtf  # noqa: E402
from warmstart.tf.backend import tf  # noqa: E402

BACKBONE = ("hidden_states", "attentions")


def _token_labels(ids, mask):
    labels = ids.copy()
    labels[mask == 0] = -100
    labels[0, 1] = -100
    return labels


def _labels(kind, ids, mask, config):
    """(TF keywords, PyTorch keywords) for a head's labels."""
    if kind == "token":
        lab = _token_labels(ids, mask)
        return {"labels": lab}, {"labels": torch.tensor(lab)}
    if kind == "token-cls":
        lab = np.random.RandomState(3).randint(0, config.num_labels, ids.shape)
        lab[mask == 0] = -100
        lab[0, 0] = -100
        return {"labels": lab}, {"labels": torch.tensor(lab)}
    if kind == "seq":
        lab = np.array([1, 0])
        return {"labels": lab}, {"labels": torch.tensor(lab)}
    if kind == "regression":
        lab = np.array([0.5, -1.25], np.float32)
        return {"labels": lab}, {"labels": torch.tensor(lab)}
    if kind == "multi-label":
        lab = np.array([[1, 0, 1], [0, 0, 1]], np.float32)
        return {"labels": lab}, {"labels": torch.tensor(lab)}
    if kind == "choice":
        lab = np.array([2, 0])
        return {"labels": lab}, {"labels": torch.tensor(lab)}
    if kind == "nsp":
        lab = np.array([1, 0])
        return {"next_sentence_label": lab}, {"labels": torch.tensor(lab)}
    if kind == "pretraining":
        lab, nsp = _token_labels(ids, mask), np.array([1, 0])
        return ({"labels": lab, "next_sentence_label": nsp},
                {"labels": torch.tensor(lab), "next_sentence_label": torch.tensor(nsp)})
    if kind == "qa":
        s, e = np.array([1, 3]), np.array([2, 4])
        return ({"start_positions": s, "end_positions": e},
                {"start_positions": torch.tensor(s), "end_positions": torch.tensor(e)})
    assert kind is None
    return {}, {}


# id, PyTorch class, config, compared fields, label kind, v4 TF loss shape ("token" (1,) or "example" (B,))
CASES = [
    ("bert", "BertModel", bert_config, ("last_hidden_state", "pooler_output") + BACKBONE, None, None),
    ("bert-pretraining", "BertForPreTraining", bert_config,
     ("prediction_logits", "seq_relationship_logits") + BACKBONE, "pretraining", "token"),
    ("bert-lm-head", "BertLMHeadModel", lambda: bert_config(is_decoder=True), ("logits",) + BACKBONE, "token",
     "token"),
    ("bert-mlm", "BertForMaskedLM", bert_config, ("logits",) + BACKBONE, "token", "token"),
    ("bert-nsp", "BertForNextSentencePrediction", bert_config, ("logits",) + BACKBONE, "nsp", "example"),
    ("bert-seq-cls", "BertForSequenceClassification", bert_config, ("logits",) + BACKBONE, "seq", "example"),
    ("bert-seq-regression", "BertForSequenceClassification", lambda: bert_config(num_labels=1),
     ("logits",) + BACKBONE, "regression", "example"),
    ("bert-seq-multi-label", "BertForSequenceClassification",
     lambda: bert_config(num_labels=3, problem_type="multi_label_classification"), ("logits",) + BACKBONE,
     "multi-label", "example"),
    ("bert-choice", "BertForMultipleChoice", bert_config, ("logits",) + BACKBONE, "choice", "example"),
    ("bert-token-cls", "BertForTokenClassification", lambda: bert_config(num_labels=5), ("logits",) + BACKBONE,
     "token-cls", "token"),
    ("bert-qa", "BertForQuestionAnswering", bert_config, ("start_logits", "end_logits") + BACKBONE, "qa",
     "example"),
    ("roberta", "RobertaModel", roberta_config, ("last_hidden_state", "pooler_output") + BACKBONE, None, None),
    ("roberta-causal-lm", "RobertaForCausalLM", lambda: roberta_config(is_decoder=True), ("logits",) + BACKBONE,
     "token", "token"),
    ("roberta-mlm", "RobertaForMaskedLM", roberta_config, ("logits",) + BACKBONE, "token", "token"),
    ("gpt2", "GPT2Model", gpt2_config, ("last_hidden_state",) + BACKBONE, None, None),
    ("gpt2-lm", "GPT2LMHeadModel", gpt2_config, ("logits",) + BACKBONE, "token", "token"),
]
_BY_ID = {c[0]: c for c in CASES}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """id -> (PyTorch model, TF model), each built once for the module."""
    built = {}

    def get(case_id, build=None, pt_name=None):
        if case_id not in built:
            if build is None:
                _, pt_name, build, *_ = _BY_ID[case_id]
            built[case_id] = pair(pt_name, build(), tmp_path_factory.mktemp(case_id))
        return built[case_id]

    return get


def _inputs(case_id, config):
    pad = config.pad_token_id if case_id.startswith("roberta") else 0
    if case_id == "bert-choice":
        ids, mask = ids_and_mask(rows=6, pad=pad)
        return ids.reshape(2, 3, 7), mask.reshape(2, 3, 7)
    return ids_and_mask(pad=pad)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_outputs_and_loss_match_pytorch(case, models):
    case_id, _, _, fields, label_kind, loss_kind = case
    pt, tfm = models(case_id)
    config = tfm.config
    ids, mask = _inputs(case_id, config)
    tf_labels, pt_labels = _labels(label_kind, ids, mask, config)
    with torch.no_grad():
        want = pt(torch.tensor(ids), attention_mask=torch.tensor(mask), output_hidden_states=True,
                  output_attentions=True, **pt_labels)
    got = tfm(ids, attention_mask=mask, output_hidden_states=True, output_attentions=True, **tf_labels)
    assert type(got).__name__.startswith("TF")
    compare(got, want, fields)
    assert len(got["hidden_states"]) == config.num_hidden_layers + 1
    assert len(got["attentions"]) == config.num_hidden_layers
    if label_kind is None:
        return
    loss = to_np(got.loss)
    assert loss.shape == ((1,) if loss_kind == "token" else (ids.shape[0],)), loss.shape
    assert_close(loss.mean(), want.loss, "loss")


def test_loss_without_hidden_outputs_and_default_flags(models):
    """The plain call (no output_* flags) gives None for hidden_states / attentions, as PyTorch."""
    pt, tfm = models("bert-mlm")
    ids, mask = ids_and_mask()
    got = tfm(ids, attention_mask=mask)
    assert got.hidden_states is None and got.attentions is None
    with torch.no_grad():
        want = pt(torch.tensor(ids), attention_mask=torch.tensor(mask))
    assert_close(got.logits, want.logits, "logits")


# ---- gradients -------------------------------------------------------------------------------------------------
def _t(g):
    return g.T


GRADS = {
    "bert-seq-cls": [("bert/encoder/layer_._0/attention/self/query/kernel", "bert.encoder.layer.0.attn.qkv.weight",
                      lambda g: g[:32].T),
                     ("bert/encoder/layer_._0/output/dense/kernel", "bert.encoder.layer.0.mlp.fc_out.weight", _t),
                     ("bert/embeddings/word_embeddings/weight", "bert.embeddings.word_embeddings.weight", None),
                     ("bert/embeddings/LayerNorm/gamma", "bert.embeddings.norm.weight", None),
                     ("classifier/kernel", "classifier.weight", _t), ("classifier/bias", "classifier.bias", None)],
    "bert-mlm": [("bert/encoder/layer_._0/attention/self/value/kernel", "bert.encoder.layer.0.attn.qkv.weight",
                  lambda g: g[64:].T),
                 ("bert/embeddings/word_embeddings/weight", "bert.embeddings.word_embeddings.weight", None),
                 ("mlm___cls/predictions/transform/dense/kernel", "cls.dense.weight", _t),
                 ("mlm___cls/predictions/bias", "cls.decoder.bias", None)],
    "gpt2-lm": [("transformer/h_._0/attn/c_attn/weight", "transformer.encoder.layer.0.attn.qkv.weight", _t),
                ("transformer/h_._1/mlp/c_fc/weight", "transformer.encoder.layer.1.mlp.fc_in.weight", _t),
                ("transformer/wte/embeddings", "transformer.embeddings.word_embeddings.weight", None),
                ("transformer/ln_f/gamma", "transformer.ln_f.weight", None)],
}


@pytest.mark.parametrize("case_id", sorted(GRADS))
def test_gradients_match_pytorch(case_id, models):
    pt, tfm = models(case_id)
    ids, mask = _inputs(case_id, tfm.config)
    tf_labels, pt_labels = _labels(_BY_ID[case_id][4], ids, mask, tfm.config)
    named = tfm.named_weights()
    variables = [named[tf_name] for tf_name, _, _ in GRADS[case_id]]
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tfm(ids, attention_mask=mask, training=False, **tf_labels).loss)
    mine = tape.gradient(loss, variables)
    pt.zero_grad()
    out = pt(torch.tensor(ids), attention_mask=torch.tensor(mask), **pt_labels)
    out.loss.backward()
    assert_close(loss, out.loss.detach(), "loss")
    params = dict(pt.named_parameters())
    for (tf_name, pt_name, layout), g in zip(GRADS[case_id], mine):
        assert g is not None, f"no gradient reaches {tf_name}"
        theirs = params[pt_name].grad.numpy()
        theirs = layout(theirs) if layout else theirs
        g = tf.convert_to_tensor(g).numpy()  # IndexedSlices (gathered tables) -> dense
        assert float(np.abs(theirs).max()) > 0, f"{pt_name}: zero gradient proves nothing"
        assert_close(g, theirs, f"grad {tf_name}")


# ---- XLA -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case_id", ["roberta-mlm", "gpt2-lm"])
def test_eager_equals_xla(case_id, models):
    """With test_calling's XLA run of TFBertForSequenceClassification: three classes (XLA compiles are slow)."""
    _, tfm = models(case_id)
    ids, mask = _inputs(case_id, tfm.config)
    eager = tfm(ids, attention_mask=mask).logits
    xla = tf.function(lambda i, m: tfm(i, attention_mask=m).logits, jit_compile=True)(
        tf.constant(ids), tf.constant(mask))
    assert_close(xla, eager, "XLA logits")


# ---- cached decoding ------------------------------------------------------------------------------------------
DECODERS = [
    ("bert-lm-cross", "BertLMHeadModel", lambda: bert_config(is_decoder=True, add_cross_attention=True), True),
    ("roberta-causal-lm", "RobertaForCausalLM", lambda: roberta_config(is_decoder=True), False),
    ("gpt2-lm", "GPT2LMHeadModel", gpt2_config, False),
    ("gpt2-lm-cross", "GPT2LMHeadModel", lambda: gpt2_config(add_cross_attention=True), True),
]


@pytest.mark.parametrize("case_id,pt_name,build,cross", DECODERS, ids=[d[0] for d in DECODERS])
def test_cached_decoding_equals_one_call_and_pytorch(case_id, pt_name, build, cross, models):
    pt, tfm = models(case_id, build, pt_name)
    pad = tfm.config.pad_token_id if case_id.startswith("roberta") else 0
    ids, mask = ids_and_mask(pad=pad)
    enc = {}
    pt_enc = {}
    if cross:
        states, enc_mask = encoder_states()
        enc = {"encoder_hidden_states": states, "encoder_attention_mask": enc_mask}
        pt_enc = {k: torch.tensor(v) for k, v in enc.items()}
    with torch.no_grad():
        want = pt(torch.tensor(ids), attention_mask=torch.tensor(mask), output_attentions=cross, **pt_enc)
    full = tfm(ids, attention_mask=mask, use_cache=False, output_attentions=cross, **enc)
    assert full.past_key_values is None
    assert_close(full.logits, want.logits, "uncached logits vs PyTorch")
    if cross:
        compare(full, want, ("cross_attentions",))

    out = tfm(ids[:, :3], attention_mask=mask[:, :3], use_cache=True, **enc)
    assert len(out.past_key_values) == tfm.config.num_hidden_layers
    steps, past = [to_np(out.logits)], out.past_key_values
    for t in range(3, ids.shape[1]):
        out = tfm(ids[:, t:t + 1], attention_mask=mask[:, :t + 1], past_key_values=past, use_cache=True, **enc)
        past = out.past_key_values
        steps.append(to_np(out.logits))
    cached = np.concatenate(steps, axis=1)
    assert_close(cached, full.logits, "cached vs uncached logits")
    assert_close(cached, want.logits, "cached logits vs PyTorch")


# ---- TFAuto* ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("auto,build,want", [
    ("TFAutoModel", bert_config, "TFBertModel"),
    ("TFAutoModel", roberta_config, "TFRobertaModel"),
    ("TFAutoModel", gpt2_config, "TFGPT2Model"),
    ("TFAutoModelForCausalLM", gpt2_config, "TFGPT2LMHeadModel"),
    ("TFAutoModelForMaskedLM", roberta_config, "TFRobertaForMaskedLM"),
])
def test_auto_builds_the_right_class(auto, build, want):
    model = getattr(wtf, auto).from_config(build())
    assert type(model) is getattr(wtf, want)


def test_auto_loads_the_saved_pytorch_weights(models, tmp_path):
    pt, _ = models("bert-seq-cls")
    pt.save_pretrained(tmp_path)
    model = wtf.TFAutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert type(model) is wtf.TFBertForSequenceClassification
    ids, mask = ids_and_mask()
    with torch.no_grad():
        want = pt(torch.tensor(ids), attention_mask=torch.tensor(mask)).logits
    assert max_diff(model(ids, attention_mask=mask).logits, want) <= ATOL
