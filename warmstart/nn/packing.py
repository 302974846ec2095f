"""Dropping padding tokens so no FLOPs are spent on them.

With right padding, a batch of lengths 8..128 padded to 128 wastes about half its compute. Projections, feed-forward
and norms act per token, so they run on the (N, C) matrix of real tokens only; attention needs the (B, T) layout,
so the projected q/k/v are scattered back into it (attention is a few percent of a layer's FLOPs at these lengths)
and gathered out again before the output projection.
"""
from __future__ import annotations

import torch

__all__ = ["Packing"]


class Packing:
    def __init__(self, attention_mask: torch.Tensor):  # (B, T), 1 = real token
        self.batch, self.length = attention_mask.shape
        self.index = attention_mask.reshape(-1).nonzero().squeeze(1)  # (N,) positions in the flat (B*T) layout

    def pack(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, ...) -> (N, ...)
        return x.reshape(self.batch * self.length, *x.shape[2:]).index_select(0, self.index)

    def unpack(self, x: torch.Tensor) -> torch.Tensor:  # (N, ...) -> (B, T, ...), zeros at padding
        out = x.new_zeros(self.batch * self.length, *x.shape[1:])
        out = out.index_copy(0, self.index, x)
        return out.view(self.batch, self.length, *x.shape[1:])
