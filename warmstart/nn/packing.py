"""Dropping padding tokens so no FLOPs are spent on them.

With right padding, a batch of lengths 8..128 padded to 128 wastes about half its compute. Projections, the
feed-forward and norms act per token, so they run on the (N, C) matrix of real tokens only; attention runs per
sequence on its own span of that matrix (a Python loop of one SDPA call per sequence costs microseconds, while
scattering back to the padded layout and masking would cost more than the attention itself).
"""
from __future__ import annotations

import torch

__all__ = ["Packing"]


class Packing:
    def __init__(self, attention_mask: torch.Tensor):  # (B, T) right-padded, 1 = real token
        self.batch, self.length = attention_mask.shape
        self.index = attention_mask.reshape(-1).nonzero().squeeze(1)  # (N,) positions in the flat (B*T) layout
        lengths = attention_mask.sum(1).tolist()
        starts = [0]
        for n in lengths:
            starts.append(starts[-1] + n)
        self.spans = list(zip(starts[:-1], starts[1:]))  # row b owns packed rows [start, end)

    @staticmethod
    def applies_to(attention_mask: torch.Tensor) -> bool:
        """Only right padding with a real first token packs: spans are then contiguous, positions unchanged."""
        m = attention_mask.bool()
        return bool(m[:, 0].all()) and bool((m[:, 1:] <= m[:, :-1]).all())

    def pack(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, ...) -> (N, ...)
        return x.reshape(self.batch * self.length, *x.shape[2:]).index_select(0, self.index)

    def unpack(self, x: torch.Tensor) -> torch.Tensor:  # (N, ...) -> (B, T, ...), zeros at padding
        out = x.new_zeros(self.batch * self.length, *x.shape[1:])
        out = out.index_copy(0, self.index, x)
        return out.view(self.batch, self.length, *x.shape[1:])
