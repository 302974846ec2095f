"""Tied input/output embeddings: the lookup's gradient is added sparsely, the optimizer still sees a dense grad."""
import torch

from warmstart import BertConfig, BertLMHeadModel

CFG = dict(vocab_size=97, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=37,
           hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, is_decoder=True)


def test_tied_gradient_equals_untied_sum():
    torch.manual_seed(0)
    tied = BertLMHeadModel(BertConfig(**CFG))
    untied = BertLMHeadModel(BertConfig(**CFG, tie_word_embeddings=False))
    untied.load_state_dict(tied.state_dict())
    with torch.no_grad():
        untied.get_output_embeddings().weight.copy_(tied.get_output_embeddings().weight)
    ids = torch.randint(0, 97, (3, 9))
    tied(ids, labels=ids).loss.backward()
    untied(ids, labels=ids).loss.backward()
    grad = tied.get_input_embeddings().weight.grad
    assert grad.layout == torch.strided
    want = untied.get_input_embeddings().weight.grad + untied.get_output_embeddings().weight.grad
    torch.testing.assert_close(grad, want, atol=1e-6, rtol=1e-5)


def test_lookup_alone_still_gives_a_dense_gradient():
    torch.manual_seed(0)
    model = BertLMHeadModel(BertConfig(**CFG))
    ids = torch.randint(1, 97, (2, 5))  # not the pad id 0, whose row (padding_idx) never gets a gradient
    hidden = model.bert(ids).last_hidden_state
    # Not hidden.sum(): each row of BERT's final LayerNorm sums to a constant at init (gamma = 1), so that loss has
    # an exactly zero gradient and the check below would pass only on float rounding noise. Fixed random weights
    # give every output a real gradient.
    weights = torch.randn(hidden.shape, generator=torch.Generator().manual_seed(1))
    (hidden * weights).sum().backward()
    grad = model.get_input_embeddings().weight.grad
    assert grad.layout == torch.strided and grad.abs().sum() > 0
    used = torch.zeros(97, dtype=torch.bool)
    used[ids.flatten()] = True
    assert (grad[used].abs().sum(-1) > 1e-3).all()  # every looked-up row is trained, well above rounding noise
    assert (grad[~used] == 0).all()  # and only those: the lookup's gradient landed on the right rows
    torch.optim.AdamW(model.parameters(), fused=True).step()  # fused AdamW refuses sparse gradients


def test_hook_registered_once():
    model = BertLMHeadModel(BertConfig(**CFG))
    model.tie_weights()
    model.tie_weights()
    hooks = model.bert.embeddings.word_embeddings.weight._post_accumulate_grad_hooks
    assert len(hooks) == 1
