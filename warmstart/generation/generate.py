"""``generate()``: resolve the settings, check them all, prepare the inputs, run one search, shape the output.

Settings resolve as in transformers: explicit keyword arguments > the ``generation_config`` argument (or the
model's own ``model.generation_config``, which follows ``model.config`` as in v4 unless it was loaded from
generation_config.json or edited) > defaults. Everything that can be checked without running the model is checked
first, so a bad setting fails in milliseconds with a ValueError naming it, never after the encoder ran.

Deliberate differences from transformers 5.23, each for correctness:
- beam outputs shorter than the longest are filled with ``pad_token_id`` (transformers fills with the EOS id when
  the pad id is 0, an operator-precedence slip);
- the cache is always used (``use_cache=False`` is accepted and gives the same tokens, slower in transformers);
- rows that hit a stop string are padded like rows that hit EOS;
- decoder-only RoBERTa numbers positions from its padding index (its training convention) also in left-padded
  batches; transformers passes 0-based positions there.
"""
from __future__ import annotations

import copy
import inspect
import logging
import time
import warnings
from typing import Any

import torch

from . import outputs as O
from .build import build_processors, build_stopping
from ..config.generation import UNSUPPORTED, GenerationConfig
from ..families import is_causal
from ..outputs import as_encoder_output
from .fast_linear import packed_linears
from .group_beam import group_beam_search
from .search import Run, beam_search, greedy_or_sample
from .step import Decoder, find_lm_head
from .stopping import MaxLengthCriteria

__all__ = ["generate"]

log = logging.getLogger("warmstart")


def generate(model, inputs: torch.Tensor | None = None, generation_config: GenerationConfig | None = None,
             logits_processor=None, stopping_criteria=None, prefix_allowed_tokens_fn=None, synced_gpus=None,
             assistant_model=None, streamer=None, negative_prompt_ids=None, negative_prompt_attention_mask=None,
             **kwargs: Any):
    start_time = time.time()
    tokenizer = kwargs.pop("tokenizer", None)
    for name, value in (("assistant_model", assistant_model), ("negative_prompt_ids", negative_prompt_ids),
                        ("negative_prompt_attention_mask", negative_prompt_attention_mask),
                        ("custom_generate", kwargs.pop("custom_generate", None))):
        if value is not None:
            raise ValueError(f"generate() does not support {name} (assisted / guided / custom decoding); supported: "
                             "greedy, sampling, beam search, beam sampling, diverse beam search")
    if synced_gpus:
        raise ValueError("synced_gpus=True is not supported: generate() runs on one device")

    # ---- 1. settings ---------------------------------------------------------------------------------------------
    if generation_config is not None and not isinstance(generation_config, GenerationConfig):
        raise TypeError(f"generation_config must be a GenerationConfig, got {type(generation_config).__name__}")
    seq2seq = bool(getattr(model.config, "is_encoder_decoder", False))
    lm = model.get_decoder() if seq2seq else model
    find_lm_head(lm)
    if not seq2seq and not is_causal(lm.config):
        raise ValueError(f"{type(model).__name__} was built with is_decoder=False, so every position sees the whole "
                         "sequence and left-to-right generation is meaningless; load it with is_decoder=True")
    config = copy.deepcopy(generation_config if generation_config is not None else model.generation_config)
    model_kwargs = config.update(**kwargs)  # validates every setting
    for name, off in UNSUPPORTED.items():
        if getattr(config, name, None) not in off:
            raise ValueError(f"generation setting {name}={getattr(config, name)!r} is not supported by warmstart "
                             f"(contrastive / constrained / guided decoding); leave it at {off[0]!r}")

    # ---- 2. inputs -------------------------------------------------------------------------------------------
    if inputs is not None and model_kwargs.get("input_ids") is not None:
        raise ValueError("pass the prompt either as `inputs` or as input_ids=..., not both")
    input_ids = inputs if inputs is not None else model_kwargs.pop("input_ids", None)
    model_kwargs.pop("input_ids", None)
    attention_mask = model_kwargs.pop("attention_mask", None)
    model_kwargs.pop("use_cache", None)  # the cache is always used
    encoder_outputs = model_kwargs.pop("encoder_outputs", None) if seq2seq else None
    inputs_embeds = model_kwargs.pop("inputs_embeds", None)
    if inputs_embeds is not None and not seq2seq:
        raise ValueError("decoder-only generate() takes input_ids, not inputs_embeds")
    if input_ids is not None:
        _check_ids_tensor("input_ids", input_ids)
    # Inputs may live on another device than the model (e.g. CPU tensors for a GPU model): move them once.
    device = model.device
    input_ids, attention_mask, inputs_embeds = (t.to(device) if isinstance(t, torch.Tensor) else t
                                                for t in (input_ids, attention_mask, inputs_embeds))
    model_kwargs = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in model_kwargs.items()}
    eos_ids = _id_list(config.eos_token_id)
    pad = config.pad_token_id
    vocab = lm.get_output_embeddings().out_features
    for name, ids in (("eos_token_id", eos_ids or []), ("pad_token_id", [] if pad is None else [pad]),
                      ("decoder_start_token_id", [] if config.decoder_start_token_id is None
                       else [config.decoder_start_token_id]),
                      ("forced_bos_token_id", [] if config.forced_bos_token_id is None
                       else [config.forced_bos_token_id]),
                      ("forced_eos_token_id", _id_list(config.forced_eos_token_id) or [])):
        bad = [i for i in ids if i >= vocab]
        if bad:
            raise ValueError(f"{name}={bad[0]} is outside the decoder's vocabulary (size {vocab})")

    if seq2seq:
        batch, decoder_ids, decoder_mask, encoder_kwargs, encoder_outputs = _seq2seq_inputs(
            model, config, input_ids, inputs_embeds, encoder_outputs, model_kwargs)
        prompt = decoder_ids
        token_types = position_ids = None
        prompt_mask = decoder_mask
    else:
        if input_ids is None:
            if config.bos_token_id is None:
                raise ValueError("no input_ids and no bos_token_id to start from: pass a prompt or set bos_token_id")
            input_ids = torch.full((1, 1), config.bos_token_id, dtype=torch.long, device=model.device)
        batch, prompt = input_ids.shape[0], input_ids
        token_types = model_kwargs.pop("token_type_ids", None)
        unknown = sorted(model_kwargs)
        if unknown:
            raise ValueError(f"generate() got arguments that are neither generation settings nor inputs of "
                             f"{type(model).__name__}: {unknown}")
        prompt_mask = attention_mask
        if prompt_mask is not None and tuple(prompt_mask.shape) != tuple(prompt.shape):
            raise ValueError(f"attention_mask shape {tuple(prompt_mask.shape)} does not match input_ids "
                             f"{tuple(prompt.shape)}")
        if prompt_mask is None and pad is not None and batch > 1 and (eos_ids is None or pad not in eos_ids) \
                and bool((prompt == pad).any()):
            prompt_mask = (prompt != pad).long()  # transformers infers the mask from pad tokens the same way
        if prompt_mask is not None and bool(prompt_mask[:, -1].eq(0).any()):
            warnings.warn("a decoder-only model is generating after right padding: pad on the left "
                          "(tokenizer.padding_side = 'left') so every row ends with a real token", UserWarning)
        position_ids = _positions(lm, prompt_mask)

    # ---- 3. lengths and the remaining checks ------------------------------------------------------------------
    prompt_len = prompt.shape[1]
    max_length = _max_length(config, lm, prompt_len, stopping_criteria, "decoder prompt" if seq2seq else "prompt")
    needs_eos = [n for n in ("min_new_tokens", "min_length", "exponential_decay_length_penalty")
                 if getattr(config, n) and not eos_ids]
    if needs_eos:
        raise ValueError(f"{needs_eos[0]} is set but eos_token_id is not: it works by holding back the EOS token; set "
                         "eos_token_id (e.g. tokenizer.sep_token_id for BERT)")
    config.max_length = max_length
    if config.min_new_tokens is not None:
        config.min_length = config.min_new_tokens + prompt_len
    if config.min_length > max_length:
        warnings.warn(f"min_length ({config.min_length}) exceeds max_length ({max_length}); generation stops at "
                      "max_length", UserWarning)
    groups = config.num_beam_groups
    nb, nrs = config.num_beams, config.num_return_sequences
    rows = batch * max(nb, nrs if config.do_sample else 1)
    pad_finished = bool(eos_ids) or config.stop_strings is not None
    if pad is None and eos_ids:
        pad = eos_ids[0]  # transformers' fallback: finished rows are filled with the (first) EOS id
    if pad is None and pad_finished and rows > 1:
        raise ValueError("pad_token_id is not set, but rows of this batch can stop at different times (stop_strings) "
                         "and must then be padded; set pad_token_id")
    if streamer is not None and (batch > 1 or (nb == 1 and rows > 1)):
        raise ValueError(f"streaming follows a single sequence, but this call makes {rows // max(nb, 1)} (batch "
                         f"{batch}, num_return_sequences {nrs}); stream with batch size 1 and one returned sequence")

    expand = max(nb, nrs if config.do_sample else 1)
    ignore = None
    if config.repetition_penalty != 1.0 and prompt_mask is not None and not bool(prompt_mask.all()):
        ignore = (prompt_mask != 0).int().argmax(dim=1).repeat_interleave(expand, 0)
    processors = build_processors(
        config, prompt_length=prompt_len, encoder_input_ids=input_ids,
        eos_ids=eos_ids, prompt_ignore_length=ignore, rows_per_input=nb, custom=logits_processor,
        prefix_allowed_tokens_fn=prefix_allowed_tokens_fn)
    stopping = build_stopping(config, eos_ids=eos_ids, tokenizer=tokenizer, custom=stopping_criteria,
                              start_time=start_time)

    # ---- 4. run ----------------------------------------------------------------------------------------------
    want = {"scores": config.return_dict_in_generate and config.output_scores,
            "logits": config.return_dict_in_generate and bool(config.output_logits),
            "attentions": config.return_dict_in_generate and config.output_attentions,
            "hidden_states": config.return_dict_in_generate and config.output_hidden_states}
    dec = Decoder(model, max_length=max_length, output_attentions=want["attentions"],
                  output_hidden_states=want["hidden_states"])
    with torch.inference_mode(), packed_linears(model, dec.lm, rows):
        enc_out = None
        if seq2seq:
            enc_out = dec.encode(input_ids, attention_mask, encoder_outputs,
                                 **({"inputs_embeds": inputs_embeds} if inputs_embeds is not None else {}),
                                 **encoder_kwargs)
        if streamer is not None:
            streamer.put(prompt.cpu())
        first = dec.prefill(prompt, prompt_mask, position_ids, token_types)
        run = Run(decoder=dec, first_logits=first, input_ids=prompt, processors=processors, stopping=stopping,
                  max_length=max_length, do_sample=config.do_sample, num_beams=nb, num_return_sequences=nrs,
                  length_penalty=float(config.length_penalty), early_stopping=config.early_stopping, pad_token_id=pad,
                  eos=torch.tensor(eos_ids, device=prompt.device) if eos_ids else None, pad_finished=pad_finished,
                  streamer=streamer, want=want)
        if groups > 1:
            result = group_beam_search(run, groups)
        elif nb > 1:
            result = beam_search(run)
        else:
            result = greedy_or_sample(run)
        if streamer is not None:
            if nb > 1 and hasattr(streamer, "finish_beams"):
                streamer.finish_beams(result.sequences[0, prompt_len:].cpu())
            elif nb > 1:
                streamer.put(result.sequences[0, prompt_len:].cpu())
            streamer.end()
    return _output(result, config, seq2seq, nb > 1, enc_out, dec)


# ---- helpers -----------------------------------------------------------------------------------------------------
def _check_ids_tensor(name: str, t: Any) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor of token ids, got {type(t).__name__}")
    if t.dim() != 2:
        raise ValueError(f"{name} must be 2-D (batch, sequence), got shape {tuple(t.shape)}"
                         + ("; add a batch dimension with .unsqueeze(0)" if t.dim() == 1 else ""))
    if t.dtype.is_floating_point or t.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer token ids (torch.long), got dtype {t.dtype}")
    if t.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(t.shape)})")


def _id_list(ids) -> list[int] | None:
    if ids is None:
        return None
    if isinstance(ids, torch.Tensor):
        return [int(i) for i in ids.reshape(-1).tolist()]
    return [ids] if isinstance(ids, int) else [int(i) for i in ids]


def _seq2seq_inputs(model, config, input_ids, inputs_embeds, encoder_outputs, model_kwargs):
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
    start = config.decoder_start_token_id if config.decoder_start_token_id is not None else config.bos_token_id
    if start is None:
        raise ValueError("decoder_start_token_id is not set, so the decoder has no first token: set "
                         "model.config.decoder_start_token_id (e.g. tokenizer.cls_token_id for BERT) or pass "
                         "decoder_start_token_id=... to generate()")
    device = model.device
    first = torch.full((batch, 1), start, dtype=torch.long, device=device)
    decoder_ids = model_kwargs.pop("decoder_input_ids", None)
    decoder_mask = model_kwargs.pop("decoder_attention_mask", None)
    if decoder_ids is None:
        decoder_ids = first
    else:
        _check_ids_tensor("decoder_input_ids", decoder_ids)
        if bool((decoder_ids[:, 0] != start).all()):
            decoder_ids = torch.cat([first.to(decoder_ids.device), decoder_ids], dim=1)
            if decoder_mask is not None:
                decoder_mask = torch.cat([decoder_mask.new_ones(batch, 1), decoder_mask], dim=1)
    encoder = model.get_encoder()
    accepted = set(inspect.signature(encoder.forward).parameters)
    decoder_extra = sorted(k for k in model_kwargs if k.startswith("decoder_"))
    unknown = sorted(k for k in model_kwargs if k not in accepted and not k.startswith("decoder_"))
    if decoder_extra or unknown:
        raise ValueError(f"generate() got arguments that are neither generation settings nor inputs of "
                         f"{type(model).__name__}: {decoder_extra + unknown}")
    encoder_kwargs = dict(model_kwargs)
    model_kwargs.clear()
    return batch, decoder_ids, decoder_mask, encoder_kwargs, encoder_outputs


def _positions(lm, mask: torch.Tensor | None) -> torch.Tensor | None:
    """Explicit positions for left-padded prompts: each row counts from its first real token."""
    if mask is None or bool(mask.all()):
        return None
    emb = lm.base_model.embeddings
    first = emb.first_free_position()
    pos = mask.long().cumsum(-1) - 1 + first
    fill = emb.padding_idx if getattr(emb, "position_offset_from_padding", False) else 0
    return pos.masked_fill(mask == 0, fill)


def _max_length(config, lm, prompt_len: int, custom_criteria, what: str) -> int:
    emb = lm.base_model.embeddings
    usable = emb.max_positions - emb.first_free_position()  # positions the decoder can be fed
    custom = next((c.max_length for c in (custom_criteria or []) if isinstance(c, MaxLengthCriteria)), None)
    if custom is not None:  # a MaxLengthCriteria passed by the caller replaces the built one (transformers' rule)
        max_length, how = custom, f"MaxLengthCriteria({custom})"
    elif config.max_new_tokens is not None:
        max_length, how = config.max_new_tokens + prompt_len, f"max_new_tokens={config.max_new_tokens}"
    elif config.is_set("max_length"):
        max_length, how = config.max_length, f"max_length={config.max_length}"
    else:
        # Nobody chose a length: 20 new tokens (transformers' default), capped by the position table.
        max_length = min(config.max_length + prompt_len, emb.max_positions, usable + 1)
        how = "the default of 20 new tokens"
    if prompt_len >= max_length:
        raise ValueError(f"the {what} already has {prompt_len} tokens but "
                         f"{how} allows at most {max_length}: raise max_length or set max_new_tokens")
    if max_length - 1 > usable:
        raise ValueError(f"{how} with a {prompt_len}-token prompt needs {max_length - 1} decoder positions, but the "
                         f"decoder has {usable} (max_position_embeddings = {emb.max_positions}); lower max_length / "
                         "max_new_tokens or truncate the prompt")
    return max_length


def _output(result, config, seq2seq: bool, beams: bool, enc_out, dec: Decoder):
    # Tensors made under inference_mode cannot be edited in place later; hand the caller ordinary tensors.
    sequences = result.sequences.clone()
    if not config.return_dict_in_generate:
        return sequences

    def plain(x):
        if isinstance(x, torch.Tensor):
            return x.clone()
        if isinstance(x, (tuple, list)):
            return tuple(plain(v) for v in x)
        return x

    extra = {"scores": plain(result.scores), "logits": plain(result.logits)}
    if beams:
        extra["beam_indices"] = plain(result.beam_indices)
        extra["sequences_scores"] = plain(result.sequences_scores) if config.output_scores else None
    if seq2seq:
        # One row per input (not per beam), as transformers returns them.
        enc_att = getattr(enc_out, "attentions", None) if config.output_attentions else None
        enc_hid = getattr(enc_out, "hidden_states", None) if config.output_hidden_states else None
        cls = O.GenerateBeamEncoderDecoderOutput if beams else O.GenerateEncoderDecoderOutput
        return cls(sequences=sequences, encoder_attentions=plain(enc_att), encoder_hidden_states=plain(enc_hid),
                   decoder_attentions=plain(result.attentions), cross_attentions=plain(result.cross_attentions),
                   decoder_hidden_states=plain(result.hidden_states), past_key_values=dec.cache, **extra)
    cls = O.GenerateBeamDecoderOnlyOutput if beams else O.GenerateDecoderOnlyOutput
    return cls(sequences=sequences, attentions=plain(result.attentions), hidden_states=plain(result.hidden_states),
               past_key_values=dec.cache, **extra)
