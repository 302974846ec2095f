"""Model configurations with Hugging Face names, JSON in and out, validated on construction.

A config is a plain attribute bag: every field a model reads is declared once in the class's ``FIELDS`` table with
its default and its allowed types, so that a wrong type or an impossible value fails here, naming the field,
instead of deep inside a forward pass. Keys this library does not know are kept as attributes (transformers does the
same), so a config.json written by any transformers version round-trips.
"""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any, ClassVar

__all__ = ["PretrainedConfig", "BertConfig", "RobertaConfig", "BertGenerationConfig", "GPT2Config", "AutoConfig",
           "ConfigError", "CONFIG_NAME", "register_config"]

CONFIG_NAME = "config.json"
KNOWN_ACTIVATIONS = {
    "gelu", "gelu_new", "gelu_fast", "gelu_pytorch_tanh", "quick_gelu", "relu", "silu", "swish", "tanh",
    "sigmoid", "linear", "mish", "gelu_accurate",
}
PROBLEM_TYPES = (None, "regression", "single_label_classification", "multi_label_classification")


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
        for key, value in list(out.items()):
            if isinstance(value, PretrainedConfig):
                out[key] = value.to_dict()
        return out

    def to_diff_dict(self) -> dict[str, Any]:
        defaults = type(self)().to_dict() if self.model_type != "encoder-decoder" else {}
        return {k: v for k, v in self.to_dict().items() if k == "model_type" or defaults.get(k, object()) != v}

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> "PretrainedConfig":
        return cls.from_dict(read_json(Path(path)))

    def save_pretrained(self, save_directory: str | os.PathLike) -> None:
        from .checkpoint.pretrained import save_config  # atomic, shared with model saves

        save_config(self, save_directory)

    @classmethod
    def from_pretrained(cls, path_or_repo_id: str | os.PathLike, **kwargs: Any) -> "PretrainedConfig":
        return_unused = kwargs.pop("return_unused_kwargs", False)
        data = load_config_dict(path_or_repo_id, **_pop_hub_kwargs(kwargs))
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


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data


_HUB_KWARGS = ("cache_dir", "revision", "local_files_only", "subfolder", "force_download", "token", "proxies")


def _pop_hub_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: kwargs.pop(k) for k in _HUB_KWARGS if k in kwargs}


def load_config_dict(path_or_repo_id: str | os.PathLike, **hub_kwargs: Any) -> dict[str, Any]:
    """Read config.json from a folder, a config.json path, or an existing Hugging Face cache entry."""
    path = Path(path_or_repo_id)
    if path.is_file():
        return read_json(path)
    from .checkpoint.hub import resolve_model_dir

    folder = resolve_model_dir(str(path_or_repo_id), **{k: v for k, v in hub_kwargs.items()
                                                        if k in ("cache_dir", "revision", "subfolder")})
    config_file = Path(folder) / CONFIG_NAME
    if not config_file.is_file():
        raise FileNotFoundError(f"no {CONFIG_NAME} in {folder} (looked for {config_file})")
    return read_json(config_file)


class _BertLikeConfig(PretrainedConfig):
    """Checks shared by the post-norm BERT-shaped families (BERT, RoBERTa, BertGeneration)."""

    POSITION_TYPES = ("absolute", "relative_key", "relative_key_query")

    def validate(self) -> None:
        super().validate()
        self._check_positive("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                             "intermediate_size", "max_position_embeddings", "layer_norm_eps")
        self._check_probability("hidden_dropout_prob", "attention_probs_dropout_prob")
        _check_heads(self, "hidden_size", "num_attention_heads")
        _check_activation(self, "hidden_act")
        if self.position_embedding_type not in self.POSITION_TYPES:
            raise ConfigError(
                f"position_embedding_type must be one of {self.POSITION_TYPES}, got {self.position_embedding_type!r}"
            )
        if self.pad_token_id is not None and not 0 <= self.pad_token_id < self.vocab_size:
            raise ConfigError(f"pad_token_id {self.pad_token_id} is outside the vocabulary (size {self.vocab_size})")


def _check_heads(config: PretrainedConfig, size: str, heads: str) -> None:
    if getattr(config, size) % getattr(config, heads):
        raise ConfigError(f"{size} ({getattr(config, size)}) must be a multiple of {heads} ({getattr(config, heads)})")


def _check_activation(config: PretrainedConfig, name: str) -> None:
    if getattr(config, name) not in KNOWN_ACTIVATIONS:
        raise ConfigError(f"{name} {getattr(config, name)!r} is unknown; choose one of {sorted(KNOWN_ACTIVATIONS)}")


class BertConfig(_BertLikeConfig):
    """Configuration of BERT (fields and defaults of bert-base-uncased, as in the v4 docs)."""

    model_type = "bert"
    FIELDS = {
        "vocab_size": (30522, "int"),
        "hidden_size": (768, "int"),
        "num_hidden_layers": (12, "int"),
        "num_attention_heads": (12, "int"),
        "intermediate_size": (3072, "int"),
        "hidden_act": ("gelu", "str"),
        "hidden_dropout_prob": (0.1, "float"),
        "attention_probs_dropout_prob": (0.1, "float"),
        "max_position_embeddings": (512, "int"),
        "type_vocab_size": (2, "int"),
        "initializer_range": (0.02, "float"),
        "layer_norm_eps": (1e-12, "float"),
        "pad_token_id": (0, "int|none"),
        "position_embedding_type": ("absolute", "str"),
        "classifier_dropout": (None, "float|none"),
    }

    def validate(self) -> None:
        super().validate()
        self._check_positive("type_vocab_size", allow_zero=("type_vocab_size",))
        self._check_probability("classifier_dropout")


class RobertaConfig(BertConfig):
    """RoBERTa (Liu et al. 2019): BERT's fields with roberta-base's vocabulary and special ids.

    Positions are numbered after ``pad_token_id`` (fairseq's convention), so a sequence may hold at most
    ``max_position_embeddings - pad_token_id - 1`` tokens (512 for roberta-base's 514-row table).
    """

    model_type = "roberta"
    FIELDS = {
        "vocab_size": (50265, "int"),
        "pad_token_id": (1, "int|none"),
        "bos_token_id": (0, "int|none"),
        "eos_token_id": (2, "int|int_list|none"),
    }

    def validate(self) -> None:
        super().validate()
        if self.pad_token_id is None:
            raise ConfigError("RobertaConfig.pad_token_id must be set: RoBERTa numbers positions after it")
        if self.pad_token_id + 1 >= self.max_position_embeddings:
            raise ConfigError(
                f"RobertaConfig.max_position_embeddings ({self.max_position_embeddings}) leaves no position for "
                f"tokens: positions start after pad_token_id ({self.pad_token_id})"
            )


class BertGenerationConfig(_BertLikeConfig):
    """BertGeneration (Rothe et al. 2020): BERT without segments or pooler, as an encoder or a decoder.

    Defaults are those of google/bert_for_seq_generation_L-24_bbc_encoder (v4 docs).
    """

    model_type = "bert-generation"
    FIELDS = {
        "vocab_size": (50358, "int"),
        "hidden_size": (1024, "int"),
        "num_hidden_layers": (24, "int"),
        "num_attention_heads": (16, "int"),
        "intermediate_size": (4096, "int"),
        "hidden_act": ("gelu", "str"),
        "hidden_dropout_prob": (0.1, "float"),
        "attention_probs_dropout_prob": (0.1, "float"),
        "max_position_embeddings": (512, "int"),
        "initializer_range": (0.02, "float"),
        "layer_norm_eps": (1e-12, "float"),
        "pad_token_id": (0, "int|none"),
        "bos_token_id": (2, "int|none"),
        "eos_token_id": (1, "int|int_list|none"),
        "position_embedding_type": ("absolute", "str"),
    }


class GPT2Config(PretrainedConfig):
    """GPT-2 (Radford et al. 2019) under OpenAI's field names, as transformers writes them to config.json.

    The shared stack reads BERT's names (hidden_size, layer_norm_eps, ...); ``attribute_map`` makes those
    aliases of GPT-2's fields, so ``config.hidden_size`` is ``config.n_embd`` and setting either sets both.
    """

    model_type = "gpt2"
    attribute_map = {
        "hidden_size": "n_embd",
        "max_position_embeddings": "n_positions",
        "num_attention_heads": "n_head",
        "num_hidden_layers": "n_layer",
        "intermediate_size": "n_inner",
        "hidden_act": "activation_function",
        "layer_norm_eps": "layer_norm_epsilon",
        "hidden_dropout_prob": "resid_pdrop",
        "attention_probs_dropout_prob": "attn_pdrop",
    }
    SUMMARY_TYPES = ("last", "first", "mean", "cls_index", "attn")
    FIELDS = {
        "vocab_size": (50257, "int"),
        "n_positions": (1024, "int"),
        "n_embd": (768, "int"),
        "n_layer": (12, "int"),
        "n_head": (12, "int"),
        "n_inner": (None, "int|none"),
        "activation_function": ("gelu_new", "str"),
        "resid_pdrop": (0.1, "float"),
        "embd_pdrop": (0.1, "float"),
        "attn_pdrop": (0.1, "float"),
        "layer_norm_epsilon": (1e-5, "float"),
        "initializer_range": (0.02, "float"),
        "summary_type": ("cls_index", "str"),
        "summary_use_proj": (True, "bool"),
        "summary_activation": (None, "str|none"),
        "summary_proj_to_labels": (True, "bool"),
        "summary_first_dropout": (0.1, "float"),
        "scale_attn_weights": (True, "bool"),
        "use_cache": (True, "bool"),
        "bos_token_id": (50256, "int|none"),
        "eos_token_id": (50256, "int|int_list|none"),
        "scale_attn_by_inverse_layer_idx": (False, "bool"),
        # Accepted for compatibility; it only changes rounding under mixed precision (see models/gpt2.py).
        "reorder_and_upcast_attn": (False, "bool"),
    }

    def validate(self) -> None:
        super().validate()
        self._check_positive("vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "layer_norm_epsilon")
        if self.n_inner is not None:
            self._check_positive("n_inner")
        self._check_probability("resid_pdrop", "embd_pdrop", "attn_pdrop", "summary_first_dropout")
        _check_heads(self, "n_embd", "n_head")
        _check_activation(self, "activation_function")
        if self.summary_type not in self.SUMMARY_TYPES:
            raise ConfigError(f"summary_type must be one of {self.SUMMARY_TYPES}, got {self.summary_type!r}")


CONFIG_REGISTRY: dict[str, type[PretrainedConfig]] = {}


def register_config(config_class: type[PretrainedConfig]) -> type[PretrainedConfig]:
    CONFIG_REGISTRY[config_class.model_type] = config_class
    return config_class


for _cls in (BertConfig, RobertaConfig, BertGenerationConfig, GPT2Config):
    register_config(_cls)


class AutoConfig:
    """Picks the config class from the ``model_type`` key of config.json."""

    def __init__(self) -> None:
        raise TypeError("AutoConfig is not instantiable: use AutoConfig.from_pretrained or AutoConfig.for_model")

    @staticmethod
    def for_model(model_type: str, **kwargs: Any) -> PretrainedConfig:
        return _config_class(model_type, "for_model")(**kwargs)

    @staticmethod
    def from_pretrained(path_or_repo_id: str | os.PathLike, **kwargs: Any) -> PretrainedConfig:
        return_unused = kwargs.pop("return_unused_kwargs", False)
        data = load_config_dict(path_or_repo_id, **_pop_hub_kwargs(kwargs))
        config_class = _config_class(data.get("model_type"), str(path_or_repo_id))
        config = config_class.from_dict(data, **kwargs)
        return (config, {}) if return_unused else config


def _config_class(model_type: Any, where: str) -> type[PretrainedConfig]:
    if model_type == "encoder-decoder" and model_type not in CONFIG_REGISTRY:
        # The composite config lives beside its model and registers itself when first imported.
        from .models import encoder_decoder_config  # noqa: F401
    if model_type not in CONFIG_REGISTRY:
        raise ConfigError(
            f"unknown model_type {model_type!r} in {where}; warmstart knows {sorted(CONFIG_REGISTRY)}"
        )
    return CONFIG_REGISTRY[model_type]
