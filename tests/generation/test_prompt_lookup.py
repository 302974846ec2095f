"""Prompt-lookup decoding (``generate(..., prompt_lookup_num_tokens=k)``): drafts copied from earlier n-gram matches,
checked by the model in one pass. Greedy output is token-identical to plain greedy search and to transformers 5.23's
prompt lookup, for decoder-only models (the prompt is searched) and encoder-decoders (as in transformers, the
decoder's own sequence is searched, not the encoder input)."""
from __future__ import annotations

import pytest
import torch

from gen_support import batch
from warmstart.generation.drafts import PromptLookupDrafter
from warmstart.generation.step import Decoder

PROMPT = torch.tensor([[5, 6, 7, 8, 5, 6, 7, 9, 10, 5, 6, 11, 12, 13, 5, 6]])


def _draft(row, num=3, ngram=2, eos=None, budget=10):
    seq = torch.zeros(1, len(row) + 12, dtype=torch.long)
    seq[0, :len(row)] = torch.tensor(row)
    d = PromptLookupDrafter(num, ngram, None if eos is None else torch.tensor(eos))
    draft, q = d.draft(seq, len(row), budget)
    assert q is None
    assert seq[0, len(row):len(row) + draft.numel()].tolist() == draft.tolist()  # written after the sequence
    return draft.tolist()


def test_drafter_rules():
    # the last 2-gram (5, 6) first occurs at 0: what followed it is copied
    assert _draft([5, 6, 7, 8, 5, 6, 7, 9, 5, 6]) == [7, 8, 5]
    # no earlier (9, 6): the 1-gram (6) is looked up instead
    assert _draft([4, 6, 1, 2, 9, 6]) == [1, 2, 9]
    # the longest n-gram wins over an earlier shorter match
    assert _draft([3, 9, 4, 8, 3, 9, 2, 8, 3, 9], ngram=3) == [2, 8, 3]
    assert _draft([1, 2, 3, 4, 5, 2, 3], num=10) == [4, 5, 2, 3]  # copies stop at the end of the sequence
    assert _draft([1, 2, 3, 4, 5, 2, 3], num=10, budget=2) == [4, 5]  # and at the length budget
    assert _draft([1, 2, 3, 42, 5, 2, 3], eos=[42]) == []  # a copy stops before EOS
    assert _draft([1, 2, 7, 42, 5, 2], eos=[42]) == [7]
    assert _draft([1, 2, 3, 4]) == []  # nothing to copy
    assert _draft([1, 2, 3, 4], budget=0) == []


# Decoder-only RoBERTa is compared with plain greedy search only: transformers numbers its cached positions
# differently (see generate.py's list of deliberate differences), so its greedy output differs already.
@pytest.mark.parametrize("name", ["gpt2", "bert", "bertgen", "roberta"])
@pytest.mark.parametrize("lookup", [dict(prompt_lookup_num_tokens=3), dict(prompt_lookup_num_tokens=10,
                                                                             max_matching_ngram_size=1)])
def test_greedy_equals_plain_greedy_and_transformers(causal_pair, name, lookup):
    hf, ours = causal_pair(name)
    for kw in (dict(max_new_tokens=30), dict(max_new_tokens=20, repetition_penalty=1.2),
               dict(max_new_tokens=25, eos_token_id=[20, 30, 40, 50, 60])):
        plain = ours.generate(PROMPT, **kw)
        mine = ours.generate(PROMPT, **kw, **lookup)
        assert torch.equal(mine, plain), (kw, mine, plain)
        if name != "roberta":
            theirs = hf.generate(PROMPT, **kw, **lookup)
            assert torch.equal(mine, theirs), (kw, mine, theirs)


@pytest.mark.parametrize("name", ["bert2bert", "bert2gpt2"])
def test_seq2seq(seq2seq_pair, name):
    hf, ours = seq2seq_pair(name)
    ids, mask = batch(rows=1)
    for kw in (dict(max_new_tokens=25), dict(max_new_tokens=20, no_repeat_ngram_size=3)):
        plain = ours.generate(ids, attention_mask=mask, **kw)
        mine = ours.generate(ids, attention_mask=mask, prompt_lookup_num_tokens=4, **kw)
        theirs = hf.generate(ids, attention_mask=mask, prompt_lookup_num_tokens=4, **kw)
        assert torch.equal(mine, plain) and torch.equal(mine, theirs), (kw, mine, plain, theirs)


def test_repetitive_text_takes_fewer_passes(causal_pair, monkeypatch):
    """Where the text repeats, drafts are accepted: fewer passes of the model than tokens."""
    _, ours = causal_pair("gpt2")
    plain = ours.generate(PROMPT, max_new_tokens=30)
    calls = []
    real = Decoder.verify
    monkeypatch.setattr(Decoder, "verify", lambda self, t: calls.append(t.shape[1]) or real(self, t))
    out = ours.generate(PROMPT, max_new_tokens=30, prompt_lookup_num_tokens=5)
    assert torch.equal(out, plain)
    generated = plain[0, PROMPT.shape[1]:]
    if len(set(generated.tolist())) <= 3:  # the tiny random model falls into a loop (it does with seed 0)
        assert len(calls) < 15, calls


def test_sampling(causal_pair):
    _, ours = causal_pair("gpt2")
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        runs.append(ours.generate(PROMPT, do_sample=True, max_new_tokens=20, prompt_lookup_num_tokens=3))
    assert torch.equal(*runs)
    greedy = ours.generate(PROMPT, max_new_tokens=20)
    assert torch.equal(ours.generate(PROMPT, do_sample=True, top_k=1, max_new_tokens=20, prompt_lookup_num_tokens=3),
                       greedy)


def test_errors(causal_pair):
    hf, ours = causal_pair("gpt2")
    with pytest.raises(ValueError, match="assisted generate is only supported for batch_size = 1"):
        hf.generate(PROMPT.repeat(2, 1), max_new_tokens=3, prompt_lookup_num_tokens=3)
    with pytest.raises(ValueError, match=r"assisted generate is only supported for batch_size = 1, got a batch of 2"):
        ours.generate(PROMPT.repeat(2, 1), max_new_tokens=3, prompt_lookup_num_tokens=3)
    with pytest.raises(ValueError, match=r"prompt_lookup_num_tokens=3\) is only supported with greedy search and "
                                         r"sampling, but num_beams=3"):
        ours.generate(PROMPT, max_new_tokens=3, num_beams=3, prompt_lookup_num_tokens=3)
    with pytest.raises(ValueError, match=r"prompt_lookup_num_tokens must be None or an integer >= 1, got 0"):
        ours.generate(PROMPT, max_new_tokens=3, prompt_lookup_num_tokens=0)
    with pytest.raises(ValueError, match=r"max_matching_ngram_size must be None or an integer >= 1, got -1"):
        ours.generate(PROMPT, max_new_tokens=3, prompt_lookup_num_tokens=2, max_matching_ngram_size=-1)
