"""Multi-head attention, one class for self- and cross-attention.

Self-attention projects q, k, v with one fused matmul (``qkv``); cross-attention projects the query from the decoder
and keys/values from the encoder output (``kv``), which a cache stores once per generation. The fast path is
PyTorch's scaled_dot_product_attention; the explicit path (softmax written out) runs only when the caller needs the
probabilities themselves (``output_attentions``) or must rescale them (``head_mask``).

Relative position embeddings (Shaw et al. 2018; Huang et al. 2020, "Improve Transformer Models with Better Relative
Position Embeddings"), as BERT's ``position_embedding_type`` = relative_key / relative_key_query: a learned vector per
clipped distance (query position - key position) is dotted with the query (and, for relative_key_query, with the key)
and added to the raw q·k score before the 1/sqrt(d) scaling. Since SDPA scales q·k itself, the relative term is
pre-scaled and passed in through the additive mask, so the fast path still serves these models.
"""
from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn

from .cache import KVCache
from .dropout import dropout as dropout_fn, keep_mask
from .packing import Packing

__all__ = ["Attention"]


class Attention(nn.Module):
    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        dropout: float = 0.0,
        *,
        cross: bool = False,
        kv_size: int | None = None,
        bias: bool = True,
        position_embedding_type: str = "absolute",
        max_positions: int = 512,
        scale: float | None = None,
    ):
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size ({hidden_size}) must be a multiple of num_heads ({num_heads})")
        self.num_heads, self.head_dim = num_heads, hidden_size // num_heads
        self.cross = cross
        self.scale = scale if scale is not None else self.head_dim ** -0.5
        self.dropout = dropout
        if cross:
            self.q = nn.Linear(hidden_size, hidden_size, bias=bias)
            self.kv = nn.Linear(kv_size or hidden_size, 2 * hidden_size, bias=bias)
        else:
            self.qkv = nn.Linear(hidden_size, 3 * hidden_size, bias=bias)
        self.out = nn.Linear(hidden_size, hidden_size, bias=bias)
        self.pruned_heads: set[int] = set()  # original head numbers removed by prune()
        self.position_embedding_type = position_embedding_type
        if position_embedding_type in ("relative_key", "relative_key_query"):
            self.max_positions = max_positions
            # One vector per distance in [-(P-1), P-1].
            self.distance_embedding = nn.Embedding(2 * max_positions - 1, self.head_dim)

    def prune(self, heads) -> None:
        """Drop heads (original numbering; already pruned ones are skipped): their q/k/v rows and output columns.

        Each head owns D consecutive rows of each of q, k and v in the fused projection and D consecutive input
        columns of ``out``, so pruning keeps the other heads' slices; the 1/sqrt(D) scale is unchanged.
        """
        if self.cross:
            raise ValueError("only self-attention heads are pruned (v4 prunes no cross-attention head)")
        total = self.num_heads + len(self.pruned_heads)
        heads = {int(h) for h in heads}
        bad = sorted(h for h in heads if not 0 <= h < total)
        if bad:
            raise ValueError(f"cannot prune heads {bad}: the layer has heads 0..{total - 1}")
        drop = heads - self.pruned_heads
        if not drop:
            return
        alive = [h for h in range(total) if h not in self.pruned_heads]  # original number of each current head
        keep = [i for i, h in enumerate(alive) if h not in drop]  # current positions that stay
        d, n = self.head_dim, self.num_heads
        dev = self.out.weight.device
        cols = torch.tensor([i * d + j for i in keep for j in range(d)], dtype=torch.long, device=dev)
        rows = torch.cat([cols + part * n * d for part in range(3)])  # the same heads of q, k and v
        self.qkv = _select(self.qkv, rows, dim=0)
        self.out = _select(self.out, cols, dim=1)
        self.num_heads = len(keep)
        self.pruned_heads |= drop

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape  # (B, T, H*D) -> (B, H, T, D)
        return x.view(b, t, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        x: torch.Tensor,  # (B, T, C)
        mask: torch.Tensor | None = None,  # additive, broadcastable to (B, H, T, S); None = attend everywhere
        *,
        causal: bool = False,  # only consulted when mask is None
        kv_input: torch.Tensor | None = None,  # (B, S, C_enc) for cross-attention
        cache: KVCache | None = None,
        layer_idx: int = 0,
        head_mask: torch.Tensor | None = None,  # broadcastable to (B, H, T, S), multiplies the probabilities
        need_weights: bool = False,
        packing: Packing | None = None,  # x is (N, C) real tokens; attention itself runs in the (B, T) layout
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if packing is not None:
            return self._packed(x, packing, kv_input, mask, causal, cache, layer_idx), None
        past = 0
        if self.cross:
            q = self._heads(self.q(x))
            if cache is not None and cache.has_cross(layer_idx):
                k, v = cache.cross_k[layer_idx], cache.cross_v[layer_idx]
            else:
                k, v = self._split_kv(kv_input)
                if cache is not None:
                    cache.set_cross(layer_idx, k, v)
        else:
            q, k, v = self._split_qkv(self.qkv(x))
            if cache is not None:
                past = cache.get_seq_length(layer_idx)
                k, v = cache.update(layer_idx, k, v)

        t, s = q.shape[2], k.shape[2]
        if causal and (t == 1 or mask is not None):
            causal = False  # one query sees the whole cache; an explicit mask already holds the causal part
        if causal and (t != s or self.position_embedding_type != "absolute"):
            mask, causal = _causal_additive(t, s, past, q.dtype, q.device), False
        if self.position_embedding_type != "absolute":
            rel = self._relative_scores(q, k, past) * self.scale  # (B, H, T, S)
            mask = rel if mask is None else mask + rel

        y, probs = self._attend(q, k, v, mask, causal, past, need_weights, head_mask)
        b = y.shape[0]
        y = y.transpose(1, 2).reshape(b, t, -1)  # (B, T, C)
        return self.out(y), probs

    def _attend(self, q, k, v, mask, causal, past=0, need_weights=False, head_mask=None):
        """(B, H, T, D) queries over (B, H, S, D) keys/values -> (B, H, T, D), and the probabilities if asked."""
        dropout = self.dropout if self.training else 0.0
        # SDPA unless the probabilities are needed, rescaled, or dropped out (its CPU dropout is slow; ours is
        # cheaper, see nn.dropout).
        if not (need_weights or head_mask is not None or dropout > 0.0):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, scale=self.scale), None
        scores = torch.matmul(q, k.transpose(-1, -2)) * self.scale  # (B, H, T, S)
        if causal:
            mask = _causal_additive(q.shape[2], k.shape[2], past, q.dtype, q.device)
        if mask is not None:
            scores = scores + mask
        probs = torch.softmax(scores, dim=-1)
        if dropout > 0.0 and not need_weights:
            # Zero the dropped probabilities and scale the (T, D) output instead of the (T, S) probabilities.
            keep, rescale = keep_mask(probs, dropout)
            kept = probs * keep if head_mask is None else probs * keep * head_mask
            return torch.matmul(kept, v) * rescale, None
        kept = dropout_fn(probs, dropout, self.training)
        if head_mask is not None:
            kept = kept * head_mask
        return torch.matmul(kept, v), (kept if need_weights else None)

    def _packed(self, x, packing: Packing, kv_input, enc_mask, causal, cache, layer_idx) -> torch.Tensor:
        """x: (N, C) real tokens of right-padded rows; attention runs per row on its own span."""
        n, h, d = x.shape[0], self.num_heads, self.head_dim
        if self.cross:
            q = self.q(x).view(n, h, d)
            if cache is not None and cache.has_cross(layer_idx):
                k, v = cache.cross_k[layer_idx], cache.cross_v[layer_idx]
            else:
                k, v = self._split_kv(kv_input)  # (B, H, S, D)
                if cache is not None:
                    cache.set_cross(layer_idx, k, v)
        else:
            q, k, v = self.qkv(x).view(n, 3, h, d).unbind(1)  # (N, H, D) each
        outs = []
        for row, (s, e) in enumerate(packing.spans):
            qi = q[s:e].transpose(0, 1).unsqueeze(0)  # (1, H, L, D)
            if self.cross:
                ki, vi = k[row:row + 1], v[row:row + 1]
                mi = None if enc_mask is None else enc_mask[row:row + 1]
                is_causal = False
            else:
                ki, vi = k[s:e].transpose(0, 1).unsqueeze(0), v[s:e].transpose(0, 1).unsqueeze(0)
                mi, is_causal = None, causal
                if self.position_embedding_type != "absolute":
                    mi = self._relative_scores(qi, ki, 0) * self.scale
                    if causal:
                        mi = mi + _causal_additive(e - s, e - s, 0, qi.dtype, qi.device)
                    is_causal = False
            y, _ = self._attend(qi, ki, vi, mi, is_causal and e - s > 1)
            outs.append(y[0].transpose(0, 1))  # (L, H, D)
        return self.out(torch.cat(outs).reshape(n, h * d))

    def _split_qkv(self, qkv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, t, _ = qkv.shape
        # (B, T, 3*H*D) -> 3 x (B, H, T, D)
        qkv = qkv.view(b, t, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        # unbind, not indexing: indexing's backward zero-fills and accumulates a full-size buffer per slice.
        return qkv.unbind(0)

    def _split_kv(self, enc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, s, _ = enc.shape
        kv = self.kv(enc).view(b, s, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return kv.unbind(0)

    def _relative_scores(self, q: torch.Tensor, k: torch.Tensor, past: int) -> torch.Tensor:
        t, s = q.shape[2], k.shape[2]
        # Query i sits at absolute position past + i (decoding with a cache); key j at position j.
        q_pos = torch.arange(past, past + t, device=q.device).view(-1, 1)
        k_pos = torch.arange(s, device=q.device).view(1, -1)
        table = self.distance_embedding(q_pos - k_pos + self.max_positions - 1).to(q.dtype)  # (T, S, D)
        scores = torch.einsum("bhtd,tsd->bhts", q, table)
        if self.position_embedding_type == "relative_key_query":
            scores = scores + torch.einsum("bhsd,tsd->bhts", k, table)
        return scores


def _select(linear: nn.Linear, index: torch.Tensor, dim: int) -> nn.Linear:
    """A new Linear keeping the output rows (dim 0) or input columns (dim 1) at ``index``."""
    weight = linear.weight.detach().index_select(dim, index).clone()
    bias = linear.bias
    if bias is not None:
        bias = (bias.detach().index_select(0, index) if dim == 0 else bias.detach()).clone()
    out_f, in_f = weight.shape
    new = nn.Linear(in_f, out_f, bias=bias is not None, device="meta")  # shapes only: the values come next
    new.weight = nn.Parameter(weight, requires_grad=linear.weight.requires_grad)
    if bias is not None:
        new.bias = nn.Parameter(bias, requires_grad=linear.bias.requires_grad)
    return new


def _causal_additive(t: int, s: int, past: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(T, S) additive mask letting query past+i see keys 0..past+i."""
    q_pos = torch.arange(past, past + t, device=device).view(-1, 1)
    k_pos = torch.arange(s, device=device).view(1, -1)
    return torch.zeros(t, s, dtype=dtype, device=device).masked_fill(k_pos > q_pos, torch.finfo(dtype).min)
