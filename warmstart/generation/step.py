"""The one step protocol every decoding strategy drives: prefill, step, expand, reorder (and for assisted decoding
verify, several tokens in one call with the logits of each, and crop, which takes rejected positions back).

``Decoder`` runs a causal LM of the shared stack — standalone (BertLMHeadModel, BertGenerationDecoder,
RobertaForCausalLM, GPT2LMHeadModel) or as the decoder of an EncoderDecoderModel — one position at a time and
returns next-token logits (rows, vocab) in float32. It learns what it needs of the model from its contract
(contract.py); the searches never touch the model.

What keeps a step lean (the gpt-fast recipe, within the shared modules):
- the encoder runs once, and the encoder-to-decoder projection too; cross-attention keys/values are computed on
  the first step and then read from the cache, so later steps pass a zero-stride stand-in for the encoder states;
- the KV cache is preallocated for the whole generation and written in place;
- the LM head (the largest matrix) is applied to the last position only, also after a long prompt;
- the prompt is encoded for the ``batch`` distinct inputs only and the cache then repeated for the beams or
  samples of each input (transformers encodes every copy); beams of one input share their cross-attention cache,
  so reordering beams copies only the self-attention cache;
- masks and positions are prepared once: an all-ones mask is dropped, a padded one lives in a preallocated buffer;
- on CPU, generate() runs the steps with pre-packed weights (MKL for float32, oneDNN for bfloat16; fast_linear.py);
- a single-token step runs the layers on raw tensors (nn/lean_step.py): no validation, mask building or module
  dispatch per step, and bit-for-bit the full forward's logits; the full forward serves what it cannot.

``FullSequenceDecoder`` serves the same protocol without a cache (``use_cache=False``, and LM heads built with
``is_decoder=False``): each call re-feeds the whole sequence, as transformers v4 did.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..nn.lean_step import LeanStep
from .contract import ModelContract

__all__ = ["Decoder", "FullSequenceDecoder"]


@dataclass
class LeanOutput:
    """What the searches read of a lean step's output (contrastive search: the new hidden state)."""

    last_hidden_state: torch.Tensor  # (rows, 1, C)
    attentions: None = None
    cross_attentions: None = None
    hidden_states: None = None


class Decoder:
    # Single-token steps run nn.lean_step where it is exact (set False to compare against the full forward).
    lean = True

    def __init__(self, contract: ModelContract, *, max_length: int, output_attentions: bool = False,
                 output_hidden_states: bool = False):
        self.contract = contract
        self.base, self.head = contract.backbone, contract.head
        self.max_length = max_length
        self.cache = contract.new_cache(max_length)
        self.flags = {"output_attentions": output_attentions, "output_hidden_states": output_hidden_states}
        self.length = 0  # positions held by the cache
        self.rows = 0
        self.enc_states: torch.Tensor | None = None  # (rows, S, C_dec), real until the cross K/V are cached
        self.enc_mask: torch.Tensor | None = None  # (rows, S) or None when nothing is masked
        self.mask: torch.Tensor | None = None  # (rows, max_length) buffer, only for padded decoder-only prompts
        self.next_position: torch.Tensor | None = None  # (rows, 1), only when positions are explicit
        self.token_types: torch.Tensor | None = None  # (rows, 1): new tokens repeat the prompt's last type
        self.last_output = None  # the backbone output of the latest call (attentions / hidden states)
        self.model_args: dict = {}  # further forward arguments of every call (head_mask), as v4 passes them on
        self._lean: LeanStep | None | bool = False  # False: not built yet (built at the first step, after expand)

    # ---- encoder-decoder -------------------------------------------------------------------------------------
    def encode(self, input_ids, attention_mask, encoder_outputs=None, **encoder_kwargs):
        """Run the encoder once (unless ``encoder_outputs`` is given); keep what cross-attention needs."""
        encoder_outputs, self.enc_states = self.contract.encode(input_ids, attention_mask, encoder_outputs,
                                                                flags=self.flags, **encoder_kwargs)
        self.enc_mask = attention_mask if attention_mask is not None and not bool(attention_mask.all()) else None
        return encoder_outputs

    # ---- the step protocol -----------------------------------------------------------------------------------
    def prefill(self, input_ids: torch.Tensor | None, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, token_type_ids: torch.Tensor | None = None,
                inputs_embeds: torch.Tensor | None = None) -> torch.Tensor:
        """Feed the prompt (decoder-only; its ids, or ``inputs_embeds`` (rows, T, C) in their place) or the decoder
        start tokens; return the last position's logits."""
        rows, length = (input_ids if inputs_embeds is None else inputs_embeds).shape[:2]
        self.rows = rows
        if attention_mask is not None and not bool(attention_mask.all()):
            self.mask = attention_mask.new_ones(rows, self.max_length)
            self.mask[:, :length] = attention_mask
        else:
            attention_mask = None
        if position_ids is not None:
            self.next_position = position_ids[:, -1:] + 1
        if token_type_ids is not None:
            self.token_types = token_type_ids[:, -1:]
        logits = self._run(None if inputs_embeds is not None else input_ids, attention_mask, position_ids,
                           token_type_ids, embeds=inputs_embeds)
        for i, k in enumerate(self.cache.cross_k):
            if k is not None and not k.is_contiguous():
                # Projections leave K/V as strided views; every later step reads them, so lay them out once.
                self.cache.set_cross(i, k.contiguous(), self.cache.cross_v[i].contiguous())
        if self.enc_states is not None:
            # Cross K/V are cached now; later steps only need the shape (the stack validates it).
            self.enc_states = self.enc_states.new_zeros(()).expand(self.enc_states.shape)
        return logits

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Feed one token per row ((rows,) ids); return the next logits (rows, vocab)."""
        mask = positions = None
        if self.mask is not None:
            mask = self.mask[:, :self.length + 1]
        if self.next_position is not None:
            positions = self.next_position
            self.next_position = positions + 1
        if self._lean is False:
            # Per-step attentions / hidden states and a head mask need the full forward.
            plain = self.lean and not any(self.flags.values()) and not self.model_args
            self._lean = self.contract.lean_step() if plain else None
        if self._lean is not None:
            logits, hidden = self._lean(tokens, past=self.length, cache=self.cache, positions=positions,
                                        token_types=self.token_types, mask=self.mask, encoder_mask=self.enc_mask)
            self.length += 1
            self.last_output = LeanOutput(hidden)
            return logits
        return self._run(tokens[:, None], mask, positions, self.token_types)

    # ---- several tokens at once (assisted decoding) -----------------------------------------------------------
    def verify(self, tokens: torch.Tensor) -> torch.Tensor:
        """Feed ``n`` tokens per row ((rows, n) ids) in one call; return the logits after each of them
        (rows, n, vocab). Assisted decoding checks a whole draft with one pass of the large model this way."""
        n = tokens.shape[1]
        mask = positions = token_types = None
        if self.mask is not None:
            mask = self.mask[:, :self.length + n]
        if self.next_position is not None:
            positions = self.next_position + torch.arange(n, device=tokens.device)
            self.next_position = positions[:, -1:] + 1
        if self.token_types is not None:
            token_types = self.token_types.expand(-1, n)
        return self._run(tokens, mask, positions, token_types, every_position=True)

    def crop(self, length: int) -> None:
        """Forget every position from ``length`` on (draft tokens the large model rejected); the next call writes
        there. Masks and cross-attention depend only on the prompt and stay."""
        if not 0 <= length <= self.length:
            raise ValueError(f"crop length must be in [0, {self.length}] (the positions held), got {length}")
        if self.next_position is not None:
            self.next_position = self.next_position - (self.length - length)
        self.cache.crop(length)
        self.length = length

    def _run(self, ids, mask, positions, token_types, every_position: bool = False, embeds=None) -> torch.Tensor:
        kw = dict(self.flags, **self.model_args)
        if mask is not None:
            kw["attention_mask"] = mask
        if positions is not None:
            kw["position_ids"] = positions
        if token_types is not None:
            kw["token_type_ids"] = token_types
        if self.enc_states is not None:
            kw["encoder_hidden_states"] = self.enc_states
            if self.enc_mask is not None:
                kw["encoder_attention_mask"] = self.enc_mask
        out = self.base(input_ids=ids, inputs_embeds=embeds, past_key_values=self.cache, use_cache=True,
                        return_dict=True, **kw)
        self.last_output = out
        self.length += (ids if embeds is None else embeds).shape[1]
        if every_position:
            return self.head(out.last_hidden_state).float()  # (rows, n, V)
        hidden = out.last_hidden_state[:, -1]  # (rows, C): the head runs on the last position only
        return self.head(hidden).float()

    # ---- beams and samples -----------------------------------------------------------------------------------
    def expand(self, times: int) -> None:
        """Repeat every row ``times`` times (row i becomes rows i*times ... i*times+times-1)."""
        if times == 1:
            return
        self.cache = self.cache.repeat_rows(times)
        self.rows *= times
        for name in ("mask", "next_position", "token_types", "enc_mask"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.repeat_interleave(times, 0))
        if self.enc_states is not None:
            self.enc_states = self.enc_states.new_zeros(()).expand(self.rows, *self.enc_states.shape[1:])

    def reorder(self, beam_idx: torch.Tensor) -> None:
        """Rows take the cache of rows ``beam_idx`` (beam search's parents). Parents always belong to the same
        input, so the per-input state (cross-attention cache, masks, positions) needs no reordering."""
        self.cache.reorder_cache(beam_idx, cross=False)


class FullSequenceDecoder(Decoder):
    """The same protocol without a cache: every call feeds the whole sequence so far, as transformers v4 ran
    ``generate(use_cache=False)`` and LM heads built with ``is_decoder=False`` (which attend in both directions, so
    a cache of earlier positions would go stale). Per-step attentions and hidden states then cover every position,
    (rows, H, T, T) and (rows, T, C), as v4 returned them. Quadratic in the length: a debugging and parity mode."""

    def __init__(self, contract: ModelContract, *, max_length: int, output_attentions: bool = False,
                 output_hidden_states: bool = False):
        super().__init__(contract, max_length=max_length, output_attentions=output_attentions,
                         output_hidden_states=output_hidden_states)
        self.cache = None
        self.ids: torch.Tensor | None = None  # (rows, max_length): the sequence so far, re-fed at every step
        self.positions: torch.Tensor | None = None  # (rows, max_length), only when positions are explicit
        self.types: torch.Tensor | None = None  # (rows, max_length): new tokens repeat the prompt's last type

    def prefill(self, input_ids, attention_mask=None, position_ids=None, token_type_ids=None, inputs_embeds=None):
        if inputs_embeds is not None:
            raise ValueError("inputs_embeds needs the cache: the prompt's embeddings are fed once and then read from "
                             "it; pass input_ids, or use_cache=True")
        rows, length = input_ids.shape
        self.rows, self.length = rows, length
        self.ids = input_ids.new_empty(rows, self.max_length)
        self.ids[:, :length] = input_ids
        if attention_mask is not None and not bool(attention_mask.all()):
            self.mask = attention_mask.new_ones(rows, self.max_length)
            self.mask[:, :length] = attention_mask
        later = torch.arange(1, self.max_length - length + 1, device=input_ids.device)
        if position_ids is not None:
            self.positions = torch.cat([position_ids, position_ids[:, -1:] + later], dim=1)
        if token_type_ids is not None:
            self.types = torch.cat([token_type_ids, token_type_ids[:, -1:].expand(-1, later.numel())], dim=1)
        return self._full()

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        self.ids[:, self.length] = tokens
        self.length += 1
        return self._full()

    def _full(self) -> torch.Tensor:
        n = self.length
        kw = dict(self.flags, **self.model_args)
        for name, buf in (("attention_mask", self.mask), ("position_ids", self.positions),
                          ("token_type_ids", self.types)):
            if buf is not None:
                kw[name] = buf[:, :n]
        if self.enc_states is not None:
            kw["encoder_hidden_states"] = self.enc_states  # real states: cross-attention runs again every step
            if self.enc_mask is not None:
                kw["encoder_attention_mask"] = self.enc_mask
        out = self.base(input_ids=self.ids[:, :n], use_cache=False, return_dict=True, **kw)
        self.last_output = out
        return self.head(out.last_hidden_state[:, -1]).float()  # (rows, V)

    def expand(self, times: int) -> None:
        if times == 1:
            return
        self.rows *= times
        for name in ("ids", "mask", "positions", "types", "enc_mask", "enc_states"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.repeat_interleave(times, 0))

    def reorder(self, beam_idx: torch.Tensor) -> None:
        """Rows take the sequence of rows ``beam_idx``; masks, positions and types are per input and stay."""
        self.ids = self.ids.index_select(0, beam_idx.to(self.ids.device))

    def verify(self, tokens: torch.Tensor) -> torch.Tensor:
        raise ValueError("assisted decoding needs the cache (use_cache=True)")

    def crop(self, length: int) -> None:
        raise ValueError("assisted decoding needs the cache (use_cache=True)")
