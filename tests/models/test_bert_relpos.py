"""relative_key / relative_key_query against reference values from transformers 4.46.3 (tests/assets/relpos).

transformers 5 dropped relative position embeddings, so the oracle is v4, frozen into fixtures.
"""
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import warmstart as W
from parity import assert_close

ASSETS = Path(__file__).parent.parent / "assets" / "relpos"
TYPES = ["relative_key", "relative_key_query"]


def _case(name):
    folder = ASSETS / name
    return folder, load_file(folder / "inputs.safetensors"), load_file(folder / "expected.safetensors")


@pytest.mark.parametrize("ptype", TYPES)
@pytest.mark.parametrize("skip_padding", [False, True])
def test_encoder_matches_v4(ptype, skip_padding):
    folder, x, want = _case(f"encoder_{ptype}")
    model = W.BertModel.from_pretrained(folder)
    model.skip_padding = skip_padding
    assert model.config.position_embedding_type == ptype
    with torch.no_grad():
        out = model(x["input_ids"], attention_mask=x["attention_mask"], token_type_ids=x["token_type_ids"],
                    output_hidden_states=True, output_attentions=True)
        plain = model(x["input_ids"], attention_mask=x["attention_mask"], token_type_ids=x["token_type_ids"])
    assert_close(out.last_hidden_state, want["last_hidden_state"], "last_hidden_state")
    assert_close(out.pooler_output, want["pooler_output"], "pooler_output")
    for i, h in enumerate(out.hidden_states):
        assert_close(h, want[f"hidden_states.{i}"], f"hidden_states.{i}")
    for i, a in enumerate(out.attentions):
        assert_close(a, want[f"attentions.{i}"], f"attentions.{i}")
    real = x["attention_mask"].bool()
    assert_close(plain.last_hidden_state[real], want["last_hidden_state"][real], "fast path, real tokens")


def test_encoder_gradients_match_v4():
    folder, x, want = _case("encoder_relative_key_query")
    model = W.BertModel.from_pretrained(folder)
    out = model(x["input_ids"], attention_mask=x["attention_mask"], token_type_ids=x["token_type_ids"],
                skip_padding=False)
    out.last_hidden_state.sum().backward()
    assert_close(model.encoder.layer[0].attn.distance_embedding.weight.grad, want["grad.distance_embedding.layer0"],
                 "distance embedding grad")
    assert_close(model.embeddings.word_embeddings.weight.grad, want["grad.word_embeddings"], "word embedding grad")


@pytest.mark.parametrize("ptype", TYPES)
def test_decoder_matches_v4_and_cached_decoding(ptype):
    folder, x, want = _case(f"decoder_{ptype}")
    model = W.BertLMHeadModel.from_pretrained(folder)
    kw = dict(encoder_hidden_states=x["encoder_hidden_states"], encoder_attention_mask=x["encoder_attention_mask"])
    types = x["token_type_ids"]
    with torch.no_grad():
        out = model(token_type_ids=types, input_ids=x["input_ids"], attention_mask=x["attention_mask"], output_hidden_states=True,
                    output_attentions=True, labels=x["labels"], **kw)
        masked = model(x["input_ids"], token_type_ids=types, attention_mask=x["attention_mask"], labels=x["labels_masked"], **kw)
    assert_close(out.logits, want["logits"], "logits")
    assert_close(out.loss, want["loss"], "loss")
    assert_close(masked.loss, want["loss_masked"], "loss with padding ignored")
    for i, a in enumerate(out.attentions):
        assert_close(a, want[f"attentions.{i}"], f"attentions.{i}")
    for i, a in enumerate(out.cross_attentions):
        assert_close(a, want[f"cross_attentions.{i}"], f"cross_attentions.{i}")

    # Prefill 4 tokens, then one token per step with the cache (the fixture's cached_logits come from v4).
    ids, mask = x["input_ids"], x["attention_mask"]
    steps = []
    with torch.no_grad():
        o = model(ids[:, :4], attention_mask=mask[:, :4], token_type_ids=types[:, :4], use_cache=True, **kw)
        steps.append(o.logits)
        past = o.past_key_values
        for t in range(4, ids.shape[1]):
            o = model(ids[:, t:t + 1], attention_mask=mask[:, :t + 1], token_type_ids=types[:, t:t + 1],
                      past_key_values=past, use_cache=True, **kw)
            past = o.past_key_values
            steps.append(o.logits)
    assert_close(torch.cat(steps, 1), want["cached_logits"], "cached logits")


@pytest.mark.parametrize("ptype", TYPES)
def test_multi_token_continuation_with_cache_equals_full_forward(ptype):
    # v4 gave every query of a multi-token cached step the last position (a bug); we use past + i.
    folder, x, _ = _case(f"decoder_{ptype}")
    model = W.BertLMHeadModel.from_pretrained(folder)
    ids = x["input_ids"][:1]
    kw = dict(encoder_hidden_states=x["encoder_hidden_states"][:1])
    with torch.no_grad():
        full = model(ids, **kw).logits
        first = model(ids[:, :3], use_cache=True, **kw)
        rest = model(ids[:, 3:], past_key_values=first.past_key_values, use_cache=True, **kw)
    assert_close(torch.cat([first.logits, rest.logits], 1), full, "multi-token continuation")
