"""The lean single-token decode step: a causal stack's layers on raw tensors, without the backbone's machinery.

A decode step of a small model is bound by streaming its weights (the matrix products) plus a fixed cost that the
full forward adds on top: input validation (``check_ids`` reads the ids back from the tensor), mask and
layer-input building, the output records, and a module dispatch per submodule. At one token per row none of that
can change the result, so ``LeanStep`` runs the same operations in the same order on the same tensors — the
embeddings module, then per layer the fused QKV product, a write into the preallocated cache, SDPA, the output
product, residual + LayerNorm, cross-attention over the cached encoder K/V, the MLP — and leaves out everything
else. The logits are bit-for-bit those of the full forward (tests/generation/test_lean.py compares them, and every
search's tokens and scores).

It serves what it can prove equal: absolute positions, eval mode, no head mask, no per-step attentions or hidden
states (``LeanStep.supports`` and the step protocol's checks; the full forward serves the rest). The linears are
called through their own ``forward``, so the packed MKL / oneDNN copies of generation/fast_linear.py (patched in
for the duration of generate()) and the int8 layers of nn/quantize.py serve it unchanged.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .cache import KVCache
from .embeddings import Embeddings
from .stack import TransformerStack, additive_mask

__all__ = ["LeanStep"]


class LeanStep:
    def __init__(self, embeddings: Embeddings, stack: TransformerStack, final_norm: nn.Module | None,
                 head: nn.Module):
        self.embeddings, self.blocks, self.final_norm, self.head = embeddings, list(stack.layer), final_norm, head
        self.pre_norm = self.blocks[0].pre_norm if self.blocks else False
        # A model without segments drops token types, as run_backbone does.
        self.types_used = embeddings.num_token_types > 0
        self.dtype = embeddings.word_embeddings.weight.dtype
        self._masks: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # 0/1 mask -> its additive form, kept

    @staticmethod
    def supports(embeddings, stack, vocab_size: int) -> bool:
        """Whether the lean step is exact for this stack: absolute positions only, and no head row beyond the word
        table (the full forward's id check must see such an id)."""
        if not isinstance(embeddings, Embeddings) or not isinstance(stack, TransformerStack):
            return False
        attns = [a for b in stack.layer for a in (b.attn, b.cross_attn) if a is not None]
        return (all(a.position_embedding_type == "absolute" for a in attns)
                and vocab_size <= embeddings.word_embeddings.num_embeddings)

    def _additive(self, key: str, mask01: torch.Tensor | None) -> torch.Tensor | None:
        """The additive form of a 0/1 mask buffer, converted once per buffer (the step protocol keeps them)."""
        if mask01 is None:
            return None
        kept = self._masks.get(key)
        if kept is None or kept[0] is not mask01:
            kept = self._masks[key] = (mask01, additive_mask(mask01, self.dtype))
        return kept[1]

    def __call__(self, tokens: torch.Tensor, *, past: int, cache: KVCache, positions: torch.Tensor | None = None,
                 token_types: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                 encoder_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One token per row ((rows,) ids) after ``past`` cached positions -> (logits (rows, V) in float32, the new
        hidden state (rows, 1, C)). ``mask``: the 0/1 self-attention buffer (rows, >= past + 1), ``encoder_mask``
        (rows, S); None where nothing is masked."""
        emb = self.embeddings
        if positions is None and past + 1 + emb.first_free_position() > emb.max_positions:
            raise ValueError(f"sequence length {past + 1} exceeds the position table: max_position_embeddings = "
                             f"{emb.max_positions}")
        x = emb(tokens[:, None], token_types if self.types_used else None, positions, None, past_length=past)
        self_mask = self._additive("self", mask)
        if self_mask is not None:
            self_mask = self_mask[..., :past + 1]
        cross_mask = self._additive("cross", encoder_mask)
        pre = self.pre_norm
        for i, block in enumerate(self.blocks):
            x = _self_attention(block, i, x, cache, self_mask, pre)
            if block.cross_attn is not None and cache.has_cross(i):
                x = _cross_attention(block, i, x, cache, cross_mask, pre)
            mlp = block.mlp
            h = mlp.fc_out.forward(mlp.act(mlp.fc_in.forward(block.mlp_norm(x) if pre else x)))
            x = x + h if pre else _norm(block.mlp_norm, x + h)
        if self.final_norm is not None:
            x = self.final_norm(x)
        return self.head(x[:, -1]).float(), x


def _self_attention(block, i: int, x, cache: KVCache, mask, pre: bool):
    attn = block.attn
    rows = x.shape[0]
    qkv = attn.qkv.forward(block.attn_norm(x) if pre else x)  # (R, 1, 3C)
    q, k, v = qkv.view(rows, 1, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
    k, v = cache.update(i, k, v)  # written at the step's position of the preallocated buffers
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=attn.scale)  # (R, H, 1, D)
    h = attn.out.forward(y.transpose(1, 2).reshape(rows, 1, -1))
    return x + h if pre else _norm(block.attn_norm, x + h)


def _cross_attention(block, i: int, x, cache: KVCache, mask, pre: bool):
    attn = block.cross_attn
    rows = x.shape[0]
    q = attn.q.forward(block.cross_norm(x) if pre else x).view(rows, 1, attn.num_heads, attn.head_dim)
    y = F.scaled_dot_product_attention(q.transpose(1, 2), cache.cross_k[i], cache.cross_v[i], attn_mask=mask,
                                       scale=attn.scale)
    h = attn.out.forward(y.transpose(1, 2).reshape(rows, 1, -1))
    return x + h if pre else _norm(block.cross_norm, x + h)


def _norm(norm: nn.LayerNorm, x):
    return F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)
