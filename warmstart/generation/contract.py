"""What generation needs to know about a model, asked in one place: the model contract.

``generate()`` and the step protocol drive any causal LM of the shared stack, standalone or as the decoder of an
EncoderDecoderModel. They need a handful of facts about it — is it seq2seq, which module is the decoder LM and its
head, how large is the vocabulary, how many positions the decoder can be fed and how they are numbered, how the
encoder's states reach the decoder — and a cache whose rows can be repeated for beams and samples. ``ModelContract``
reads them once per call; it is the only code in generation that looks inside the embeddings or the
encoder-decoder wiring, so a change there is mirrored here and nowhere else.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from torch import nn

from ..families import is_causal
from ..nn.cache import KVCache
from ..nn.lean_step import LeanStep

__all__ = ["ModelContract", "find_lm_head"]


def find_lm_head(lm: nn.Module) -> nn.Module:
    """The child module mapping the backbone's hidden states to vocabulary logits (``cls``, ``lm_head``)."""
    out = lm.get_output_embeddings()
    base = lm.base_model
    if out is not None and base is not lm:
        for _, child in lm.named_children():
            if child is not base and (child is out or any(m is out for m in child.modules())):
                return child
    raise ValueError(f"{type(lm).__name__} has no language-model head (get_output_embeddings() is "
                     f"{type(out).__name__}); generate() needs a causal LM such as BertLMHeadModel")


@dataclass(frozen=True)
class ModelContract:
    model: nn.Module  # what generate() was called on
    lm: nn.Module  # the causal LM that decodes: the model itself, or an encoder-decoder's decoder
    backbone: nn.Module  # lm.base_model: the stack the steps run
    head: nn.Module  # lm's vocabulary head, applied to the last position only
    seq2seq: bool
    vocab_size: int  # rows of the head's output: every token id a setting names must be below it
    max_positions: int  # rows of the decoder's position table
    first_position: int  # position id of the first real token (RoBERTa: padding_idx + 1; others 0)
    pad_position: int  # position id written under padding (RoBERTa: padding_idx; others 0)
    encoder_inputs: frozenset[str]  # keyword arguments the encoder's forward accepts (empty without an encoder)
    causal: bool = True  # False: an LM head built with is_decoder=False, which attends in both directions

    @classmethod
    def of(cls, model: nn.Module) -> "ModelContract":
        """Read the contract from ``model``; a model that cannot generate fails here with the reason."""
        seq2seq = bool(getattr(model.config, "is_encoder_decoder", False))
        lm = model.get_decoder() if seq2seq else model
        head = find_lm_head(lm)
        # An LM head built with is_decoder=False still generates, as in v4: every step re-reads the whole sequence
        # in both directions (generate() warns; step.FullSequenceDecoder).
        causal = seq2seq or is_causal(lm.config)
        emb = lm.base_model.embeddings
        from_padding = bool(getattr(emb, "position_offset_from_padding", False))
        encoder_inputs = frozenset(inspect.signature(model.get_encoder().forward).parameters) if seq2seq \
            else frozenset()
        return cls(model=model, lm=lm, backbone=lm.base_model, head=head, seq2seq=seq2seq,
                   vocab_size=lm.get_output_embeddings().out_features, max_positions=emb.max_positions,
                   first_position=emb.first_free_position(), pad_position=emb.padding_idx if from_padding else 0,
                   encoder_inputs=encoder_inputs, causal=causal)

    @property
    def name(self) -> str:
        """The model's class name, as error messages show it."""
        return type(self.model).__name__

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def usable_positions(self) -> int:
        """How many positions the decoder can be fed (the table minus the rows reserved before the first one)."""
        return self.max_positions - self.first_position

    def prompt_positions(self, mask: torch.Tensor | None) -> torch.Tensor | None:
        """Explicit positions for a left-padded prompt, each row counting from its first real token; None when
        nothing is padded, so the stack numbers positions itself."""
        if mask is None or bool(mask.all()):
            return None
        pos = mask.long().cumsum(-1) - 1 + self.first_position
        return pos.masked_fill(mask == 0, self.pad_position)

    def new_cache(self, max_length: int) -> KVCache:
        """Preallocated for ``max_length`` positions; ``repeat_rows`` / ``reorder_cache`` serve beams and samples."""
        return KVCache(max_length=max_length)

    def lean_step(self) -> LeanStep | None:
        """The raw-tensor single-token step over the decoder's stack (nn/lean_step.py), or None where only the full
        forward is exact (relative positions, a head wider than the word table, a stack of another kind) or the
        decoder is in training mode (dropout)."""
        emb, stack = getattr(self.backbone, "embeddings", None), getattr(self.backbone, "encoder", None)
        if self.backbone.training or not LeanStep.supports(emb, stack, self.vocab_size):
            return None
        return LeanStep(emb, stack, getattr(self.backbone, "ln_f", None), self.head)  # ln_f: GPT-2's final norm

    def encode(self, input_ids, attention_mask, encoder_outputs=None, *, flags: dict, **encoder_kwargs):
        """Run the encoder (unless its outputs are given); return them and the states cross-attention reads, in
        the decoder's width (an encoder-decoder with two hidden sizes projects them once here, not per step)."""
        if encoder_outputs is None:
            encoder_outputs = self.model.get_encoder()(
                input_ids=input_ids, attention_mask=attention_mask, return_dict=True, **flags, **encoder_kwargs)
        states = encoder_outputs.last_hidden_state  # (B, S, C_enc)
        proj = getattr(self.model, "enc_to_dec_proj", None)
        return encoder_outputs, (proj(states) if proj is not None else states)  # (B, S, C_dec)
