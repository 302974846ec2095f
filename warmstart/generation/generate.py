"""``generate()`` in five named steps: resolve settings -> prepare prompt -> plan -> search -> shape output.

1. **settings** (``_resolve_settings``): explicit keyword arguments > the ``generation_config`` argument (or the
   model's own ``model.generation_config``, which follows ``model.config`` as in v4 unless it was loaded from
   generation_config.json or edited) > defaults, as in transformers, validated on the spot;
2. **prompt** (prompt.py): the caller's tensors checked and turned into what the decoder is prefilled with;
3. **plan** (``_plan``): the length limits, the processors and stopping criteria (build.py) and what to record;
4. **search** (``_search``): the encoder once, the prefill, then greedy / sampling / beam / diverse beam search
   over the step protocol (step.py), or assisted / prompt-lookup decoding (assisted.py, checked by
   ``plan_assisted`` with the other plans);
5. **output** (``_shape_output``): a tensor, or transformers' output class.

What the steps need to know about the model comes from its ``ModelContract`` (contract.py), read once. Steps 1-3
run nothing, so a bad setting or input fails in milliseconds with a ValueError naming it, never after the encoder
ran.

Deliberate differences from transformers 5.23, each for correctness:
- beam outputs shorter than the longest are filled with ``pad_token_id`` (transformers fills with the EOS id when
  the pad id is 0, an operator-precedence slip);
- ``use_cache=False`` runs without a cache, re-feeding the whole sequence at every step, as v4 did (same tokens;
  per-step attentions and hidden states cover every position);
- rows that hit a stop string are padded like rows that hit EOS;
- decoder-only RoBERTa numbers positions from its padding index (its training convention) also in left-padded
  batches; transformers passes 0-based positions there.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import torch

from ..config.generation import GenerationConfig
from ..nn.cache import KVCache
from . import outputs as O
from .assisted import assisted_search, plan_assisted
from .build import build_processors, build_stopping
from .constrained_beam import constrained_beam_search, prepare_constraints
from .contract import ModelContract
from .contrastive import contrastive_search, contrastive_settings
from .dola import dola_decoding, dola_settings
from .fast_linear import packed_linears
from .group_beam import group_beam_search
from .prompt import Prompt, decoder_only_prompt, seq2seq_prompt, take_inputs
from .search import Run, SearchResult, beam_search, greedy_or_sample
from .settings import Settings, check_token_ids, finished_row_pad, resolve_lengths, resolve_max_length, \
    resolve_settings
from .step import Decoder, FullSequenceDecoder
from .stopping import MaxLengthCriteria

__all__ = ["generate"]

log = logging.getLogger("warmstart")


def generate(model, inputs: torch.Tensor | None = None, generation_config: GenerationConfig | None = None,
             logits_processor=None, stopping_criteria=None, prefix_allowed_tokens_fn=None, synced_gpus=None,
             assistant_model=None, streamer=None, negative_prompt_ids=None, negative_prompt_attention_mask=None,
             **kwargs: Any):
    start_time = time.time()
    tokenizer = kwargs.pop("tokenizer", None)
    _refuse_unsupported(negative_prompt_ids=negative_prompt_ids,
                        negative_prompt_attention_mask=negative_prompt_attention_mask,
                        custom_generate=kwargs.pop("custom_generate", None), synced_gpus=synced_gpus)
    if generation_config is not None and not isinstance(generation_config, GenerationConfig):
        raise TypeError(f"generation_config must be a GenerationConfig, got {type(generation_config).__name__}")
    contract = ModelContract.of(model)  # fails first for a model that cannot generate at all

    settings = _resolve_settings(model, generation_config, kwargs)
    prompt = _prepare_prompt(contract, settings, inputs)
    plan = _plan(contract, settings, prompt, logits_processor=logits_processor, stopping_criteria=stopping_criteria,
                 prefix_allowed_tokens_fn=prefix_allowed_tokens_fn, tokenizer=tokenizer, streamer=streamer,
                 start_time=start_time)
    assisted = plan_assisted(contract, settings.config, prompt, plan, assistant_model)  # None unless drafting
    result, encoder_outputs, cache = _search(contract, settings.config, prompt, plan, streamer, assisted)
    return _shape_output(result, settings.config, contract.seq2seq, encoder_outputs, cache)


# ---- 1. settings -------------------------------------------------------------------------------------------------
def _refuse_unsupported(*, synced_gpus, **strategies) -> None:
    for name, value in strategies.items():
        if value is not None:
            raise ValueError(f"generate() does not support {name} (assisted / guided / custom decoding); supported: "
                             "greedy, sampling, beam search, beam sampling, diverse beam search")
    if synced_gpus:
        raise ValueError("synced_gpus=True is not supported: generate() runs on one device")


def _resolve_settings(model, generation_config: GenerationConfig | None, kwargs: dict[str, Any]) -> Settings:
    return resolve_settings(model.generation_config, generation_config, kwargs)


# ---- 2. prompt ---------------------------------------------------------------------------------------------------
def _prepare_prompt(contract: ModelContract, settings: Settings, inputs: torch.Tensor | None) -> Prompt:
    given = take_inputs(contract, inputs, settings.model_kwargs)
    # The id settings are checked only now, after the tensors, so that a malformed prompt is the error reported first
    # (the order users and tests rely on); like every check here, still before anything runs.
    check_token_ids(settings, contract.vocab_size)
    if contract.seq2seq:
        return seq2seq_prompt(contract, settings.config, given)
    return decoder_only_prompt(contract, settings.config, given, settings.eos_ids)


# ---- 3. plan -----------------------------------------------------------------------------------------------------
@dataclass
class Plan:
    max_length: int
    eos_ids: list[int] | None
    pad_token_id: int | None  # what finished rows are filled with (the first EOS id when no pad id is set)
    pad_finished: bool  # rows can finish at different times
    rows: int  # rows of every decode step: inputs x beams (or x samples)
    processors: Any  # LogitsProcessorList
    stopping: Any  # StoppingCriteriaList without the length limit
    want: dict[str, bool]  # what return_dict_in_generate records: scores / logits / attentions / hidden_states
    decoder_length: int = 0  # positions the decoder holds at most: max_length plus an embedded prompt's length
    cached: bool = True  # False: no cache, every step re-feeds the whole sequence (step.FullSequenceDecoder)


def _plan(contract: ModelContract, settings: Settings, prompt: Prompt, *, logits_processor, stopping_criteria,
          prefix_allowed_tokens_fn, tokenizer, streamer, start_time: float) -> Plan:
    config, eos_ids = settings.config, settings.eos_ids
    prompt_len = prompt.ids.shape[1]
    extra = prompt.fed - prompt_len  # an embedded prompt without its ids: its positions count, its tokens are not
    max_length = _max_length(config, contract, prompt_len, stopping_criteria,
                             "decoder prompt" if contract.seq2seq else "prompt", extra)
    resolve_lengths(settings, max_length, prompt_len)  # the processors (forced EOS, min length) read them
    batch, nb, nrs = prompt.batch, config.num_beams, config.num_return_sequences
    copies = max(nb, nrs if config.do_sample else 1)  # decode rows per input
    rows = batch * copies
    pad_finished = bool(eos_ids) or config.stop_strings is not None
    pad = finished_row_pad(config, eos_ids)
    if pad is None and pad_finished and rows > 1:
        raise ValueError("pad_token_id is not set, but rows of this batch can stop at different times (stop_strings) "
                         "and must then be padded; set pad_token_id")
    if streamer is not None and (batch > 1 or (nb == 1 and rows > 1)):
        raise ValueError(f"streaming follows a single sequence, but this call makes {rows // max(nb, 1)} (batch "
                         f"{batch}, num_return_sequences {nrs}); stream with batch size 1 and one returned sequence")

    # Rows one processor call sees per input: diverse beam search calls the processors once per group of beams.
    per_call = copies // config.num_beam_groups
    ignore = None  # repetition penalty: left padding is not part of the prompt
    if config.repetition_penalty != 1.0 and prompt.mask is not None and not bool(prompt.mask.all()) and not extra:
        ignore = (prompt.mask != 0).int().argmax(dim=1).repeat_interleave(per_call, 0)
    processors = build_processors(
        config, prompt_length=prompt_len, encoder_input_ids=prompt.source_ids,
        eos_ids=eos_ids, prompt_ignore_length=ignore, rows_per_input=per_call, custom=logits_processor,
        prefix_allowed_tokens_fn=prefix_allowed_tokens_fn)
    stopping = build_stopping(config, eos_ids=eos_ids, tokenizer=tokenizer, custom=stopping_criteria,
                              start_time=start_time)
    record = config.return_dict_in_generate
    want = {"scores": record and config.output_scores, "logits": record and bool(config.output_logits),
            "attentions": record and config.output_attentions, "hidden_states": record and config.output_hidden_states}
    cached = bool(config.use_cache) and contract.causal
    if not contract.causal:
        log.warning("%s was built with is_decoder=False: it attends in both directions, so generate() runs without "
                    "a cache and re-reads the whole sequence at every step (as transformers v4 did); load it with "
                    "is_decoder=True for left-to-right generation", contract.name)
    return Plan(max_length=max_length, eos_ids=eos_ids, pad_token_id=pad, pad_finished=pad_finished, rows=rows,
                processors=processors, stopping=stopping, want=want, decoder_length=max_length + extra,
                cached=cached)


def _max_length(config, contract: ModelContract, prompt_len: int, custom_criteria, what: str, extra: int = 0) -> int:
    custom = next((c.max_length for c in (custom_criteria or []) if isinstance(c, MaxLengthCriteria)), None)
    return resolve_max_length(config, usable_positions=contract.usable_positions,
                              max_positions=contract.max_positions, prompt_len=prompt_len, what=what, extra=extra,
                              custom_max_length=custom, stacklevel=6)


# ---- 4. search ---------------------------------------------------------------------------------------------------
def _search(contract: ModelContract, config, prompt: Prompt, plan: Plan, streamer, assisted=None
            ) -> tuple[SearchResult, Any, KVCache]:
    """Encode once, prefill, run the chosen search; return its result, the encoder outputs and the cache."""
    nb, groups = config.num_beams, config.num_beam_groups
    constraints = prepare_constraints(config, contract.vocab_size)  # checked before anything runs
    contrastive = contrastive_settings(config, contract, plan.cached)  # (penalty_alpha, top_k), checked likewise
    dola = dola_settings(config, contract)  # DoLa's candidate layers, checked likewise
    dec = (Decoder if plan.cached else FullSequenceDecoder)(
        contract, max_length=plan.decoder_length or plan.max_length, output_attentions=plan.want["attentions"],
        output_hidden_states=plan.want["hidden_states"] or dola is not None)  # DoLa reads every layer
    dec.model_args.update(prompt.model_args)
    with torch.inference_mode(), packed_linears(contract.model, contract.lm, plan.rows):
        encoder_outputs = None
        if contract.seq2seq:
            encoder_outputs = dec.encode(prompt.source_ids, prompt.encoder_mask, prompt.encoder_outputs,
                                         **prompt.encoder_args)
        if streamer is not None:
            streamer.put(prompt.ids.cpu())
        first = dec.prefill(prompt.ids, prompt.mask, prompt.positions, prompt.token_types, inputs_embeds=prompt.embeds)
        run = Run(decoder=dec, first_logits=first, input_ids=prompt.ids, processors=plan.processors,
                  stopping=plan.stopping, max_length=plan.max_length, do_sample=config.do_sample, num_beams=nb,
                  num_return_sequences=config.num_return_sequences, length_penalty=float(config.length_penalty),
                  early_stopping=config.early_stopping, pad_token_id=plan.pad_token_id,
                  eos=torch.tensor(plan.eos_ids, device=prompt.ids.device) if plan.eos_ids else None,
                  pad_finished=plan.pad_finished, streamer=streamer, want=plan.want)
        if assisted is not None:
            result = assisted_search(run, assisted)
        elif constraints is not None:
            result = constrained_beam_search(run, constraints)
        elif groups > 1:
            result = group_beam_search(run, groups)
        elif nb > 1:
            result = beam_search(run)
        elif contrastive is not None:
            result = contrastive_search(run, *contrastive)
        elif dola is not None:
            result = dola_decoding(run, dola)
        else:
            result = greedy_or_sample(run)
        if streamer is not None:
            prompt_len = prompt.ids.shape[1]
            if nb > 1 and hasattr(streamer, "finish_beams"):
                streamer.finish_beams(result.sequences[0, prompt_len:].cpu())
            elif nb > 1:
                streamer.put(result.sequences[0, prompt_len:].cpu())
            streamer.end()
    return result, encoder_outputs, dec.cache


# ---- 5. output ---------------------------------------------------------------------------------------------------
def _shape_output(result: SearchResult, config, seq2seq: bool, enc_out, cache: KVCache):
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

    beams = config.num_beams > 1
    legacy = cache.to_legacy_cache() if cache is not None else None  # v4 hands back tuples (None without a cache)
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
                   decoder_hidden_states=plain(result.hidden_states), past_key_values=legacy, **extra)
    cls = O.GenerateBeamDecoderOnlyOutput if beams else O.GenerateDecoderOnlyOutput
    return cls(sequences=sequences, attentions=plain(result.attentions), hidden_states=plain(result.hidden_states),
               past_key_values=legacy, **extra)
