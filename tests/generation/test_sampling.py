"""Multinomial sampling and beam sampling: reproducible under a seed, never drawing a filtered token."""
import pytest
import torch

from gen_support import EOS, batch

SAMPLING = [dict(), dict(top_k=5), dict(top_p=0.8, temperature=0.7), dict(typical_p=0.5), dict(min_p=0.1),
            dict(num_return_sequences=3), dict(epsilon_cutoff=0.01), dict(eta_cutoff=0.01),
            dict(num_beams=3), dict(num_beams=3, num_return_sequences=2, top_k=10, eos_token_id=EOS)]


@pytest.mark.parametrize("kw", SAMPLING, ids=[str(k) for k in SAMPLING])
def test_reproducible_and_same_draws_as_transformers(seq2seq_pair, kw):
    """Same seed, same tokens — run to run, and (the same RNG calls on the same probabilities) as transformers."""
    hf, ours = seq2seq_pair("bert2bert")
    ids, mask = batch()
    runs = []
    for model in (ours, ours, hf):
        torch.manual_seed(1234)
        runs.append(model.generate(ids, attention_mask=mask, do_sample=True, max_new_tokens=10, **kw))
    assert torch.equal(runs[0], runs[1])
    assert torch.equal(runs[0], runs[2])
    torch.manual_seed(4321)
    other = ours.generate(ids, attention_mask=mask, do_sample=True, max_new_tokens=10, **kw)
    assert not torch.equal(other, runs[0])  # the seed matters


@pytest.mark.parametrize("filters", [dict(top_k=3), dict(top_p=0.5), dict(top_k=20, top_p=0.3, temperature=1.5)])
def test_never_draws_a_filtered_token(causal_pair, filters):
    """Each drawn token is inside the top-k / nucleus computed independently from the raw logits of that step."""
    _, ours = causal_pair("gpt2")
    ids = torch.randint(4, 90, (4, 5), generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    out = ours.generate(ids, do_sample=True, max_new_tokens=12, return_dict_in_generate=True, output_scores=True,
                        output_logits=True, eos_token_id=None, **filters)
    chosen = out.sequences[:, 5:]
    for step, (logits, scores) in enumerate(zip(out.logits, out.scores)):
        token = chosen[:, step]
        assert torch.isfinite(scores.gather(1, token[:, None])).all()
        logits = logits / filters.get("temperature", 1.0)
        allowed = torch.ones_like(logits, dtype=torch.bool)
        if "top_k" in filters:
            allowed &= logits >= logits.topk(filters["top_k"]).values[:, -1:]
        if "top_p" in filters:
            # after top-k (its order in the processor chain): tokens whose more likely companions hold < top_p
            probs = logits.masked_fill(~allowed, float("-inf")).softmax(-1)
            ranked, order = probs.sort(descending=True)
            before = ranked.cumsum(-1) - ranked
            allowed &= torch.zeros_like(allowed).scatter(1, order, before < filters["top_p"] + 1e-6)
        assert allowed.gather(1, token[:, None]).all(), f"step {step}: drew a filtered token"


def test_sampling_rows_are_independent(seq2seq_pair):
    """num_return_sequences samples per input are separate draws, not copies."""
    _, ours = seq2seq_pair("bert2bert")
    ids, _ = batch(rows=1)
    torch.manual_seed(0)
    out = ours.generate(ids, do_sample=True, num_return_sequences=6, max_new_tokens=10)
    assert out.shape == (6, 11) and len({tuple(r) for r in out.tolist()}) > 1
