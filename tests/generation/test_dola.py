"""DoLa decoding (dola_layers) against frozen transformers 4.46.3 outputs: tiny GPT-2 (2 and 6 layers) and BERT
(is_decoder=True), "low" / "high" / explicit layers, left-padded batches, EOS stopping, sampling and
return_dict_in_generate outputs; and v4's refusals (tests/assets/strategies, made by
tests/assets/make_strategy_fixtures.py)."""
import warnings

import pytest
import torch

import warmstart as W
from strategy_cases import case_names, check_case, load_case, model, run_case
from warmstart.generation.dola import candidate_layers


@pytest.mark.parametrize("case", [c for c in case_names("dola_") if not c.endswith("_refused")])
def test_matches_transformers_v4(case):
    check_case(case)


def test_it_is_not_greedy_search():
    for case in ("dola_gpt2_high_left_padded", "dola_deep_layers", "dola_bert_low"):
        _, t = load_case(case)
        assert not torch.equal(run_case(case, dola_layers=None), t["expected.sequences"]), case


@pytest.mark.parametrize("layers, n, tied, want", [
    ("low", 2, True, [1]), ("high", 2, True, [1]), ("low", 2, False, [0]), ("high", 2, False, [1]),
    ("low", 6, True, [2]), ("high", 6, True, [3, 5]), ("low", 6, False, [0, 2]), ("low", 4, True, [2]),
    ("low", 1, True, [0]), ("low", 48, True, list(range(2, 20, 2))), ("high", 48, True, list(range(28, 48, 2))),
    ([0, 2, 6], 6, True, [0, 2]),  # the final layer is the mature one: dropped, as v4 does
])
def test_candidate_layers(layers, n, tied, want):
    """v4's rule: "low" = range(start, N // 2, 2), "high" = range(N // 2, N, 2) (the last 20 layers beyond 40),
    start skipping the embeddings of a tied model (2, or 1 for two layers)."""
    assert candidate_layers(layers, n, tied) == want


def test_v4_refusals_fail_before_anything_runs():
    info, t = load_case("dola_bert2bert_refused")
    assert info["error"].startswith("DoLa decoding is only available for decoder-only models")
    m = model("bert2bert")
    calls = []
    hook = m.get_encoder().register_forward_hook(lambda *a: calls.append(1))
    try:
        with pytest.raises(ValueError, match=r"^DoLa decoding is only available for decoder-only models: "
                                             r"EncoderDecoderModel is an encoder-decoder"):
            run_case("dola_bert2bert_refused")
    finally:
        hook.remove()
    assert not calls
    info, _ = load_case("dola_beams_refused")
    assert "only supported with Greedy Search and Sample" in info["error"]
    with pytest.raises(ValueError, match=r"dola_layers='low' asks for DoLa decoding, which \(as in v4\) runs with "
                                         r"greedy search or sampling only .* set num_beams=1, got num_beams=2"):
        run_case("dola_beams_refused")


@pytest.mark.parametrize("kwargs, match", [
    (dict(dola_layers="middle"), r"dola_layers must be 'low', 'high' or a non-empty list of layer indices"),
    (dict(dola_layers=[]), r"dola_layers must be 'low', 'high' or a non-empty list"),
    (dict(dola_layers=[0, -1]), r"dola_layers must be .*, got \[0, -1\]"),
    (dict(dola_layers="low", penalty_alpha=0.6, top_k=4), r"set penalty_alpha=None, got penalty_alpha=0.6"),
    (dict(dola_layers="low", do_sample=True, num_return_sequences=2),
     r"set num_return_sequences=1, got num_return_sequences=2"),
])
def test_bad_settings(kwargs, match):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=match):
            W.GenerationConfig(**kwargs)


def test_layers_the_model_does_not_have():
    _, t = load_case("dola_gpt2_low")
    with pytest.raises(ValueError, match=r"dola_layers \[0, 5\] names layers \[5\] the model does not have: layer "
                                         r"indices run from 0 \(the embeddings\) to 2"):
        run_case("dola_gpt2_low", dola_layers=[0, 5])
    with pytest.raises(ValueError, match=r"dola_layers \[2\] leaves no layer to contrast with the final one"):
        run_case("dola_gpt2_low", dola_layers=[2])


def test_repetition_penalty_advice():
    """The DoLa paper (and v4) recommend repetition_penalty >= 1.2: a UserWarning below it, none at it."""
    with pytest.warns(UserWarning, match=r"repetition_penalty=1.0 is below the recommended "
                                         r"repetition_penalty>=1.2"):
        W.GenerationConfig(dola_layers="high")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        W.GenerationConfig(dola_layers="high", repetition_penalty=1.2)
        W.GenerationConfig(repetition_penalty=1.0)  # no DoLa, no advice


def test_without_the_cache():
    """DoLa needs no look-ahead: use_cache=False re-feeds the sequence and gives the same tokens."""
    _, t = load_case("dola_gpt2_high_left_padded")
    assert torch.equal(run_case("dola_gpt2_high_left_padded", use_cache=False), t["expected.sequences"])
