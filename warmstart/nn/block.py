"""One transformer layer: attention, optional cross-attention, feed-forward.

``pre_norm`` picks the residual arrangement: post-norm (BERT, RoBERTa: x = LN(x + f(x))) or pre-norm (GPT-2:
x = x + f(LN(x))). Both share every submodule, so a family differs by a flag, not by a copy.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .activations import get_activation
from .attention import Attention
from .cache import KVCache
from .dropout import Dropout
from .packing import Packing

__all__ = ["Block", "LayerInputs", "MLP"]


class MLP(nn.Module):
    def __init__(self, hidden_size: int, inner_size: int, act: str, bias: bool = True):
        super().__init__()
        self.fc_in = nn.Linear(hidden_size, inner_size, bias=bias)
        self.fc_out = nn.Linear(inner_size, hidden_size, bias=bias)
        self.act = get_activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_out(self.act(self.fc_in(x)))


@dataclass
class LayerInputs:
    """What every layer of one forward pass shares (built once by the stack)."""

    mask: torch.Tensor | None = None  # additive self-attention mask (B, 1, T|1, S)
    causal: bool = False
    encoder_states: torch.Tensor | None = None  # (B, S_enc, C_enc)
    encoder_mask: torch.Tensor | None = None  # additive (B, 1, 1, S_enc)
    cache: KVCache | None = None
    packing: Packing | None = None  # set when padding tokens were dropped from x
    need_weights: bool = False


class Block(nn.Module):
    def __init__(self, config, layer_idx: int, *, pre_norm: bool = False, cross: bool = False,
                 attn_scale: float | None = None, bias: bool = True):
        super().__init__()
        c = config
        eps = c.layer_norm_eps
        self.layer_idx, self.pre_norm = layer_idx, pre_norm
        self.attn = Attention(
            c.hidden_size, c.num_attention_heads, c.attention_probs_dropout_prob, bias=bias,
            position_embedding_type=getattr(c, "position_embedding_type", "absolute"),
            max_positions=c.max_position_embeddings, scale=attn_scale,
        )
        self.attn_norm = nn.LayerNorm(c.hidden_size, eps=eps)
        if cross:
            self.cross_attn = Attention(c.hidden_size, c.num_attention_heads, c.attention_probs_dropout_prob,
                                        cross=True, bias=bias, scale=attn_scale)
            self.cross_norm = nn.LayerNorm(c.hidden_size, eps=eps)
        else:
            self.cross_attn = self.cross_norm = None
        self.mlp = MLP(c.hidden_size, c.intermediate_size or 4 * c.hidden_size, c.hidden_act, bias=bias)
        self.mlp_norm = nn.LayerNorm(c.hidden_size, eps=eps)
        self.dropout = Dropout(c.hidden_dropout_prob)
        self.chunk_size = getattr(c, "chunk_size_feed_forward", 0)

    def forward(self, x: torch.Tensor, inp: LayerInputs, head_mask: torch.Tensor | None = None):
        # x: (B, T, C), or (N, C) real tokens only when inp.packing is set.
        h, probs = self.attn(
            self.attn_norm(x) if self.pre_norm else x, inp.mask, causal=inp.causal, cache=inp.cache,
            layer_idx=self.layer_idx, head_mask=head_mask, need_weights=inp.need_weights, packing=inp.packing,
        )
        x = self._residual(x, h, self.attn_norm)
        cross_probs = None
        if self.cross_attn is not None and (inp.encoder_states is not None or _has_cross(inp.cache, self.layer_idx)):
            h, cross_probs = self.cross_attn(
                self.cross_norm(x) if self.pre_norm else x, inp.encoder_mask, kv_input=inp.encoder_states,
                cache=inp.cache, layer_idx=self.layer_idx, need_weights=inp.need_weights, packing=inp.packing,
            )
            x = self._residual(x, h, self.cross_norm)
        if self.chunk_size and x.shape[-2] > self.chunk_size:
            # Memory for a (T, 4C) intermediate is traded for a loop over chunks of the sequence axis.
            x = torch.cat([self._feed_forward(c) for c in x.split(self.chunk_size, dim=-2)], dim=-2)
        else:
            x = self._feed_forward(x)
        return x, probs, cross_probs

    def _feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.mlp(self.mlp_norm(x) if self.pre_norm else x)
        return self._residual(x, h, self.mlp_norm)

    def _residual(self, x: torch.Tensor, h: torch.Tensor, norm: nn.LayerNorm) -> torch.Tensor:
        return x + self.dropout(h) if self.pre_norm else norm(x + self.dropout(h))


def _has_cross(cache: KVCache | None, layer_idx: int) -> bool:
    return cache is not None and cache.has_cross(layer_idx)
