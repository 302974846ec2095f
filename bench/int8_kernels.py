"""Per-product time of a MiniLM bert2bert decode step's matrix shapes, for the kernels the fast modes chose among:
float32 F.linear, float32 MKL-packed, bfloat16 F.linear and oneDNN-packed, and torch's int8 weight-only
``_weight_int8pack_mm`` fed float32 or bfloat16 inputs (results/fast_modes/README.md has a table of one run).
Best of 5 timed loops per product, microseconds; prints the CPU and its flags first.

    .venv/bin/python bench/int8_kernels.py            # one thread
    THREADS=2 .venv/bin/python bench/int8_kernels.py
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 .venv/bin/python bench/int8_kernels.py
                                                      # an AVX2-only CPU, emulated
"""
from __future__ import annotations

import os
import time

import torch
import torch.nn.functional as F

SHAPES = [(384, 384), (1152, 384), (1536, 384), (384, 1536), (30522, 384)]  # (out, in) of one decode step
ROWS = (1, 4, 8)  # batch x beams


def timeit(fn, min_time: float = 0.15) -> float:
    fn()
    fn()
    n = 1
    while True:  # enough calls per loop that the timer's resolution does not matter
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - t0 > min_time / 5:
            break
        n *= 2
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e6


def main() -> None:
    from warmstart.hardware import cpu

    torch.manual_seed(0)
    torch.set_num_threads(int(os.environ.get("THREADS", "1")))
    ops = torch.ops
    onednn_bf16 = bool(ops.mkldnn._is_mkldnn_bf16_supported())
    print(f"cpu: {cpu().describe()}; threads={torch.get_num_threads()}, "
          f"ATen capability {torch.backends.cpu.get_cpu_capability()}")
    with torch.inference_mode():
        for out_f, in_f in SHAPES:
            w, b = torch.randn(out_f, in_f) * 0.05, torch.randn(out_f) * 0.01
            s = w.abs().amax(1).clamp_min(1e-12) / 127  # symmetric, one scale per output row
            q = torch.round(w / s[:, None]).clamp(-127, 127).to(torch.int8)
            wb, bb, sb = w.bfloat16(), b.bfloat16(), s.bfloat16()
            for r in ROWS:
                x = torch.randn(r, in_f)
                xb = x.bfloat16()
                row = {"fp32 F.linear": timeit(lambda: F.linear(x, w, b))}
                pk = ops.mkl._mkl_reorder_linear_weight(w, r)
                row["fp32 MKL-packed"] = timeit(lambda: ops.mkl._mkl_linear(x, pk, w, b, r))
                row["bf16 F.linear"] = timeit(lambda: F.linear(xb, wb, bb))
                if onednn_bf16:
                    pb = ops.mkldnn._reorder_linear_weight(wb, r)
                    row["bf16 oneDNN-packed"] = timeit(lambda: ops.mkldnn._linear_pointwise(xb, pb, bb, "none", [], ""))
                row["int8 fp32 input"] = timeit(lambda: ops.aten._weight_int8pack_mm(x, q, s).add_(b))
                row["int8 bf16 input"] = timeit(lambda: ops.aten._weight_int8pack_mm(xb, q, sb).add_(bb))
                print(f"{out_f:>5}x{in_f:<5} rows {r}: " + "  ".join(f"{k} {v:8.1f}" for k, v in row.items()),
                      flush=True)


if __name__ == "__main__":
    main()
