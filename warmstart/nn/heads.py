"""Output heads on top of the stack: pooler and language-model heads."""
from __future__ import annotations

import torch
from torch import nn

from .activations import get_activation

__all__ = ["Pooler", "LMHead"]


class Pooler(nn.Module):
    """tanh(W h_0): BERT's sentence vector from the first ([CLS]) token."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C) -> (B, C)
        return torch.tanh(self.dense(x[:, 0]))


class LMHead(nn.Module):
    """Vocabulary logits; the decoder matrix is usually tied to the input embeddings.

    ``transform`` adds BERT's dense + activation + LayerNorm before the projection (BertGeneration and GPT-2 have
    none). The output bias is a parameter of its own so that tying only shares the weight matrix.
    """

    def __init__(self, hidden_size: int, vocab_size: int, *, transform: bool = True, act: str = "gelu",
                 layer_norm_eps: float = 1e-12, bias: bool = True):
        super().__init__()
        if transform:
            self.dense = nn.Linear(hidden_size, hidden_size)
            self.act = get_activation(act)
            self.norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        else:
            self.dense = None
        self.decoder = nn.Linear(hidden_size, vocab_size, bias=bias)

    @property
    def bias(self) -> torch.Tensor | None:
        """The output bias, where transformers' RoBERTa and BertGeneration heads expose it (``lm_head.bias``)."""
        return self.decoder.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dense is not None:
            x = self.norm(self.act(self.dense(x)))
        return self.decoder(x)
