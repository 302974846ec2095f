"""Decode-step matrix products with pre-packed weights (CPU: MKL for float32, oneDNN for bfloat16).

A decode step multiplies a few rows (one per beam or input) by every weight matrix of the decoder, the LM head's
(vocab x hidden) matrix being the largest: the step is bound by how fast weights stream from memory. With weights
pre-packed for that row count, MKL's GEMM streams float32 weights 1.5-2x faster than the ordinary ``F.linear`` kernel
(which reads a row-major weight transposed), and oneDNN's packed bfloat16 kernel (AMX / AVX-512 BF16) runs 1.7-2.4x
faster than ``F.linear`` on bfloat16, with identical results. While ``packed_linears`` is active, the decoder's
``nn.Linear`` layers use the packed copy (float32: for inputs with exactly that many rows, the ordinary kernel
otherwise, e.g. prefill; bfloat16: any row count).

Packing costs a copy of the weights, kept on the model for later calls and rebuilt when a weight changes (its
version counter moves, e.g. after an optimiser step). Only matrices big enough to gain are packed, so small models
run the ordinary kernel. float32 results agree with ``F.linear`` to rounding (a different summation order);
bfloat16 results are identical.

The kernel is chosen by the CPU (warmstart.hardware). Without bfloat16 hardware (no AMX, no AVX-512 BF16: an AVX2
EPYC, say) oneDNN emulates bfloat16 and a bf16 decode step is slower than float32; there the bfloat16 weights are
packed as float32 for MKL instead and the step's products run in float32 (inputs widened, outputs rounded back to
bfloat16), so bf16 weights never decode slower than float32 ones. A warning says so, once.
"""
from __future__ import annotations

import contextlib
import functools
import logging

import torch
import torch.nn.functional as F
from torch import nn

from ..hardware import cpu

log = logging.getLogger(__name__)

__all__ = ["packed_linears", "MIN_PACKED_ELEMENTS"]

MIN_PACKED_ELEMENTS = 1 << 17  # 131k weights (a 384 x 384 projection): smaller ones gain nothing
_CACHE_ATTR = "_warmstart_packed_weights"


def _mkl_available() -> bool:
    return torch.backends.mkl.is_available() and hasattr(torch.ops.mkl, "_mkl_linear")


def _onednn_bf16_available() -> bool:
    ops = torch.ops.mkldnn
    return (torch.backends.mkldnn.is_available() and hasattr(ops, "_reorder_linear_weight")
            and hasattr(ops, "_linear_pointwise") and bool(getattr(ops, "_is_mkldnn_bf16_supported", lambda: False)()))


def _bf16_kind() -> str | None:
    """How bfloat16 weights are packed: "onednn" (bf16 hardware), "mkl32" (float32 products), or None."""
    if not cpu().bf16_native:
        return "mkl32" if _mkl_available() else None
    return "onednn" if _onednn_bf16_available() else None


_warned_bf16 = False


def _warn_bf16_fallback() -> None:
    global _warned_bf16
    if not _warned_bf16:
        _warned_bf16 = True
        log.warning("this CPU has no bfloat16 hardware (no AMX or AVX-512 BF16: %s): bfloat16 matrix products would "
                    "be emulated and slower than float32, so the decode step runs them in float32", cpu().describe())


def _pack(w: torch.Tensor, rows: int, bf16_kind: str | None) -> torch.Tensor:
    if w.dtype == torch.float32 or bf16_kind == "mkl32":
        return torch.ops.mkl._mkl_reorder_linear_weight(w.float(), rows)
    return torch.ops.mkldnn._reorder_linear_weight(w, rows)


def _forward(lin: nn.Linear, packed: torch.Tensor, rows: int, x: torch.Tensor) -> torch.Tensor:
    if torch.is_grad_enabled():
        return F.linear(x, lin.weight, lin.bias)
    if packed.dtype != lin.weight.dtype:  # bfloat16 weights packed as float32 (no bf16 hardware)
        if x.shape[:-1].numel() != rows:
            return F.linear(x, lin.weight, lin.bias)
        bias = None if lin.bias is None else lin.bias.float()
        # The plain-weight argument is only read for other row counts, excluded above: a free stand-in.
        stand_in = torch.zeros((), device=x.device).expand(lin.weight.shape)
        return torch.ops.mkl._mkl_linear(x.float(), packed, stand_in, bias, rows).to(x.dtype)
    if packed.dtype == torch.float32:
        # MKL uses the packed copy when x holds `rows` rows (any leading shape) and the plain weight otherwise.
        return torch.ops.mkl._mkl_linear(x, packed, lin.weight, lin.bias, rows)
    if x.dtype != packed.dtype:
        return F.linear(x, lin.weight, lin.bias)
    return torch.ops.mkldnn._linear_pointwise(x, packed, lin.bias, "none", [], "")


@contextlib.contextmanager
def packed_linears(owner: nn.Module, module: nn.Module, rows: int, enabled: bool = True):
    """Within the block, ``module``'s large float32 / bfloat16 CPU ``nn.Linear`` layers run with packed weights.

    ``owner`` keeps the packed copies between calls (the top-level model, so they go away with it).
    """
    bf16_kind = _bf16_kind()
    kinds = {torch.float32: _mkl_available(), torch.bfloat16: bf16_kind is not None}
    if not enabled or not any(kinds.values()):
        yield
        return
    cache: dict = owner.__dict__.setdefault(_CACHE_ATTR, {})
    patched = []
    try:
        for lin in module.modules():
            w = lin.weight if type(lin) is nn.Linear else None
            if w is None or w.device.type != "cpu" or not kinds.get(w.dtype) or w.numel() < MIN_PACKED_ELEMENTS:
                continue
            if w.dtype == torch.bfloat16 and bf16_kind == "mkl32":
                _warn_bf16_fallback()
            key = (w.data_ptr(), w._version, tuple(w.shape), w.dtype, rows, bf16_kind)
            entry = cache.get(id(lin))
            if entry is None or entry[0] != key:
                with torch.no_grad():
                    entry = (key, _pack(w.detach(), rows, bf16_kind))
                cache[id(lin)] = entry
            lin.forward = functools.partial(_forward, lin, entry[1], rows)
            patched.append(lin)
        yield
    finally:
        for lin in patched:
            del lin.forward  # back to nn.Linear.forward
