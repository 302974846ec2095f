"""The layer stack and the backbone forward shared by every model family.

``run_backbone`` is the one place that validates inputs, builds masks, manages the cache and decides whether padding
can be dropped; BERT, BertGeneration, RoBERTa and GPT-2 differ only in the embeddings/stack options they build.
It runs in three named steps (check the inputs, build the layers' shared inputs, run the stack); ``backbone_args``
is how every model's forward hands its arguments on to it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .block import Block, LayerInputs
from .cache import KVCache
from .embeddings import Embeddings, check_ids
from .losses import padding_is_scored
from .packing import Packing

__all__ = ["TransformerStack", "BackboneOutput", "run_backbone", "backbone_args", "BACKBONE_ARGS", "additive_mask"]


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


# The arguments a model's forward hands on unchanged: from a head to its backbone model, and from there to
# run_backbone (v4 names; ``skip_padding`` is warmstart's).
BACKBONE_ARGS = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "head_mask", "inputs_embeds",
                 "encoder_hidden_states", "encoder_attention_mask", "past_key_values", "use_cache",
                 "output_attentions", "output_hidden_states", "skip_padding")


def backbone_args(args: dict, labels: torch.Tensor | None = None, shift: int = 0) -> dict:
    """The backbone's arguments among a forward's ``locals()``, to be passed on by name.

    The public forwards keep transformers' explicit signatures (callers pass arguments by position); this spares
    each of them re-spelling the dozen it shares with its backbone. With ``labels``, a loss that reads the
    positions ``attention_mask`` hides makes the backbone compute them (``shift`` as in ``padding_is_scored``).
    """
    out = {k: args[k] for k in BACKBONE_ARGS if k in args}
    if labels is not None and padding_is_scored(labels, out.get("attention_mask"), shift):
        out["skip_padding"] = False
    return out


@dataclass(slots=True)  # built every forward, decode steps included: keep it cheap
class _Checked:
    """One forward pass's inputs once validated and resolved against the config: what the later steps read."""

    batch: int
    length: int
    device: torch.device
    dtype: torch.dtype
    is_decoder: bool
    use_cache: bool
    output_attentions: bool
    output_hidden_states: bool
    cache: KVCache | None  # the cache being continued (legacy tuples converted), None when there is none
    past: int  # positions already cached
    return_legacy: bool  # no KVCache was passed in, so tuples go back (v4)
    token_type_ids: torch.Tensor | None  # None where the model has no segments
    attention_mask: torch.Tensor | None  # None where nothing is masked


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
    """Embeddings, the layers and an optional final norm, in three steps: check the inputs, build what every
    layer shares (masks, cache, packing), run."""
    run = _check_inputs(embeddings, stack, config, input_ids, inputs_embeds, past_key_values, use_cache,
                        output_attentions, output_hidden_states, is_decoder)
    _check_ids_and_masks(run, embeddings, token_type_ids, position_ids, attention_mask)
    _check_encoder(stack, run.batch, encoder_hidden_states, encoder_attention_mask)
    inp = _layer_inputs(run, stack, encoder_hidden_states, encoder_attention_mask, head_mask, skip_padding)
    x = embeddings(input_ids, run.token_type_ids, position_ids, inputs_embeds, past_length=run.past)
    return _run_stack(x, run, inp, stack, head_mask, final_norm)


# ---- step 1: check the inputs --------------------------------------------------------------------------------
def _check_inputs(embeddings, stack, config, input_ids, inputs_embeds, past_key_values, use_cache,
                  output_attentions, output_hidden_states, is_decoder) -> _Checked:
    """The token inputs' shape, the output flags and the cache being continued."""
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("pass exactly one of input_ids or inputs_embeds")
    if input_ids is not None:
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be 2-D (batch, sequence), got shape {tuple(input_ids.shape)}")
        check_ids("input_ids", input_ids, embeddings.word_embeddings.num_embeddings, "vocab_size")
        (batch, length), device = input_ids.shape, input_ids.device
        dtype = embeddings.word_embeddings.weight.dtype
    else:
        if inputs_embeds.dim() != 3 or inputs_embeds.shape[-1] != embeddings.word_embeddings.embedding_dim:
            raise ValueError(f"inputs_embeds must be (batch, sequence, {embeddings.word_embeddings.embedding_dim}), "
                             f"got shape {tuple(inputs_embeds.shape)}")
        (batch, length), device, dtype = inputs_embeds.shape[:2], inputs_embeds.device, inputs_embeds.dtype

    is_decoder = config.is_decoder if is_decoder is None else is_decoder
    use_cache = (config.use_cache if use_cache is None else use_cache) and is_decoder
    if stack.gradient_checkpointing and stack.training and torch.is_grad_enabled():
        # Recomputing a layer in backward would append its keys/values to the cache a second time.
        if past_key_values is not None:
            raise ValueError("past_key_values cannot be used while training with gradient checkpointing (the "
                             "recomputed layers would write the cache twice); call model.eval() or disable it")
        use_cache = False
    # v4: the cache comes back as a tuple of per-layer tuples unless the caller passed a cache object (KVCache).
    return_legacy = not isinstance(past_key_values, KVCache)
    cache = KVCache.from_legacy_cache(past_key_values) if isinstance(past_key_values, (tuple, list)) \
        else past_key_values
    return _Checked(
        batch=batch, length=length, device=device, dtype=dtype, is_decoder=is_decoder, use_cache=use_cache,
        output_attentions=config.output_attentions if output_attentions is None else output_attentions,
        output_hidden_states=config.output_hidden_states if output_hidden_states is None else output_hidden_states,
        cache=cache, past=cache.get_seq_length() if cache is not None else 0, return_legacy=return_legacy,
        token_type_ids=None, attention_mask=None,
    )


def _check_ids_and_masks(run: _Checked, embeddings: Embeddings, token_type_ids, position_ids, attention_mask):
    """Segment and position ids against their tables, the attention mask against the sequence (and cache)."""
    batch, length, past = run.batch, run.length, run.past
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
    run.token_type_ids = token_type_ids
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
        if attention_mask.dim() == 3:
            # v4: a (B, T, S) mask says which key each query may see, used as given (no causal part added).
            if tuple(attention_mask.shape) != (batch, length, past + length):
                raise ValueError(f"a 3-D attention_mask must be (batch, sequence, past + sequence) = "
                                 f"{(batch, length, past + length)}, got {tuple(attention_mask.shape)}")
            run.attention_mask = attention_mask
            return
        if tuple(attention_mask.shape) != (batch, past + length):
            raise ValueError(f"attention_mask shape {tuple(attention_mask.shape)} does not match input_ids "
                             f"{(batch, length)}" + (f" plus {past} cached positions" if past else "")
                             + "; pass a (batch, sequence) padding mask or a (batch, sequence, sequence) one")
        # Else nothing is masked: let SDPA take its fastest path. Compiled code keeps the mask: one graph serves
        # padded and unpadded batches, with no branch on the values.
        if torch.compiler.is_compiling() or not bool(attention_mask.all()):
            run.attention_mask = attention_mask


def _check_encoder(stack: TransformerStack, batch: int, encoder_hidden_states, encoder_attention_mask) -> None:
    if encoder_hidden_states is None:
        return
    if stack.layer and stack.layer[0].cross_attn is None:
        raise ValueError("encoder_hidden_states were passed but this model has no cross-attention; build it "
                         "with is_decoder=True, add_cross_attention=True")
    kv_in = stack.layer[0].cross_attn.kv.in_features if stack.layer else encoder_hidden_states.shape[-1]
    if (encoder_hidden_states.dim() != 3 or encoder_hidden_states.shape[0] != batch
            or encoder_hidden_states.shape[-1] != kv_in):
        raise ValueError(f"encoder_hidden_states must be (batch={batch}, source_length, {kv_in}), "
                         f"got shape {tuple(encoder_hidden_states.shape)}")
    if encoder_attention_mask is None:
        return
    want = tuple(encoder_hidden_states.shape[:2])
    if encoder_attention_mask.dim() == 3:  # v4: (B, T, S_enc), a source mask per decoder position
        if (encoder_attention_mask.shape[0], encoder_attention_mask.shape[2]) != want:
            raise ValueError(f"a 3-D encoder_attention_mask must be (batch, sequence, source_length) with "
                             f"(batch, source_length) = {want}, got {tuple(encoder_attention_mask.shape)}")
    elif tuple(encoder_attention_mask.shape) != want:
        raise ValueError(f"encoder_attention_mask shape {tuple(encoder_attention_mask.shape)} does not match "
                         f"encoder_hidden_states {want}")


# ---- step 2: build what every layer shares --------------------------------------------------------------------
def _layer_inputs(run: _Checked, stack: TransformerStack, encoder_hidden_states, encoder_attention_mask,
                  head_mask, skip_padding: bool) -> LayerInputs:
    if run.cache is None and run.use_cache:
        run.cache = KVCache(len(stack.layer))
    inp = LayerInputs(cache=run.cache, need_weights=run.output_attentions)
    mask = run.attention_mask
    full = mask is not None and mask.dim() == 3  # (B, T, S): the whole pattern, from the caller
    # Drop padding when nothing observes the padded positions: no attentions or per-layer states returned, no
    # cache kept, no head mask, and right padding (so position 0, read by the pooler, is real in every row).
    # Each packed row then holds only real tokens: no padding mask, causality within the row. Compiled code never
    # packs: the packed shapes and per-row spans depend on the mask's values (a recompile or graph break each batch).
    if (skip_padding and not torch.compiler.is_compiling() and mask is not None and not full and run.cache is None
            and not run.output_attentions and not run.output_hidden_states and head_mask is None
            and not _is_3d(encoder_attention_mask) and Packing.applies_to(mask)):
        inp.packing = Packing(mask)
        inp.causal = run.is_decoder
    elif full:
        inp.mask = (1.0 - mask[:, None].to(run.dtype)) * torch.finfo(run.dtype).min  # (B, 1, T, S)
    elif mask is not None:
        additive = additive_mask(mask, run.dtype)
        if run.is_decoder:
            q_pos = torch.arange(run.past, run.past + run.length, device=run.device).view(-1, 1)
            future = torch.arange(run.past + run.length, device=run.device).view(1, -1) > q_pos  # (T, S)
            additive = additive.masked_fill(future, torch.finfo(run.dtype).min)  # (B, 1, T, S)
        inp.mask = additive
    else:
        inp.causal = run.is_decoder
    if encoder_hidden_states is not None:
        inp.encoder_states = encoder_hidden_states
        if _is_3d(encoder_attention_mask):
            inp.encoder_mask = (1.0 - encoder_attention_mask[:, None].to(run.dtype)) * torch.finfo(run.dtype).min
        elif encoder_attention_mask is not None and (torch.compiler.is_compiling()
                                                     or not bool(encoder_attention_mask.all())):
            inp.encoder_mask = additive_mask(encoder_attention_mask, run.dtype)
    return inp


def _is_3d(mask: torch.Tensor | None) -> bool:
    return mask is not None and mask.dim() == 3


# ---- step 3: run the stack -----------------------------------------------------------------------------------
def _run_stack(x, run: _Checked, inp: LayerInputs, stack: TransformerStack, head_mask, final_norm) -> BackboneOutput:
    if inp.packing is not None:
        x = inp.packing.pack(x)
    x, hidden, attentions, cross = stack(
        x, inp, _head_mask(head_mask, len(stack.layer), x.dtype), run.output_hidden_states, run.output_attentions
    )
    if final_norm is not None:
        x = final_norm(x)
    if inp.packing is not None:
        x = inp.packing.unpack(x)
    if run.output_hidden_states:
        hidden.append(x)
    cache = (run.cache.to_legacy_cache() if run.return_legacy else run.cache) if run.use_cache else None
    return BackboneOutput(
        last_hidden_state=x,
        hidden_states=tuple(hidden) if run.output_hidden_states else None,
        attentions=tuple(attentions) if run.output_attentions else None,
        cross_attentions=tuple(cross) if run.output_attentions and cross else None,
        past_key_values=cache,
    )
