"""EncoderDecoderConfig: two nested model configs (any registered families) plus the seq2seq token ids.

config.json keeps transformers' layout: ``model_type`` "encoder-decoder" and the full ``encoder`` / ``decoder``
configs as nested objects, each carrying its own ``model_type`` so that it is rebuilt from its family record.
"""
from __future__ import annotations

import logging
import os
from typing import Any

from ..families import FAMILIES
from ..storage.options import LoadOptions
from .base import ConfigError, PretrainedConfig, load_config_dict
from .bert import BertConfig

__all__ = ["EncoderDecoderConfig", "check_shift_ids"]

log = logging.getLogger("warmstart")


def _sub_config(value: Any, side: str, decoder_defaults: bool) -> PretrainedConfig:
    if isinstance(value, PretrainedConfig):
        return value
    if value is None:
        # transformers v5 defaults both sides to bert-base; the decoder side as a cross-attending decoder.
        return BertConfig(is_decoder=True, add_cross_attention=True) if decoder_defaults else BertConfig()
    if not isinstance(value, dict):
        raise ConfigError(f"EncoderDecoderConfig.{side} must be a config object or a dict, got {type(value).__name__}")
    model_type = value.get("model_type")
    if model_type not in FAMILIES:
        raise ConfigError(f"EncoderDecoderConfig.{side} has model_type {model_type!r}; warmstart knows "
                          f"{sorted(FAMILIES)}")
    config_class = FAMILIES[model_type].config_class()
    data = {k: v for k, v in value.items() if k != "model_type"}
    return config_class.from_dict(data)


class EncoderDecoderConfig(PretrainedConfig):
    """Configuration of an EncoderDecoderModel: ``encoder`` and ``decoder`` sub-configs, shared token ids."""

    model_type = "encoder-decoder"
    is_composition = True
    FIELDS = {
        "is_encoder_decoder": (True, "bool"),
        # v4: share every decoder weight whose name matches an encoder weight (transformers v5 dropped it).
        "tie_encoder_decoder": (False, "bool"),
    }

    def __init__(self, **kwargs: Any):
        # Set before the base __init__, whose validate() already checks them.
        self.encoder = _sub_config(kwargs.pop("encoder", None), "encoder", decoder_defaults=False)
        self.decoder = _sub_config(kwargs.pop("decoder", None), "decoder", decoder_defaults=True)
        super().__init__(**kwargs)

    def validate(self) -> None:
        super().validate()
        for side in ("encoder", "decoder"):
            sub = getattr(self, side)
            if not isinstance(sub, PretrainedConfig):
                raise ConfigError(f"EncoderDecoderConfig.{side} must be a config object, got {type(sub).__name__}")
            sub.validate()

    @classmethod
    def from_encoder_decoder_configs(cls, encoder_config: PretrainedConfig, decoder_config: PretrainedConfig,
                                     **kwargs: Any) -> "EncoderDecoderConfig":
        """Combine two configs; the decoder one is switched (in place, as transformers does) to a causal decoder
        with cross-attention."""
        for side, sub in (("encoder_config", encoder_config), ("decoder_config", decoder_config)):
            if not isinstance(sub, PretrainedConfig):
                raise TypeError(f"{side} must be a config object (e.g. BertConfig), got {type(sub).__name__}")
        log.info("setting is_decoder=True and add_cross_attention=True on the decoder config")
        decoder_config.is_decoder = True
        decoder_config.add_cross_attention = True
        return cls(encoder=encoder_config.to_dict(), decoder=decoder_config.to_dict(), **kwargs)

    @classmethod
    def from_pretrained(cls, path_or_repo_id: str | os.PathLike, **kwargs: Any) -> "EncoderDecoderConfig":
        return_unused = kwargs.pop("return_unused_kwargs", False)
        data = load_config_dict(path_or_repo_id, LoadOptions.pop_from(kwargs))
        if data.get("model_type") != cls.model_type:
            raise ConfigError(
                f"{path_or_repo_id} holds a {data.get('model_type')!r} config, not an encoder-decoder one; to "
                "warm-start from two single checkpoints use EncoderDecoderModel.from_encoder_decoder_pretrained"
            )
        config = cls.from_dict(data, **kwargs)
        return (config, {}) if return_unused else config


def check_shift_ids(pad_token_id: int | None, decoder_start_token_id: int | None) -> None:
    """What shifting labels into decoder inputs needs (every wing's shift_tokens_right): a start and a pad id."""
    if decoder_start_token_id is None:
        raise ValueError("config.decoder_start_token_id is None, so labels cannot be shifted into decoder_input_ids; "
                         "set it, e.g. model.config.decoder_start_token_id = tokenizer.cls_token_id")
    if pad_token_id is None:
        raise ValueError("config.pad_token_id is None, so -100 labels cannot be turned into decoder inputs; set it, "
                         "e.g. model.config.pad_token_id = tokenizer.pad_token_id")


def composite_config(config, encoder, decoder, cls_name: str) -> EncoderDecoderConfig:
    """The config an encoder-decoder is built with (every wing's ``__init__(config, encoder, decoder)``): the one
    given, else one made from the two ready models' configs; checked."""
    if config is None:
        if encoder is None or decoder is None:
            raise ValueError(f"{cls_name} needs a config, or both an encoder and a decoder; got "
                             f"encoder={type(encoder).__name__}, decoder={type(decoder).__name__}")
        config = EncoderDecoderConfig.from_encoder_decoder_configs(encoder.config, decoder.config)
    elif not isinstance(config, EncoderDecoderConfig):
        raise TypeError(f"config must be an EncoderDecoderConfig, got {type(config).__name__}")
    cross_size = getattr(config.decoder, "cross_attention_hidden_size", None)
    if cross_size is not None and cross_size != config.encoder.hidden_size:
        raise ValueError(f"the decoder's cross_attention_hidden_size ({cross_size}) must equal the encoder's "
                         f"hidden_size ({config.encoder.hidden_size})")
    return config
