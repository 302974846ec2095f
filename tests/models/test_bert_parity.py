"""Every BERT head against transformers on the same tiny random weights: outputs, losses and gradients."""
import pytest
import torch
import transformers as T

import warmstart as W
from warmstart.checkpoint.keymaps import KEYMAPS
from parity import TINY, assert_close, inputs, spread_weights


def _pair(tmp_path, hf_cls, our_cls, eager=False, **extra):
    torch.manual_seed(0)
    cfg = T.BertConfig(**{**TINY, **extra})
    if eager:
        cfg._attn_implementation = "eager"
    hf = hf_cls(cfg)
    spread_weights(hf)
    hf.save_pretrained(tmp_path)
    ours = our_cls.from_pretrained(tmp_path)
    return hf.eval(), ours.eval()


def _grads_close(hf, ours, what):
    keymap = KEYMAPS["bert"]
    grads = {n: p.grad for n, p in ours.named_parameters() if p.grad is not None}
    theirs = keymap.to_theirs(grads, model_has_prefix=bool(ours.base_model_prefix))
    hf_grads = {n: p.grad for n, p in hf.named_parameters() if p.grad is not None}
    assert set(hf_grads) <= set(theirs), set(hf_grads) - set(theirs)
    for name, g in hf_grads.items():
        assert_close(theirs[name], g, f"{what} grad {name}")


HEADS = [
    (T.BertForMaskedLM, W.BertForMaskedLM, {}, "logits"),
    (T.BertForPreTraining, W.BertForPreTraining, {}, "prediction_logits"),
    (T.BertForNextSentencePrediction, W.BertForNextSentencePrediction, {}, "logits"),
    (T.BertForSequenceClassification, W.BertForSequenceClassification, {"num_labels": 3}, "logits"),
    (T.BertForMultipleChoice, W.BertForMultipleChoice, {}, "logits"),
    (T.BertForTokenClassification, W.BertForTokenClassification, {"num_labels": 5}, "logits"),
    (T.BertForQuestionAnswering, W.BertForQuestionAnswering, {}, "start_logits"),
    (T.BertLMHeadModel, W.BertLMHeadModel, {"is_decoder": True}, "logits"),
]


def _labels(hf_cls, ids, mask):
    g = torch.Generator().manual_seed(1)
    b, t = ids.shape
    if hf_cls in (T.BertForMaskedLM, T.BertLMHeadModel):
        labels = ids.clone()
        labels[mask == 0] = -100
        return {"labels": labels}
    if hf_cls is T.BertForPreTraining:
        labels = ids.clone()
        labels[:, ::2] = -100
        return {"labels": labels, "next_sentence_label": torch.tensor([0, 1])}
    if hf_cls is T.BertForNextSentencePrediction:
        return {"labels": torch.tensor([1, 0])}
    if hf_cls is T.BertForSequenceClassification:
        return {"labels": torch.tensor([2, 0])}
    if hf_cls is T.BertForMultipleChoice:
        return {"labels": torch.tensor([1, 0])}
    if hf_cls is T.BertForTokenClassification:
        return {"labels": torch.randint(0, 5, (b, t), generator=g)}
    if hf_cls is T.BertForQuestionAnswering:
        # The second start lies past the sequence: clamped to the ignored index by both implementations.
        return {"start_positions": torch.tensor([1, 50]), "end_positions": torch.tensor([3, 4])}
    raise AssertionError(hf_cls)


@pytest.mark.parametrize("hf_cls,our_cls,extra,field", HEADS, ids=[h[1].__name__ for h in HEADS])
def test_head_parity_outputs_loss_and_grads(tmp_path, hf_cls, our_cls, extra, field):
    hf, ours = _pair(tmp_path, hf_cls, our_cls, **extra)
    ids, mask, types = inputs()
    kw = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    if hf_cls is T.BertForMultipleChoice:
        kw = {k: torch.stack([v, v.flip(0)], 0) for k, v in kw.items()}  # (B, K=2, T)
    labels = _labels(hf_cls, ids, mask)
    a = hf(**kw, **labels)
    b = ours(**kw, **labels)
    real = mask.bool() if getattr(a, field).dim() == 3 or field == "start_logits" else None
    if real is not None and hf_cls is not T.BertForMultipleChoice:
        assert_close(getattr(a, field)[real], getattr(b, field)[real], field)
    else:
        assert_close(getattr(a, field), getattr(b, field), field)
    assert_close(a.loss, b.loss, "loss")
    assert b[0] is b.loss and torch.equal(b["loss"], b.loss)
    a.loss.backward()
    b.loss.backward()
    _grads_close(hf, ours, our_cls.__name__)


@pytest.mark.parametrize("skip_padding", [False, True])
def test_bert_model_hidden_states_and_attentions(tmp_path, skip_padding):
    hf, ours = _pair(tmp_path, T.BertModel, W.BertModel, eager=True)
    ours.skip_padding = skip_padding
    ids, mask, types = inputs()
    with torch.no_grad():
        a = hf(ids, attention_mask=mask, token_type_ids=types, output_hidden_states=True, output_attentions=True)
        b = ours(ids, attention_mask=mask, token_type_ids=types, output_hidden_states=True, output_attentions=True)
        plain = ours(ids, attention_mask=mask, token_type_ids=types)
    assert len(a.hidden_states) == len(b.hidden_states) == TINY["num_hidden_layers"] + 1
    for i, (x, y) in enumerate(zip(a.hidden_states, b.hidden_states)):
        assert_close(x, y, f"hidden_states[{i}]")
    for i, (x, y) in enumerate(zip(a.attentions, b.attentions)):
        assert_close(x, y, f"attentions[{i}]")
    assert_close(a.last_hidden_state, b.last_hidden_state, "last_hidden_state")
    assert_close(a.pooler_output, b.pooler_output, "pooler_output")
    # Without per-layer outputs the padded rows may be skipped; real tokens must not change.
    real = mask.bool()
    assert_close(a.last_hidden_state[real], plain.last_hidden_state[real], "last_hidden_state (real tokens)")
    assert_close(a.pooler_output, plain.pooler_output, "pooler_output")
    if skip_padding:
        assert plain.last_hidden_state[~real].abs().max() == 0


def test_sequence_classification_problem_types(tmp_path):
    hf, ours = _pair(tmp_path, T.BertForSequenceClassification, W.BertForSequenceClassification, num_labels=3)
    ids, mask, types = inputs(pad_row_from=None)
    for labels in (torch.tensor([0, 2]), torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])):
        hf.config.problem_type = ours.config.problem_type = None
        a, b = hf(ids, labels=labels), ours(ids, labels=labels)
        assert hf.config.problem_type == ours.config.problem_type
        assert_close(a.loss, b.loss, ours.config.problem_type)
    reg_hf, reg = _pair(tmp_path / "reg", T.BertForSequenceClassification, W.BertForSequenceClassification,
                        num_labels=1)
    y = torch.tensor([0.5, -1.0])
    assert_close(reg_hf(ids, labels=y).loss, reg(ids, labels=y).loss, "regression")
    assert reg.config.problem_type == "regression"


def test_decoder_with_cross_attention_parity(tmp_path):
    hf, ours = _pair(tmp_path, T.BertLMHeadModel, W.BertLMHeadModel, is_decoder=True, add_cross_attention=True)
    ids, mask, _ = inputs()
    enc = torch.randn(2, 5, TINY["hidden_size"])
    enc_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    labels = ids.masked_fill(mask == 0, -100)
    a = hf(ids, attention_mask=mask, encoder_hidden_states=enc, encoder_attention_mask=enc_mask, labels=labels)
    b = ours(ids, attention_mask=mask, encoder_hidden_states=enc, encoder_attention_mask=enc_mask, labels=labels)
    assert_close(a.logits[mask.bool()], b.logits[mask.bool()], "logits")
    assert_close(a.loss, b.loss, "loss")
    a.loss.backward()
    b.loss.backward()
    _grads_close(hf, ours, "decoder")


def test_return_dict_false_gives_tuples(tmp_path):
    _, ours = _pair(tmp_path, T.BertForMaskedLM, W.BertForMaskedLM)
    ids, _, _ = inputs(pad_row_from=None)
    out = ours(ids, return_dict=False)
    assert isinstance(out, tuple) and out[0].shape == (2, 9, TINY["vocab_size"])


def test_head_mask_matches_transformers_v4_semantics(tmp_path):
    # transformers 5 dropped head_mask; v4 multiplied the attention probabilities by it. Silencing every head
    # of a layer must then make that layer's attention output exactly the output bias.
    _, ours = _pair(tmp_path, T.BertModel, W.BertModel)
    ids, mask, _ = inputs(pad_row_from=None)
    hm = torch.ones(TINY["num_hidden_layers"], TINY["num_attention_heads"])
    hm[0] = 0
    with torch.no_grad():
        out = ours(ids, head_mask=hm, output_attentions=True)
        assert out.attentions[0].abs().max() == 0
        assert out.attentions[1].abs().max() > 0
        ones = ours(ids, head_mask=torch.ones(TINY["num_attention_heads"]))
        ref = ours(ids)
    assert_close(ones.last_hidden_state, ref.last_hidden_state, "head_mask of ones")
