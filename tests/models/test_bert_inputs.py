"""Bad inputs raise errors that name the problem and the value, before any deep IndexError."""
import pytest
import torch

import warmstart as W
from parity import TINY


@pytest.fixture(scope="module")
def model():
    return W.BertForMaskedLM(W.BertConfig(**TINY)).eval()


def test_too_long_for_position_table(model):
    with pytest.raises(ValueError, match=r"sequence length 65 .*max_position_embeddings = 64"):
        model(torch.ones(1, 65, dtype=torch.long))


@pytest.mark.parametrize("bad,match", [(99, r"input_ids contains 99, outside \[0, 99\) \(vocab_size"),
                                       (-1, r"input_ids contains -1")])
def test_ids_outside_vocabulary(model, bad, match):
    ids = torch.ones(1, 5, dtype=torch.long)
    ids[0, 2] = bad
    with pytest.raises(ValueError, match=match):
        model(ids)


def test_float_ids(model):
    with pytest.raises(TypeError, match="input_ids must be an integer tensor.*float32"):
        model(torch.ones(1, 5))


def test_attention_mask_shape(model):
    with pytest.raises(ValueError, match=r"attention_mask shape \(1, 4\) does not match input_ids \(1, 5\)"):
        model(torch.ones(1, 5, dtype=torch.long), attention_mask=torch.ones(1, 4, dtype=torch.long))


def test_token_type_ids_out_of_range(model):
    with pytest.raises(ValueError, match=r"token_type_ids contains 2.*type_vocab_size"):
        model(torch.ones(1, 5, dtype=torch.long), token_type_ids=torch.full((1, 5), 2))


def test_one_dimensional_ids_and_both_inputs(model):
    with pytest.raises(ValueError, match=r"input_ids must be 2-D.*\(5,\)"):
        model(torch.ones(5, dtype=torch.long))
    with pytest.raises(ValueError, match="exactly one of input_ids or inputs_embeds"):
        model(torch.ones(1, 5, dtype=torch.long), inputs_embeds=torch.zeros(1, 5, TINY["hidden_size"]))


def test_encoder_states_without_cross_attention(model):
    with pytest.raises(ValueError, match="no cross-attention"):
        model.bert(torch.ones(1, 5, dtype=torch.long), encoder_hidden_states=torch.zeros(1, 3, TINY["hidden_size"]))


def test_cross_attention_needs_decoder():
    with pytest.raises(ValueError, match="is_decoder"):
        W.BertModel(W.BertConfig(**TINY, add_cross_attention=True))


def test_inputs_embeds_path_matches_ids(model):
    ids = torch.randint(0, 99, (2, 6))
    with torch.no_grad():
        a = model(ids).logits
        b = model(inputs_embeds=model.get_input_embeddings()(ids)).logits
    assert torch.allclose(a, b, atol=1e-6)
