"""Which config a ``from_pretrained`` builds: the checkpoint's config.json (or the one passed), updated with the
keyword arguments that name config fields, as v4 does. Framework-free: every wing's loader uses it.
"""
from __future__ import annotations

import copy
import logging
import os
from pathlib import Path
from typing import Any

from .base import CONFIG_NAME, ConfigError, PretrainedConfig, _pruned_heads, read_json

__all__ = ["read_model_config", "load_model_config", "apply_config_overrides", "attach_generation_config",
           "take_prefixed", "side_config", "warm_start_side_config"]

log = logging.getLogger("warmstart")


def read_model_config(folder: Path, config: Any, cls) -> dict[str, Any]:
    """config.json of a checkpoint folder (or of the folder / file ``config`` names) as a dict."""
    source = Path(config) if isinstance(config, (str, os.PathLike)) else Path(folder)
    config_file = source / CONFIG_NAME if source.is_dir() else source
    if not config_file.is_file():
        raise FileNotFoundError(f"no {CONFIG_NAME} in {source}: cannot tell how to build {cls.__name__}")
    return read_json(config_file)


def load_model_config(cls, folder: Path | None, config, kwargs: dict[str, Any]):
    """The config to build: ``config`` (an object, or the folder / file it names) or the checkpoint's own, updated
    with the keyword arguments that name config fields; the rest are the model constructor's arguments."""
    if isinstance(config, PretrainedConfig):
        config = copy.deepcopy(config)  # as v4: the caller's object is not changed by the overrides below
    else:
        source = folder if folder is not None else config
        data = {k: v for k, v in read_model_config(folder, config, cls).items() if k != "model_type"}
        config = cls.config_class.from_dict(data)
        config.name_or_path = str(source)
    apply_config_overrides(config, kwargs)
    return config, kwargs


# Set through their properties, so they rebuild the label maps (not stored under these names).
_LABEL_FIELDS = ("num_labels", "id2label", "label2id")


def apply_config_overrides(config: PretrainedConfig, kwargs: dict[str, Any]) -> None:
    """Pop the keyword arguments that name fields of ``config`` and set them, then re-validate (v4 semantics).

    They are set after the checkpoint's values are read, so ``num_labels=42`` on a 2-label checkpoint really
    gives 42 labels (and then a size mismatch on the classifier, which ``ignore_mismatched_sizes`` re-initialises).
    """
    # Stored fields, their aliases (GPT-2's hidden_size) and the label properties; any other keyword is the model's.
    names = [k for k in kwargs if k in vars(config) or k in type(config).attribute_map or k in _LABEL_FIELDS]
    values = {k: kwargs.pop(k) for k in names}
    label2id = values.pop("label2id", None)
    if "id2label" in values:
        id2label = values.pop("id2label")
        if not isinstance(id2label, dict):
            raise ConfigError(f"id2label must be a dict of index -> label, got {type(id2label).__name__}")
        config.id2label = {int(k): v for k, v in id2label.items()}
        config.label2id = {v: k for k, v in config.id2label.items()}
        values.pop("num_labels", None)  # id2label wins, as when a config is built
    for key, value in values.items():
        setattr(config, key, value)
    if label2id is not None:
        config.label2id = dict(label2id)
    if "pruned_heads" in values:
        config.pruned_heads = _pruned_heads(config.pruned_heads)
    config.validate()


def attach_generation_config(model, folder) -> None:
    """After loading weights from ``folder``: adopt its generation_config.json, if any (as transformers does)."""
    if folder is None:  # built from a config and a state dict: there is no folder to read
        return
    from .generation import GENERATION_CONFIG_NAME, GenerationConfig

    path = Path(folder) / GENERATION_CONFIG_NAME
    if path.is_file() and hasattr(model, "can_generate") and model.can_generate():
        model.generation_config = GenerationConfig.from_pretrained(path.parent)


def take_prefixed(kwargs: dict[str, Any], prefix: str, keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """Pop ``prefix``-named arguments out of kwargs, returned without the prefix (``keep`` names stay): how a
    composite's ``from_encoder_decoder_pretrained`` routes ``encoder_*`` / ``decoder_*`` to each side."""
    return {k[len(prefix):]: kwargs.pop(k) for k in list(kwargs) if k.startswith(prefix) and k not in keep}


def side_config(path, side_kwargs: dict[str, Any], loader_keywords) -> PretrainedConfig:
    """One side's config, with the keyword arguments that are its fields moved into it (``loader_keywords``, the
    side loader's own options, stay in ``side_kwargs``)."""
    from ..storage.options import LoadOptions
    from .auto import AutoConfig

    config = AutoConfig.from_pretrained(path, **LoadOptions.peek(side_kwargs))
    for key in [k for k in side_kwargs if k not in loader_keywords and hasattr(config, k)]:
        setattr(config, key, side_kwargs.pop(key))
    config.validate()
    return config


def warm_start_side_config(side: str, path, side_kwargs: dict[str, Any], loader_keywords) -> PretrainedConfig:
    """The config a composite's warm start loads one side with (``side_kwargs["config"]`` or the checkpoint's):
    the decoder gets a causal mask and cross-attention, the encoder neither (every wing's
    ``from_encoder_decoder_pretrained``)."""
    if "config" not in side_kwargs:
        side_kwargs["config"] = side_config(path, side_kwargs, loader_keywords)
    config = side_kwargs["config"]
    as_decoder = side == "decoder"
    if (config.is_decoder, config.add_cross_attention) != (as_decoder, as_decoder):
        log.info("%s is loaded as the %s: causal mask and cross-attention %s", path, side,
                 "on (cross-attention newly initialised)" if as_decoder else "off")
        config.is_decoder = config.add_cross_attention = as_decoder
    return config
