"""generate() behaves as transformers v4 where v5 changed or removed the behaviour (issue 11).

Where transformers 5.23 still has the behaviour it is the live oracle; otherwise the reference values are v4.46.3's,
frozen in tests/assets/generate_v4/ by tests/assets/make_generate_v4_fixtures.py (its docstring says how).
"""
from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import pytest
import torch
import transformers as T
from safetensors.torch import load_file

import warmstart as W

ASSETS = Path(__file__).parent.parent / "assets" / "generate_v4"
CASES = json.loads((ASSETS / "expected.json").read_text())["cases"]
TENSORS = load_file(str(ASSETS / "tensors.safetensors"))
MODELS = {"gpt2": W.GPT2LMHeadModel, "bert_bidirectional": W.BertLMHeadModel, "bert2bert": W.EncoderDecoderModel}
GPT2 = dict(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=64, pad_token_id=0, bos_token_id=1,
            eos_token_id=2)
BERT = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)

_loaded: dict = {}


def model(name: str):
    if name not in _loaded:
        _loaded[name] = MODELS[name].from_pretrained(ASSETS / name).eval()
    return _loaded[name]


def run_case(case: str, name: str):
    c = CASES[case]
    kw = dict(c["settings"])
    if c["mask"]:
        kw["attention_mask"] = TENSORS[c["mask"]]
    for k in c["tensors"]:
        kw[k] = TENSORS[f"{case}.{k}"]
    return c, model(name).generate(TENSORS[c["ids"]], **kw)


def sequences(out):
    return out.sequences if hasattr(out, "sequences") else out


# ---- 1. diverse beam search + repetition penalty -----------------------------------------------------------------
@pytest.mark.parametrize("case", ["diverse_repetition", "diverse_repetition_plain"])
def test_diverse_beam_with_repetition_penalty_matches_v4(case):
    c, out = run_case(case, "gpt2")
    assert sequences(out).tolist() == c["sequences"]


# ---- 2. the default length counts the prompt / decoder start token -----------------------------------------------
@pytest.mark.parametrize("case, name", [("default_length_gpt2", "gpt2"), ("default_length_bert2bert", "bert2bert")])
def test_default_max_length_counts_the_prompt(case, name):
    with pytest.warns(UserWarning, match=r"model-agnostic default max_length=20"):
        c, out = run_case(case, name)
    assert len(c["sequences"][0]) == 20
    assert sequences(out).tolist() == c["sequences"]


def test_default_max_length_shorter_than_the_prompt_is_an_error():
    ids = torch.randint(3, 90, (1, 25))
    with pytest.warns(UserWarning), pytest.raises(ValueError, match=r"already has 25 tokens but the default "
                                                                    r"max_length=20"):
        model("gpt2").generate(ids)


def test_config_max_length_is_total_length():
    m = W.GPT2LMHeadModel(W.GPT2Config(**GPT2, max_length=9)).eval()
    assert m.generate(torch.tensor([[5, 6, 7]]), eos_token_id=None).shape == (1, 9)


# ---- 3. use_cache=False re-feeds the whole sequence --------------------------------------------------------------
def test_no_cache_attentions_and_hidden_states_cover_every_position():
    c, out = run_case("no_cache_gpt2", "gpt2")
    assert out.sequences.tolist() == c["sequences"]
    assert [list(s[0].shape) for s in out.attentions] == c["attentions_shapes"]  # (3, 4, T, T) at every step
    assert [list(s[0].shape) for s in out.hidden_states] == c["hidden_states_shapes"]
    assert out.past_key_values is None
    mask = TENSORS["left_mask"].bool()
    # Values of the last step; v4 numbers padded positions differently (position 1, ours 0), so compare real ones.
    keep = torch.cat([mask, torch.ones(3, out.sequences.shape[1] - 1 - mask.shape[1], dtype=torch.bool)], 1)
    ref_h, ours_h = TENSORS["no_cache_gpt2.hidden_states"], out.hidden_states[-1][0]
    assert (ref_h - ours_h)[keep].abs().max() <= 1e-5
    ref_a, ours_a = TENSORS["no_cache_gpt2.attentions"], out.attentions[-1][0]
    assert (ref_a - ours_a).permute(0, 2, 1, 3)[keep].abs().max() <= 1e-5


def test_no_cache_beams_and_seq2seq_match_v4():
    c, out = run_case("no_cache_beams_gpt2", "gpt2")
    assert sequences(out).tolist() == c["sequences"]
    c, out = run_case("no_cache_bert2bert", "bert2bert")
    assert out.sequences.tolist() == c["sequences"]
    assert [list(s[0].shape) for s in out.decoder_attentions] == c["decoder_attentions_shapes"]
    assert (out.decoder_attentions[-1][0] - TENSORS["no_cache_bert2bert.decoder_attentions"]).abs().max() <= 1e-5


@pytest.mark.parametrize("kw", [dict(), dict(num_beams=3), dict(do_sample=True, num_return_sequences=2)])
def test_no_cache_gives_the_cached_tokens(kw):
    m = model("gpt2")
    ids, mask = TENSORS["left_ids"], TENSORS["left_mask"]
    runs = []
    for use_cache in (True, False):
        torch.manual_seed(0)
        runs.append(m.generate(ids, attention_mask=mask, max_new_tokens=6, use_cache=use_cache, **kw))
    assert torch.equal(runs[0], runs[1])


# ---- 4. an LM head built with is_decoder=False generates bidirectionally -----------------------------------------
@pytest.mark.parametrize("case", ["bidirectional_bert", "bidirectional_bert_beams"])
def test_bidirectional_lm_head_generates_as_v4(case, caplog):
    caplog.set_level(logging.WARNING, logger="warmstart")
    m = model("bert_bidirectional")
    assert not m.config.is_decoder and m.can_generate() and m.generation_config is not None
    c, out = run_case(case, "bert_bidirectional")
    assert sequences(out).tolist() == c["sequences"]
    assert "built with is_decoder=False" in caplog.text and "re-reads the whole sequence" in caplog.text


def test_masked_lm_still_cannot_generate():
    assert not W.BertForMaskedLM(W.BertConfig(**BERT)).can_generate()


# ---- 5. past_key_values are v4 tuples ----------------------------------------------------------------------------
def test_forwards_return_tuples_unless_a_cache_object_goes_in():
    m = model("gpt2")
    ids = TENSORS["plain_ids"]
    with torch.no_grad():
        out = m(ids, use_cache=True)
        assert isinstance(out.past_key_values, tuple) and len(out.past_key_values) == 2
        assert all(isinstance(layer, tuple) and len(layer) == 2 for layer in out.past_key_values)
        assert out.past_key_values[0][0].shape == (2, 4, 5, 8)
        nxt = m(ids[:, :1], past_key_values=out.past_key_values, use_cache=True)
        assert isinstance(nxt.past_key_values, tuple) and nxt.past_key_values[0][0].shape[2] == 6
        cache = W.KVCache()
        assert m(ids, past_key_values=cache, use_cache=True).past_key_values is cache
        s2s = model("bert2bert")(input_ids=TENSORS["source_ids"], decoder_input_ids=ids[:, :2], use_cache=True)
    assert isinstance(s2s.past_key_values, tuple) and len(s2s.past_key_values[0]) == 4  # self + cross K/V


def test_generate_returns_tuples():
    m = model("gpt2")
    out = m.generate(TENSORS["plain_ids"], max_new_tokens=3, return_dict_in_generate=True, eos_token_id=None)
    assert isinstance(out.past_key_values, tuple) and out.past_key_values[0][0].shape[2] == 7


# ---- 6. inputs_embeds and head_mask ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gpt2_pair():
    torch.manual_seed(0)
    hf = T.GPT2LMHeadModel(T.GPT2Config(**GPT2, initializer_range=0.2)).eval()
    with tempfile.TemporaryDirectory() as d:
        hf.save_pretrained(d)
        ours = W.GPT2LMHeadModel.from_pretrained(d).eval()
    return hf, ours


@pytest.mark.parametrize("kw", [dict(), dict(num_beams=3), dict(repetition_penalty=1.3)])
def test_inputs_embeds_matches_transformers(gpt2_pair, kw):
    hf, ours = gpt2_pair
    ids = torch.tensor([[0, 0, 5, 6, 7, 8], [9, 4, 5, 6, 7, 8]])
    mask = (ids != 0).long()
    emb = hf.get_input_embeddings()(ids).detach()
    for extra in (dict(attention_mask=mask), dict()):
        ref = hf.generate(inputs_embeds=emb, max_new_tokens=5, eos_token_id=None, **extra, **kw)
        got = ours.generate(inputs_embeds=emb, max_new_tokens=5, eos_token_id=None, **extra, **kw)
        assert got.shape == (2, 5) and torch.equal(got, ref)  # only the new tokens, as v4
    both = dict(inputs_embeds=emb, attention_mask=mask, max_new_tokens=5, eos_token_id=None, **kw)
    got = ours.generate(ids, **both)
    assert torch.equal(got[:, :6], ids) and torch.equal(got, hf.generate(ids, **both))  # prompt ids returned too


def test_inputs_embeds_default_length_counts_the_embedded_prompt(gpt2_pair):
    _, ours = gpt2_pair
    emb = ours.get_input_embeddings()(torch.tensor([[5, 6, 7, 8]])).detach()
    with pytest.warns(UserWarning, match="default max_length"):
        assert ours.generate(inputs_embeds=emb, eos_token_id=None).shape == (1, 16)  # v4: 20 - 4
    with pytest.raises(ValueError, match=r"inputs_embeds must be 3-D"):
        ours.generate(inputs_embeds=emb[0], max_new_tokens=2)
    with pytest.raises(ValueError, match=r"inputs_embeds needs the cache"):
        ours.generate(inputs_embeds=emb, max_new_tokens=2, use_cache=False)


@pytest.mark.parametrize("case, name", [("head_mask_gpt2", "gpt2"),
                                        ("head_mask_bidirectional_bert", "bert_bidirectional")])
def test_head_mask_reaches_every_forward(case, name):
    c, out = run_case(case, name)
    assert sequences(out).tolist() == c["sequences"]
    plain = model(name).generate(TENSORS[c["ids"]], **{k: v for k, v in c["settings"].items()},
                                 **({"attention_mask": TENSORS[c["mask"]]} if c["mask"] else {}))
    assert not torch.equal(plain, sequences(out))  # the mask matters for these models


# ---- 7. generation defaults on model configs ---------------------------------------------------------------------
def test_model_configs_carry_v4_generation_defaults(tmp_path):
    c = W.BertConfig(**BERT)
    assert (c.max_length, c.num_beams, c.min_length, c.do_sample, c.early_stopping, c.no_repeat_ngram_size,
            c.top_k, c.top_p, c.repetition_penalty, c.bad_words_ids) == (20, 1, 0, False, False, 0, 50, 1.0, 1.0,
                                                                         None)
    assert "max_length" not in c.to_dict()  # written only when changed, as v4's config.json
    c = W.GPT2Config(**GPT2, num_beams=3, no_repeat_ngram_size=2, max_length=12)
    c.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert (saved["num_beams"], saved["no_repeat_ngram_size"], saved["max_length"]) == (3, 2, 12)
    assert "min_length" not in saved and "do_sample" not in saved
    back = W.GPT2Config.from_pretrained(tmp_path)
    assert (back.num_beams, back.no_repeat_ngram_size, back.max_length, back.top_k) == (3, 2, 12, 50)
    v4 = T.GPT2Config.from_pretrained(tmp_path)  # transformers reads what we wrote
    assert v4.to_dict().get("num_beams", 3) == 3
    # v4's model.save_pretrained moves them to generation_config.json and writes null in config.json
    moved = W.GPT2Config(**GPT2, num_beams=None, max_length=None)
    assert moved.num_beams is None and W.GPT2LMHeadModel(moved).generation_config.num_beams == 1
    with pytest.raises(ValueError, match=r"num_beams must be of type int or none"):
        W.GPT2Config(**GPT2, num_beams="4")


def test_generate_reads_model_config_defaults(tmp_path):
    torch.manual_seed(0)
    m = W.GPT2LMHeadModel(W.GPT2Config(**GPT2, num_beams=3, max_length=10)).eval()
    ids = torch.tensor([[5, 6, 7]])
    got = m.generate(ids, eos_token_id=None)
    assert got.shape == (1, 10)
    assert torch.equal(got, m.generate(ids, num_beams=3, max_length=10, eos_token_id=None))
    m.save_pretrained(tmp_path)
    (tmp_path / "generation_config.json").unlink()  # loaded without one: the model config's values apply
    back = W.GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    assert back.generation_config.num_beams == 3 and torch.equal(back.generate(ids, eos_token_id=None), got)


# ---- 8. pad / eos -1: never stop -----------------------------------------------------------------------------------
def test_minus_one_pad_and_eos_never_stop(gpt2_pair, caplog):
    caplog.set_level(logging.WARNING, logger="warmstart")
    hf, ours = gpt2_pair
    ids = torch.tensor([[0, 0, 5, 6, 7], [3, 4, 5, 6, 7]])
    mask = (ids != 0).long()
    for kw in (dict(), dict(num_beams=2), dict(num_beams=4, num_beam_groups=2, diversity_penalty=0.5)):
        got = ours.generate(ids, attention_mask=mask, eos_token_id=-1, pad_token_id=-1, max_new_tokens=6, **kw)
        assert got.shape == (2, 11)
        if "num_beam_groups" not in kw:  # transformers 5 has no diverse beam search
            ref = hf.generate(ids, attention_mask=mask, eos_token_id=-1, pad_token_id=-1, max_new_tokens=6, **kw)
            assert torch.equal(got, ref)
    assert "generation does not stop on it" in caplog.text
    m = W.GPT2LMHeadModel(W.GPT2Config(**{**GPT2, "eos_token_id": -1, "pad_token_id": -1})).eval()
    assert m.generate(ids[1:], max_new_tokens=4, min_length=7).shape == (1, 9)
    with pytest.raises(ValueError, match=r"eos_token_id must be None, a token id"):
        ours.generate(ids, eos_token_id=-3)
