"""Encoder forward: jitted FlaxBertModel vs our PyTorch BertModel on the same BERT-base-shaped weights.

Both sides run warmstart's code (the PyTorch model eval + no_grad, the Flax model through its jit-compiled
``__call__``), on the same random weights moved with the layout converter. Prints the CPU and its vector flags,
the first-call (trace + compile) time of each Flax shape, the fp32 max abs diff of the two outputs, and
flax_time / torch_time per shape and dtype (< 1 means Flax is faster).

    .venv/bin/python bench/flax_encoder.py              # BERT-base, 1x128 / 8x128 / 32x128, fp32 and bf16
    .venv/bin/python bench/flax_encoder.py --quick      # tiny model and shapes: a smoke run
    .venv/bin/python bench/flax_encoder.py --repeats 5  # timed calls per case (default: by size)
"""
from __future__ import annotations

import argparse
import time

import jax.numpy as jnp
import numpy as np
import torch

from common import interleaved, table  # bench/ is sys.path[0] for a script here
from generate import _cpu  # one reading of /proc/cpuinfo for every bench

BASE = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072, vocab_size=30522)
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, vocab_size=99)


def build(sizes: dict):
    """(our PyTorch BertModel, a function making FlaxBertModel of a dtype) on the same random weights."""
    import warmstart as W
    from warmstart.checkpoint.flax_layout import to_flax_tree
    from warmstart.checkpoint.keymaps import KEYMAPS
    from warmstart.flax.bert import FlaxBertModel

    torch.manual_seed(0)
    config = W.BertConfig(**sizes)
    pt = W.BertModel(config).eval()
    state = {k: v.detach().numpy() for k, v in pt.state_dict().items()}
    tree = to_flax_tree(KEYMAPS["bert"].to_theirs(state, model_has_prefix=False))

    def flax_model(dtype):
        fx = FlaxBertModel(W.BertConfig(**sizes), dtype=dtype, _do_init=False)  # no throw-away random init
        fx.params = tree if dtype == jnp.float32 else fx.to_bf16(tree)
        return fx

    return pt, flax_model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="tiny model and shapes (a smoke run)")
    ap.add_argument("--repeats", type=int, default=None, help="timed calls per case (default: by size)")
    args = ap.parse_args()
    if args.repeats is not None and args.repeats < 1:
        ap.error(f"--repeats must be >= 1, got {args.repeats}")
    sizes = TINY if args.quick else BASE
    shapes = [(1, 8), (2, 8)] if args.quick else [(1, 128), (8, 128), (32, 128)]
    print(f"CPU: {_cpu()}; torch threads {torch.get_num_threads()}")
    pt, flax_model = build(sizes)

    g = np.random.default_rng(0)
    rows = []
    for name, jdtype, tdtype in (("fp32", jnp.float32, torch.float32), ("bf16", jnp.bfloat16, torch.bfloat16)):
        fx, pt_m = flax_model(jdtype), pt.to(tdtype)
        for b, t in shapes:
            ids = g.integers(1, sizes["vocab_size"], (b, t))
            mask = np.ones_like(ids)
            ids_t, mask_t = torch.from_numpy(ids), torch.from_numpy(mask)

            def run_flax():
                return fx(ids, attention_mask=mask).last_hidden_state.block_until_ready()

            def run_torch():
                with torch.no_grad():
                    return pt_m(ids_t, attention_mask=mask_t).last_hidden_state

            t0 = time.perf_counter()
            first = run_flax()  # trace + XLA compile + one run
            compile_s = time.perf_counter() - t0
            if name == "fp32" and b == shapes[1][0]:
                diff = float(np.abs(np.asarray(first, np.float32) - run_torch().numpy()).max())
                print(f"sanity: fp32 max abs diff flax vs torch at {b}x{t}: {diff:.2e}")
            reps = args.repeats or max(2, min(10, 4096 // (b * t)))
            times = interleaved({"flax": run_flax, "torch": run_torch}, reps=reps)
            rows.append((name, f"{b}x{t}", f"{compile_s:.2f}", f"{times['flax'] * 1e3:.1f}",
                         f"{times['torch'] * 1e3:.1f}", f"{times['flax'] / times['torch']:.2f}"))
            print(*rows[-1], flush=True)
    print()
    print(table(rows, ("dtype", "batch", "flax first call s", "flax ms", "torch ms", "flax/torch")))
    print("\nflax/torch = median jitted FlaxBertModel time / median PyTorch BertModel time (< 1: Flax faster); "
          "the first call includes tracing and XLA compilation.")


if __name__ == "__main__":
    main()
