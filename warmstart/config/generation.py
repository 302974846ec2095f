"""GenerationConfig: every knob of ``generate()``, read from and written to generation_config.json.

Defaults are v4's (max_length=20, num_beams=1, top_k=50, ...), the values the seeds' examples assume. A config
remembers which fields were set explicitly (by the constructor, a JSON file, ``update`` or plain assignment), which
is how ``generate()`` tells "the user asked for max_length=20" from "nobody said anything" (then it generates 20
*new* tokens, as transformers does).

JSON is transformers' format: only values that differ from the defaults are written, and a file written by
transformers (which leaves unset fields out) loads here unchanged. Unknown keys are kept as attributes.
"""
from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path
from typing import Any

from ..storage.options import LoadOptions
from .base import JsonConfig, read_json

__all__ = ["GenerationConfig", "GENERATION_CONFIG_NAME"]

GENERATION_CONFIG_NAME = "generation_config.json"

# name -> v4 default. Order groups related fields; it is also the order of to_dict().
DEFAULTS: dict[str, Any] = {
    # length
    "max_length": 20, "max_new_tokens": None, "min_length": 0, "min_new_tokens": None, "early_stopping": False,
    "max_time": None, "stop_strings": None,
    # strategy
    "do_sample": False, "num_beams": 1, "num_beam_groups": 1, "diversity_penalty": 0.0, "use_cache": True,
    "force_words_ids": None, "constraints": None,  # constrained beam search (generation/constrained_beam.py)
    "penalty_alpha": None, "dola_layers": None,  # contrastive search and DoLa (generation/contrastive.py, dola.py)
    # logits manipulation
    "temperature": 1.0, "top_k": 50, "top_p": 1.0, "min_p": None, "typical_p": 1.0, "epsilon_cutoff": 0.0,
    "eta_cutoff": 0.0, "repetition_penalty": 1.0, "encoder_repetition_penalty": 1.0, "length_penalty": 1.0,
    "no_repeat_ngram_size": 0, "encoder_no_repeat_ngram_size": 0, "bad_words_ids": None, "sequence_bias": None,
    "renormalize_logits": False, "forced_bos_token_id": None, "forced_eos_token_id": None,
    "remove_invalid_values": False, "exponential_decay_length_penalty": None, "suppress_tokens": None,
    "begin_suppress_tokens": None,
    # outputs
    "num_return_sequences": 1, "output_attentions": False, "output_hidden_states": False, "output_scores": False,
    "output_logits": False, "return_dict_in_generate": False,
    # special tokens
    "pad_token_id": None, "bos_token_id": None, "eos_token_id": None, "decoder_start_token_id": None,
    # assisted and prompt-lookup decoding (generation/assisted.py); the assistant's own generation config supplies
    # the num_assistant_* / confidence values unless the call sets them
    "prompt_lookup_num_tokens": None, "max_matching_ngram_size": None, "num_assistant_tokens": 20,
    "num_assistant_tokens_schedule": "constant", "assistant_confidence_threshold": 0.4,
}
ASSISTED_FIELDS = ("prompt_lookup_num_tokens", "max_matching_ngram_size", "num_assistant_tokens",
                   "num_assistant_tokens_schedule", "assistant_confidence_threshold")

# transformers fields for strategies this library does not implement: setting one is refused by generate() with a
# clear message instead of being silently ignored. Values listed are the "off" values.
UNSUPPORTED: dict[str, tuple[Any, ...]] = {
    "guidance_scale": (None, 1, 1.0),
    "watermarking_config": (None,), "top_h": (None,),
    "assistant_early_exit": (None,), "token_healing": (None, False),
    "low_memory": (None, False), "use_mtp": (None, False),
}
# transformers fields that only tune its own machinery (cache classes, compilation, assistants): accepted and
# ignored, so generation_config.json files of real checkpoints load.
IGNORED = ("cache_implementation", "cache_config", "max_cache_len", "compile_config", "disable_compile",
           "is_assistant", "assistant_lookbehind", "target_lookbehind", "assistant_ensemble_weight",
           "speculation_type", "prefill_chunk_size", "continuous_batching_config")

# Fields a model config may carry (v4 stored generation defaults in config.json; never the assistant's settings).
MODEL_CONFIG_FIELDS = tuple(k for k in DEFAULTS if k not in ASSISTED_FIELDS)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _token_ids(v: Any) -> bool:
    return _is_int(v) and v >= 0 or isinstance(v, (list, tuple)) and len(v) > 0 and all(
        _is_int(t) and t >= 0 for t in v)


def _check_constrained(config: "GenerationConfig", bad) -> None:
    """force_words_ids / constraints (constrained beam search): their shapes and the strategies they exclude (v4's
    rules: no sampling, no beam groups; num_beams > 1 is checked by generate(), as v4 does)."""
    words, constraints = config.force_words_ids, config.constraints
    if words is not None:
        want = ("a non-empty list of words, each a non-empty list of token ids ([[5, 6], [7]]) or a non-empty list "
                "of alternative words ([[[5, 6], [5, 7]]])")
        if not isinstance(words, (list, tuple)) or not words:
            raise bad("force_words_ids", want)
        for i, word in enumerate(words):
            alternatives = word if isinstance(word, (list, tuple)) and word and isinstance(
                word[0], (list, tuple)) else [word]
            if not all(_token_ids(list(w)) if isinstance(w, (list, tuple)) else False for w in alternatives):
                raise ValueError(f"GenerationConfig.force_words_ids must be {want}; word {i} ({word!r}) is not")
    if constraints is not None:
        # Duck-typed: the config stays free of the generation classes (warmstart.generation.Constraint).
        if not isinstance(constraints, (list, tuple)) or not constraints:
            raise bad("constraints", "a non-empty list of Constraint objects (PhrasalConstraint, "
                      "DisjunctiveConstraint or a Constraint subclass)")
        for i, c in enumerate(constraints):
            if not (hasattr(c, "seqlen") and all(callable(getattr(c, m, None)) for m in (
                    "advance", "does_advance", "update", "reset", "remaining", "copy"))):
                raise ValueError(f"GenerationConfig.constraints[{i}] must be a Constraint (PhrasalConstraint, "
                                 f"DisjunctiveConstraint or a Constraint subclass), got {c!r}")
    if words is not None or constraints is not None:
        for name, off in (("do_sample", False), ("num_beam_groups", 1)):
            if getattr(config, name) != off:
                raise ValueError(f"force_words_ids / constraints ask for constrained beam search, which does not "
                                 f"support {name}={getattr(config, name)!r}; set {name}={off!r} or drop the "
                                 "constraints")


def _check_contrastive_and_dola(config: "GenerationConfig", bad) -> None:
    """penalty_alpha (contrastive search) and dola_layers (DoLa): their values and the strategies they combine with.
    v4 ignores penalty_alpha silently when sampling, with beams or with top_k <= 1; here that is an error."""
    alpha, layers = config.penalty_alpha, config.dola_layers
    if alpha is not None and (not _is_number(alpha) or not 0 <= alpha <= 1):
        raise bad("penalty_alpha", "None or a number in [0, 1] (contrastive search's weight of the degeneration "
                  "penalty; 0 turns it off)")
    if alpha:
        for name, ok, fix in (("top_k", config.top_k > 1, "top_k > 1 candidates (e.g. 4)"),
                              ("do_sample", not config.do_sample, "do_sample=False"),
                              ("num_beams", config.num_beams == 1, "num_beams=1")):
            if not ok:
                raise ValueError(f"penalty_alpha={alpha} asks for contrastive search, which needs {fix}, got "
                                 f"{name}={getattr(config, name)!r}; set it, or penalty_alpha=None for another "
                                 "strategy")
    if layers is None:
        return
    if not (layers in ("low", "high") or isinstance(layers, (list, tuple)) and layers
            and all(_is_int(i) and i >= 0 for i in layers)):
        raise bad("dola_layers", "'low', 'high' or a non-empty list of layer indices (0 is the embedding output)")
    for name, ok, fix in (("num_beams", config.num_beams == 1, "num_beams=1"),
                          ("penalty_alpha", not alpha, "penalty_alpha=None"),
                          ("num_return_sequences", config.num_return_sequences == 1, "num_return_sequences=1")):
        if not ok:
            raise ValueError(f"dola_layers={layers!r} asks for DoLa decoding, which (as in v4) runs with greedy "
                             f"search or sampling only and returns one sequence per input: set {fix}, got "
                             f"{name}={getattr(config, name)!r}")
    if config.repetition_penalty < 1.2:
        # The DoLa paper's (and v4's) advice: contrasting layers alone tends to repeat itself.
        warnings.warn(f"dola_layers={layers!r} selects DoLa decoding, whose contrasted logits favour repetition; "
                      f"repetition_penalty={config.repetition_penalty} is below the recommended "
                      "repetition_penalty>=1.2", UserWarning, stacklevel=4)


class GenerationConfig(JsonConfig):
    """Parameters of one ``generate()`` call (see DEFAULTS for the fields and their defaults)."""

    def __init__(self, **kwargs: Any):
        object.__setattr__(self, "_explicit", set())
        object.__setattr__(self, "_from_model_config", bool(kwargs.pop("_from_model_config", False)))
        object.__setattr__(self, "_frozen_hash", None)
        object.__setattr__(self, "_file_base", None)  # content of a generation_config.json made from a model config
        kwargs.pop("transformers_version", None)
        kwargs.pop("_commit_hash", None)
        kwargs.pop("_original_object_hash", None)
        for name, default in DEFAULTS.items():
            object.__setattr__(self, name, copy.deepcopy(default))
        for name, value in kwargs.items():
            setattr(self, name, value)
        self.validate()
        if self._from_model_config:
            self._freeze()  # derived from a model config: follows that config until edited (see GenerationMixin)

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_"):
            self._explicit.add(name)
        object.__setattr__(self, name, value)

    def is_set(self, name: str) -> bool:
        """True when ``name`` was given explicitly rather than left at its default."""
        return name in self._explicit

    # ---- validation -------------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Check every field on its own (combinations that depend on the model are checked by generate())."""
        def bad(name: str, want: str) -> ValueError:
            return ValueError(f"GenerationConfig.{name} must be {want}, got {getattr(self, name)!r}")

        for name in ("max_length", "max_new_tokens"):
            v = getattr(self, name)
            if v is not None and (not _is_int(v) or v < 1):
                raise bad(name, "a positive integer")
        for name in ("min_length", "min_new_tokens", "no_repeat_ngram_size", "encoder_no_repeat_ngram_size"):
            v = getattr(self, name)
            if v is not None and (not _is_int(v) or v < 0):
                raise bad(name, "an integer >= 0")
        for name in ("num_beams", "num_beam_groups", "num_return_sequences"):
            v = getattr(self, name)
            if not _is_int(v) or v < 1:
                raise bad(name, "an integer >= 1")
        if not _is_int(self.top_k) or self.top_k < 0:
            raise bad("top_k", "an integer >= 0 (0 disables top-k filtering)")
        if not _is_number(self.temperature) or self.temperature <= 0:
            raise bad("temperature", "a number > 0 (for greedy decoding use do_sample=False, not temperature=0)")
        for name in ("top_p", "typical_p"):
            v = getattr(self, name)
            if not _is_number(v) or not 0 < v <= 1:
                raise bad(name, "a number in (0, 1]")
        if self.min_p is not None and (not _is_number(self.min_p) or not 0 <= self.min_p <= 1):
            raise bad("min_p", "None or a number in [0, 1]")
        for name in ("epsilon_cutoff", "eta_cutoff"):
            v = getattr(self, name)
            if not _is_number(v) or not 0 <= v < 1:
                raise bad(name, "a number in [0, 1) (0 disables it)")
        for name in ("repetition_penalty", "encoder_repetition_penalty"):
            v = getattr(self, name)
            if not _is_number(v) or v <= 0:
                raise bad(name, "a number > 0 (1.0 means no penalty)")
        for name in ("length_penalty", "diversity_penalty"):
            if not _is_number(getattr(self, name)):
                raise bad(name, "a number")
        if self.early_stopping not in (True, False, "never"):
            raise bad("early_stopping", "True, False or 'never'")
        if self.max_time is not None and (not _is_number(self.max_time) or self.max_time <= 0):
            raise bad("max_time", "None or a number of seconds > 0")
        if self.stop_strings is not None:
            strings = [self.stop_strings] if isinstance(self.stop_strings, str) else self.stop_strings
            if not isinstance(strings, (list, tuple)) or not strings or not all(
                    isinstance(s, str) and s for s in strings):
                raise bad("stop_strings", "a non-empty string or a non-empty list of non-empty strings")
        for name in ("bos_token_id", "decoder_start_token_id", "forced_bos_token_id"):
            v = getattr(self, name)
            if v is not None and (not _is_int(v) or v < 0):
                raise bad(name, "None or a token id (an integer >= 0)")
        # -1 is v4's "no such token" idiom for the pad and EOS ids (eos_token_id=-1: never stop before max_length).
        if self.pad_token_id is not None and (not _is_int(self.pad_token_id) or self.pad_token_id < -1):
            raise bad("pad_token_id", "None, a token id (an integer >= 0) or -1 (no pad token)")
        eos = self.eos_token_id
        if eos is not None and not (_is_int(eos) and eos >= -1 or isinstance(eos, (list, tuple)) and eos
                                    and all(_is_int(t) and t >= -1 for t in eos)):
            raise bad("eos_token_id", "None, a token id, a non-empty list of token ids, or -1 (never stop)")
        if self.forced_eos_token_id is not None and not _token_ids(self.forced_eos_token_id):
            raise bad("forced_eos_token_id", "None, a token id or a non-empty list of token ids")
        for name in ("suppress_tokens", "begin_suppress_tokens"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (list, tuple)) and all(_is_int(t) and t >= 0 for t in v)):
                raise bad(name, "None or a list of token ids")
        if self.bad_words_ids is not None and not (
                isinstance(self.bad_words_ids, (list, tuple)) and self.bad_words_ids
                and all(_token_ids(list(seq)) if isinstance(seq, (list, tuple)) else False
                        for seq in self.bad_words_ids)):
            raise bad("bad_words_ids", "a non-empty list of non-empty lists of token ids, e.g. [[42], [7, 8]]")
        if self.sequence_bias is not None:
            items = self.sequence_bias.items() if isinstance(self.sequence_bias, dict) else self.sequence_bias
            try:
                ok = all(_token_ids(list(seq)) and _is_number(b) for seq, b in items)
            except (TypeError, ValueError):
                ok = False
            if not ok or not self.sequence_bias:
                raise bad("sequence_bias", "a list of [token_ids, bias] pairs (or a dict token_tuple -> bias)")
        if self.exponential_decay_length_penalty is not None:
            v = self.exponential_decay_length_penalty
            if not (isinstance(v, (list, tuple)) and len(v) == 2 and _is_int(v[0]) and v[0] >= 0
                    and _is_number(v[1]) and v[1] >= 1):
                raise bad("exponential_decay_length_penalty", "a pair (start_index >= 0, decay_factor >= 1.0)")
        for name in ("prompt_lookup_num_tokens", "max_matching_ngram_size"):
            v = getattr(self, name)
            if v is not None and (not _is_int(v) or v < 1):
                raise bad(name, "None or an integer >= 1")
        # A number, not only an int: v4's "heuristic" schedule stores it back as a float (e.g. 22.0).
        if not _is_number(self.num_assistant_tokens) or self.num_assistant_tokens < 1:
            raise bad("num_assistant_tokens", "a number of draft tokens >= 1")
        if self.num_assistant_tokens_schedule not in ("constant", "heuristic", "heuristic_transient"):
            raise bad("num_assistant_tokens_schedule", "'constant', 'heuristic' or 'heuristic_transient'")
        v = self.assistant_confidence_threshold
        if v is not None and (not _is_number(v) or not 0 <= v <= 1):
            raise bad("assistant_confidence_threshold", "None or a probability in [0, 1] (0 or None: no early stop)")
        if self.num_beams % self.num_beam_groups:
            raise ValueError(f"GenerationConfig.num_beams ({self.num_beams}) must be a multiple of num_beam_groups "
                             f"({self.num_beam_groups})")
        if self.num_beam_groups > 1 and self.do_sample:
            raise ValueError("diverse beam search (num_beam_groups > 1) cannot sample: set do_sample=False")
        _check_constrained(self, bad)
        _check_contrastive_and_dola(self, bad)
        if self.num_return_sequences > 1:
            if self.num_beams == 1 and not self.do_sample:
                raise ValueError(f"num_return_sequences={self.num_return_sequences} needs several candidates: greedy "
                                 "decoding returns one sequence per input; use num_beams > 1 or do_sample=True")
            if self.num_beams > 1 and self.num_return_sequences > self.num_beams:
                raise ValueError(f"num_return_sequences ({self.num_return_sequences}) must be <= num_beams "
                                 f"({self.num_beams}): beam search keeps only num_beams hypotheses")

    # ---- dict / JSON ------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = {k: copy.deepcopy(v) for k, v in vars(self).items() if not k.startswith("_")}
        if out.get("constraints") is not None:
            # Python objects: the dict (repr, equality, the edited-or-not check) carries their description only.
            out["constraints"] = [repr(c) for c in self.constraints]
        if self._from_model_config:
            out["_from_model_config"] = True
        return out

    def to_diff_dict(self) -> dict[str, Any]:
        """Only what differs from the defaults (transformers' on-disk format)."""
        return {k: v for k, v in self.to_dict().items() if k not in DEFAULTS or DEFAULTS[k] != v}

    def save_pretrained(self, save_directory: str | os.PathLike, config_file_name: str | None = None) -> None:
        folder = Path(save_directory)
        if folder.is_file():
            raise NotADirectoryError(f"save_pretrained needs a folder, but {folder} is a file")
        folder.mkdir(parents=True, exist_ok=True)
        self.validate()
        self.to_json_file(folder / (config_file_name or GENERATION_CONFIG_NAME))

    def save_pretrained_into(self, folder: Path) -> None:
        """Hook for model.save_pretrained, which writes every file of a checkpoint into one temporary folder."""
        self.to_json_file(Path(folder) / GENERATION_CONFIG_NAME)

    def to_json_file(self, path: str | os.PathLike, use_diff: bool = True) -> None:
        if self.constraints is not None:
            raise ValueError(f"GenerationConfig.constraints holds Python objects ({self.constraints!r}), which "
                             "generation_config.json cannot store; save force_words_ids instead, or set constraints "
                             "to None before saving")
        super().to_json_file(path, use_diff=use_diff)

    @classmethod
    def from_pretrained(cls, pretrained_model_name: str | os.PathLike, config_file_name: str | None = None,
                        **kwargs: Any) -> "GenerationConfig":
        name = config_file_name or GENERATION_CONFIG_NAME
        options = LoadOptions.pop_from(kwargs)
        path = Path(pretrained_model_name)
        if path.is_dir() and not options.subfolder:
            path = path / name
        elif not path.is_file():
            from ..storage.hub import CONFIG_FILES, resolve  # imported on use: huggingface_hub is slow to import

            path = Path(resolve(pretrained_model_name, options, files=CONFIG_FILES)) / name
        if not path.is_file():
            raise FileNotFoundError(f"no {name} in {path.parent}")
        config = cls.from_dict(read_json(path), **kwargs)
        if config._from_model_config:
            object.__setattr__(config, "_file_base", {k: v for k, v in config.to_diff_dict().items()
                                                      if k != "_from_model_config"})
        return config

    @classmethod
    def from_model_config(cls, model_config) -> "GenerationConfig":
        """v4's bridge: generation fields stored on the model config (``model.config.num_beams = 4``...) become
        defaults; an encoder-decoder's decoder config fills whatever the composite config leaves unset."""
        def fields_of(config) -> dict[str, Any]:
            found = {}
            for name in MODEL_CONFIG_FIELDS:
                try:
                    value = getattr(config, name)
                except AttributeError:
                    continue
                if value is not None:
                    found[name] = value
            return found

        values = fields_of(model_config)
        decoder = getattr(model_config, "decoder", None)
        if decoder is not None and not isinstance(decoder, (dict, str)):
            for name, value in fields_of(decoder).items():
                if name not in values or values[name] == DEFAULTS[name]:
                    values[name] = value
        # A value equal to the default does not count as "set" (v4 configs serialised every default).
        config = cls(_from_model_config=True)
        for name, value in values.items():
            if value != DEFAULTS[name]:
                setattr(config, name, value)
        config.validate()
        config._freeze()
        return config

    def _freeze(self) -> None:
        """Remember the current content, to tell later whether the user edited this object."""
        object.__setattr__(self, "_frozen_hash", self.to_json_string(use_diff=False))

    def _edited(self) -> bool:
        return self._frozen_hash != self.to_json_string(use_diff=False)

    # ---- updates ---------------------------------------------------------------------------------------------
    def update(self, **kwargs: Any) -> dict[str, Any]:
        """Set the known fields among kwargs; return the others (transformers' contract)."""
        known = set(DEFAULTS) | set(UNSUPPORTED) | set(IGNORED) | {k for k in vars(self) if not k.startswith("_")}
        unused = {}
        for key, value in kwargs.items():
            if key in known:
                setattr(self, key, value)
            else:
                unused[key] = value
        self.validate()
        return unused

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GenerationConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"GenerationConfig {self.to_json_string()}"

    def __deepcopy__(self, memo: dict) -> "GenerationConfig":
        new = object.__new__(GenerationConfig)
        for key, value in vars(self).items():
            object.__setattr__(new, key, copy.deepcopy(value, memo))
        return new
