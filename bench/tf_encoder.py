"""Encoder forward: TFBertModel (XLA-compiled, and eager) vs our PyTorch BertModel on the same BERT-base weights.

Both sides run warmstart's code on the same random weights: the PyTorch model is built, saved with
``save_pretrained`` and read back by ``TFBertModel.from_pretrained`` (PyTorch-named safetensors, converted on load).
PyTorch runs eval + inference_mode; TF runs the model call inside ``tf.function(jit_compile=True)`` (XLA), inside a
plain ``tf.function`` (TensorFlow's graph runtime) and eagerly. Both libraries get the same intra-op thread count.
Prints the CPU and its vector flags, the first XLA call (trace + compile) per shape, the fp32 max abs diff of each
TF output against PyTorch, and tf_time / torch_time per shape (< 1 means TF is faster).

    .venv/bin/python bench/tf_encoder.py              # BERT-base, 1x128 and 8x128, fp32
    .venv/bin/python bench/tf_encoder.py --quick      # tiny model and shapes: a smoke run
    .venv/bin/python bench/tf_encoder.py --threads 1  # both sides on 1 thread (default: torch's default count)
    .venv/bin/python bench/tf_encoder.py --repeats 5  # timed calls per case (default: by size)
"""
from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow's first import
import numpy as np
import torch

from common import interleaved, table  # bench/ is sys.path[0] for a script here
from generate import _cpu  # one reading of /proc/cpuinfo for every bench

BASE = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072, vocab_size=30522)
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, vocab_size=99)


def build(sizes: dict):
    """(our PyTorch BertModel, TFBertModel) on the same random weights, moved through a saved folder."""
    import warmstart as W
    from warmstart.tf import TFBertModel

    torch.manual_seed(0)
    pt = W.BertModel(W.BertConfig(**sizes)).eval()
    with tempfile.TemporaryDirectory() as d:
        pt.save_pretrained(d)
        tfm = TFBertModel.from_pretrained(d)
    return pt, tfm


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="tiny model and shapes (a smoke run)")
    ap.add_argument("--threads", type=int, default=None, help="threads of each side (default: torch's default)")
    ap.add_argument("--repeats", type=int, default=None, help="timed calls per case (default: by size)")
    args = ap.parse_args()
    if args.repeats is not None and args.repeats < 1:
        ap.error(f"--repeats must be >= 1, got {args.repeats}")
    if args.threads is not None and args.threads < 1:
        ap.error(f"--threads must be >= 1, got {args.threads}")
    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    # TensorFlow reads its thread settings when its runtime starts: set them before the first op.
    from warmstart.tf.backend import tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")

    sizes = TINY if args.quick else BASE
    shapes = [(1, 8), (2, 8)] if args.quick else [(1, 128), (8, 128)]
    print(f"CPU: {_cpu()}; {threads} thread(s) each (torch {torch.get_num_threads()}, tf intra-op "
          f"{tf.config.threading.get_intra_op_parallelism_threads()}); fp32", flush=True)
    pt, tfm = build(sizes)
    def forward(ids, mask):
        return tfm(input_ids=ids, attention_mask=mask, training=False).last_hidden_state

    xla = tf.function(forward, jit_compile=True)
    graph = tf.function(forward)  # TensorFlow's own graph runtime (grappler + oneDNN kernels), no XLA

    g = np.random.default_rng(0)
    rows = []
    for b, t in shapes:
        ids = g.integers(1, sizes["vocab_size"], (b, t)).astype(np.int32)
        mask = np.ones_like(ids)
        ids_t, mask_t = torch.from_numpy(ids).long(), torch.from_numpy(mask).long()
        ids_tf, mask_tf = tf.constant(ids), tf.constant(mask)

        def run_xla():
            return xla(ids_tf, mask_tf).numpy()

        def run_graph():
            return graph(ids_tf, mask_tf).numpy()

        def run_eager():
            return tfm(input_ids=ids_tf, attention_mask=mask_tf, training=False).last_hidden_state.numpy()

        def run_torch():
            with torch.inference_mode():
                return pt(ids_t, attention_mask=mask_t).last_hidden_state

        t0 = time.perf_counter()
        first = run_xla()  # trace + XLA compile + one run
        compile_s = time.perf_counter() - t0
        ref = run_torch().numpy()
        diff_xla, diff_eager = float(np.abs(first - ref).max()), float(np.abs(run_eager() - ref).max())
        print(f"sanity: fp32 max abs diff vs torch at {b}x{t}: tf xla {diff_xla:.2e}, tf eager {diff_eager:.2e}",
              flush=True)
        reps = args.repeats or max(2, min(10, 4096 // (b * t)))
        diff_graph = float(np.abs(run_graph() - ref).max())
        times = interleaved({"xla": run_xla, "graph": run_graph, "eager": run_eager, "torch": run_torch}, reps=reps)
        rows.append((f"{b}x{t}", f"{compile_s:.2f}", f"{times['xla'] * 1e3:.1f}", f"{times['graph'] * 1e3:.1f}",
                     f"{times['eager'] * 1e3:.1f}", f"{times['torch'] * 1e3:.1f}",
                     f"{times['xla'] / times['torch']:.2f}", f"{times['graph'] / times['torch']:.2f}",
                     f"{times['eager'] / times['torch']:.2f}", f"{max(diff_xla, diff_graph, diff_eager):.1e}"))
        print(*rows[-1], flush=True)
    print()
    print(table(rows, ("batch", "xla first call s", "tf xla ms", "tf graph ms", "tf eager ms", "torch ms",
                       "xla/torch", "graph/torch", "eager/torch", "max abs diff")))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nxla/torch, graph/torch, eager/torch = median TFBertModel time (tf.function with jit_compile=True / "
          f"tf.function without XLA / eager) / median PyTorch BertModel "
          f"time (< 1: TF faster); the first call includes tracing and XLA compilation. tf {tf.__version__}, torch "
          f"{torch.__version__}, load average {load:.2f} at the end")


if __name__ == "__main__":
    main()
