"""Which logits processors a GenerationConfig asks for, in transformers' order, as data (no torch, no jax).

``processor_plan`` returns two lists of ``(name, arguments)`` steps: the processors, then the sampling warpers
(custom processors a caller passes run between the two). Each wing turns the names into its own callables: the
PyTorch wing into the classes of processors.py (build.py), the Flax wing into jnp functions (flax/processors.py),
which refuses by name a step it does not implement. The order matters (top-k after temperature is not top-k
before it), so it lives here once. ``SearchSpec``, the static settings of the compiled search loops (Flax, TF),
lives here too, for the same reason.
"""
from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["processor_plan", "Step", "SearchSpec"]

Step = tuple[str, dict[str, Any]]


class SearchSpec(NamedTuple):
    """The static settings of one compiled search (the Flax and TF loops share them)."""
    max_length: int
    prompt_length: int
    eos: tuple[int, ...]
    pad: int  # what finished rows (and unfilled positions) hold
    pad_finished: bool
    do_sample: bool
    num_beams: int = 1
    num_return_sequences: int = 1
    length_penalty: float = 1.0
    early_stopping: bool | str = False
    output_scores: bool = False  # the TF loops also return each step's processed scores


def processor_plan(config, *, prompt_length: int, eos_ids: list[int] | None, has_encoder_ids: bool,
                   has_prefix_fn: bool = False) -> tuple[list[Step], list[Step]]:
    """(processors, warpers) for a config whose lengths are resolved (settings.resolve_lengths)."""
    c = config
    out: list[Step] = []
    if c.sequence_bias is not None:
        out.append(("sequence_bias", dict(sequence_bias=c.sequence_bias)))
    if c.num_beam_groups > 1 and c.diversity_penalty > 0:
        out.append(("diversity", dict(penalty=c.diversity_penalty, num_beams=c.num_beams,
                                      num_beam_groups=c.num_beam_groups)))
    if c.encoder_repetition_penalty != 1.0 and has_encoder_ids:
        out.append(("encoder_repetition_penalty", dict(penalty=c.encoder_repetition_penalty)))
    if c.repetition_penalty != 1.0:
        out.append(("repetition_penalty", dict(penalty=c.repetition_penalty)))
    if c.no_repeat_ngram_size > 0:
        out.append(("no_repeat_ngram", dict(size=c.no_repeat_ngram_size)))
    if c.encoder_no_repeat_ngram_size > 0 and has_encoder_ids:
        out.append(("encoder_no_repeat_ngram", dict(size=c.encoder_no_repeat_ngram_size)))
    if c.bad_words_ids is not None:
        out.append(("bad_words", dict(bad_words_ids=c.bad_words_ids, eos_ids=eos_ids)))
    if c.min_length > 0 and eos_ids:
        out.append(("min_length", dict(min_length=c.min_length, eos_ids=eos_ids)))
    if c.min_new_tokens and eos_ids:
        out.append(("min_new_tokens", dict(prompt_length=prompt_length, min_new_tokens=c.min_new_tokens,
                                           eos_ids=eos_ids)))
    if has_prefix_fn:
        out.append(("prefix_allowed_tokens", {}))
    if c.forced_bos_token_id is not None:
        out.append(("forced_bos", dict(bos_token_id=c.forced_bos_token_id)))
    if c.forced_eos_token_id is not None:
        out.append(("forced_eos", dict(max_length=c.max_length, eos_token_id=c.forced_eos_token_id)))
    if c.remove_invalid_values:
        out.append(("remove_invalid_values", {}))
    if c.exponential_decay_length_penalty is not None and eos_ids:
        out.append(("exponential_decay_length_penalty", dict(params=c.exponential_decay_length_penalty,
                                                             eos_ids=eos_ids, prompt_length=prompt_length)))
    if c.suppress_tokens is not None:
        out.append(("suppress_tokens", dict(tokens=c.suppress_tokens)))
    if c.begin_suppress_tokens is not None:
        begin = prompt_length if (prompt_length > 1 or c.forced_bos_token_id is None) else prompt_length + 1
        out.append(("begin_suppress_tokens", dict(tokens=c.begin_suppress_tokens, begin_index=begin)))

    warpers: list[Step] = []
    if c.do_sample:
        # Beams must keep one non-EOS continuation per EOS id, so they can go on when the best ones end.
        keep = (len(eos_ids) + 1 if eos_ids else 2) if c.num_beams > 1 else 1
        if c.temperature != 1.0:
            warpers.append(("temperature", dict(temperature=c.temperature)))
        if c.top_k != 0:
            warpers.append(("top_k", dict(top_k=c.top_k, min_tokens_to_keep=keep)))
        if c.top_p < 1.0:
            warpers.append(("top_p", dict(top_p=c.top_p, min_tokens_to_keep=keep)))
        if c.min_p is not None:
            warpers.append(("min_p", dict(min_p=c.min_p, min_tokens_to_keep=keep)))
        if c.typical_p < 1.0:
            warpers.append(("typical_p", dict(mass=c.typical_p, min_tokens_to_keep=keep)))
        if 0.0 < c.epsilon_cutoff < 1.0:
            warpers.append(("epsilon_cutoff", dict(epsilon=c.epsilon_cutoff, min_tokens_to_keep=keep)))
        if 0.0 < c.eta_cutoff < 1.0:
            warpers.append(("eta_cutoff", dict(epsilon=c.eta_cutoff, min_tokens_to_keep=keep)))
    if c.renormalize_logits:
        warpers.append(("renormalize_logits", {}))
    return out, warpers
