"""Decode-step matrix products with MKL's packed weights (CPU, float32).

A decode step multiplies a few rows (one per beam or input) by every weight matrix of the decoder, the LM head's
(vocab x hidden) matrix being the largest: the step is bound by how fast weights stream from memory. With weights
pre-packed for that row count, MKL's GEMM streams them 1.5-2x faster than the ordinary ``F.linear`` kernel (which
reads a row-major weight transposed). While ``packed_linears`` is active, the decoder's ``nn.Linear`` layers use
the packed copy for inputs with exactly that many rows and the ordinary kernel otherwise (prefill).

Packing costs a copy of the weights, kept on the model for later calls and rebuilt when a weight changes (its
version counter moves, e.g. after an optimiser step). Only matrices big enough to gain are packed, so small models
run the ordinary kernel. Results agree with ``F.linear`` to float32 rounding (a different summation order).
"""
from __future__ import annotations

import contextlib
import functools

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["packed_linears", "MIN_PACKED_ELEMENTS"]

MIN_PACKED_ELEMENTS = 1 << 17  # 131k weights (a 384 x 384 projection): smaller ones gain nothing
_CACHE_ATTR = "_warmstart_packed_weights"


def _available() -> bool:
    return torch.backends.mkl.is_available() and hasattr(torch.ops.mkl, "_mkl_linear")


def _forward(lin: nn.Linear, packed: torch.Tensor, rows: int, x: torch.Tensor) -> torch.Tensor:
    if torch.is_grad_enabled():
        return F.linear(x, lin.weight, lin.bias)
    # MKL uses the packed copy when x holds `rows` rows (any leading shape) and the plain weight otherwise.
    return torch.ops.mkl._mkl_linear(x, packed, lin.weight, lin.bias, rows)


@contextlib.contextmanager
def packed_linears(owner: nn.Module, module: nn.Module, rows: int, enabled: bool = True):
    """Within the block, ``module``'s large float32 CPU ``nn.Linear`` layers run (rows, in) inputs packed.

    ``owner`` keeps the packed copies between calls (the top-level model, so they go away with it).
    """
    if not enabled or not _available():
        yield
        return
    cache: dict = owner.__dict__.setdefault(_CACHE_ATTR, {})
    patched = []
    try:
        for lin in module.modules():
            w = lin.weight if type(lin) is nn.Linear else None
            if w is None or w.device.type != "cpu" or w.dtype != torch.float32 or w.numel() < MIN_PACKED_ELEMENTS:
                continue
            key = (w.data_ptr(), w._version, tuple(w.shape), rows)
            entry = cache.get(id(lin))
            if entry is None or entry[0] != key:
                with torch.no_grad():
                    entry = (key, torch.ops.mkl._mkl_reorder_linear_weight(w.detach(), rows))
                cache[id(lin)] = entry
            lin.forward = functools.partial(_forward, lin, entry[1], rows)
            patched.append(lin)
        yield
    finally:
        for lin in patched:
            del lin.forward  # back to nn.Linear.forward
