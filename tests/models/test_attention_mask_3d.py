"""3-D (batch, query, key) attention masks, as v4's get_extended_attention_mask takes them ([B, 1, T, S]).

transformers 5 refuses them, so the oracle is v4.46.3 frozen into tests/assets/v4_loading (made by
tests/assets/make_v4_loading_fixtures.py). v4 uses a 3-D self-attention mask as given: a decoder adds no causal part.
"""
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import warmstart as W
from parity import assert_close

ASSETS = Path(__file__).parent.parent / "assets" / "v4_loading"
BERT = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)


def _case(name):
    folder = ASSETS / name
    return folder, load_file(folder / "inputs.safetensors"), load_file(folder / "expected.safetensors")


def test_encoder_3d_mask_matches_v4():
    folder, x, want = _case("bert_mask3d")
    model = W.BertModel.from_pretrained(folder)
    assert x["attention_mask"].shape == (2, 6, 6)
    with torch.no_grad():
        out = model(**x, output_attentions=True)
        fast = model(**x)
    assert_close(out.last_hidden_state, want["last_hidden_state"], "last_hidden_state")
    assert_close(fast.last_hidden_state, want["last_hidden_state"], "SDPA path")
    assert_close(fast.pooler_output, want["pooler_output"], "pooler_output")
    for i, a in enumerate(out.attentions):
        assert_close(a, want[f"attentions.{i}"], f"attentions.{i}")


def test_decoder_3d_masks_match_v4():
    folder, x, want = _case("decoder_mask3d")
    model = W.BertLMHeadModel.from_pretrained(folder)
    assert x["encoder_attention_mask"].shape == (2, 6, 4)
    with torch.no_grad():
        out = model(**x, output_attentions=True)
        fast = model(**x, use_cache=False)
    assert_close(out.logits, want["logits"], "logits")
    assert_close(fast.logits, want["logits"], "SDPA path")
    for i, a in enumerate(out.attentions):
        assert_close(a, want[f"attentions.{i}"], f"attentions.{i}")
    for i, a in enumerate(out.cross_attentions):
        assert_close(a, want[f"cross_attentions.{i}"], f"cross_attentions.{i}")


def test_3d_padding_mask_equals_2d_mask():
    torch.manual_seed(0)
    model = W.BertModel(W.BertConfig(**BERT)).eval()
    ids = torch.randint(3, 99, (2, 5))
    mask2 = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    with torch.no_grad():
        want = model(ids, attention_mask=mask2, skip_padding=False).last_hidden_state
        got = model(ids, attention_mask=mask2[:, None, :].expand(2, 5, 5)).last_hidden_state
    assert_close(got, want, "3-D copy of a padding mask")


def test_gpt2_lower_triangular_3d_mask_equals_causal():
    torch.manual_seed(0)
    model = W.GPT2Model(W.GPT2Config(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=64)).eval()
    ids = torch.randint(3, 99, (2, 5))
    tril = torch.tril(torch.ones(5, 5, dtype=torch.long)).expand(2, 5, 5)
    with torch.no_grad():
        assert_close(model(ids, attention_mask=tril).last_hidden_state, model(ids).last_hidden_state, "tril")


@pytest.mark.parametrize("shape,match", [
    ((2, 5, 4), r"3-D attention_mask must be \(batch, sequence, past \+ sequence\) = \(2, 5, 5\), got \(2, 5, 4\)"),
    ((2, 5, 5, 1), r"attention_mask shape \(2, 5, 5, 1\) does not match"),
    ((1, 5), r"attention_mask shape \(1, 5\) does not match"),
])
def test_bad_mask_shapes_are_named(shape, match):
    model = W.BertModel(W.BertConfig(**BERT))
    with pytest.raises(ValueError, match=match):
        model(torch.ones(2, 5, dtype=torch.long), attention_mask=torch.ones(shape, dtype=torch.long))


def test_bad_3d_encoder_mask_is_named():
    model = W.BertLMHeadModel(W.BertConfig(**BERT, is_decoder=True, add_cross_attention=True))
    with pytest.raises(ValueError, match=r"3-D encoder_attention_mask .* \(2, 4\), got \(2, 5, 3\)"):
        model(torch.ones(2, 5, dtype=torch.long), encoder_hidden_states=torch.zeros(2, 4, 32),
              encoder_attention_mask=torch.ones(2, 5, 3))
