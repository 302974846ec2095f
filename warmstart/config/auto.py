"""AutoConfig: the config class named by config.json's ``model_type``, looked up in the family records."""
from __future__ import annotations

import os
from typing import Any

from ..families import UnknownFamilyError, family
from ..storage.options import LoadOptions
from .base import ConfigError, PretrainedConfig, load_config_dict

__all__ = ["AutoConfig", "config_class_for"]


def config_class_for(model_type: Any, where: str = "") -> type[PretrainedConfig]:
    try:
        return family(model_type, where).config_class()
    except UnknownFamilyError as e:
        raise ConfigError(str(e)) from None


class AutoConfig:
    """Picks the config class from the ``model_type`` key of config.json."""

    def __init__(self) -> None:
        raise TypeError("AutoConfig is not instantiable: use AutoConfig.from_pretrained or AutoConfig.for_model")

    @staticmethod
    def for_model(model_type: str, **kwargs: Any) -> PretrainedConfig:
        return config_class_for(model_type, "for_model")(**kwargs)

    @staticmethod
    def from_pretrained(path_or_repo_id: str | os.PathLike, **kwargs: Any) -> PretrainedConfig:
        return_unused = kwargs.pop("return_unused_kwargs", False)
        data = load_config_dict(path_or_repo_id, LoadOptions.pop_from(kwargs))
        config = config_class_for(data.get("model_type"), str(path_or_repo_id)).from_dict(data, **kwargs)
        return (config, {}) if return_unused else config
