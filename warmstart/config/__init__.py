"""Configurations, framework-free: the base class and JSON, each family's config, EncoderDecoderConfig,
GenerationConfig and AutoConfig. Importing this package never imports torch, TensorFlow, JAX or huggingface_hub."""
from .auto import AutoConfig
from .base import CONFIG_NAME, ConfigError, JsonConfig, PretrainedConfig, load_config_dict, read_json
from .bert import BertConfig, BertGenerationConfig, RobertaConfig
from .encoder_decoder import EncoderDecoderConfig
from .generation import GENERATION_CONFIG_NAME, GenerationConfig
from .gpt2 import GPT2Config

__all__ = ["PretrainedConfig", "BertConfig", "RobertaConfig", "BertGenerationConfig", "GPT2Config", "AutoConfig",
           "EncoderDecoderConfig", "GenerationConfig", "ConfigError", "CONFIG_NAME", "GENERATION_CONFIG_NAME",
           "JsonConfig", "read_json", "load_config_dict"]
