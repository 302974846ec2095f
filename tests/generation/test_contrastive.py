"""Contrastive search (penalty_alpha > 0, top_k > 1) against frozen transformers 4.46.3 outputs: tiny GPT-2,
BERT (is_decoder=True) and bert2bert models, single prompts, left-padded batches, EOS stopping, processors and
return_dict_in_generate outputs (tests/assets/strategies, made by tests/assets/make_strategy_fixtures.py)."""
import pytest
import torch

import warmstart as W
from strategy_cases import case_names, check_case, load_case, model, run_case


@pytest.mark.parametrize("case", case_names("cs_"))
def test_matches_transformers_v4(case):
    check_case(case)


def test_it_is_not_greedy_search():
    """The degeneration penalty changes the tokens (else the cases above would prove nothing)."""
    differs = 0
    for case in ("cs_gpt2_left_padded", "cs_bert_left_padded", "cs_bert2bert"):
        _, t = load_case(case)
        greedy = run_case(case, penalty_alpha=None)
        differs += not torch.equal(greedy, t["expected.sequences"])
    assert differs == 3


def test_a_tiny_alpha_is_greedy_search():
    _, t = load_case("cs_gpt2_alpha_zero")
    assert torch.equal(run_case("cs_gpt2_alpha_zero", penalty_alpha=None), t["expected.sequences"])


def test_streaming_and_generation_config():
    info, t = load_case("cs_gpt2_single")
    m = model("gpt2")
    config = W.GenerationConfig(**info["kwargs"], pad_token_id=0)
    back = W.GenerationConfig.from_dict(config.to_dict())  # the settings survive a round trip
    assert back.penalty_alpha == 0.6 and back.to_diff_dict()["penalty_alpha"] == 0.6
    seen = []

    class Streamer:
        def put(self, ids):
            seen.append(ids.reshape(-1).tolist())

        def end(self):
            seen.append("end")

    out = m.generate(t["input_ids"], generation_config=back, streamer=Streamer())
    assert torch.equal(out, t["expected.sequences"])
    assert seen[0] == t["input_ids"][0].tolist() and seen[-1] == "end"
    assert [s[0] for s in seen[1:-1]] == out[0, t["input_ids"].shape[1]:].tolist()


@pytest.mark.parametrize("kwargs, match", [
    (dict(penalty_alpha=0.6, top_k=1), r"penalty_alpha=0.6 asks for contrastive search, which needs top_k > 1 .* "
                                       r"got top_k=1"),
    (dict(penalty_alpha=0.6, top_k=4, do_sample=True), r"needs do_sample=False, got do_sample=True"),
    (dict(penalty_alpha=0.6, top_k=4, num_beams=2), r"needs num_beams=1, got num_beams=2"),
    (dict(penalty_alpha=1.5), r"penalty_alpha must be None or a number in \[0, 1\]"),
    (dict(penalty_alpha="0.6"), r"penalty_alpha must be None or a number"),
])
def test_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        W.GenerationConfig(**kwargs)
    _, t = load_case("cs_gpt2_single")
    with pytest.raises(ValueError, match=match):
        model("gpt2").generate(t["input_ids"], max_new_tokens=3, **kwargs)


def test_model_limits_fail_before_the_encoder_runs():
    m = model("bert2bert")
    _, t = load_case("cs_bert2bert")
    calls = []
    hook = m.get_encoder().register_forward_hook(lambda *a: calls.append(1))
    try:
        with pytest.raises(ValueError, match=r"top_k=120 candidates requested, but the decoder's vocabulary has only "
                                             r"99 tokens"):
            m.generate(t["input_ids"], attention_mask=t["attention_mask"], penalty_alpha=0.5, top_k=120,
                       max_new_tokens=3)
        with pytest.raises(ValueError, match=r"contrastive search \(penalty_alpha=0.5\) requires the cache, but "
                                             r"use_cache=False was passed"):
            m.generate(t["input_ids"], attention_mask=t["attention_mask"], penalty_alpha=0.5, top_k=4,
                       max_new_tokens=3, use_cache=False)
    finally:
        hook.remove()
    assert not calls, "the encoder ran before the settings were rejected"


def test_the_last_token_needs_a_position():
    """Contrastive search feeds every chosen token (its look-ahead), one position more than greedy search."""
    _, t = load_case("cs_gpt2_single")
    with pytest.raises(ValueError, match=r"contrastive search feeds every generated token, so max_length=65 needs "
                                         r"65 decoder positions, but the decoder has 64"):
        model("gpt2").generate(t["input_ids"], penalty_alpha=0.6, top_k=4, max_length=65)
