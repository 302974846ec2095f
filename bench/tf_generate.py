"""generate(): warmstart's TF TFEncoderDecoderModel (XLA) vs our PyTorch EncoderDecoderModel on a MiniLM bert2bert.

The same weights on both sides: a bert2bert warm-started from the all-MiniLM-L6-v2 BERT checkpoint (cross-attention
random, so the text is meaningless but the work is real), saved by the PyTorch model and read by the TF one with
``from_pt=True``. Inputs are bench/generate.py's ~100-token English texts; each case asks for exactly 32 new tokens
(min_new_tokens = max_new_tokens = 32). TF runs ``generate(..., jit_compile=True)``: the whole decoding loop compiled
by XLA, once per input shape and setting. Prints the CPU, milliseconds per generated token after compilation for
greedy b1, greedy b8 and beam4 b1, the ratio tf / torch (> 1: PyTorch faster), the first call's time minus a compiled
one (tracing + XLA compilation), and whether both produced the same tokens.

    .venv/bin/python bench/tf_generate.py              # the table, 1 thread each
    .venv/bin/python bench/tf_generate.py --threads 2  # both sides on 2 threads
    .venv/bin/python bench/tf_generate.py --quick      # fewer repetitions
    .venv/bin/python bench/tf_generate.py --eager      # also time TF's eager loop (jit_compile=False)
    .venv/bin/python bench/tf_generate.py --torch-only # only the PyTorch half (a smoke run without the TF port)
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
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--threads", type=int, default=1, help="threads of each side (default 1; see bench/generate.py)")
    ap.add_argument("--cases", default="", help="comma-separated subset, e.g. 'greedy b1,beam4 b1'")
    ap.add_argument("--eager", action="store_true", help="also time TF generate without XLA (jit_compile=False)")
    ap.add_argument("--torch-only", action="store_true", help="skip TensorFlow: time and print PyTorch only")
    args = ap.parse_args()
    if args.threads < 1:
        ap.error(f"--threads must be >= 1, got {args.threads}")
    # XLA and TensorFlow read their thread settings when the runtime starts: set them before the first import.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               f" --xla_cpu_multi_thread_eigen={str(args.threads > 1).lower()}").strip()
    import numpy as np
    import torch

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from common import interleaved, minilm_bert2bert, table
    from generate import NEW_TOKENS, TEXTS, _cpu

    torch.set_num_threads(args.threads)
    tf = None
    if not args.torch_only:
        from warmstart.tf.backend import tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    import warmstart as W

    with tempfile.TemporaryDirectory() as d:
        tok, _ = minilm_bert2bert(d)
        pt = W.EncoderDecoderModel.from_pretrained(d).eval()  # as saved: both sides read the same file
        tfm = None
        if tf is not None:
            from warmstart.tf import TFEncoderDecoderModel

            tfm = TFEncoderDecoderModel.from_pretrained(d, from_pt=True)
    enc = tok(TEXTS, truncation=True, max_length=100, padding=True, return_tensors="np")
    threads = f"{args.threads} thread(s) each (torch {torch.get_num_threads()}"
    if tf is not None:
        threads += f", tf intra-op {tf.config.threading.get_intra_op_parallelism_threads()}"
    print(f"CPU: {_cpu()}; {threads}); input {enc['attention_mask'].sum(1).tolist()} tokens per text, "
          f"{NEW_TOKENS} new tokens, float32", flush=True)
    settings = dict(min_new_tokens=NEW_TOKENS, max_new_tokens=NEW_TOKENS, decoder_start_token_id=tok.cls_token_id,
                    pad_token_id=tok.pad_token_id, eos_token_id=tok.sep_token_id)
    cases = {"greedy b1": (1, {}), "greedy b8": (8, {}), "beam4 b1": (1, {"num_beams": 4})}
    if args.cases:
        wanted = [c.strip() for c in args.cases.split(",")]
        unknown = sorted(set(wanted) - set(cases))
        if unknown:
            ap.error(f"unknown --cases {unknown}; choose from {list(cases)}")
        cases = {k: v for k, v in cases.items() if k in wanted}
    reps = 3 if args.quick else 7
    rows = []
    for name, (batch, extra) in cases.items():
        ids, mask = enc["input_ids"][:batch].astype(np.int32), enc["attention_mask"][:batch].astype(np.int32)
        ids_t, mask_t = torch.from_numpy(ids).long(), torch.from_numpy(mask).long()
        outs = {}

        def run_torch():
            with torch.inference_mode():
                outs["torch"] = pt.generate(input_ids=ids_t, attention_mask=mask_t, **settings, **extra).numpy()

        if tfm is None:
            t = interleaved({"torch": run_torch}, reps=reps)
            rows.append((name, "-", f"{t['torch'] * 1e3 / NEW_TOKENS:.2f}", "-", "-", "-"))
            print(*rows[-1], flush=True)
            continue
        ids_tf, mask_tf = tf.constant(ids), tf.constant(mask)

        def run_tf(jit=True):
            out = tfm.generate(ids_tf, attention_mask=mask_tf, jit_compile=jit, **settings, **extra)
            outs["tf xla" if jit else "tf eager"] = np.asarray(out.numpy() if hasattr(out, "numpy") else out)

        t0 = time.perf_counter()
        run_tf()  # trace + XLA compilation + one run
        first = time.perf_counter() - t0
        fns = {"tf": run_tf, "torch": run_torch}
        if args.eager:
            fns["eager"] = lambda: run_tf(jit=False)
        t = interleaved(fns, reps=reps)
        ref = outs["torch"]

        def same(key):
            a = outs[key]
            return "yes" if a.shape == ref.shape and (a == ref).all() else f"no {tuple(a.shape)} vs {tuple(ref.shape)}"

        row = [name, f"{t['tf'] * 1e3 / NEW_TOKENS:.2f}", f"{t['torch'] * 1e3 / NEW_TOKENS:.2f}",
               f"{t['tf'] / t['torch']:.2f}", f"{first - t['tf']:.1f}", same("tf xla")]
        if args.eager:
            row[4:4] = [f"{t['eager'] * 1e3 / NEW_TOKENS:.2f}", f"{t['eager'] / t['torch']:.2f}"]
            row.append(same("tf eager"))
        rows.append(tuple(row))
        print(*rows[-1], flush=True)
    print()
    header = ["case", "tf xla ms/token", "torch ms/token", "tf/torch", "compile s", "same tokens"]
    if args.eager and tfm is not None:
        header[4:4] = ["tf eager ms/token", "eager/torch"]
        header.append("same (eager)")
    print(table(rows, tuple(header)))
    if tfm is None:
        print("\n--torch-only: the TF side was skipped.")
        return
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\ntf/torch = median TF generate time (jit_compile=True, compiled) / median PyTorch generate time (> 1: "
          f"PyTorch faster); compile s = the first TF call minus a compiled one (tracing + XLA compilation, once per "
          f"shape and setting). tf {tf.__version__}, torch {torch.__version__}, load average {load:.2f} at the end")


if __name__ == "__main__":
    main()
