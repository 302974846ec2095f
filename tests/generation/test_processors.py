"""Each logits processor against transformers' processor of the same name, on random scores and histories."""
import math

import pytest
import torch
import transformers.generation.logits_process as HF
from hypothesis import given, settings, strategies as st

from warmstart.generation import processors as P

V = 40


def _inputs(seed: int = 0, rows: int = 6, length: int = 9):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 12, (rows, length), generator=g)  # a small id range, so repeats and n-grams recur
    scores = torch.randn(rows, V, generator=g) * 3
    scores[0, 5] = -math.inf
    return ids, scores


CASES = [
    ("min length (active)", lambda: P.MinLengthLogitsProcessor(12, [3, 7]), lambda: HF.MinLengthLogitsProcessor(12, [3, 7])),
    ("min length (done)", lambda: P.MinLengthLogitsProcessor(5, 3), lambda: HF.MinLengthLogitsProcessor(5, 3)),
    ("min new tokens", lambda: P.MinNewTokensLengthLogitsProcessor(4, 6, [2]),
     lambda: HF.MinNewTokensLengthLogitsProcessor(4, 6, [2])),
    ("temperature", lambda: P.TemperatureLogitsWarper(0.7), lambda: HF.TemperatureLogitsWarper(0.7)),
    ("repetition", lambda: P.RepetitionPenaltyLogitsProcessor(1.4), lambda: HF.RepetitionPenaltyLogitsProcessor(1.4)),
    ("repetition, skip 3", lambda: P.RepetitionPenaltyLogitsProcessor(1.4, 3),
     lambda: HF.RepetitionPenaltyLogitsProcessor(1.4, 3)),
    ("repetition, per-row skip", lambda: P.RepetitionPenaltyLogitsProcessor(0.8, torch.tensor([0, 1, 2, 3, 4, 5])),
     lambda: HF.RepetitionPenaltyLogitsProcessor(0.8, torch.tensor([0, 1, 2, 3, 4, 5]))),
    ("encoder repetition", lambda: P.EncoderRepetitionPenaltyLogitsProcessor(1.5, torch.tensor([[1, 2, 3], [4, 5, 6]])),
     lambda: HF.EncoderRepetitionPenaltyLogitsProcessor(1.5, torch.tensor([[1, 2, 3], [4, 5, 6]]))),
    ("top-k", lambda: P.TopKLogitsWarper(5), lambda: HF.TopKLogitsWarper(5)),
    ("top-k keep 8", lambda: P.TopKLogitsWarper(3, min_tokens_to_keep=8), lambda: HF.TopKLogitsWarper(3, min_tokens_to_keep=8)),
    ("top-p", lambda: P.TopPLogitsWarper(0.8), lambda: HF.TopPLogitsWarper(0.8)),
    ("top-p keep 3", lambda: P.TopPLogitsWarper(0.1, min_tokens_to_keep=3), lambda: HF.TopPLogitsWarper(0.1, min_tokens_to_keep=3)),
    ("min-p", lambda: P.MinPLogitsWarper(0.1), lambda: HF.MinPLogitsWarper(0.1)),
    ("typical", lambda: P.TypicalLogitsWarper(0.7), lambda: HF.TypicalLogitsWarper(0.7)),
    ("epsilon", lambda: P.EpsilonLogitsWarper(0.02), lambda: HF.EpsilonLogitsWarper(0.02)),
    ("eta", lambda: P.EtaLogitsWarper(0.02), lambda: HF.EtaLogitsWarper(0.02)),
    ("no repeat 1", lambda: P.NoRepeatNGramLogitsProcessor(1), lambda: HF.NoRepeatNGramLogitsProcessor(1)),
    ("no repeat 2", lambda: P.NoRepeatNGramLogitsProcessor(2), lambda: HF.NoRepeatNGramLogitsProcessor(2)),
    ("no repeat 3", lambda: P.NoRepeatNGramLogitsProcessor(3), lambda: HF.NoRepeatNGramLogitsProcessor(3)),
    ("no repeat 20", lambda: P.NoRepeatNGramLogitsProcessor(20), lambda: HF.NoRepeatNGramLogitsProcessor(20)),
    ("encoder no repeat 2", lambda: P.EncoderNoRepeatNGramLogitsProcessor(2, torch.randint(0, 12, (3, 10), generator=torch.Generator().manual_seed(5))),
     lambda: HF.EncoderNoRepeatNGramLogitsProcessor(2, torch.randint(0, 12, (3, 10), generator=torch.Generator().manual_seed(5)))),
    ("encoder no repeat 3", lambda: P.EncoderNoRepeatNGramLogitsProcessor(3, torch.randint(0, 12, (2, 10), generator=torch.Generator().manual_seed(6))),
     lambda: HF.EncoderNoRepeatNGramLogitsProcessor(3, torch.randint(0, 12, (2, 10), generator=torch.Generator().manual_seed(6)))),
    ("sequence bias", lambda: P.SequenceBiasLogitsProcessor([[[4], -2.5], [[1, 2], 3.0], [[3, 4, 5], -1.0]]),
     lambda: HF.SequenceBiasLogitsProcessor([[[4], -2.5], [[1, 2], 3.0], [[3, 4, 5], -1.0]])),
    ("bad words", lambda: P.NoBadWordsLogitsProcessor([[7], [1, 2], [3, 4, 5], [9]], eos_token_id=9),
     lambda: HF.NoBadWordsLogitsProcessor([[7], [1, 2], [3, 4, 5], [9]], eos_token_id=9)),
    ("forced bos", lambda: P.ForcedBOSTokenLogitsProcessor(4), lambda: HF.ForcedBOSTokenLogitsProcessor(4)),
    ("forced eos", lambda: P.ForcedEOSTokenLogitsProcessor(10, [1, 2]), lambda: HF.ForcedEOSTokenLogitsProcessor(10, [1, 2])),
    ("inf/nan", lambda: P.InfNanRemoveLogitsProcessor(), lambda: HF.InfNanRemoveLogitsProcessor()),
    ("exponential decay", lambda: P.ExponentialDecayLengthPenalty((2, 1.5), [1, 3], 4),
     lambda: HF.ExponentialDecayLengthPenalty((2, 1.5), [1, 3], 4)),
    ("normalisation", lambda: P.LogitNormalization(), lambda: HF.LogitNormalization()),
    ("suppress", lambda: P.SuppressTokensLogitsProcessor([1, 2, 39]), lambda: HF.SuppressTokensLogitsProcessor([1, 2, 39])),
    ("suppress at begin", lambda: P.SuppressTokensAtBeginLogitsProcessor([3], 9),
     lambda: HF.SuppressTokensAtBeginLogitsProcessor([3], 9)),
]


@pytest.mark.parametrize("name, ours, theirs", CASES, ids=[c[0] for c in CASES])
def test_same_as_transformers(name, ours, theirs):
    for seed in range(3):
        ids, scores = _inputs(seed)
        if name in ("forced bos",):
            ids = ids[:, :1]
        if name == "inf/nan":
            scores[1, 3], scores[2, 4] = math.inf, math.nan
        original = scores.clone()
        got = ours()(ids, scores)
        want = theirs()(ids, scores.clone())
        assert torch.equal(scores.isnan(), original.isnan()) and torch.equal(scores.nan_to_num(), original.nan_to_num()), \
            "the processor edited its input"
        assert torch.equal(got.nan_to_num(), want.nan_to_num()), f"{name} (seed {seed}):\n{got}\n{want}"


def test_hamming_diversity_matches_v4_rule():
    """Group g's scores drop by penalty x (how often each token was chosen by earlier groups at this step)."""
    num_beams, groups = 6, 3
    proc = P.HammingDiversityLogitsProcessor(0.5, num_beams, groups)
    current = torch.tensor([1, 2, 1, 3, 0, 0, 4, 4, 4, 5, 5, 5])  # batch 2 x 6 beams
    scores = torch.zeros(4, V)  # group 2 of both inputs: 2 rows each
    out = proc(None, scores, current_tokens=current, beam_group_idx=2)
    want = torch.zeros(4, V)
    for b, rows in ((0, slice(0, 2)), (1, slice(2, 4))):
        earlier = current[b * 6:b * 6 + 4]
        want[rows] -= 0.5 * torch.bincount(earlier, minlength=V).float()
    assert torch.equal(out, want)
    assert proc(None, scores, current_tokens=current, beam_group_idx=0) is scores


def test_processor_list_passes_extra_arguments():
    proc = P.HammingDiversityLogitsProcessor(1.0, 2, 2)
    lst = P.LogitsProcessorList([P.TemperatureLogitsWarper(2.0), proc])
    out = lst(None, torch.ones(1, V), current_tokens=torch.tensor([3, 0]), beam_group_idx=1)
    assert out[0, 3] == -0.5 and out[0, 0] == 0.5
    with pytest.raises(ValueError, match=r"HammingDiversityLogitsProcessor needs the arguments \['current_tokens', "
                                          r"'beam_group_idx'\]"):
        lst(None, torch.ones(1, V))


def test_constructor_checks():
    with pytest.raises(ValueError, match=r"top_k must be a positive integer, got 0"):
        P.TopKLogitsWarper(0)
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\], got 1.5"):
        P.TopPLogitsWarper(1.5)
    with pytest.raises(ValueError, match=r"repetition_penalty must be a number > 0, got 0"):
        P.RepetitionPenaltyLogitsProcessor(0)
    with pytest.raises(ValueError, match=r"outside the vocabulary \(size 40\)"):
        P.NoBadWordsLogitsProcessor([[41]])(torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, V))


@settings(max_examples=60, deadline=None)
@given(k=st.integers(1, V), p=st.floats(0.01, 1.0), seed=st.integers(0, 10_000))
def test_filters_keep_exactly_the_allowed_tokens(k, p, seed):
    """top-k keeps the k best (ties at the k-th score included); top-p keeps the smallest most-likely set whose mass
    reaches p. Everything else is -inf, so sampling can never draw it."""
    scores = torch.randn(3, V, generator=torch.Generator().manual_seed(seed)) * 2
    kept_k = torch.isfinite(P.TopKLogitsWarper(k)(None, scores))
    kth = scores.topk(k).values[:, -1:]
    assert torch.equal(kept_k, scores >= kth)
    kept_p = torch.isfinite(P.TopPLogitsWarper(p)(None, scores))
    probs = scores.softmax(-1)
    for row in range(3):
        order = probs[row].argsort(descending=True)
        mass_before = torch.cat([torch.zeros(1), probs[row][order].cumsum(0)[:-1]])
        # a token is kept iff the tokens more likely than it hold less than p (up to rounding at the boundary)
        keep = mass_before < p - 1e-6
        must_drop = mass_before > p + 1e-6
        assert kept_p[row][order][keep].all() and not kept_p[row][order][must_drop].any()
