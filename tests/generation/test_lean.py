"""The lean decode step (nn/lean_step.py) gives bit-for-bit the logits of the full forward, so every search and
processor produces the same tokens and scores with it as without it; where it cannot be exact it is not used."""
import pytest
import torch

from gen_support import EOS, batch
from test_parity import BEAM_GRID, PROCESSORS
from warmstart.nn import lean_step as L
from warmstart.generation.step import Decoder

SEARCHES = [dict(), dict(num_beams=3), dict(do_sample=True, top_k=8, top_p=0.9, num_return_sequences=2),
            dict(penalty_alpha=0.6, top_k=4), dict(num_beams=4, num_beam_groups=2, diversity_penalty=1.0),
            dict(num_beams=3, force_words_ids=[[11]]), dict(prompt_lookup_num_tokens=3)]


@pytest.fixture
def lean_calls(monkeypatch):
    """Counts the lean steps taken."""
    calls = []
    real = L.LeanStep.__call__
    monkeypatch.setattr(L.LeanStep, "__call__", lambda self, *a, **kw: calls.append(1) or real(self, *a, **kw))
    return calls


def _both(model, monkeypatch, **kw):
    if "prompt_lookup_num_tokens" in kw:  # assisted decoding takes one row
        kw = {**kw, "input_ids": kw["input_ids"][:1],
              "attention_mask": None if kw["attention_mask"] is None else kw["attention_mask"][:1]}
    outs = []
    for lean in (True, False):
        monkeypatch.setattr(Decoder, "lean", lean)
        torch.manual_seed(0)
        outs.append(model.generate(**kw, return_dict_in_generate=True, output_scores=True))
    return outs


def _assert_identical(a, b, what):
    assert torch.equal(a.sequences, b.sequences), what
    for i, (x, y) in enumerate(zip(a.scores, b.scores)):
        assert torch.equal(x, y), f"{what}: scores of step {i} differ"


def _settings(every: bool):
    """Every search; with ``every`` also the beam grid's corners and each processor with and without beams."""
    yield from SEARCHES
    if every:
        yield from BEAM_GRID[::3]
        for p in PROCESSORS:
            yield from (dict(p), dict(num_beams=3, **p))
    else:
        yield from (dict(repetition_penalty=1.3), dict(num_beams=3, no_repeat_ngram_size=2, min_new_tokens=4))


@pytest.mark.parametrize("name", ["bert2bert", "roberta2roberta", "bert2gpt2"])
def test_seq2seq_every_search_and_processor(seq2seq_pair, name, monkeypatch, lean_calls):
    _, ours = seq2seq_pair(name)
    ids, mask = batch(pad_id=ours.config.encoder.pad_token_id or 0)
    for kw in _settings(every=name == "bert2bert"):  # the processors act on logits alike in every family
        kw = {"max_new_tokens": 8, "eos_token_id": EOS, **kw}
        if "max_length" in kw:
            del kw["max_new_tokens"]
        a, b = _both(ours, monkeypatch, input_ids=ids, attention_mask=mask, **kw)
        _assert_identical(a, b, f"{name} {kw}")
    assert lean_calls


@pytest.mark.parametrize("name", ["bert", "gpt2", "bertgen"])
@pytest.mark.parametrize("padded", [False, True], ids=["full", "left-padded"])
def test_causal_lm(causal_pair, name, padded, monkeypatch, lean_calls):
    _, ours = causal_pair(name)
    ids, mask = batch(left=True) if padded else (batch(rows=1)[0], None)
    for kw in _settings(every=False):
        a, b = _both(ours, monkeypatch, input_ids=ids, attention_mask=mask, max_new_tokens=8, eos_token_id=EOS,
                     pad_token_id=0, **kw)
        _assert_identical(a, b, f"{name} {kw}")
    assert lean_calls


def test_minilm_bert2bert_padded_batch(minilm_pair, minilm_tokenizer, monkeypatch, lean_calls):
    _, ours = minilm_pair
    enc = minilm_tokenizer(["a short one", "the council voted on tuesday to expand the bicycle lane network"],
                           padding=True, return_tensors="pt")
    for kw in (dict(), dict(num_beams=4)):
        a, b = _both(ours, monkeypatch, **enc, max_new_tokens=6, min_new_tokens=6, eos_token_id=102, **kw)
        _assert_identical(a, b, f"minilm {kw}")
    assert lean_calls


def test_not_used_where_the_full_forward_is_needed(seq2seq_pair, causal_pair, lean_calls):
    """Per-step attentions or hidden states, a head mask and training mode keep the full forward."""
    _, ours = seq2seq_pair("bert2bert")
    ids, mask = batch()
    ours.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, return_dict_in_generate=True,
                  output_attentions=True, output_hidden_states=True)
    _, lm = causal_pair("bert")
    c = lm.config
    lm.generate(input_ids=ids[:1], max_new_tokens=4, head_mask=torch.ones(c.num_hidden_layers, c.num_attention_heads))
    ours.train()
    try:
        ours.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4)
    finally:
        ours.eval()
    assert not lean_calls
