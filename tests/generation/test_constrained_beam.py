"""Constrained beam search (``force_words_ids`` / ``constraints``) against transformers 4.46.3, which v5 no longer
has: the tiny models and v4's outputs are frozen in tests/assets/constrained/ by
tests/assets/make_constrained_fixtures.py (GPT-2 with left-padded batches, a bert2bert; several EOS ids,
num_return_sequences, early_stopping, processors). Then v4's settings errors, and the settings round trip."""
import json
import logging
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import warmstart as W
from warmstart.generation import DisjunctiveConstraint, PhrasalConstraint

ROOT = Path(__file__).parents[1] / "assets" / "constrained"
CASES = json.loads((ROOT / "cases.json").read_text())["cases"]
SCORES = load_file(ROOT / "scores.safetensors")


@pytest.fixture(scope="module")
def models():
    logging.getLogger("warmstart").setLevel(logging.ERROR)
    return {"gpt2": W.GPT2LMHeadModel.from_pretrained(ROOT / "gpt2"),
            "bert2bert": W.EncoderDecoderModel.from_pretrained(ROOT / "bert2bert")}


def _kwargs(case):
    kw = dict(case["kwargs"])
    if "constraints" in kw:
        kw["constraints"] = [PhrasalConstraint(ids) if kind == "phrasal" else DisjunctiveConstraint(ids)
                             for kind, ids in kw["constraints"]]
    return kw


def _generate(models, case, **extra):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return models[case["model"]].generate(torch.tensor(case["input_ids"]),
                                              attention_mask=torch.tensor(case["attention_mask"]),
                                              **_kwargs(case), **extra)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_same_as_transformers_v4(models, case):
    out = _generate(models, case)
    want = case["expected"]
    sequences = out if isinstance(out, torch.Tensor) else out.sequences
    assert sequences.tolist() == want["sequences"], f"\nv4\n{torch.tensor(want['sequences'])}\nours\n{sequences}"
    if isinstance(out, torch.Tensor):
        return
    torch.testing.assert_close(out.sequences_scores, torch.tensor(want["sequences_scores"]), atol=1e-5, rtol=1e-6)
    got = out.beam_indices.tolist() if out.beam_indices is not None else None
    assert got == want["beam_indices"]
    if case["name"] in SCORES:
        ref, ours = SCORES[case["name"]], torch.stack(out.scores)
        assert ours.shape == ref.shape
        nb = case["kwargs"]["num_beams"]
        for t in range(ref.shape[0]):
            # Rows of inputs already finished idle differently (constrained_beam.py's docstring): not compared.
            done = want["done_after_step"][t - 1] if t else [False] * len(case["input_ids"])
            rows = [r for r in range(ref.shape[1]) if not done[r // nb]]
            torch.testing.assert_close(ours[t, rows], ref[t, rows], atol=1e-5, rtol=1e-6)


def _contains(row, word):
    return any(row[i:i + len(word)] == word for i in range(len(row) - len(word) + 1))


def _meets(row, specs):
    return all(_contains(row, ids) if kind == "phrasal" else any(_contains(row, w) for w in ids)
               for kind, ids in specs)


@pytest.mark.parametrize("case", [c for c in CASES if c["expected"].get("beam_indices") is not None],
                         ids=lambda c: c["name"])
def test_kept_hypotheses_contain_the_words(models, case):
    """A returned row with beam indices is a kept hypothesis, which meets every constraint; rows without (all -1)
    are v4's fallback when too few beams met them (random tiny models often do not)."""
    specs = case["kwargs"].get("constraints", []) + [
        ["disjunctive" if isinstance(w[0], list) else "phrasal", w] for w in case["kwargs"].get("force_words_ids", [])]
    out = _generate(models, case)
    kept = 0
    for row, path in zip(out.sequences.tolist(), out.beam_indices.tolist()):
        if any(i != -1 for i in path):
            kept += 1
            assert _meets(row, specs), row
    assert kept > 0


def test_callers_objects_are_left_alone(models):
    gpt2 = models["gpt2"]
    mine = [PhrasalConstraint([10, 11]), DisjunctiveConstraint([[5, 6], [7]])]
    given = list(mine)
    ids = torch.tensor([[7, 8, 9]])
    gpt2.generate(ids, constraints=given, force_words_ids=[[45]], num_beams=3, max_new_tokens=6)
    assert given == mine  # v4 appended the force_words_ids constraints to the caller's list
    assert mine[0].fulfilled_idx == -1 and mine[1].current_seq == []  # the search worked on copies


def test_constraints_on_the_model_generation_config(models):
    gpt2 = models["gpt2"]
    ids = torch.tensor([[7, 8, 9]])
    direct = gpt2.generate(ids, force_words_ids=[[10, 11]], num_beams=3, max_new_tokens=6)
    config = W.GenerationConfig(num_beams=3, max_new_tokens=6, constraints=[PhrasalConstraint([10, 11])],
                                pad_token_id=0, eos_token_id=2)
    assert torch.equal(gpt2.generate(ids, generation_config=config), direct)
    assert "PhrasalConstraint([10, 11])" in repr(config)
    saved = gpt2.generation_config
    try:
        gpt2.generation_config.constraints = [PhrasalConstraint([10, 11])]
        gpt2.generation_config.num_beams = 3
        assert torch.equal(gpt2.generate(ids, max_new_tokens=6), direct)
    finally:
        gpt2.generation_config = saved


def test_force_words_ids_round_trip_and_constraints_do_not_save(tmp_path):
    config = W.GenerationConfig(num_beams=3, force_words_ids=[[10, 11], [[5, 6], [7]]])
    config.save_pretrained(tmp_path)
    assert W.GenerationConfig.from_pretrained(tmp_path).force_words_ids == [[10, 11], [[5, 6], [7]]]
    with pytest.raises(ValueError, match="cannot store"):
        W.GenerationConfig(num_beams=3, constraints=[PhrasalConstraint([1])]).save_pretrained(tmp_path / "c")


def test_streaming_ends_with_the_result(models):
    class Collect(W.generation.BaseStreamer):
        def __init__(self):
            self.parts, self.ended = [], False

        def put(self, value):
            self.parts.append(value.reshape(-1).tolist())

        def end(self):
            self.ended = True

    streamer, ids = Collect(), torch.tensor([[7, 8, 9]])
    out = models["gpt2"].generate(ids, force_words_ids=[[10, 11]], num_beams=3, max_new_tokens=6, streamer=streamer)
    assert streamer.ended and streamer.parts[0] == [7, 8, 9] and streamer.parts[-1] == out[0, 3:].tolist()


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_beams=1), "num_beams > 1, got num_beams=1"),
    (dict(num_beams=4, do_sample=True), "do_sample=True"),
    (dict(num_beams=4, num_beam_groups=2, diversity_penalty=1.0), "num_beam_groups=2"),
    (dict(num_beams=2, force_words_ids=[[120]]), "token id 120, outside the decoder's vocabulary"),
    (dict(num_beams=2, force_words_ids=[[[3], [3, 4]]]), "prefix"),
])
def test_settings_errors(models, kwargs, match):
    kwargs.setdefault("force_words_ids", [[10, 11]])
    with pytest.raises(ValueError, match=match):
        models["gpt2"].generate(torch.tensor([[7, 8, 9]]), max_new_tokens=4, **kwargs)


@pytest.mark.parametrize("value", [[], [10, 11], [[]], [[10, -1]], [[[1], []]], "abc", [[1.5]], [[[1], 2]]])
def test_malformed_force_words_ids(value):
    with pytest.raises(ValueError, match="force_words_ids must be"):
        W.GenerationConfig(num_beams=2, force_words_ids=value)


@pytest.mark.parametrize("value, match", [([], "non-empty list"), ([5], r"constraints\[0\]"),
                                          ([PhrasalConstraint([1]), [2]], r"constraints\[1\]")])
def test_malformed_constraints(value, match):
    with pytest.raises(ValueError, match=match):
        W.GenerationConfig(num_beams=2, constraints=value)
