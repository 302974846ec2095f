"""Token + position (+ segment) embeddings, with the input checks every model family needs.

BERT adds word, absolute-position and token-type vectors and normalises; BertGeneration drops token types; RoBERTa
numbers positions after its padding index; GPT-2 does not normalise and, having no segment table, looks segment ids
up in its word table (transformers' convention, kept from the original GPT). One module, options.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .dropout import Dropout

__all__ = ["Embeddings", "check_ids"]


def check_ids(name: str, ids: torch.Tensor, upper: int, what: str) -> None:
    """Raise a clear error for float ids or ids outside [0, upper) instead of an opaque IndexError later."""
    if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor (torch.long), got dtype {ids.dtype}")
    if ids.numel() == 0 or torch.compiler.is_compiling():
        return  # a compiled caller checks before it calls (reading min/max would split its graph)
    lo, hi = int(ids.min()), int(ids.max())
    if lo < 0 or hi >= upper:
        bad = lo if lo < 0 else hi
        raise ValueError(f"{name} contains {bad}, outside [0, {upper}) ({what} = {upper})")


class Embeddings(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        hidden_size: int,
        max_positions: int,
        *,
        type_vocab_size: int = 0,
        pad_token_id: int | None = None,
        add_positions: bool = True,
        position_offset_from_padding: bool = False,
        token_types_from_words: bool = False,
        norm: bool = True,
        layer_norm_eps: float = 1e-12,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, hidden_size, padding_idx=pad_token_id)
        # RoBERTa's position table reserves the padding row too (fairseq): it stays zero and gets no gradient.
        self.position_embeddings = nn.Embedding(
            max_positions, hidden_size, padding_idx=pad_token_id if position_offset_from_padding else None)
        self.token_type_embeddings = nn.Embedding(type_vocab_size, hidden_size) if type_vocab_size else None
        self.norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps) if norm else None
        self.dropout = Dropout(dropout)
        # With relative position attention the absolute table is kept (checkpoints carry it) but not added.
        self.add_positions = add_positions
        # RoBERTa: positions count only non-pad tokens and start after the padding index.
        self.padding_idx = pad_token_id
        self.position_offset_from_padding = position_offset_from_padding
        if position_offset_from_padding and pad_token_id is None:
            raise ValueError("position_offset_from_padding needs a pad_token_id: positions are numbered after it")
        # GPT-2: token_type_ids index the word table and are added only when given.
        self.token_types_from_words = token_types_from_words
        # Set when the word table is tied to an output projection (models.base): the lookup's gradient goes out
        # as sparse rows that autograd adds into the projection's dense gradient.
        self.sparse_lookup = False

    @property
    def max_positions(self) -> int:
        return self.position_embeddings.num_embeddings

    @property
    def num_token_types(self) -> int:
        """How many distinct token_type_ids are valid (0: the model has no segments)."""
        if self.token_type_embeddings is not None:
            return self.token_type_embeddings.num_embeddings
        return self.word_embeddings.num_embeddings if self.token_types_from_words else 0

    def first_free_position(self) -> int:
        return self.padding_idx + 1 if self.position_offset_from_padding else 0

    def default_position_ids(self, input_ids: torch.Tensor | None, shape: tuple[int, int], past: int,
                             device: torch.device) -> torch.Tensor:
        if self.position_offset_from_padding and input_ids is not None:
            keep = input_ids.ne(self.padding_idx).long()
            return (torch.cumsum(keep, dim=1) + past) * keep + self.padding_idx
        start = self.first_free_position() + past
        return torch.arange(start, start + shape[1], device=device).unsqueeze(0).expand(shape)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,  # (B, T)
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,  # (B, T, C)
        past_length: int = 0,
    ) -> torch.Tensor:
        if inputs_embeds is not None:
            x = inputs_embeds
        elif self.sparse_lookup and torch.is_grad_enabled() and not torch.compiler.is_compiling():
            # (Compiled code looks up densely: AOT autograd cannot trace a sparse gradient.)
            x = F.embedding(input_ids, self.word_embeddings.weight, self.word_embeddings.padding_idx, sparse=True)
        else:
            x = self.word_embeddings(input_ids)
        shape = x.shape[:2]
        if self.token_type_embeddings is not None:
            if token_type_ids is None:
                x = x + self.token_type_embeddings.weight[0]
            else:
                x = x + self.token_type_embeddings(token_type_ids)
        if self.add_positions:
            if position_ids is None:
                position_ids = self.default_position_ids(input_ids, shape, past_length, x.device)
            x = x + self.position_embeddings(position_ids)
        if self.token_types_from_words and token_type_ids is not None:
            x = x + self.word_embeddings(token_type_ids)
        if self.norm is not None:
            x = self.norm(x)
        return self.dropout(x)
