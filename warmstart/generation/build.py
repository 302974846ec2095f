"""From a resolved GenerationConfig to the PyTorch processors (of the shared plan, plan.py) and stopping criteria."""
from __future__ import annotations

import logging
import time

import torch

from . import processors as P
from .plan import processor_plan
from .stopping import EosTokenCriteria, MaxLengthCriteria, MaxTimeCriteria, StopStringCriteria, StoppingCriteriaList

__all__ = ["build_processors", "build_stopping"]

log = logging.getLogger("warmstart")


def _merge(defaults: list, custom: list | None, what: str) -> list:
    """User-given processors/criteria replace a built one of the same class, the rest run after the built ones."""
    if not custom:
        return defaults
    custom = list(custom)
    out = []
    for d in defaults:
        same = next((c for c in custom if type(c) is type(d)), None)
        if same is not None:
            log.warning("a custom %s %s replaces the one generate() built from its settings", what,
                        type(same).__name__)
        out.append(same if same is not None else d)
    return out + [c for c in custom if all(c is not o for o in out)]


def build_processors(config, *, prompt_length: int, encoder_input_ids: torch.Tensor | None,
                     eos_ids: list[int] | None, prompt_ignore_length: torch.Tensor | None, rows_per_input: int,
                     custom=None, prefix_allowed_tokens_fn=None) -> P.LogitsProcessorList:
    """The torch processors of the shared plan (plan.py); ``custom`` ones replace a built one of the same class
    or run after the built ones, before the sampling warpers."""
    steps, warpers = processor_plan(config, prompt_length=prompt_length, eos_ids=eos_ids,
                                    has_encoder_ids=encoder_input_ids is not None,
                                    has_prefix_fn=prefix_allowed_tokens_fn is not None)
    runtime = dict(encoder_input_ids=encoder_input_ids, prompt_ignore_length=prompt_ignore_length,
                   prefix_allowed_tokens_fn=prefix_allowed_tokens_fn, rows_per_input=rows_per_input)
    out = _merge([_TORCH[name](a, runtime) for name, a in steps], custom, "logits processor")
    return P.LogitsProcessorList(out + [_TORCH[name](a, runtime) for name, a in warpers])


# plan step name -> the processor class, from the step's arguments and what only this call knows (tensors)
_TORCH = {
    "sequence_bias": lambda a, r: P.SequenceBiasLogitsProcessor(a["sequence_bias"]),
    "diversity": lambda a, r: P.HammingDiversityLogitsProcessor(a["penalty"], a["num_beams"], a["num_beam_groups"]),
    "encoder_repetition_penalty": lambda a, r: P.EncoderRepetitionPenaltyLogitsProcessor(
        a["penalty"], r["encoder_input_ids"]),
    "repetition_penalty": lambda a, r: P.RepetitionPenaltyLogitsProcessor(a["penalty"], r["prompt_ignore_length"]),
    "no_repeat_ngram": lambda a, r: P.NoRepeatNGramLogitsProcessor(a["size"]),
    "encoder_no_repeat_ngram": lambda a, r: P.EncoderNoRepeatNGramLogitsProcessor(a["size"], r["encoder_input_ids"]),
    "bad_words": lambda a, r: P.NoBadWordsLogitsProcessor(a["bad_words_ids"], a["eos_ids"]),
    "min_length": lambda a, r: P.MinLengthLogitsProcessor(a["min_length"], a["eos_ids"]),
    "min_new_tokens": lambda a, r: P.MinNewTokensLengthLogitsProcessor(a["prompt_length"], a["min_new_tokens"],
                                                                       a["eos_ids"]),
    "prefix_allowed_tokens": lambda a, r: P.PrefixConstrainedLogitsProcessor(r["prefix_allowed_tokens_fn"],
                                                                             r["rows_per_input"]),
    "forced_bos": lambda a, r: P.ForcedBOSTokenLogitsProcessor(a["bos_token_id"]),
    "forced_eos": lambda a, r: P.ForcedEOSTokenLogitsProcessor(a["max_length"], a["eos_token_id"]),
    "remove_invalid_values": lambda a, r: P.InfNanRemoveLogitsProcessor(),
    "exponential_decay_length_penalty": lambda a, r: P.ExponentialDecayLengthPenalty(a["params"], a["eos_ids"],
                                                                                     a["prompt_length"]),
    "suppress_tokens": lambda a, r: P.SuppressTokensLogitsProcessor(a["tokens"]),
    "begin_suppress_tokens": lambda a, r: P.SuppressTokensAtBeginLogitsProcessor(a["tokens"], a["begin_index"]),
    "temperature": lambda a, r: P.TemperatureLogitsWarper(a["temperature"]),
    "top_k": lambda a, r: P.TopKLogitsWarper(a["top_k"], min_tokens_to_keep=a["min_tokens_to_keep"]),
    "top_p": lambda a, r: P.TopPLogitsWarper(a["top_p"], min_tokens_to_keep=a["min_tokens_to_keep"]),
    "min_p": lambda a, r: P.MinPLogitsWarper(a["min_p"], min_tokens_to_keep=a["min_tokens_to_keep"]),
    "typical_p": lambda a, r: P.TypicalLogitsWarper(a["mass"], min_tokens_to_keep=a["min_tokens_to_keep"]),
    "epsilon_cutoff": lambda a, r: P.EpsilonLogitsWarper(a["epsilon"], min_tokens_to_keep=a["min_tokens_to_keep"]),
    "eta_cutoff": lambda a, r: P.EtaLogitsWarper(a["epsilon"], min_tokens_to_keep=a["min_tokens_to_keep"]),
    "renormalize_logits": lambda a, r: P.LogitNormalization(),
}


def build_stopping(config, *, eos_ids: list[int] | None, tokenizer=None, custom=None,
                   start_time: float | None = None) -> StoppingCriteriaList:
    """Every criterion except the length limit, which the search loops enforce themselves."""
    out: list = []
    if config.max_time is not None:
        out.append(MaxTimeCriteria(config.max_time, start_time if start_time is not None else time.time()))
    if config.stop_strings is not None:
        out.append(StopStringCriteria(tokenizer, config.stop_strings))
    if eos_ids:
        out.append(EosTokenCriteria(torch.tensor(eos_ids)))
    custom = [c for c in (custom or []) if not isinstance(c, MaxLengthCriteria)]
    return StoppingCriteriaList(_merge(out, custom, "stopping criterion"))
