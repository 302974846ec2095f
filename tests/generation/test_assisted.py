"""Assisted decoding (``generate(..., assistant_model=small)``): token-identical to plain greedy search and to
transformers 5.23's assisted generation, for decoder-only models and encoder-decoders, with assistants that agree
with the model always (the model itself), often (a perturbed copy) or rarely (a smaller random model).

Sampling with an assistant uses the speculative-sampling acceptance rule. Its RNG draws differ from transformers'
(transformers drafts before the model's first pass, warmstart after it), so sampled tokens are not compared with
transformers; instead: the rule reproduces the model's distribution (an exact check on a small vocabulary), seeds
make it deterministic, and top_k=1 sampling equals greedy search.
"""
from __future__ import annotations

import copy

import pytest
import torch
import transformers as T

import warmstart as W
from gen_support import GPT2_TINY, START, batch
from parity import TINY, hf_encoder_decoder, spread_weights
from warmstart.generation import assisted as A
from warmstart.generation.step import Decoder

EOS_GPT2 = GPT2_TINY["eos_token_id"]
PROMPT = torch.tensor([[5, 6, 7, 8, 5, 6, 7, 9, 10, 5, 6]])

SMALL = {  # a 1-layer model of the same family and vocabulary: a poor assistant
    "gpt2": lambda: T.GPT2LMHeadModel(T.GPT2Config(**{**GPT2_TINY, "n_layer": 1})),
    "bert": lambda: T.BertLMHeadModel(T.BertConfig(**{**TINY, "num_hidden_layers": 1}, is_decoder=True)),
}
OURS = {"gpt2": W.GPT2LMHeadModel, "bert": W.BertLMHeadModel}


def _perturb(model, scale: float, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * p.std().nan_to_num() * torch.randn(p.shape, generator=g))


@pytest.fixture(scope="module")
def helpers(tmp_path_factory, causal_pair, seq2seq_pair):
    """(family, kind) -> (transformers assistant, warmstart assistant); kind: self | noisy | small."""
    built = {}

    def get(family: str, kind: str):
        key = (family, kind)
        if key in built:
            return built[key]
        seq2seq = family == "bert2bert"
        hf_main, ours_main = seq2seq_pair(family) if seq2seq else causal_pair(family)
        if kind == "self":
            built[key] = (hf_main, ours_main)
            return built[key]
        torch.manual_seed(1)
        if kind == "noisy":
            hf = copy.deepcopy(hf_main)
            _perturb(hf, 0.3, seed=2)
        elif seq2seq:
            small = T.BertConfig(**{**TINY, "num_hidden_layers": 1})
            hf = hf_encoder_decoder(small, T.BertConfig(**{**TINY, "num_hidden_layers": 1}), START)
        else:
            hf = SMALL[family]()
            spread_weights(hf, seed=3)
        folder = tmp_path_factory.mktemp(f"assistant_{family}_{kind}")
        hf.save_pretrained(folder)
        ours_cls = W.EncoderDecoderModel if seq2seq else OURS[family]
        built[key] = (type(hf).from_pretrained(folder).eval(), ours_cls.from_pretrained(folder))
        return built[key]

    return get


def _prompt(family):
    if family == "bert2bert":
        ids, mask = batch(rows=1)
        return ids, mask
    return PROMPT, None


SETTINGS = (dict(max_new_tokens=25), dict(max_new_tokens=18, repetition_penalty=1.3, no_repeat_ngram_size=3),
            dict(max_new_tokens=15, eos_token_id=[20, 30, 40, 50, 60], min_new_tokens=4))


@pytest.mark.parametrize("family, kind", [
    ("gpt2", "self"), ("gpt2", "noisy"), ("gpt2", "small"), ("bert", "noisy"),
    pytest.param("bert", "small", marks=pytest.mark.slow), ("bert2bert", "noisy"),
    pytest.param("bert2bert", "small", marks=pytest.mark.slow)])
def test_greedy_equals_plain_greedy_and_transformers(causal_pair, seq2seq_pair, helpers, family, kind):
    hf, ours = seq2seq_pair(family) if family == "bert2bert" else causal_pair(family)
    hf_helper, our_helper = helpers(family, kind)
    ids, mask = _prompt(family)
    for kw in SETTINGS if family == "gpt2" else SETTINGS[1:]:
        plain = ours.generate(ids, attention_mask=mask, **kw)
        ours_assisted = ours.generate(ids, attention_mask=mask, assistant_model=our_helper, **kw)
        theirs = hf.generate(ids, attention_mask=mask, assistant_model=hf_helper, **kw)
        assert torch.equal(ours_assisted, plain), (kw, ours_assisted, plain)
        assert torch.equal(ours_assisted, theirs), (kw, ours_assisted, theirs)


@pytest.mark.parametrize("family", ["gpt2", "bert"])
def test_left_padded_single_row(causal_pair, helpers, family):
    """Explicit positions and a padded mask: verify() numbers the draft's positions, crop() takes them back."""
    hf, ours = causal_pair(family)
    hf_helper, our_helper = helpers(family, "noisy")
    ids, mask = PROMPT.clone(), torch.ones_like(PROMPT)
    ids[:, :3], mask[:, :3] = 0, 0
    kw = dict(max_new_tokens=20, pad_token_id=0)
    plain = ours.generate(ids, attention_mask=mask, **kw)
    mine = ours.generate(ids, attention_mask=mask, assistant_model=our_helper, **kw)
    theirs = hf.generate(ids, attention_mask=mask, assistant_model=hf_helper, **kw)
    assert torch.equal(mine, plain) and torch.equal(mine, theirs), (mine, plain, theirs)


def test_outputs_match_a_plain_search(causal_pair, helpers):
    """return_dict_in_generate: one entry per token, as a token-by-token search returns them."""
    _, ours = causal_pair("gpt2")
    _, helper = helpers("gpt2", "noisy")
    kw = dict(max_new_tokens=12, return_dict_in_generate=True, output_scores=True, output_logits=True,
              output_attentions=True, output_hidden_states=True)
    plain = ours.generate(PROMPT, **kw)
    fast = ours.generate(PROMPT, assistant_model=helper, **kw)
    assert torch.equal(plain.sequences, fast.sequences)
    for field in ("scores", "logits"):
        a, b = getattr(plain, field), getattr(fast, field)
        assert len(a) == len(b) == 12
        for x, y in zip(a, b):
            torch.testing.assert_close(x, y, atol=1e-5, rtol=0)
    for field in ("attentions", "hidden_states"):
        a, b = getattr(plain, field), getattr(fast, field)
        assert len(a) == len(b) == 12
        for step_a, step_b in zip(a, b):
            for x, y in zip(step_a, step_b):
                assert x.shape == y.shape
                torch.testing.assert_close(x, y, atol=1e-5, rtol=0)
    assert fast.past_key_values[0][0].shape == plain.past_key_values[0][0].shape  # rejected positions cropped


def test_seq2seq_cross_attentions(seq2seq_pair, helpers):
    _, ours = seq2seq_pair("bert2bert")
    _, helper = helpers("bert2bert", "noisy")
    ids, mask = batch(rows=1)
    kw = dict(max_new_tokens=8, return_dict_in_generate=True, output_attentions=True)
    plain = ours.generate(ids, attention_mask=mask, **kw)
    fast = ours.generate(ids, attention_mask=mask, assistant_model=helper, **kw)
    assert torch.equal(plain.sequences, fast.sequences)
    for a, b in zip(plain.cross_attentions, fast.cross_attentions):
        for x, y in zip(a, b):
            torch.testing.assert_close(x, y, atol=1e-5, rtol=0)


def _count_verify(monkeypatch):
    calls = []
    real = Decoder.verify

    def spy(self, tokens):
        calls.append(tokens.shape[1])
        return real(self, tokens)

    monkeypatch.setattr(Decoder, "verify", spy)
    return calls


def test_a_perfect_assistant_needs_few_passes(causal_pair, monkeypatch):
    """The model as its own assistant: every draft is kept, so 5-token drafts give 6 tokens per pass."""
    _, ours = causal_pair("gpt2")
    ours.generation_config = W.GenerationConfig(num_assistant_tokens=5, assistant_confidence_threshold=0.0)
    try:
        calls = _count_verify(monkeypatch)
        out = ours.generate(PROMPT, max_new_tokens=25, assistant_model=ours)
    finally:
        ours.generation_config = None
    assert out.shape[1] == PROMPT.shape[1] + 25
    # The model fed through verify: the assistant's catch-up calls (1-2 tokens) and the model's checks (6 tokens).
    checks = [n for n in calls if n == 6]
    assert len(checks) == 4  # 1 token from the prefill, 4 x 6, then the last one (budget) -- 1 + 24 = 25


def test_call_settings_override_the_assistants(causal_pair, helpers, monkeypatch):
    _, ours = causal_pair("gpt2")
    _, helper = helpers("gpt2", "self")
    calls = _count_verify(monkeypatch)
    ours.generate(PROMPT, max_new_tokens=9, assistant_model=helper, num_assistant_tokens=2,
                  assistant_confidence_threshold=0.0)
    assert max(calls) == 3  # last token + 2 draft tokens


def test_heuristic_schedule_persists(causal_pair, helpers):
    _, ours = causal_pair("gpt2")
    hf_helper, helper = helpers("gpt2", "small")
    for schedule, persists in (("heuristic", True), ("heuristic_transient", False), ("constant", False)):
        helper.generation_config = W.GenerationConfig(num_assistant_tokens=7, num_assistant_tokens_schedule=schedule)
        plain = ours.generate(PROMPT, max_new_tokens=20)
        assert torch.equal(ours.generate(PROMPT, max_new_tokens=20, assistant_model=helper), plain)
        after = helper.generation_config.num_assistant_tokens
        assert (after != 7) == persists, (schedule, after)
    helper.generation_config = None


def test_confidence_threshold_cuts_drafts(causal_pair, helpers, monkeypatch):
    """A threshold of 1.0 stops every draft after its first token; the output is still greedy search's."""
    _, ours = causal_pair("gpt2")
    _, helper = helpers("gpt2", "noisy")
    plain = ours.generate(PROMPT, max_new_tokens=15)
    calls = _count_verify(monkeypatch)
    out = ours.generate(PROMPT, max_new_tokens=15, assistant_model=helper, assistant_confidence_threshold=1.0)
    assert torch.equal(out, plain)
    assert max(calls) <= 2


def test_streaming(causal_pair, helpers):
    _, ours = causal_pair("gpt2")
    _, helper = helpers("gpt2", "noisy")
    got = []

    class Collect(W.BaseStreamer if hasattr(W, "BaseStreamer") else object):
        def put(self, value):
            got.append(value.reshape(-1).tolist())

        def end(self):
            got.append("end")

    out = ours.generate(PROMPT, max_new_tokens=12, assistant_model=helper, streamer=Collect())
    assert got[0] == PROMPT[0].tolist() and got[-1] == "end"
    assert sum(got[1:-1], []) == out[0, PROMPT.shape[1]:].tolist()


# ---- sampling ----------------------------------------------------------------------------------------------------
def test_speculative_rule_branches():
    """q == p keeps every draft token (ratio 1); a draft token the model rules out (p = 0) is always rejected and
    replaced by a draw from norm(max(p - q, 0)), which cannot be that token."""
    torch.manual_seed(0)
    scores = torch.tensor([[0.0, 1.0, 2.0, -1.0], [1.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0]])
    p = torch.softmax(scores, dim=-1)
    draft = torch.tensor([2, 0])
    for _ in range(20):
        new, kept = A._speculative(scores, draft, p[:2].clone())
        assert kept == 2 and new[:2].tolist() == [2, 0]
    ruled_out = scores.clone()
    ruled_out[0, 2] = float("-inf")
    q = torch.zeros(2, 4)
    q[:, 2] = 1.0
    for _ in range(20):
        new, kept = A._speculative(ruled_out, draft, q)
        assert kept == 0 and new.numel() == 1 and int(new[0]) != 2


@pytest.mark.slow
def test_speculative_rule_reproduces_the_model_distribution():
    """For draft tokens x ~ q, the first emitted token is distributed as p (Monte Carlo, ~4 standard errors)."""
    torch.manual_seed(0)
    V = 3
    p_scores = torch.tensor([[1.0, -0.5, 0.3], [0.0, 0.0, 0.0]])
    q = torch.softmax(torch.tensor([[-1.0, 1.2, 0.0]]), dim=-1)
    n = 4000
    counts = torch.zeros(V)
    for x in torch.multinomial(q[0], n, replacement=True):
        new, _ = A._speculative(p_scores, x.view(1), q)
        counts[new[0]] += 1
    torch.testing.assert_close(counts / n, torch.softmax(p_scores[0], dim=-1), atol=0.03, rtol=0)


def test_sampling_is_seeded_and_top_k_1_is_greedy(causal_pair, seq2seq_pair, helpers):
    for family in ("gpt2",):
        _, ours = seq2seq_pair(family) if family == "bert2bert" else causal_pair(family)
        _, helper = helpers(family, "noisy")
        ids, mask = _prompt(family)
        runs = []
        for _ in range(2):
            torch.manual_seed(7)
            runs.append(ours.generate(ids, attention_mask=mask, do_sample=True, max_new_tokens=15,
                                      assistant_model=helper))
        assert torch.equal(*runs)
        greedy = ours.generate(ids, attention_mask=mask, max_new_tokens=15)
        top1 = ours.generate(ids, attention_mask=mask, do_sample=True, top_k=1, max_new_tokens=15,
                             assistant_model=helper)
        assert torch.equal(top1, greedy)


@pytest.mark.slow
def test_sampling_matches_plain_sampling_in_distribution(causal_pair, helpers):
    """First two new tokens over many seeds: the assisted and the plain sampler agree within sampling noise."""
    _, ours = causal_pair("gpt2")
    _, helper = helpers("gpt2", "noisy")
    kw = dict(do_sample=True, max_new_tokens=2, top_k=4, temperature=2.0)

    def histogram(**extra):
        counts = {}
        for seed in range(300):
            torch.manual_seed(seed)
            key = tuple(ours.generate(PROMPT, **kw, **extra)[0, -2:].tolist())
            counts[key] = counts.get(key, 0) + 1
        return counts

    plain, fast = histogram(), histogram(assistant_model=helper)
    keys = set(plain) | set(fast)
    tv = 0.5 * sum(abs(plain.get(k, 0) - fast.get(k, 0)) for k in keys) / 300
    assert tv < 0.2, (tv, plain, fast)


# ---- what is refused, before anything runs -------------------------------------------------------------------
def test_errors(causal_pair, seq2seq_pair, helpers):
    hf, ours = causal_pair("gpt2")
    hf_helper, helper = helpers("gpt2", "small")
    two = PROMPT.repeat(2, 1)
    with pytest.raises(ValueError, match="assisted generate is only supported for batch_size = 1"):
        hf.generate(two, max_new_tokens=3, assistant_model=hf_helper)
    with pytest.raises(ValueError, match=r"assisted generate is only supported for batch_size = 1, got a batch of 2"):
        ours.generate(two, max_new_tokens=3, assistant_model=helper)
    with pytest.raises(ValueError, match=r"only supported with greedy search and sampling, but num_beams=2"):
        ours.generate(PROMPT, max_new_tokens=3, num_beams=2, assistant_model=helper)
    with pytest.raises(ValueError, match=r"num_return_sequences has to be 1 when doing assisted generate, but is 2"):
        ours.generate(PROMPT, max_new_tokens=3, do_sample=True, num_return_sequences=2, assistant_model=helper)
    with pytest.raises(ValueError, match=r"either assistant_model or prompt_lookup_num_tokens \(=3\)"):
        ours.generate(PROMPT, max_new_tokens=3, assistant_model=helper, prompt_lookup_num_tokens=3)
    with pytest.raises(TypeError, match=r"assistant_model must be a warmstart model .* got object"):
        ours.generate(PROMPT, max_new_tokens=3, assistant_model=object())
    with pytest.raises(ValueError, match=r"requires `use_cache=True`"):
        ours.generate(PROMPT, max_new_tokens=3, assistant_model=helper, use_cache=False)
    other_vocab = W.GPT2LMHeadModel(W.GPT2Config(**{**GPT2_TINY, "vocab_size": 120}))
    with pytest.raises(ValueError, match=r"assistant's vocabulary \(size 120\) differs from the model's \(size 99\)"):
        ours.generate(PROMPT, max_new_tokens=3, assistant_model=other_vocab)
    _, seq2seq = seq2seq_pair("bert2bert")
    with pytest.raises(ValueError, match=r"is an encoder-decoder but the assistant GPT2LMHeadModel is a decoder-only"):
        seq2seq.generate(batch(rows=1)[0], max_new_tokens=3, assistant_model=helper)
    with pytest.raises(ValueError, match=r"num_assistant_tokens must be a number of draft tokens >= 1, got 0"):
        ours.generate(PROMPT, max_new_tokens=3, assistant_model=helper, num_assistant_tokens=0)
    with pytest.raises(ValueError, match=r"num_assistant_tokens_schedule must be 'constant', 'heuristic'"):
        ours.generate(PROMPT, max_new_tokens=3, assistant_model=helper, num_assistant_tokens_schedule="fast")


def test_errors_come_before_the_encoder_runs(seq2seq_pair, helpers):
    _, ours = seq2seq_pair("bert2bert")
    _, helper = helpers("bert2bert", "small")
    calls = []
    hook = ours.get_encoder().register_forward_hook(lambda *a: calls.append(1))
    try:
        with pytest.raises(ValueError, match="batch_size = 1"):
            ours.generate(batch(rows=2)[0], max_new_tokens=3, assistant_model=helper)
        with pytest.raises(TypeError, match="assistant_model must be"):
            ours.generate(batch(rows=1)[0], max_new_tokens=3, assistant_model=object())
    finally:
        hook.remove()
    assert not calls
