"""Regenerate the constrained beam search reference fixtures in ``tests/assets/constrained/``.

transformers 5.x removed constrained beam search (``force_words_ids`` / ``constraints`` and the classes
``PhrasalConstraint``, ``DisjunctiveConstraint``, ``ConstraintListState``), so the reference comes from a
transformers 4.46.3 install kept out of the project's virtual environment (see make_relpos_fixtures.py for how
/tmp/tf4 is made). The exact command:

    PYTHONPATH=/tmp/tf4 /work/main/.venv/bin/python tests/assets/make_constrained_fixtures.py

The folder then holds:

    gpt2/, bert2bert/     two tiny random models (vocab 99, hidden 32, 2 layers), written by v4's
                          save_pretrained(safe_serialization=True)
    cases.json            per case: the model, the prompt tensors, the generate() keyword arguments
                          (constraints as ["phrasal", ids] / ["disjunctive", [ids, ...]]), and v4's
                          sequences, sequences_scores, beam_indices, plus ``done_after_step`` (which
                          inputs v4's scorer had finished after each step; their later per-step scores
                          are not compared, see warmstart/generation/constrained_beam.py)
    scores.safetensors    "<case>": v4's per-step scores stacked to (steps, rows, vocab), for the cases
                          in SCORES_KEPT
    traces.json           state-machine traces of v4's constraint classes (see ``_traces``)

The script is a test-asset generator, run by hand; it is never imported by the test suite.
"""

import argparse
import json
import os
import shutil

import torch
import transformers
from safetensors.torch import save_file
from transformers import (BertConfig, ConstraintListState, DisjunctiveConstraint, EncoderDecoderConfig,
                          EncoderDecoderModel, GPT2Config, GPT2LMHeadModel, PhrasalConstraint)
from transformers.generation import beam_search as v4_beam_search

if not transformers.__version__.startswith("4."):
    raise SystemExit(
        f"this script needs a transformers 4.x oracle (constrained beam search was removed in 5.x), got "
        f"transformers {transformers.__version__} from {transformers.__file__}; run it with PYTHONPATH=/tmp/tf4 "
        "(see the module docstring)")

SEED = 1234
START = 3  # decoder_start_token_id of the bert2bert
# The cases whose per-step scores are stored (the rest only keep their outputs: the folder stays small).
SCORES_KEPT = ("gpt2_two_words_nrs", "gpt2_disjunctive_shared_prefix", "gpt2_objects_eos", "gpt2_unmet_fallback",
               "bert2bert_objects_eos")
EOS = [2, 30, 40, 50, 60]  # several EOS ids, so that rows end at different times in random models
BERT = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
            initializer_range=0.2, pad_token_id=0)
GPT2 = dict(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=64, resid_pdrop=0.0, embd_pdrop=0.0,
            attn_pdrop=0.0, initializer_range=0.2, pad_token_id=0, bos_token_id=1, eos_token_id=2)


def _spread(model, seed):
    """Non-trivial biases and norms (v4 initialises them to 0 / 1), so distributions are far from uniform."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                base = 1.0 if ("LayerNorm.weight" in name or name.endswith(("ln_1.weight", "ln_2.weight",
                                                                             "ln_f.weight"))) else 0.0
                p.copy_(base + 0.1 * torch.randn(p.shape, generator=g))
    return model.eval()


def _models():
    torch.manual_seed(SEED)
    gpt2 = _spread(GPT2LMHeadModel(GPT2Config(**GPT2)), SEED)
    torch.manual_seed(SEED + 1)
    config = EncoderDecoderConfig.from_encoder_decoder_configs(BertConfig(**BERT), BertConfig(**BERT))
    config.decoder_start_token_id, config.pad_token_id = START, 0
    bert2bert = _spread(EncoderDecoderModel(config=config), SEED + 1)
    return {"gpt2": gpt2, "bert2bert": bert2bert}


def _prompt(rows, length, seed, left):
    """Random ids 3..98 in a padded batch: row 1 loses 2 positions, row 2 three (left for GPT-2)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 99, (rows, length), generator=g)
    mask = torch.ones_like(ids)
    for row, cut in ((1, 2), (2, 3)):
        if row < rows:
            if left:
                mask[row, :cut] = 0
            else:
                mask[row, length - cut:] = 0
    ids[mask == 0] = 0
    return ids, mask


def _cases():
    out = []

    def case(name, model, kwargs, rows=3, length=6, seed=0, ids=None):
        if ids is None:
            ids, mask = _prompt(rows, length, seed, left=(model == "gpt2"))
        else:
            ids, mask = torch.tensor(ids), torch.ones(len(ids), len(ids[0]), dtype=torch.long)
        out.append({"name": name, "model": model, "input_ids": ids.tolist(), "attention_mask": mask.tolist(),
                    "kwargs": kwargs})

    dict_out = dict(return_dict_in_generate=True, output_scores=True)
    case("gpt2_phrasal", "gpt2", dict(force_words_ids=[[10, 11]], num_beams=4, max_new_tokens=10))
    case("gpt2_two_words_nrs", "gpt2", dict(force_words_ids=[[10, 11], [45]], num_beams=5, num_return_sequences=3,
                                            max_new_tokens=12, **dict_out))
    case("gpt2_disjunctive", "gpt2", dict(force_words_ids=[[[5, 6], [5, 7], [33]]], num_beams=4, max_new_tokens=10,
                                          **dict_out))
    # Alternatives sharing a prefix: v4's stateful copies share the in-progress prefix (see constraints.py).
    case("gpt2_disjunctive_shared_prefix", "gpt2",
         dict(force_words_ids=[[[5, 6, 8], [5, 7, 9], [5, 8]]], num_beams=4, max_new_tokens=10, **dict_out), seed=1)
    case("gpt2_objects_eos", "gpt2",
         dict(constraints=[["phrasal", [12, 13]], ["disjunctive", [[14, 15], [16]]]], eos_token_id=EOS,
              num_beams=4, num_return_sequences=2, length_penalty=0.7, max_new_tokens=14, **dict_out), seed=2)
    case("gpt2_eos_early_true", "gpt2", dict(force_words_ids=[[10, 11]], eos_token_id=EOS, num_beams=3,
                                             early_stopping=True, max_new_tokens=14, **dict_out), seed=3)
    case("gpt2_eos_never", "gpt2", dict(force_words_ids=[[[20], [21]]], eos_token_id=EOS, num_beams=3,
                                        early_stopping="never", max_new_tokens=14, **dict_out), seed=4)
    case("gpt2_processors", "gpt2", dict(force_words_ids=[[10, 11]], num_beams=4, no_repeat_ngram_size=2,
                                         repetition_penalty=1.3, max_new_tokens=10), seed=5)
    case("gpt2_word_in_prompt", "gpt2", dict(force_words_ids=[[10, 11], [45]], num_beams=3, max_new_tokens=8),
         ids=[[7, 10, 11, 8, 9], [45, 46, 10, 11, 47]])
    case("gpt2_both_kinds", "gpt2", dict(constraints=[["phrasal", [45]]], force_words_ids=[[10, 11]], num_beams=4,
                                         max_new_tokens=10), seed=6)
    case("gpt2_single_row", "gpt2", dict(force_words_ids=[[10, 11]], num_beams=2, max_new_tokens=8), rows=1, seed=7)
    # A phrase longer than the new tokens allowed: no beam can meet it, v4's fallback returns the unconstrained
    # beams (and no beam_indices).
    case("gpt2_unmet_fallback", "gpt2", dict(force_words_ids=[[10, 11, 12, 13, 14, 15]], num_beams=3,
                                             num_return_sequences=2, max_new_tokens=4, **dict_out), seed=8)
    case("bert2bert_phrasal_nrs", "bert2bert", dict(force_words_ids=[[10, 11]], num_beams=4, num_return_sequences=2,
                                                    max_new_tokens=8, **dict_out), length=7, seed=9)
    case("bert2bert_objects_eos", "bert2bert",
         dict(constraints=[["phrasal", [12, 13]], ["disjunctive", [[14, 15], [16, 17, 18]]]], eos_token_id=EOS,
              num_beams=4, max_new_tokens=12, length_penalty=1.5, **dict_out), length=7, seed=10)
    case("bert2bert_disjunctive_eos", "bert2bert",
         dict(force_words_ids=[[[5, 6, 8], [5, 7, 9], [5, 8]], [25]], eos_token_id=EOS, num_beams=5,
              num_return_sequences=3, max_new_tokens=12, early_stopping=True), length=7, seed=11)
    return out


def _constraint(spec):
    kind, ids = spec
    return PhrasalConstraint(ids) if kind == "phrasal" else DisjunctiveConstraint(ids)


def _run(models, case, scores_out):
    done_log = []
    original = v4_beam_search.ConstrainedBeamSearchScorer.process

    def process(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        done_log.append([bool(d) for d in self._done])
        return result

    kwargs = dict(case["kwargs"])
    if "constraints" in kwargs:
        kwargs["constraints"] = [_constraint(s) for s in kwargs["constraints"]]
    v4_beam_search.ConstrainedBeamSearchScorer.process = process
    try:
        with torch.no_grad():
            out = models[case["model"]].generate(torch.tensor(case["input_ids"]),
                                                 attention_mask=torch.tensor(case["attention_mask"]), **kwargs)
    finally:
        v4_beam_search.ConstrainedBeamSearchScorer.process = original
    expected = {"done_after_step": done_log}
    if isinstance(out, torch.Tensor):
        expected["sequences"] = out.tolist()
    else:
        expected["sequences"] = out.sequences.tolist()
        expected["sequences_scores"] = out.sequences_scores.tolist() if out.sequences_scores is not None else None
        expected["beam_indices"] = out.beam_indices.tolist() if out.beam_indices is not None else None
        if out.scores is not None and case["name"] in SCORES_KEPT:
            scores_out[case["name"]] = torch.stack(out.scores).contiguous()
    case["expected"] = expected


def _traces():
    """Replay token sequences through v4's ConstraintListState and DisjunctiveConstraint and record every step.

    PhrasalConstraint is traced only inside a ConstraintListState: on its own, v4.46's reset() leaves the first
    token counted (a slip the search never sees, as the list state replaces a reset constraint by a fresh copy);
    warmstart resets to the start, as v4 documents."""
    lists = [
        ("phrasal_and_disjunctive", [["phrasal", [5, 6, 7]], ["disjunctive", [[8, 9], [10]]]],
         [4, 5, 6, 4, 5, 6, 7, 11, 8, 12, 10, 3]),
        ("break_then_other", [["phrasal", [5, 6]], ["phrasal", [6, 7]]], [5, 7, 6, 7, 5, 5, 6]),
        ("shared_prefix", [["disjunctive", [[5, 6, 8], [5, 7, 9], [5, 8]]], ["phrasal", [20]]],
         [5, 7, 5, 6, 8, 20, 1]),
        ("single_tokens", [["phrasal", [3]], ["phrasal", [4]], ["disjunctive", [[1], [2]]]], [9, 4, 4, 2, 3, 3]),
    ]
    out = {"lists": [], "copies": [], "disjunctive": []}
    for name, specs, tokens in lists:
        state = ConstraintListState([_constraint(s) for s in specs])
        steps = []
        for t in tokens:
            complete, stepped = state.add(t)
            steps.append({"token": t, "complete": complete, "stepped": stepped, "completed": state.completed,
                          "bank": state.get_bank(), "advance": state.advance(),
                          "pending": len(state.pending_constraints), "done": len(state.complete_constraints),
                          "in_progress": state.inprogress_constraint is not None})
        out["lists"].append({"name": name, "constraints": specs, "tokens": tokens, "steps": steps})

    # The search's forced continuations: for a prefix, one stateful copy per advance() token, fed in turn.
    for specs, prefix in (([["disjunctive", [[5, 6, 8], [5, 7, 9], [5, 8]]]], [5]),
                          ([["disjunctive", [[1, 2, 4], [1, 4, 3]]], ["phrasal", [9]]], [1]),
                          ([["phrasal", [5, 6, 7]], ["disjunctive", [[5, 8], [9]]]], [3]),
                          ([["phrasal", [5, 6, 7]], ["disjunctive", [[5, 8], [9]]]], [5, 6])):
        base = ConstraintListState([_constraint(s) for s in specs])
        base.reset(prefix)
        forced = []
        for t in base.advance():
            new = base.copy(stateful=True)
            new.add(t)
            forced.append((t, new))
        out["copies"].append({"constraints": specs, "prefix": prefix, "tokens": [t for t, _ in forced],
                              "banks": [s.get_bank() for _, s in forced],
                              "completed": [s.completed for _, s in forced], "base_bank": base.get_bank()})

    for words, tokens in (([[1, 2, 3], [1, 4], [5]], [1, 2, 9, 1, 4, 1, 5]), ([[7, 8], [9]], [8, 7, 7, 8, 8])):
        c = DisjunctiveConstraint(words)
        steps = []
        for t in tokens:
            before = {"advance": c.advance(), "does_advance": c.does_advance(t)}
            stepped, completed, reset = c.update(t)
            steps.append({**before, "token": t, "stepped": stepped, "completed": completed, "reset": reset,
                          "remaining": c.remaining(), "current_seq": list(c.current_seq)})
        out["disjunctive"].append({"words": words, "tokens": tokens, "steps": steps})
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(here, "constrained"), help="fixture root folder")
    args = parser.parse_args()
    if os.path.isdir(args.out):
        shutil.rmtree(args.out)
    os.makedirs(args.out)

    transformers.logging.set_verbosity_error()
    models = _models()
    for name, model in models.items():
        model.save_pretrained(os.path.join(args.out, name), safe_serialization=True)
    cases, scores = _cases(), {}
    for case in cases:
        _run(models, case, scores)
        print(f"{case['name']}: {len(case['expected']['sequences'])} sequences of "
              f"{len(case['expected']['sequences'][0])} tokens, {len(case['expected']['done_after_step'])} steps")
    meta = {"generated_by": f"transformers {transformers.__version__}, torch {torch.__version__}"}
    with open(os.path.join(args.out, "cases.json"), "w") as f:
        json.dump({"meta": meta, "cases": cases}, f, indent=1)
    save_file(scores, os.path.join(args.out, "scores.safetensors"), meta)
    with open(os.path.join(args.out, "traces.json"), "w") as f:
        json.dump({"meta": meta, **_traces()}, f, indent=1)


if __name__ == "__main__":
    main()
