"""The settings of one generate() call, resolved and validated the same way by every wing (no torch, no jax).

``resolve_settings``: explicit keyword arguments > the ``generation_config`` argument > the model's own
``generation_config``, validated on the spot (GenerationConfig.update), with the refused and the -1 EOS rules;
``resolve_max_length``: the length limit of the returned sequences from max_new_tokens / max_length / v4's
default, checked against the decoder's position table; ``check_token_ids``: every id a setting names exists;
``resolve_lengths``: writes the resolved lengths into the call's config (the processors read them there).
Nothing here runs a model, so a bad setting fails in milliseconds with a ValueError naming it.
"""
from __future__ import annotations

import copy
import logging
import warnings
from dataclasses import dataclass
from typing import Any

from ..config.generation import UNSUPPORTED, GenerationConfig

__all__ = ["Settings", "resolve_settings", "id_list", "check_token_ids", "resolve_max_length", "resolve_lengths",
           "decoder_start_id"]

log = logging.getLogger("warmstart")


@dataclass
class Settings:
    config: GenerationConfig  # this call's own copy, validated; resolve_lengths writes the resolved lengths into it
    eos_ids: list[int] | None  # eos_token_id as a list
    model_kwargs: dict[str, Any]  # the keyword arguments that are not settings: model inputs, checked later


def resolve_settings(model_config: GenerationConfig, generation_config: GenerationConfig | None,
                     kwargs: dict[str, Any]) -> Settings:
    """``model_config``: the model's own generation_config, used when the call passes none."""
    if generation_config is not None and not isinstance(generation_config, GenerationConfig):
        raise TypeError(f"generation_config must be a GenerationConfig, got {type(generation_config).__name__}")
    config = copy.deepcopy(generation_config if generation_config is not None else model_config)
    model_kwargs = config.update(**kwargs)  # validates every setting
    for name, off in UNSUPPORTED.items():
        if getattr(config, name, None) not in off:
            raise ValueError(f"generation setting {name}={getattr(config, name)!r} is not supported by warmstart "
                             f"(guided / watermarked decoding and the like); leave it at {off[0]!r}")
    eos_ids = id_list(config.eos_token_id)
    if eos_ids is not None and any(i < 0 for i in eos_ids):
        # v4's idiom eos_token_id=-1: an id no token has, so generation runs to the length limit.
        log.warning("eos_token_id %s holds -1, which no token has: generation does not stop on it, only at the "
                    "length limit", config.eos_token_id)
        eos_ids = [i for i in eos_ids if i >= 0] or None
    return Settings(config=config, eos_ids=eos_ids, model_kwargs=model_kwargs)


def id_list(ids) -> list[int] | None:
    """An id, a list of ids or a tensor / array of them (any framework) -> a list of ints."""
    if ids is None:
        return None
    if isinstance(ids, int):
        return [ids]
    if hasattr(ids, "tolist"):
        flat = ids.reshape(-1).tolist()
        return [int(i) for i in flat]
    return [int(i) for i in ids]


def check_token_ids(settings: Settings, vocab: int) -> None:
    """Every token id a setting names must exist in the decoder's vocabulary."""
    c = settings.config
    for name, ids in (("eos_token_id", settings.eos_ids or []),
                      ("pad_token_id", [] if c.pad_token_id is None else [c.pad_token_id]),
                      ("decoder_start_token_id", [] if c.decoder_start_token_id is None
                       else [c.decoder_start_token_id]),
                      ("forced_bos_token_id", [] if c.forced_bos_token_id is None else [c.forced_bos_token_id]),
                      ("forced_eos_token_id", id_list(c.forced_eos_token_id) or [])):
        bad = [i for i in ids if i >= vocab]
        if bad:
            raise ValueError(f"{name}={bad[0]} is outside the decoder's vocabulary (size {vocab})")


def resolve_max_length(config: GenerationConfig, *, usable_positions: int, max_positions: int, prompt_len: int,
                       what: str, extra: int = 0, custom_max_length: int | None = None, stacklevel: int = 5) -> int:
    """The length limit of the returned sequences. ``usable_positions``: positions the decoder can be fed;
    ``max_positions``: rows of its position table; ``extra``: positions of an embedded prompt given without its
    ids (v4 counts them in max_length, though the sequences do not hold them); ``custom_max_length``: a
    MaxLengthCriteria the caller passed, which replaces the built one (transformers' rule)."""
    usable, table = usable_positions, max_positions
    if custom_max_length is not None:
        max_length, how = custom_max_length, f"MaxLengthCriteria({custom_max_length})"
    elif config.max_new_tokens is not None:
        max_length, how = config.max_new_tokens + prompt_len, f"max_new_tokens={config.max_new_tokens}"
    elif config.is_set("max_length"):
        max_length, how = config.max_length - extra, f"max_length={config.max_length}"
    else:
        # Nobody chose a length: v4's model-agnostic default, max_length=20 tokens in all, the prompt (or the decoder
        # start token) included (transformers 5 made it 20 new tokens; this library keeps v4's meaning), capped by
        # the position table.
        max_length = min(config.max_length, table, usable + 1) - extra
        how = f"the default max_length={config.max_length} (prompt included, as in transformers v4)"
        warnings.warn(f"no length was set: using the model-agnostic default max_length={config.max_length} (the "
                      f"{what} included, as transformers v4); set max_new_tokens to choose how many tokens to add",
                      UserWarning, stacklevel=stacklevel)
    if prompt_len >= max_length:
        raise ValueError(f"the {what} already has {prompt_len} tokens but "
                         f"{how} allows at most {max_length}: raise max_length or set max_new_tokens")
    if max_length + extra - 1 > usable:
        raise ValueError(f"{how} with a {prompt_len + extra}-token prompt needs {max_length + extra - 1} decoder "
                         "positions, but the "
                         f"decoder has {usable} (max_position_embeddings = {table}); lower max_length / "
                         "max_new_tokens or truncate the prompt")
    return max_length


def resolve_lengths(settings: Settings, max_length: int, prompt_len: int) -> None:
    """Write the resolved lengths into the call's config (the processors read max_length and min_length there);
    refuse the settings that hold back EOS when there is none."""
    config = settings.config
    needs_eos = [n for n in ("min_new_tokens", "min_length", "exponential_decay_length_penalty")
                 if getattr(config, n) and config.eos_token_id is None]  # (with eos_token_id=-1 they do nothing)
    if needs_eos:
        raise ValueError(f"{needs_eos[0]} is set but eos_token_id is not: it works by holding back the EOS token; set "
                         "eos_token_id (e.g. tokenizer.sep_token_id for BERT)")
    config.max_length = max_length
    if config.min_new_tokens is not None:
        config.min_length = config.min_new_tokens + prompt_len
    if config.min_length > max_length:
        warnings.warn(f"min_length ({config.min_length}) exceeds max_length ({max_length}); generation stops at "
                      "max_length", UserWarning)


def finished_row_pad(config: GenerationConfig, eos_ids: list[int] | None) -> int | None:
    """What finished rows are filled with: pad_token_id, else (transformers' fallback) the first EOS id."""
    pad = config.pad_token_id if config.pad_token_id != -1 else None  # -1: v4's "no pad token"
    if pad is None and eos_ids:
        pad = eos_ids[0]
    return pad


def decoder_start_id(config: GenerationConfig) -> int:
    """The encoder-decoder's first decoder token: decoder_start_token_id, else bos_token_id (transformers' rule)."""
    start = config.decoder_start_token_id if config.decoder_start_token_id is not None else config.bos_token_id
    if start is None:
        raise ValueError("decoder_start_token_id is not set, so the decoder has no first token: set "
                         "model.config.decoder_start_token_id (e.g. tokenizer.cls_token_id for BERT) or pass "
                         "decoder_start_token_id=... to generate()")
    return start
