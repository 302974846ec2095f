"""resize_token_embeddings(new_num_tokens, pad_to_multiple_of, mean_resizing=True), v4.46 semantics.

Added rows are drawn from N(mean, 1e-9 * covariance) of the old rows (the mean itself when the covariance is not
positive-definite); an untied output bias grows by the old biases' mean; mean_resizing=False keeps the init
distribution. transformers 5.23 still does this, so it is the oracle for the rows (equal up to the 1e-9-scaled
noise, far below the parity bar).
"""
import pytest
import torch
import transformers

import warmstart as W
from parity import assert_close
from warmstart.checkpoint.pretrained import export_state_dict

BERT = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)
GPT2 = dict(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=64, pad_token_id=0, bos_token_id=1,
            eos_token_id=2)


def test_new_rows_match_transformers_untied_gpt2():
    torch.manual_seed(0)
    ours = W.GPT2LMHeadModel(W.GPT2Config(**GPT2, tie_word_embeddings=False)).eval()
    theirs = transformers.GPT2LMHeadModel(transformers.GPT2Config(**GPT2, tie_word_embeddings=False)).eval()
    theirs.load_state_dict(export_state_dict(ours))
    old_in = ours.get_input_embeddings().weight.detach().clone()
    old_out = ours.lm_head.weight.detach().clone()
    ours.resize_token_embeddings(110)
    theirs.resize_token_embeddings(110)
    new_in, new_out = ours.get_input_embeddings().weight.detach(), ours.lm_head.weight.detach()
    assert new_in.shape == (110, 32) and new_out.shape == (110, 32) and ours.config.vocab_size == 110
    assert torch.equal(new_in[:99], old_in) and torch.equal(new_out[:99], old_out)
    assert_close(new_in[99:], theirs.get_input_embeddings().weight.detach()[99:], "added input rows")
    assert_close(new_out[99:], theirs.lm_head.weight.detach()[99:], "added output rows")
    # The statistical property itself: every added row sits at the old mean (each matrix its own).
    assert_close(new_in[99:], old_in.mean(0).expand(11, -1), "input rows at the mean")
    assert_close(new_out[99:], old_out.mean(0).expand(11, -1), "output rows at the mean")
    ids = torch.randint(3, 99, (1, 5))
    with torch.no_grad():
        a, b = ours(ids).logits, theirs(ids).logits
    assert_close(a[..., :99], b[..., :99], "old tokens' logits after resizing")
    # New tokens: each library drew its own 1e-9-scaled noise (~1e-6 per weight), so their logits differ by ~1e-5.
    assert_close(a[..., 99:], b[..., 99:], "new tokens' logits", atol=1e-4)


def test_mean_resizing_false_keeps_init_distribution():
    torch.manual_seed(0)
    model = W.BertForMaskedLM(W.BertConfig(**BERT))
    old = model.get_input_embeddings().weight.detach().clone()
    model.resize_token_embeddings(200, mean_resizing=False)
    added = model.get_input_embeddings().weight.detach()[99:]
    assert added.std() > 0.01  # drawn from normal(0, 0.02), not collapsed onto the mean
    assert (added - old.mean(0)).abs().max() > 0.01
    # Tied: the projection shares the table, and the tied bias grows by zeros (v4 pads it).
    assert model.cls.decoder.weight is model.get_input_embeddings().weight
    assert model.cls.decoder.bias.shape == (200,) and float(model.cls.decoder.bias.detach()[99:].abs().max()) == 0


def test_untied_bias_rows_get_the_old_bias_mean():
    torch.manual_seed(0)
    model = W.BertForMaskedLM(W.BertConfig(**BERT, tie_word_embeddings=False))
    with torch.no_grad():
        model.cls.decoder.bias.normal_(0.5, 1.0)
    bias = model.cls.decoder.bias.detach().clone()
    model.resize_token_embeddings(104)
    new = model.cls.decoder.bias.detach()
    assert torch.equal(new[:99], bias)
    assert_close(new[99:], bias.mean().expand(5), "bias rows at the old mean")


def test_not_positive_definite_falls_back_to_the_mean():
    torch.manual_seed(0)
    model = W.BertModel(W.BertConfig(**{**BERT, "vocab_size": 8}))  # 8 rows in 32 dims: a singular covariance
    old = model.get_input_embeddings().weight.detach().clone()
    model.resize_token_embeddings(12)
    assert torch.equal(model.get_input_embeddings().weight.detach()[8:], old.mean(0).expand(4, -1))


def test_pad_to_multiple_of_and_shrinking():
    model = W.BertForMaskedLM(W.BertConfig(**BERT))
    assert model.resize_token_embeddings(100, pad_to_multiple_of=64).num_embeddings == 128
    assert model.resize_token_embeddings(pad_to_multiple_of=96).num_embeddings == 192
    assert model.resize_token_embeddings(50).num_embeddings == 50 and model.cls.decoder.bias.shape == (50,)
    same = model.get_input_embeddings()
    assert model.resize_token_embeddings(50) is same  # nothing to do: the same module back, as v4


@pytest.mark.parametrize("value", [1.3, 0, -8, "8", True])
def test_bad_pad_to_multiple_of_is_blamed(value):
    model = W.BertModel(W.BertConfig(**BERT))
    with pytest.raises(ValueError, match=rf"pad_to_multiple_of must be a positive integer, got {value!r}"):
        model.resize_token_embeddings(99, pad_to_multiple_of=value)


@pytest.mark.parametrize("value", [0, 1.5, "99"])
def test_bad_new_num_tokens_is_blamed(value):
    model = W.BertModel(W.BertConfig(**BERT))
    with pytest.raises(ValueError, match=rf"new_num_tokens must be a positive integer, got {value!r}"):
        model.resize_token_embeddings(value)


def test_encoder_decoder_passes_mean_resizing():
    torch.manual_seed(0)
    model = W.EncoderDecoderModel(encoder=W.BertModel(W.BertConfig(**BERT)), decoder=W.BertLMHeadModel(
        W.BertConfig(**BERT, is_decoder=True, add_cross_attention=True)))
    old = model.decoder.get_input_embeddings().weight.detach().clone()
    model.resize_token_embeddings(101)
    assert_close(model.decoder.get_input_embeddings().weight.detach()[99:], old.mean(0).expand(2, -1), "decoder")
    model.resize_token_embeddings(140, mean_resizing=False)
    assert model.encoder.get_input_embeddings().weight.detach()[101:].std() > 0.01
