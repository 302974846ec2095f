"""Stack features that must not change numbers: gradient checkpointing, chunked feed-forward, packing."""
import torch

import warmstart as W
from parity import TINY, assert_close, inputs


def _model(**extra):
    torch.manual_seed(0)
    return W.BertForMaskedLM(W.BertConfig(**{**TINY, **extra}))


def test_gradient_checkpointing_same_loss_and_grads():
    ids, mask, _ = inputs()
    labels = ids.masked_fill(mask == 0, -100)
    a, b = _model(), _model()
    b.load_state_dict(a.state_dict())
    a.train(), b.train()
    b.gradient_checkpointing_enable()
    assert b.is_gradient_checkpointing
    la, lb = a(ids, attention_mask=mask, labels=labels).loss, b(ids, attention_mask=mask, labels=labels).loss
    la.backward(), lb.backward()
    assert_close(la, lb, "loss")
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert_close(p.grad, q.grad, n)


def test_chunked_feed_forward_same_output():
    ids, mask, _ = inputs(length=20, pad_row_from=15)
    a, b = _model(), _model(chunk_size_feed_forward=3)
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        assert_close(a(ids, attention_mask=mask).logits, b(ids, attention_mask=mask).logits, "chunked")


def test_packing_only_changes_padded_rows():
    ids, mask, _ = inputs(batch=4, length=12, pad_row_from=3)
    model = _model().eval()
    with torch.no_grad():
        packed = model(ids, attention_mask=mask).logits
        model.bert.skip_padding = False
        full = model(ids, attention_mask=mask).logits
    assert_close(packed[mask.bool()], full[mask.bool()], "real tokens")


def test_resize_token_embeddings_keeps_rows_and_tying():
    model = _model()
    old = model.get_input_embeddings().weight.detach().clone()
    model.resize_token_embeddings(120)
    emb = model.get_input_embeddings()
    assert emb.num_embeddings == 120 and model.config.vocab_size == 120
    assert torch.equal(emb.weight[:99], old)
    assert model.get_output_embeddings().weight is emb.weight
    assert model.cls.decoder.bias.shape == (120,)
    out = model(torch.tensor([[119, 5, 3]]))
    assert out.logits.shape == (1, 3, 120)
    model.resize_token_embeddings(50, pad_to_multiple_of=16)
    assert model.get_input_embeddings().num_embeddings == 64


def test_untied_output_embeddings():
    model = _model(tie_word_embeddings=False)
    assert model.get_output_embeddings().weight is not model.get_input_embeddings().weight
    model.resize_token_embeddings(101)
    assert model.get_output_embeddings().weight.shape == (101, TINY["hidden_size"])


def test_set_input_embeddings_reties():
    model = _model()
    new = torch.nn.Embedding(99, TINY["hidden_size"])
    model.set_input_embeddings(new)
    assert model.get_output_embeddings().weight is new.weight
