"""The contrastive-search / DoLa reference cases frozen from transformers 4.46.3 (tests/assets/strategies, written by
tests/assets/make_strategy_fixtures.py): loading them and comparing warmstart's generate() with them."""
from __future__ import annotations

import json
import warnings
from functools import lru_cache
from pathlib import Path

import torch
from safetensors.torch import load_file

import warmstart as W

ROOT = Path(__file__).resolve().parents[1] / "assets" / "strategies"
CLASSES = {"gpt2": W.GPT2LMHeadModel, "gpt2_deep": W.GPT2LMHeadModel, "bert": W.BertLMHeadModel,
           "bert2bert": W.EncoderDecoderModel}
ATOL = 1e-5


def case_names(prefix: str) -> list[str]:
    return sorted(p.name for p in ROOT.iterdir() if p.name.startswith(prefix))


@lru_cache(maxsize=None)
def model(name: str):
    return CLASSES[name].from_pretrained(ROOT / "models" / name).eval()


def load_case(case: str) -> tuple[dict, dict]:
    return json.loads((ROOT / case / "case.json").read_text()), load_file(ROOT / case / "tensors.safetensors")


def run_case(case: str, **overrides):
    """warmstart's generate() on the case's model, prompt and settings (v4's advice warnings silenced)."""
    info, t = load_case(case)
    if info["seed"] is not None:
        torch.manual_seed(info["seed"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model(info["model"]).generate(t["input_ids"], attention_mask=t["attention_mask"],
                                             **{**info["kwargs"], **overrides})


def _close(ours: torch.Tensor, want: torch.Tensor, what: str) -> None:
    assert tuple(ours.shape) == tuple(want.shape), f"{what}: shape {tuple(ours.shape)}, v4 {tuple(want.shape)}"
    # -inf marks tokens a processor ruled out; they must be ruled out in both.
    assert torch.equal(torch.isinf(ours), torch.isinf(want)), f"{what}: ruled-out tokens differ"
    finite = ~torch.isinf(want)
    diff = (ours[finite] - want[finite]).abs().max().item() if bool(finite.any()) else 0.0
    assert diff <= ATOL, f"{what}: max abs diff {diff:.3g} > {ATOL}"


def check_case(case: str) -> None:
    """Token-identical sequences; with return_dict_in_generate also v4's per-step scores, logits, attentions and
    hidden states (values and shapes) and the shapes of the returned cache."""
    info, t = load_case(case)
    out = run_case(case)
    record = info["kwargs"].get("return_dict_in_generate")
    seq = out.sequences if record else out
    want = t["expected.sequences"]
    assert torch.equal(seq, want), f"{case}: sequences differ\nwarmstart\n{seq}\ntransformers 4.46.3\n{want}"
    if not record:
        return
    for field in ("scores", "logits"):
        steps = getattr(out, field)
        n = sum(1 for k in t if k.startswith(f"expected.{field}."))
        assert len(steps) == n, f"{case}: {len(steps)} {field}, v4 {n}"
        for i, s in enumerate(steps):
            _close(s, t[f"expected.{field}.{i}"], f"{case} {field}[{i}]")
    for field, shapes in info["shapes"].items():
        ours = getattr(out, field)
        if field == "past_key_values":
            got = [[list(x.shape) for x in layer] for layer in ours]
            if len(shapes[0]) == 4:
                # v4.46 crops the look-ahead position off every cached tensor of an encoder-decoder, the
                # cross-attention K/V too (one source position lost); warmstart crops the self-attention cache only.
                source = info["shapes"]["encoder_hidden_states"][0][1]
                shapes = [layer[:2] + [s[:2] + [source] + s[3:] for s in layer[2:]] for layer in shapes]
            assert got == shapes, f"{case}: cache shapes {got}, v4 {shapes}"
        elif field.startswith("encoder_"):
            assert [list(x.shape) for x in ours] == shapes, f"{case}: {field} shapes"
        else:
            assert len(ours) == len(shapes), f"{case}: {len(ours)} steps of {field}, v4 {len(shapes)}"
            for i, step in enumerate(ours):
                for layer, x in enumerate(step):
                    want = t[f"expected.{field}.{i}.{layer}"]
                    if i == 0 and field in ("attentions", "hidden_states"):
                        # Padding positions of the prompt attend to nothing and are numbered arbitrarily (v4: position
                        # 1, warmstart 0); what their rows hold is never read, so only real positions are compared.
                        real = t["attention_mask"].bool()
                        real = real[:, None, :, None] if field == "attentions" else real[:, :, None]
                        x, want = x * real, want * real
                    _close(x, want, f"{case} {field}[{i}][{layer}]")
