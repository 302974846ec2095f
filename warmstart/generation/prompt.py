"""generate()'s second step: from the caller's tensors to the prompt the decoder is prefilled with.

``take_inputs`` separates the model inputs from the other keyword arguments, checks the id tensor and moves
everything to the model's device once; ``seq2seq_prompt`` and ``decoder_only_prompt`` then build a ``Prompt``:
the decoder start tokens (plus any given prefix) and the encoder's arguments for an encoder-decoder, the prompt with
its mask, positions and segment ids for a decoder-only model. Nothing here runs the model: every input error is
raised before the encoder starts.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import torch

from ..outputs import as_encoder_output
from .contract import ModelContract
from .settings import decoder_start_id

__all__ = ["Inputs", "Prompt", "take_inputs", "seq2seq_prompt", "decoder_only_prompt", "check_ids_tensor"]


@dataclass
class Inputs:
    """The model inputs of one generate() call, on the model's device (encoder_outputs as given)."""
    input_ids: torch.Tensor | None
    attention_mask: torch.Tensor | None
    inputs_embeds: torch.Tensor | None
    encoder_outputs: Any
    extra: dict[str, Any]  # the remaining keyword arguments: token types, decoder_* inputs, encoder arguments


@dataclass
class Prompt:
    batch: int  # distinct inputs (before beams or samples repeat them)
    ids: torch.Tensor  # (B, T0): the decoder-only prompt, or the decoder start tokens (+ a given prefix)
    mask: torch.Tensor | None  # (B, T0)
    source_ids: torch.Tensor | None  # (B, S): the encoder's input ids, or the decoder-only prompt
    positions: torch.Tensor | None = None  # (B, T0): explicit only for a left-padded decoder-only prompt
    token_types: torch.Tensor | None = None  # (B, T0): decoder-only segment ids
    encoder_mask: torch.Tensor | None = None  # (B, S)
    encoder_outputs: Any = None  # given by the caller: the encoder does not run
    encoder_args: dict[str, Any] = field(default_factory=dict)  # further keyword arguments of the encoder
    embeds: torch.Tensor | None = None  # (B, T0, C): a decoder-only prompt given as inputs_embeds (prefill only)
    model_args: dict[str, Any] = field(default_factory=dict)  # passed to every decoder forward (head_mask)

    @property
    def fed(self) -> int:
        """Positions the prefill writes: the embedded prompt's length when it is given as inputs_embeds (then
        ``ids`` holds no prompt tokens, or the same ones), else that of ``ids``."""
        return self.embeds.shape[1] if self.embeds is not None else self.ids.shape[1]


def check_ids_tensor(name: str, t: Any) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor of token ids, got {type(t).__name__}")
    if t.dim() != 2:
        raise ValueError(f"{name} must be 2-D (batch, sequence), got shape {tuple(t.shape)}"
                         + ("; add a batch dimension with .unsqueeze(0)" if t.dim() == 1 else ""))
    if t.dtype.is_floating_point or t.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer token ids (torch.long), got dtype {t.dtype}")
    if t.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(t.shape)})")


def take_inputs(contract: ModelContract, inputs: torch.Tensor | None, model_kwargs: dict[str, Any]) -> Inputs:
    """Pick the model inputs out of the non-setting keyword arguments; ``model_kwargs`` is consumed."""
    if inputs is not None and model_kwargs.get("input_ids") is not None:
        raise ValueError("pass the prompt either as `inputs` or as input_ids=..., not both")
    input_ids = inputs if inputs is not None else model_kwargs.pop("input_ids", None)
    model_kwargs.pop("input_ids", None)
    attention_mask = model_kwargs.pop("attention_mask", None)
    model_kwargs.pop("use_cache", None)  # a setting (GenerationConfig.use_cache), never a model input
    # A decoder-only model has no encoder: its encoder_outputs stay among the extras and are reported as unknown.
    encoder_outputs = model_kwargs.pop("encoder_outputs", None) if contract.seq2seq else None
    inputs_embeds = model_kwargs.pop("inputs_embeds", None)
    if inputs_embeds is not None and not isinstance(inputs_embeds, torch.Tensor):
        raise TypeError(f"inputs_embeds must be a torch tensor (batch, sequence, hidden), got "
                        f"{type(inputs_embeds).__name__}")
    if input_ids is not None:
        check_ids_tensor("input_ids", input_ids)
    # Inputs may live on another device than the model (e.g. CPU tensors for a GPU model): move them once.
    device = contract.device

    def moved(t):
        return t.to(device) if isinstance(t, torch.Tensor) else t

    return Inputs(input_ids=moved(input_ids), attention_mask=moved(attention_mask), inputs_embeds=moved(inputs_embeds),
                  encoder_outputs=encoder_outputs, extra={k: moved(v) for k, v in model_kwargs.items()})


def seq2seq_prompt(contract: ModelContract, config, given: Inputs) -> Prompt:
    """The decoder starts from ``decoder_start_token_id`` (prepended to a given decoder prefix that lacks it)."""
    input_ids, inputs_embeds, encoder_outputs, extra = (given.input_ids, given.inputs_embeds, given.encoder_outputs,
                                                        given.extra)
    if input_ids is not None and inputs_embeds is not None:
        raise ValueError("pass either input_ids or inputs_embeds to generate(), not both")
    if encoder_outputs is not None:
        batch = encoder_outputs[0].shape[0] if isinstance(encoder_outputs, (tuple, list)) else \
            encoder_outputs.last_hidden_state.shape[0]
        encoder_outputs = as_encoder_output(encoder_outputs)
    elif input_ids is not None:
        batch = input_ids.shape[0]
    elif inputs_embeds is not None:
        batch = inputs_embeds.shape[0]
    else:
        raise ValueError("an encoder-decoder needs encoder input: pass input_ids (or inputs_embeds / encoder_outputs)")
    start = decoder_start_id(config)
    first = torch.full((batch, 1), start, dtype=torch.long, device=contract.device)
    decoder_ids = extra.pop("decoder_input_ids", None)
    decoder_mask = extra.pop("decoder_attention_mask", None)
    if decoder_ids is None:
        decoder_ids = first
    else:
        check_ids_tensor("decoder_input_ids", decoder_ids)
        if bool((decoder_ids[:, 0] != start).all()):
            decoder_ids = torch.cat([first.to(decoder_ids.device), decoder_ids], dim=1)
            if decoder_mask is not None:
                decoder_mask = torch.cat([decoder_mask.new_ones(batch, 1), decoder_mask], dim=1)
    # Unprefixed extras go to the encoder; decoder_* ones other than the two above have nowhere to go.
    decoder_extra = sorted(k for k in extra if k.startswith("decoder_"))
    unknown = sorted(k for k in extra if k not in contract.encoder_inputs and not k.startswith("decoder_"))
    if decoder_extra or unknown:
        raise ValueError(f"generate() got arguments that are neither generation settings nor inputs of "
                         f"{contract.name}: {decoder_extra + unknown}")
    encoder_args = dict(extra)
    if inputs_embeds is not None:
        encoder_args["inputs_embeds"] = inputs_embeds
    return Prompt(batch=batch, ids=decoder_ids, mask=decoder_mask, source_ids=input_ids,
                  encoder_mask=given.attention_mask, encoder_outputs=encoder_outputs, encoder_args=encoder_args)


def decoder_only_prompt(contract: ModelContract, config, given: Inputs, eos_ids: list[int] | None) -> Prompt:
    """The prompt itself (or a lone BOS token), its mask (inferred from pad tokens as transformers does) and, when
    it is left-padded, positions counted from each row's first real token."""
    input_ids, embeds = given.input_ids, given.inputs_embeds
    if embeds is not None:
        # v4: the prompt's embeddings are fed once; the returned sequences hold the given input_ids (if any) and the
        # new tokens, so without input_ids only the new tokens.
        if embeds.dim() != 3:
            raise ValueError(f"inputs_embeds must be 3-D (batch, sequence, hidden), got shape {tuple(embeds.shape)}")
        if input_ids is None:
            input_ids = torch.empty((embeds.shape[0], 0), dtype=torch.long, device=contract.device)
        elif tuple(input_ids.shape) != tuple(embeds.shape[:2]):
            raise ValueError(f"input_ids {tuple(input_ids.shape)} and inputs_embeds {tuple(embeds.shape)} must "
                             "describe the same tokens (batch, sequence)")
    if input_ids is None:
        if config.bos_token_id is None:
            raise ValueError("no input_ids and no bos_token_id to start from: pass a prompt or set bos_token_id")
        input_ids = torch.full((1, 1), config.bos_token_id, dtype=torch.long, device=contract.device)
    batch = input_ids.shape[0]
    fed = tuple(embeds.shape[:2]) if embeds is not None else tuple(input_ids.shape)
    token_types = given.extra.pop("token_type_ids", None)
    model_args = {"head_mask": given.extra.pop("head_mask")} if given.extra.get("head_mask") is not None else {}
    given.extra.pop("head_mask", None)
    unknown = sorted(given.extra)
    if unknown:
        raise ValueError(f"generate() got arguments that are neither generation settings nor inputs of "
                         f"{contract.name}: {unknown}")
    mask = given.attention_mask
    if mask is not None and tuple(mask.shape) != fed:
        raise ValueError(f"attention_mask shape {tuple(mask.shape)} does not match "
                         f"{'inputs_embeds' if embeds is not None else 'input_ids'} {fed}")
    pad = config.pad_token_id
    if mask is None and pad is not None and batch > 1 and (eos_ids is None or pad not in eos_ids) \
            and bool((input_ids == pad).any()):
        mask = (input_ids != pad).long()  # transformers infers the mask from pad tokens the same way
    if mask is not None and bool(mask[:, -1].eq(0).any()):
        warnings.warn("a decoder-only model is generating after right padding: pad on the left "
                      "(tokenizer.padding_side = 'left') so every row ends with a real token", UserWarning)
    return Prompt(batch=batch, ids=input_ids, mask=mask, source_ids=input_ids,
                  positions=contract.prompt_positions(mask), token_types=token_types, embeds=embeds,
                  model_args=model_args)
