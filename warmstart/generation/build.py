"""From a resolved GenerationConfig to the processor and stopping-criteria lists, in transformers' order."""
from __future__ import annotations

import logging
import time

import torch

from . import processors as P
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
    c = config
    out: list = []
    if c.sequence_bias is not None:
        out.append(P.SequenceBiasLogitsProcessor(c.sequence_bias))
    if c.num_beam_groups > 1 and c.diversity_penalty > 0:
        out.append(P.HammingDiversityLogitsProcessor(c.diversity_penalty, c.num_beams, c.num_beam_groups))
    if c.encoder_repetition_penalty != 1.0 and encoder_input_ids is not None:
        out.append(P.EncoderRepetitionPenaltyLogitsProcessor(c.encoder_repetition_penalty, encoder_input_ids))
    if c.repetition_penalty != 1.0:
        out.append(P.RepetitionPenaltyLogitsProcessor(c.repetition_penalty, prompt_ignore_length))
    if c.no_repeat_ngram_size > 0:
        out.append(P.NoRepeatNGramLogitsProcessor(c.no_repeat_ngram_size))
    if c.encoder_no_repeat_ngram_size > 0 and encoder_input_ids is not None:
        out.append(P.EncoderNoRepeatNGramLogitsProcessor(c.encoder_no_repeat_ngram_size, encoder_input_ids))
    if c.bad_words_ids is not None:
        out.append(P.NoBadWordsLogitsProcessor(c.bad_words_ids, eos_ids))
    if c.min_length > 0 and eos_ids:
        out.append(P.MinLengthLogitsProcessor(c.min_length, eos_ids))
    if c.min_new_tokens and eos_ids:
        out.append(P.MinNewTokensLengthLogitsProcessor(prompt_length, c.min_new_tokens, eos_ids))
    if prefix_allowed_tokens_fn is not None:
        out.append(P.PrefixConstrainedLogitsProcessor(prefix_allowed_tokens_fn, rows_per_input))
    if c.forced_bos_token_id is not None:
        out.append(P.ForcedBOSTokenLogitsProcessor(c.forced_bos_token_id))
    if c.forced_eos_token_id is not None:
        out.append(P.ForcedEOSTokenLogitsProcessor(c.max_length, c.forced_eos_token_id))
    if c.remove_invalid_values:
        out.append(P.InfNanRemoveLogitsProcessor())
    if c.exponential_decay_length_penalty is not None and eos_ids:
        out.append(P.ExponentialDecayLengthPenalty(c.exponential_decay_length_penalty, eos_ids, prompt_length))
    if c.suppress_tokens is not None:
        out.append(P.SuppressTokensLogitsProcessor(c.suppress_tokens))
    if c.begin_suppress_tokens is not None:
        begin = prompt_length if (prompt_length > 1 or c.forced_bos_token_id is None) else prompt_length + 1
        out.append(P.SuppressTokensAtBeginLogitsProcessor(c.begin_suppress_tokens, begin))
    out = _merge(out, custom, "logits processor")
    if c.do_sample:
        # Beams must keep one non-EOS continuation per EOS id, so they can go on when the best ones end.
        keep = (len(eos_ids) + 1 if eos_ids else 2) if c.num_beams > 1 else 1
        if c.temperature != 1.0:
            out.append(P.TemperatureLogitsWarper(c.temperature))
        if c.top_k != 0:
            out.append(P.TopKLogitsWarper(c.top_k, min_tokens_to_keep=keep))
        if c.top_p < 1.0:
            out.append(P.TopPLogitsWarper(c.top_p, min_tokens_to_keep=keep))
        if c.min_p is not None:
            out.append(P.MinPLogitsWarper(c.min_p, min_tokens_to_keep=keep))
        if c.typical_p < 1.0:
            out.append(P.TypicalLogitsWarper(c.typical_p, min_tokens_to_keep=keep))
        if 0.0 < c.epsilon_cutoff < 1.0:
            out.append(P.EpsilonLogitsWarper(c.epsilon_cutoff, min_tokens_to_keep=keep))
        if 0.0 < c.eta_cutoff < 1.0:
            out.append(P.EtaLogitsWarper(c.eta_cutoff, min_tokens_to_keep=keep))
    if c.renormalize_logits:
        out.append(P.LogitNormalization())
    return P.LogitsProcessorList(out)


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
