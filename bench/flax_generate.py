"""generate(): the Flax FlaxEncoderDecoderModel vs our PyTorch EncoderDecoderModel on a MiniLM bert2bert.

The same weights on both sides: a bert2bert warm-started from the all-MiniLM-L6-v2 BERT checkpoint (cross-attention
random, so the text is meaningless but the work is real), saved by the PyTorch model and read by the Flax one with
``from_pt=True``. Inputs are bench/generate.py's ~100-token English texts; each case asks for exactly 32 new tokens
(min_new_tokens = max_new_tokens = 32). Prints the CPU, milliseconds per generated token after compilation for
greedy b1, greedy b8 and beam4 b1, the ratio flax / torch (> 1: PyTorch faster), the first call's time (tracing +
XLA compilation + one run) and whether both produced the same tokens.

    .venv/bin/python bench/flax_generate.py              # the table, 1 thread each
    .venv/bin/python bench/flax_generate.py --threads 2  # both sides on 2 threads
    .venv/bin/python bench/flax_generate.py --quick      # fewer repetitions
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import warnings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=1, help="threads of each side (default 1; see bench/generate.py)")
    ap.add_argument("--cases", default="", help="comma-separated subset, e.g. 'greedy b1,beam4 b1'")
    args = ap.parse_args()
    if args.threads < 1:
        ap.error(f"--threads must be >= 1, got {args.threads}")
    # XLA reads its thread settings when jax starts: set them before the first import.
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + f" --xla_cpu_multi_thread_eigen={args.threads > 1}"
                               f" intra_op_parallelism_threads={args.threads}").strip()
    import numpy as np
    import torch

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from common import interleaved, minilm_bert2bert, table
    from generate import NEW_TOKENS, TEXTS, _cpu

    torch.set_num_threads(args.threads)
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    import warmstart as W

    with tempfile.TemporaryDirectory() as d:
        tok, _ = minilm_bert2bert(d)
        pt = W.EncoderDecoderModel.from_pretrained(d).eval()  # as saved: both sides read the same file
        fx = W.FlaxEncoderDecoderModel.from_pretrained(d, from_pt=True)
    enc = tok(TEXTS, truncation=True, max_length=100, padding=True, return_tensors="np")
    print(f"CPU: {_cpu()}; {args.threads} thread(s) each; input {enc['attention_mask'].sum(1).tolist()} tokens per "
          f"text, {NEW_TOKENS} new tokens, float32", flush=True)
    settings = dict(min_new_tokens=NEW_TOKENS, max_new_tokens=NEW_TOKENS, decoder_start_token_id=tok.cls_token_id,
                    pad_token_id=tok.pad_token_id, eos_token_id=tok.sep_token_id)
    cases = {"greedy b1": (1, {}), "greedy b8": (8, {}), "beam4 b1": (1, {"num_beams": 4})}
    if args.cases:
        cases = {k: v for k, v in cases.items() if k in args.cases.split(",")}
    rows = []
    for name, (batch, extra) in cases.items():
        ids, mask = enc["input_ids"][:batch], enc["attention_mask"][:batch]
        ids_t, mask_t = torch.from_numpy(ids), torch.from_numpy(mask)
        outs = {}

        def run_flax():
            outs["flax"] = np.asarray(fx.generate(ids, attention_mask=mask, **settings, **extra).sequences)

        def run_torch():
            with torch.inference_mode():
                outs["torch"] = pt.generate(input_ids=ids_t, attention_mask=mask_t, **settings, **extra).numpy()

        t0 = time.perf_counter()
        run_flax()  # trace + compile + one run
        first = time.perf_counter() - t0
        t = interleaved({"flax": run_flax, "torch": run_torch}, reps=3 if args.quick else 7)
        a, b = outs["flax"], outs["torch"]
        same = "yes" if a.shape == b.shape and (a == b).all() else "no"
        rows.append((name, f"{t['flax'] * 1e3 / NEW_TOKENS:.2f}", f"{t['torch'] * 1e3 / NEW_TOKENS:.2f}",
                     f"{t['flax'] / t['torch']:.2f}", f"{first - t['flax']:.1f}", same))
        print(*rows[-1], flush=True)
    print()
    print(table(rows, ("case", "flax ms/token", "torch ms/token", "flax/torch", "compile s", "same tokens")))
    print("\nflax/torch = median Flax generate time / median PyTorch generate time (> 1: PyTorch faster); compile s = "
          "the first Flax call minus a compiled one (tracing + XLA compilation, once per shape and setting).")


if __name__ == "__main__":
    main()
