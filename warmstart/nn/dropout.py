"""Dropout with a cheaper random source.

torch's CPU dropout draws one Bernoulli sample per element from a serial generator, which made it the largest
single cost of a MiniLM bert2bert training step (~19% under bf16 autocast). Here one 64-bit draw feeds four
elements: each 16-bit slice, read as a signed integer, is compared with a threshold, so an element is dropped with
probability p rounded to a multiple of 2^-16 (0.1 -> 0.100006); kept values are scaled by the exact
1 / (1 - p_effective), so the expectation is preserved as with torch's dropout. Random streams differ from torch's;
the distribution does not.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["Dropout", "dropout", "keep_mask"]

_SCALE = 1 << 16  # values a 16-bit slice takes


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    if not training or p == 0.0:
        return x
    if p >= 1.0:
        return x * 0.0
    keep, scale = keep_mask(x, p)
    # One multiply forward and one backward: the mask carries the scale, built in x's dtype in one pass.
    return x * torch.where(keep, torch.tensor(scale, dtype=x.dtype, device=x.device),
                           torch.tensor(0.0, dtype=x.dtype, device=x.device))


def keep_mask(x: torch.Tensor, p: float) -> tuple[torch.Tensor, float]:
    """A bool tensor shaped like x (True: keep, with probability 1 - p) and the scale kept values get.

    For callers that can apply the scale somewhere cheaper, e.g. attention scales its (T, D) output rather than
    the (T, S) probabilities.
    """
    threshold = min(round(p * _SCALE), _SCALE - 1)
    if torch.compiler.is_compiling():
        # Dynamo cannot trace random_ on a dtype-punned buffer, and inductor's own random numbers (one Philox
        # draw per element, not vectorised on CPU) made a compiled MiniLM step slower than the eager one: the same
        # draw runs as an opaque op, and inductor fuses only the multiply that applies the mask.
        return torch.ops.warmstart.keep_mask(x.detach(), threshold), _SCALE / (_SCALE - threshold)
    return _draw_keep(x, threshold), _SCALE / (_SCALE - threshold)


def _draw_keep(x: torch.Tensor, threshold: int) -> torch.Tensor:
    n = x.numel()
    # The full signed range: a bare random_() leaves the top bit 0, which would bias every fourth slice.
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device).random_(-(1 << 63), None)
    # A uniform int16 is below threshold - 2^15 with probability threshold / 2^16.
    return words.view(torch.int16)[:n].view(x.shape) >= threshold - _SCALE // 2


@torch.library.custom_op("warmstart::keep_mask", mutates_args=())
def _keep_mask_op(x: torch.Tensor, threshold: int) -> torch.Tensor:
    return _draw_keep(x, threshold)


@_keep_mask_op.register_fake
def _(x: torch.Tensor, threshold: int) -> torch.Tensor:
    return torch.empty_like(x, dtype=torch.bool, memory_format=torch.contiguous_format)


class Dropout(nn.Module):
    """Drop-in for torch.nn.Dropout (same ``p`` attribute and train/eval behaviour)."""

    def __init__(self, p: float = 0.1):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
