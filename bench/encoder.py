"""Encoder forward: warmstart vs transformers on the same BERT-base-shaped weights, in one process.

Prints transformers_time / warmstart_time (> 1 means warmstart is faster) for fixed shapes and a variable-length
padded batch, in fp32 and bf16, plus the import-time overhead of warmstart over torch.

    .venv/bin/python bench/encoder.py            # full table
    .venv/bin/python bench/encoder.py --quick    # fewer repetitions
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time

import torch

from common import interleaved, table  # bench/ is sys.path[0] for a script here


def import_overhead(reps: int = 7) -> tuple[float, float]:
    """Best-of wall time of a fresh interpreter importing torch, vs torch + warmstart's model classes."""
    def best(code: str) -> float:
        out = []
        for _ in range(reps):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            out.append(time.perf_counter() - t0)
        return min(out)

    return best("import torch"), best("import torch, warmstart; warmstart.BertModel; warmstart.AutoTokenizer")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    import transformers as T

    import warmstart as W

    torch.manual_seed(0)
    hf = T.BertModel(T.BertConfig()).eval()  # bert-base shape, random weights
    with tempfile.TemporaryDirectory() as d:
        hf.save_pretrained(d)
        ours = W.BertModel.from_pretrained(d)

    g = torch.Generator().manual_seed(0)
    cases = {}
    for b in (1, 8, 32):
        ids = torch.randint(1000, 30000, (b, 128), generator=g)
        cases[f"{b}x128"] = (ids, torch.ones_like(ids))
    lengths = torch.randint(8, 129, (64,), generator=g)
    ids = torch.randint(1000, 30000, (64, 128), generator=g)
    mask = (torch.arange(128)[None] < lengths[:, None]).long()
    cases[f"64 var 8-128 (mean {lengths.float().mean():.0f})"] = (ids * mask, mask)

    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        hf_m, our_m = hf.to(dtype), ours.to(dtype)
        for name, (ids, mask) in cases.items():
            tokens = ids.numel()
            reps = max(2, min(20, (40000 if not args.quick else 10000) // tokens))

            def run_hf():
                with torch.inference_mode():
                    hf_m(input_ids=ids, attention_mask=mask)

            def run_ours():
                with torch.inference_mode():
                    our_m(input_ids=ids, attention_mask=mask)

            t = interleaved({"transformers": run_hf, "warmstart": run_ours}, reps=reps)
            rows.append((str(dtype).replace("torch.", ""), name, f"{t['transformers'] * 1e3:.1f}",
                         f"{t['warmstart'] * 1e3:.1f}", f"{t['transformers'] / t['warmstart']:.2f}x"))
            print(*rows[-1], flush=True)
    print()
    print(table(rows, ("dtype", "batch", "transformers ms", "warmstart ms", "ratio")))
    torch_s, ws_s = import_overhead()
    print(f"\nimport torch: {torch_s:.2f}s; import torch + warmstart: {ws_s:.2f}s; overhead {ws_s - torch_s:.2f}s")


if __name__ == "__main__":
    main()
