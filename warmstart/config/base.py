"""The base of every model configuration: a validated attribute bag with Hugging Face names, JSON in and out.

A config is a plain attribute bag: every field a model reads is declared once in the class's ``FIELDS`` table with
its default and its allowed types, so that a wrong type or an impossible value fails here, naming the field,
instead of deep inside a forward pass. Keys this library does not know are kept as attributes (transformers does the
same), so a config.json written by any transformers version round-trips. No framework is imported here.
"""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any, ClassVar

from ..storage.files import CONFIG_NAME, GOOGLE_CONFIG_NAME
from ..storage.files import read_json as _read_json
from ..storage.options import LoadOptions

__all__ = ["PretrainedConfig", "JsonConfig", "ConfigError", "CONFIG_NAME", "read_json", "load_config_dict",
           "check_heads", "check_activation", "KNOWN_ACTIVATIONS"]

KNOWN_ACTIVATIONS = {
    "gelu", "gelu_new", "gelu_fast", "gelu_pytorch_tanh", "quick_gelu", "relu", "silu", "swish", "tanh",
    "sigmoid", "linear", "mish", "gelu_accurate",
}
PROBLEM_TYPES = (None, "regression", "single_label_classification", "multi_label_classification")
# v4.46's generation defaults on every model config (PretrainedConfig._get_global_generation_defaults): generate()
# reads them when no generation config says otherwise; config.json carries only those that differ, as v4 writes it.
# None is accepted for each: v4's model.save_pretrained moves them into generation_config.json and writes null here.
_GENERATION_DEFAULTS: dict[str, tuple[Any, str]] = {
    "max_length": (20, "int"), "min_length": (0, "int"), "do_sample": (False, "bool"),
    "early_stopping": (False, "bool|str"), "num_beams": (1, "int"), "num_beam_groups": (1, "int"),
    "diversity_penalty": (0.0, "float"), "temperature": (1.0, "float"), "top_k": (50, "int"),
    "top_p": (1.0, "float"), "typical_p": (1.0, "float"), "repetition_penalty": (1.0, "float"),
    "length_penalty": (1.0, "float"), "no_repeat_ngram_size": (0, "int"), "encoder_no_repeat_ngram_size": (0, "int"),
    "bad_words_ids": (None, "list"), "num_return_sequences": (1, "int"), "output_scores": (False, "bool"),
    "return_dict_in_generate": (False, "bool"), "forced_bos_token_id": (None, "int"),
    "forced_eos_token_id": (None, "int|int_list"), "remove_invalid_values": (False, "bool"),
    "exponential_decay_length_penalty": (None, "list"), "suppress_tokens": (None, "list"),
    "begin_suppress_tokens": (None, "list"),
}
GENERATION_FIELDS = {name: (default, kinds + "|none") for name, (default, kinds) in _GENERATION_DEFAULTS.items()}


class ConfigError(ValueError):
    """A configuration field has the wrong type or an impossible value."""


# Type tags for FIELDS. Python's bool is an int subclass, so "int" must refuse it explicitly.
def _is(kind: str, value: Any) -> bool:
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "none":
        return value is None
    if kind == "int_list":
        return isinstance(value, (list, tuple)) and all(_is("int", v) for v in value)
    if kind == "dict":
        return isinstance(value, dict)
    if kind == "list":
        return isinstance(value, (list, tuple))
    raise AssertionError(kind)


class JsonConfig:
    """JSON in and out for a config class with ``to_dict`` / ``to_diff_dict`` (model and generation configs)."""

    def to_json_string(self, use_diff: bool = True) -> str:
        data = self.to_diff_dict() if use_diff else self.to_dict()
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    def to_json_file(self, path: str | os.PathLike, use_diff: bool = True) -> None:
        Path(path).write_text(self.to_json_string(use_diff=use_diff), encoding="utf-8")

    @classmethod
    def from_dict(cls, data: dict[str, Any], **overrides: Any):
        return cls(**{**data, **overrides})


class PretrainedConfig(JsonConfig):
    """Base of every config. Subclasses extend ``FIELDS`` (name -> (default, "type|type")) and ``validate``."""

    model_type: ClassVar[str] = ""
    # v4's flag for configs made of sub-configs (EncoderDecoderConfig): their diff against defaults is not taken.
    is_composition: ClassVar[bool] = False
    # Aliases read and written under another name (GPT-2 calls hidden_size n_embd).
    attribute_map: ClassVar[dict[str, str]] = {}
    # Fields shared by every model: the "common" part of v4's PretrainedConfig that the seeds' models use.
    FIELDS: ClassVar[dict[str, tuple[Any, str]]] = {
        "output_hidden_states": (False, "bool"),
        "output_attentions": (False, "bool"),
        "return_dict": (True, "bool"),
        "is_decoder": (False, "bool"),
        "add_cross_attention": (False, "bool"),
        "is_encoder_decoder": (False, "bool"),
        "tie_word_embeddings": (True, "bool"),
        "chunk_size_feed_forward": (0, "int"),
        "problem_type": (None, "str|none"),
        "pad_token_id": (None, "int|none"),
        "bos_token_id": (None, "int|none"),
        "eos_token_id": (None, "int|int_list|none"),
        "sep_token_id": (None, "int|none"),
        "decoder_start_token_id": (None, "int|none"),
        "architectures": (None, "list|none"),
        "tokenizer_class": (None, "str|none"),
        "use_cache": (True, "bool"),
        # layer index -> heads removed by prune_heads(); JSON writes the keys as strings, read back as ints.
        "pruned_heads": ({}, "dict"),
        **GENERATION_FIELDS,
    }

    def __init__(self, **kwargs: Any):
        for alias, real in self.attribute_map.items():
            if alias in kwargs:
                kwargs[real] = kwargs.pop(alias)
        # id2label / label2id / num_labels are entangled: id2label wins, then num_labels.
        id2label = kwargs.pop("id2label", None)
        label2id = kwargs.pop("label2id", None)
        num_labels = kwargs.pop("num_labels", None)
        dtype = kwargs.pop("dtype", kwargs.pop("torch_dtype", None))
        self.name_or_path = kwargs.pop("name_or_path", kwargs.pop("_name_or_path", ""))
        kwargs.pop("transformers_version", None)
        kwargs.pop("model_type", None)
        for name, (default, _) in self.all_fields().items():
            setattr(self, name, copy.deepcopy(kwargs.pop(name, default)))
        # Unknown keys survive a round trip untouched (transformers keeps them too).
        for name, value in kwargs.items():
            setattr(self, name, value)
        self.dtype = dtype if dtype is None or isinstance(dtype, str) else str(dtype).replace("torch.", "")
        self.pruned_heads = _pruned_heads(self.pruned_heads)
        if id2label is not None:
            if not isinstance(id2label, dict):
                raise ConfigError(f"id2label must be a dict of index -> label, got {type(id2label).__name__}")
            try:
                self.id2label = {int(k): v for k, v in id2label.items()}
            except (TypeError, ValueError):
                raise ConfigError(f"id2label keys must be integers (or integer strings), got {list(id2label)!r}")
        else:
            n = 2 if num_labels is None else num_labels
            if not _is("int", n) or n < 1:
                raise ConfigError(f"num_labels must be a positive integer, got {n!r}")
            self.id2label = {i: f"LABEL_{i}" for i in range(n)}
        self.label2id = dict(label2id) if label2id is not None else {v: k for k, v in self.id2label.items()}
        self.validate()

    @classmethod
    def from_dict(cls, data: dict[str, Any], **overrides: Any):
        # Overrides apply after the stored values (v4 sets them on the built config): num_labels=42 on a config.json
        # holding a 2-entry id2label means 42 labels, so the stored label maps give way to it.
        if "num_labels" in overrides and "id2label" not in overrides:
            data = {k: v for k, v in data.items() if k not in ("id2label", "label2id")}
        elif "id2label" in overrides and "label2id" not in overrides:
            data = {k: v for k, v in data.items() if k != "label2id"}
        return cls(**{**data, **overrides})

    # ---- schema ---------------------------------------------------------------------------------------------
    @classmethod
    def all_fields(cls) -> dict[str, tuple[Any, str]]:
        fields: dict[str, tuple[Any, str]] = {}
        for klass in reversed(cls.__mro__):
            fields.update(getattr(klass, "FIELDS", {}) if "FIELDS" in vars(klass) else {})
        return fields

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: resolve aliases such as GPT-2's n_embd.
        real = type(self).attribute_map.get(name)
        if real is not None:
            return getattr(self, real)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(type(self).attribute_map.get(name, name), value)

    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    @num_labels.setter
    def num_labels(self, n: int) -> None:
        if not _is("int", n) or n < 1:
            raise ConfigError(f"num_labels must be a positive integer, got {n!r}")
        if n != len(self.id2label):
            self.id2label = {i: f"LABEL_{i}" for i in range(n)}
            self.label2id = {v: k for k, v in self.id2label.items()}

    @property
    def use_return_dict(self) -> bool:
        return self.return_dict

    @property
    def torch_dtype(self) -> Any:
        """v4's name of ``dtype``: a torch.dtype once torch is imported (as v4 with torch installed), else the
        name. ``dtype`` stays the stored, serialisable name; setting either sets both."""
        import sys

        torch = sys.modules.get("torch")  # never imported from here: configs stay framework-free
        if self.dtype is None or torch is None:
            return self.dtype
        return getattr(torch, self.dtype, self.dtype)

    @torch_dtype.setter
    def torch_dtype(self, value: Any) -> None:
        self.dtype = value if value is None or isinstance(value, str) else str(value).replace("torch.", "")

    def get_text_config(self, decoder: bool = False) -> "PretrainedConfig":
        """The config of the part that reads or writes text: ``self`` for a single model, the ``decoder``
        sub-config of a composite (v4 looks for a sub-config named decoder / generator / text_config, and with
        ``decoder=False`` also text_encoder; an EncoderDecoderConfig has only ``decoder`` of these)."""
        names = ("decoder", "generator", "text_config") if decoder else ("text_encoder", "decoder", "generator",
                                                                          "text_config")
        found = [n for n in names if isinstance(vars(self).get(n), PretrainedConfig)]
        if len(found) > 1:
            raise ValueError(f"{type(self).__name__} holds several text configs {found}: get_text_config() would be "
                             "ambiguous; read the one you mean directly")
        return getattr(self, found[0]) if found else self

    def validate(self) -> None:
        """Check every declared field's type; subclasses add range checks and call super()."""
        for name, (_, kinds) in self.all_fields().items():
            value = getattr(self, name)
            if not any(_is(k, value) for k in kinds.split("|")):
                raise ConfigError(
                    f"{type(self).__name__}.{name} must be of type {kinds.replace('|', ' or ')}, got {value!r} "
                    f"({type(value).__name__})"
                )
        if self.problem_type not in PROBLEM_TYPES:
            raise ConfigError(f"problem_type must be one of {PROBLEM_TYPES}, got {self.problem_type!r}")
        if self.chunk_size_feed_forward < 0:
            raise ConfigError(f"chunk_size_feed_forward must be >= 0, got {self.chunk_size_feed_forward}")

    def _check_positive(self, *names: str, allow_zero: tuple[str, ...] = ()) -> None:
        for name in names:
            value = getattr(self, name)
            if value < 0 or (value == 0 and name not in allow_zero):
                raise ConfigError(f"{type(self).__name__}.{name} must be positive, got {value!r}")

    def _check_probability(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ConfigError(f"{type(self).__name__}.{name} must be in [0, 1], got {value!r}")

    # ---- (de)serialisation ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = {k: copy.deepcopy(v) for k, v in vars(self).items() if not k.startswith("_") and k != "name_or_path"}
        out["id2label"] = {str(k): v for k, v in self.id2label.items()}
        out["model_type"] = self.model_type
        if out.get("dtype") is None:
            out.pop("dtype", None)
        else:
            out["torch_dtype"] = out["dtype"]  # v4 reads this name (v5 reads dtype): written under both
        out["pruned_heads"] = {str(k): list(v) for k, v in self.pruned_heads.items()}
        for name, (default, _) in GENERATION_FIELDS.items():
            if out.get(name) == default:
                del out[name]  # v4 writes a generation default into config.json only when it was changed
        for key, value in list(out.items()):
            if isinstance(value, PretrainedConfig):
                out[key] = value.to_dict()
        return out

    def to_diff_dict(self) -> dict[str, Any]:
        defaults = type(self)().to_dict() if not self.is_composition else {}
        return {k: v for k, v in self.to_dict().items() if k == "model_type" or defaults.get(k, object()) != v}

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> "PretrainedConfig":
        return cls.from_dict(read_json(path))

    def save_pretrained(self, save_directory: str | os.PathLike) -> None:
        """Write config.json into ``save_directory``, all or nothing (as every checkpoint save)."""
        from ..storage.atomic import atomic_save  # imported on use: building a config never needs it

        atomic_save(save_directory, lambda tmp: self.to_json_file(Path(tmp) / CONFIG_NAME, use_diff=False))

    @classmethod
    def from_pretrained(cls, path_or_repo_id: str | os.PathLike, **kwargs: Any) -> "PretrainedConfig":
        return_unused = kwargs.pop("return_unused_kwargs", False)
        data = load_config_dict(path_or_repo_id, LoadOptions.pop_from(kwargs))
        if cls.model_type and data.get("model_type") not in (None, cls.model_type):
            # Loading e.g. a BERT config.json into BertGenerationConfig is legitimate (the seeds do it for the
            # model); keep the fields, take our model_type.
            data = {k: v for k, v in data.items() if k != "model_type"}
        known = set(cls.all_fields()) | {"num_labels", "id2label", "label2id", "dtype", "torch_dtype"}
        config = cls.from_dict(data, **kwargs)
        if return_unused:
            return config, {k: v for k, v in kwargs.items() if k not in known}
        return config

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PretrainedConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self.to_json_string(use_diff=False)}"


def read_json(path: str | os.PathLike) -> dict[str, Any]:
    """A JSON object from a file; ConfigError (a ValueError) naming the file when it is not one."""
    return _read_json(path, ConfigError)


def load_config_dict(path_or_repo_id: str | os.PathLike, options: LoadOptions | None = None) -> dict[str, Any]:
    """Read config.json from a folder, a config.json path, or a hub repo (cache, or download when allowed)."""
    path = Path(path_or_repo_id)
    google = _google_config(path)
    if google is not None:
        return google
    if path.is_file():
        return read_json(path)
    if path.is_dir() and not (options and options.subfolder):
        folder = path  # a plain folder: no need to import huggingface_hub (slow) to resolve it
    else:
        from ..storage.hub import CONFIG_FILES, resolve  # imported on use: huggingface_hub is slow to import

        folder = resolve(path_or_repo_id, options, files=CONFIG_FILES)
    config_file = Path(folder) / CONFIG_NAME
    if not config_file.is_file():
        raise FileNotFoundError(f"no {CONFIG_NAME} in {folder} (looked for {config_file})")
    return read_json(config_file)


def _google_config(path: Path) -> dict[str, Any] | None:
    """google-research's bert_config.json, for a local TF1 checkpoint (its folder, .index file or prefix) that has
    no config.json: its fields are BertConfig's, its model_type (absent) is BERT."""
    if path.is_dir():
        folder = path
    elif path.name.endswith(".index") or (path.name and path.with_name(path.name + ".index").is_file()):
        folder = path.parent
    else:
        return None
    if (folder / CONFIG_NAME).is_file() or not (folder / GOOGLE_CONFIG_NAME).is_file():
        return None
    data = read_json(folder / GOOGLE_CONFIG_NAME)
    data.setdefault("model_type", "bert")
    return data


def _pruned_heads(value: Any) -> dict[int, list[int]]:
    """config.pruned_heads with int layer keys (config.json stores them as strings), checked."""
    if not isinstance(value, dict):
        raise ConfigError(f"pruned_heads must be a dict of layer index -> list of head indices, got {value!r}")
    try:
        out = {int(k): sorted({int(h) for h in v}) for k, v in value.items()}
    except (TypeError, ValueError):
        raise ConfigError(f"pruned_heads must map layer indices to lists of head indices, got {value!r}") from None
    bad = {k: v for k, v in out.items() if k < 0 or any(h < 0 for h in v)}
    if bad:
        raise ConfigError(f"pruned_heads holds negative layer or head indices: {bad}")
    return out


def check_heads(config: PretrainedConfig, size: str, heads: str) -> None:
    if getattr(config, size) % getattr(config, heads):
        raise ConfigError(f"{size} ({getattr(config, size)}) must be a multiple of {heads} ({getattr(config, heads)})")


def check_activation(config: PretrainedConfig, name: str) -> None:
    if getattr(config, name) not in KNOWN_ACTIVATIONS:
        raise ConfigError(f"{name} {getattr(config, name)!r} is unknown; choose one of {sorted(KNOWN_ACTIVATIONS)}")
