"""Key/value cache for incremental decoding.

One object holds, per layer, the self-attention keys/values written so far and the cross-attention keys/values,
which depend only on the encoder output and are therefore computed once and reused at every step. Self-attention
buffers are preallocated and grown by doubling, so a decoding step writes in place instead of concatenating
(quadratic copying) — the gpt-fast layout. The v4 "legacy" format, a tuple per layer of
``(k, v)`` or ``(k, v, cross_k, cross_v)`` each shaped (B, H, T, D), converts both ways.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import torch

__all__ = ["KVCache"]


class KVCache:
    def __init__(self, num_layers: int | None = None, max_length: int | None = None):
        self.max_length = max_length
        self._k: list[torch.Tensor | None] = []
        self._v: list[torch.Tensor | None] = []
        self.cross_k: list[torch.Tensor | None] = []
        self.cross_v: list[torch.Tensor | None] = []
        self._len: list[int] = []
        if num_layers:
            self._ensure_layers(num_layers)

    def _ensure_layers(self, n: int) -> None:
        while len(self._len) < n:
            self._k.append(None)
            self._v.append(None)
            self.cross_k.append(None)
            self.cross_v.append(None)
            self._len.append(0)

    # ---- the protocol the attention layers use --------------------------------------------------------------
    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self._len[layer_idx] if layer_idx < len(self._len) else 0

    def update(self, layer_idx: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append (B, H, T, D) keys/values for one layer; return views over everything cached so far."""
        self._ensure_layers(layer_idx + 1)
        start, new = self._len[layer_idx], k.shape[2]
        buf_k = self._k[layer_idx]
        if buf_k is None or buf_k.shape[2] < start + new or buf_k.shape[0] != k.shape[0]:
            capacity = max(start + new, self.max_length or 0, 2 * (buf_k.shape[2] if buf_k is not None else 0))
            self._k[layer_idx] = self._grow(buf_k, k, start, capacity)
            self._v[layer_idx] = self._grow(self._v[layer_idx], v, start, capacity)
        self._k[layer_idx][:, :, start:start + new] = k
        self._v[layer_idx][:, :, start:start + new] = v
        self._len[layer_idx] = start + new
        return self._k[layer_idx][:, :, :start + new], self._v[layer_idx][:, :, :start + new]

    @staticmethod
    def _grow(old: torch.Tensor | None, like: torch.Tensor, used: int, capacity: int) -> torch.Tensor:
        b, h, _, d = like.shape
        buf = like.new_empty(b, h, capacity, d)
        if old is not None and used:
            buf[:, :, :used] = old[:, :, :used]
        return buf

    def has_cross(self, layer_idx: int) -> bool:
        return layer_idx < len(self.cross_k) and self.cross_k[layer_idx] is not None

    def set_cross(self, layer_idx: int, k: torch.Tensor, v: torch.Tensor) -> None:
        self._ensure_layers(layer_idx + 1)
        self.cross_k[layer_idx], self.cross_v[layer_idx] = k, v

    # ---- beam search and housekeeping -----------------------------------------------------------------------
    def reorder_cache(self, beam_idx: torch.Tensor, *, cross: bool = True) -> "KVCache":
        """Keep rows ``beam_idx`` of every cached tensor (beam search picks parents each step). ``cross=False``
        leaves the cross-attention K/V alone: valid when every row's parent reads the same encoder output."""
        for store in (self._k, self._v) + ((self.cross_k, self.cross_v) if cross else ()):
            for i, t in enumerate(store):
                if t is not None:
                    store[i] = t.index_select(0, beam_idx.to(t.device))
        return self

    def repeat_rows(self, times: int) -> "KVCache":
        """A cache in which row i becomes rows i*times ... i*times+times-1: a prompt encoded once per input starts
        its beams or samples from copies. A new object (the grown buffers are new anyway); ``self`` when times=1."""
        if times == 1:
            return self
        grown = KVCache(max_length=self.max_length)
        for i, layer in enumerate(self.to_legacy_cache()):
            if layer:
                grown.update(i, layer[0].repeat_interleave(times, 0), layer[1].repeat_interleave(times, 0))
            if self.has_cross(i):
                grown.set_cross(i, self.cross_k[i].repeat_interleave(times, 0),
                                self.cross_v[i].repeat_interleave(times, 0))
        return grown

    def crop(self, length: int) -> None:
        """Forget self-attention positions from ``length`` on (transformers' DynamicCache.crop); buffers are kept."""
        self._len = [min(n, length) for n in self._len]

    def reset(self) -> None:
        """Empty the cache for a new sequence, keeping its buffers (and dropping the cross-attention K/V, which
        belong to the previous encoder output)."""
        self._len = [0] * len(self._len)
        self.cross_k = [None] * len(self._len)
        self.cross_v = [None] * len(self._len)

    def __len__(self) -> int:
        return len(self._len)

    # ---- v4 legacy tuples -----------------------------------------------------------------------------------
    def to_legacy_cache(self) -> tuple[tuple[torch.Tensor, ...], ...]:
        layers = []
        for i, n in enumerate(self._len):
            if self._k[i] is None:  # nothing written for this layer yet (only its cross-attention K/V, or nothing)
                layers.append(())
                continue
            entry: tuple[torch.Tensor, ...] = (self._k[i][:, :, :n], self._v[i][:, :, :n])
            if self.cross_k[i] is not None:
                entry += (self.cross_k[i], self.cross_v[i])
            layers.append(entry)
        return tuple(layers)

    @classmethod
    def from_legacy_cache(cls, past: Sequence[Sequence[torch.Tensor]] | None) -> "KVCache":
        cache = cls()
        if past is None:
            return cache
        for i, entry in enumerate(past):
            if len(entry) not in (2, 4):
                raise ValueError(
                    f"legacy cache layer {i} must be (k, v) or (k, v, cross_k, cross_v), got {len(entry)} tensors"
                )
            cache.update(i, entry[0], entry[1])
            if len(entry) == 4:
                cache.set_cross(i, entry[2], entry[3])
        return cache

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        return iter(self.to_legacy_cache())

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        return self.to_legacy_cache()[i]
