"""The layer stack and the backbone forward shared by every model family.

``run_backbone`` is the one place that validates inputs, builds masks, manages the cache and decides whether padding
can be dropped; BERT, BertGeneration, RoBERTa and GPT-2 differ only in the embeddings/stack options they build.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .block import Block, LayerInputs
from .cache import KVCache
from .embeddings import Embeddings, check_ids
from .packing import Packing

__all__ = ["TransformerStack", "BackboneOutput", "run_backbone", "additive_mask"]


class TransformerStack(nn.Module):
    def __init__(self, config, *, pre_norm: bool = False, bias: bool = True, attn_scale=None,
                 is_decoder: bool | None = None):
        super().__init__()
        cross = config.add_cross_attention
        # is_decoder overrides the config for families that are causal whatever the config says (GPT-2).
        if cross and not (config.is_decoder if is_decoder is None else is_decoder):
            raise ValueError(
                "add_cross_attention=True needs is_decoder=True (cross-attention only exists in a decoder); "
                "set config.is_decoder=True"
            )
        self.layer = nn.ModuleList(
            Block(config, i, pre_norm=pre_norm, cross=cross, bias=bias,
                  attn_scale=attn_scale(i) if callable(attn_scale) else attn_scale)
            for i in range(config.num_hidden_layers)
        )
        self.gradient_checkpointing = False

    def forward(self, x, inp: LayerInputs, head_mask=None, output_hidden_states=False, output_attentions=False):
        hidden, attentions, cross_attentions = [], [], []
        for i, block in enumerate(self.layer):
            if output_hidden_states:
                hidden.append(x)
            hm = None if head_mask is None else head_mask[i]
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                # Recompute activations in backward: memory for compute (training long sequences).
                x, probs, cross_probs = checkpoint(block, x, inp, hm, use_reentrant=False)
            else:
                x, probs, cross_probs = block(x, inp, hm)
            if output_attentions:
                attentions.append(probs)
                if cross_probs is not None:
                    cross_attentions.append(cross_probs)
        return x, hidden, attentions, cross_attentions


@dataclass
class BackboneOutput:
    last_hidden_state: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None
    attentions: tuple[torch.Tensor, ...] | None
    cross_attentions: tuple[torch.Tensor, ...] | None
    past_key_values: object | None


def additive_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, S) 1/0 mask -> (B, 1, 1, S) additive mask: 0 where attended, dtype-min where not."""
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def _head_mask(head_mask: torch.Tensor | None, num_layers: int, dtype: torch.dtype):
    if head_mask is None:
        return None
    # v4 semantics: (H,) for every layer or (L, H); 1 keeps a head, 0 silences it.
    if head_mask.dim() == 1:
        head_mask = head_mask.unsqueeze(0).expand(num_layers, -1)
    if head_mask.dim() != 2 or head_mask.shape[0] != num_layers:
        raise ValueError(f"head_mask must be (num_heads,) or (num_layers={num_layers}, num_heads), "
                         f"got shape {tuple(head_mask.shape)}")
    return head_mask[:, None, :, None, None].to(dtype)  # (L, 1, H, 1, 1)


def run_backbone(
    embeddings: Embeddings,
    stack: TransformerStack,
    config,
    *,
    final_norm: nn.Module | None = None,
    input_ids=None,
    attention_mask=None,
    token_type_ids=None,
    position_ids=None,
    head_mask=None,
    inputs_embeds=None,
    encoder_hidden_states=None,
    encoder_attention_mask=None,
    past_key_values=None,
    use_cache=None,
    output_attentions=None,
    output_hidden_states=None,
    skip_padding: bool = True,
    is_decoder: bool | None = None,  # None: config.is_decoder; GPT-2 passes True (it is always causal)
) -> BackboneOutput:
    output_attentions = config.output_attentions if output_attentions is None else output_attentions
    output_hidden_states = config.output_hidden_states if output_hidden_states is None else output_hidden_states

    # ---- inputs --------------------------------------------------------------------------------------------
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("pass exactly one of input_ids or inputs_embeds")
    if input_ids is not None:
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be 2-D (batch, sequence), got shape {tuple(input_ids.shape)}")
        check_ids("input_ids", input_ids, embeddings.word_embeddings.num_embeddings, "vocab_size")
        batch, length = input_ids.shape
        device = input_ids.device
    else:
        if inputs_embeds.dim() != 3 or inputs_embeds.shape[-1] != embeddings.word_embeddings.embedding_dim:
            raise ValueError(f"inputs_embeds must be (batch, sequence, {embeddings.word_embeddings.embedding_dim}), "
                             f"got shape {tuple(inputs_embeds.shape)}")
        batch, length = inputs_embeds.shape[:2]
        device = inputs_embeds.device
    dtype = embeddings.word_embeddings.weight.dtype if inputs_embeds is None else inputs_embeds.dtype

    is_decoder = config.is_decoder if is_decoder is None else is_decoder
    use_cache = (config.use_cache if use_cache is None else use_cache) and is_decoder
    if stack.gradient_checkpointing and stack.training and torch.is_grad_enabled():
        # Recomputing a layer in backward would append its keys/values to the cache a second time.
        if past_key_values is not None:
            raise ValueError("past_key_values cannot be used while training with gradient checkpointing (the "
                             "recomputed layers would write the cache twice); call model.eval() or disable it")
        use_cache = False
    return_legacy = isinstance(past_key_values, (tuple, list))
    cache = KVCache.from_legacy_cache(past_key_values) if return_legacy else past_key_values
    if cache is None and use_cache:
        cache = KVCache(len(stack.layer))
    past = cache.get_seq_length() if cache is not None else 0

    for name, t in (("token_type_ids", token_type_ids), ("position_ids", position_ids)):
        if t is not None and tuple(t.shape) != (batch, length) and not (t.dim() == 2 and t.shape[0] == 1
                                                                        and t.shape[1] == length):
            raise ValueError(f"{name} must have the shape of input_ids {(batch, length)}, got {tuple(t.shape)}")
    if token_type_ids is not None:
        n_types = embeddings.num_token_types
        if n_types == 0:
            if token_type_ids.numel() and int(token_type_ids.abs().max()):
                raise ValueError("this model has no token type embeddings, but token_type_ids contains non-zero ids")
            token_type_ids = None
        else:
            check_ids("token_type_ids", token_type_ids, n_types,
                      "type_vocab_size" if embeddings.token_type_embeddings is not None else "vocab_size")
    max_pos = embeddings.max_positions
    if position_ids is not None:
        check_ids("position_ids", position_ids, max_pos, "max_position_embeddings")
    else:
        needed = past + length + embeddings.first_free_position()
        if needed > max_pos:
            raise ValueError(
                f"sequence length {past + length} (past {past} + new {length}) exceeds the position table: "
                f"max_position_embeddings = {max_pos}" + (f" minus {embeddings.first_free_position()} reserved"
                                                           if embeddings.first_free_position() else "")
                + "; truncate the input (e.g. tokenizer(..., truncation=True, max_length=...))"
            )

    if attention_mask is not None:
        if tuple(attention_mask.shape) != (batch, past + length):
            raise ValueError(f"attention_mask shape {tuple(attention_mask.shape)} does not match input_ids "
                             f"{(batch, length)}" + (f" plus {past} cached positions" if past else ""))
        if bool(attention_mask.all()):
            attention_mask = None  # nothing masked: let SDPA take its fastest path

    # ---- masks ---------------------------------------------------------------------------------------------
    inp = LayerInputs(cache=cache, need_weights=output_attentions)
    # Drop padding when nothing observes the padded positions: no attentions or per-layer states returned, no
    # cache kept, no head mask, and right padding (so position 0, read by the pooler, is real in every row).
    # Each packed row then holds only real tokens: no padding mask, causality within the row.
    if (skip_padding and attention_mask is not None and cache is None and not output_attentions
            and not output_hidden_states and head_mask is None and Packing.applies_to(attention_mask)):
        inp.packing = Packing(attention_mask)
        inp.causal = is_decoder
    elif attention_mask is not None:
        mask = additive_mask(attention_mask, dtype)
        if is_decoder:
            q_pos = torch.arange(past, past + length, device=device).view(-1, 1)
            future = torch.arange(past + length, device=device).view(1, -1) > q_pos  # (T, S)
            mask = mask.masked_fill(future, torch.finfo(dtype).min)  # (B, 1, T, S)
        inp.mask = mask
    else:
        inp.causal = is_decoder
    if encoder_hidden_states is not None:
        if stack.layer and stack.layer[0].cross_attn is None:
            raise ValueError("encoder_hidden_states were passed but this model has no cross-attention; build it "
                             "with is_decoder=True, add_cross_attention=True")
        kv_in = stack.layer[0].cross_attn.kv.in_features if stack.layer else encoder_hidden_states.shape[-1]
        if (encoder_hidden_states.dim() != 3 or encoder_hidden_states.shape[0] != batch
                or encoder_hidden_states.shape[-1] != kv_in):
            raise ValueError(f"encoder_hidden_states must be (batch={batch}, source_length, {kv_in}), "
                             f"got shape {tuple(encoder_hidden_states.shape)}")
        inp.encoder_states = encoder_hidden_states
        if encoder_attention_mask is not None:
            if tuple(encoder_attention_mask.shape) != tuple(encoder_hidden_states.shape[:2]):
                raise ValueError(f"encoder_attention_mask shape {tuple(encoder_attention_mask.shape)} does not match "
                                 f"encoder_hidden_states {tuple(encoder_hidden_states.shape[:2])}")
            if not bool(encoder_attention_mask.all()):
                inp.encoder_mask = additive_mask(encoder_attention_mask, dtype)

    # ---- run -----------------------------------------------------------------------------------------------
    x = embeddings(input_ids, token_type_ids, position_ids, inputs_embeds, past_length=past)
    if inp.packing is not None:
        x = inp.packing.pack(x)
    x, hidden, attentions, cross = stack(
        x, inp, _head_mask(head_mask, len(stack.layer), x.dtype), output_hidden_states, output_attentions
    )
    if final_norm is not None:
        x = final_norm(x)
    if inp.packing is not None:
        x = inp.packing.unpack(x)
    if output_hidden_states:
        hidden.append(x)
    out_cache = (cache.to_legacy_cache() if return_legacy else cache) if use_cache else None
    return BackboneOutput(
        last_hidden_state=x,
        hidden_states=tuple(hidden) if output_hidden_states else None,
        attentions=tuple(attentions) if output_attentions else None,
        cross_attentions=tuple(cross) if output_attentions and cross else None,
        past_key_values=out_cache,
    )
