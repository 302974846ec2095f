"""EncoderDecoderConfig: nested configs, decoder flags, config.json both ways with transformers, clear errors."""
import json

import pytest
import transformers as T

import warmstart as W
from warmstart.config import AutoConfig, ConfigError
from warmstart.models.encoder_decoder import EncoderDecoderConfig

SMALL = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)


def test_from_encoder_decoder_configs_sets_decoder_flags():
    enc, dec = W.BertConfig(**SMALL), W.BertConfig(**SMALL)
    config = EncoderDecoderConfig.from_encoder_decoder_configs(enc, dec, decoder_start_token_id=101, pad_token_id=0)
    assert dec.is_decoder and dec.add_cross_attention  # changed in place, as transformers does
    assert config.decoder.is_decoder and config.decoder.add_cross_attention
    assert not config.encoder.is_decoder and not config.encoder.add_cross_attention
    assert isinstance(config.encoder, W.BertConfig) and config.encoder.hidden_size == 32
    assert config.is_encoder_decoder and not config.tie_encoder_decoder
    assert (config.decoder_start_token_id, config.pad_token_id) == (101, 0)
    assert config.to_dict()["model_type"] == "encoder-decoder"


def test_defaults_follow_transformers():
    config = EncoderDecoderConfig()
    ref = T.EncoderDecoderConfig()
    for side in ("encoder", "decoder"):
        for field in ("hidden_size", "num_hidden_layers", "is_decoder", "add_cross_attention", "vocab_size"):
            assert getattr(getattr(config, side), field) == getattr(getattr(ref, side), field), (side, field)


def test_our_config_json_loads_in_transformers(tmp_path):
    config = EncoderDecoderConfig.from_encoder_decoder_configs(
        W.BertConfig(**SMALL), W.BertConfig(**SMALL, hidden_act="gelu_new"), decoder_start_token_id=5, pad_token_id=0)
    config.save_pretrained(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["model_type"] == "encoder-decoder" and data["decoder"]["model_type"] == "bert"
    ref = T.EncoderDecoderConfig.from_pretrained(tmp_path)
    assert ref.decoder_start_token_id == 5 and ref.pad_token_id == 0
    assert ref.decoder.is_decoder and ref.decoder.add_cross_attention and ref.decoder.hidden_act == "gelu_new"
    assert ref.encoder.hidden_size == 32 and not ref.encoder.is_decoder


def test_transformers_config_json_loads_here(tmp_path):
    ref = T.EncoderDecoderConfig.from_encoder_decoder_configs(
        T.BertConfig(**SMALL), T.GPT2Config(n_embd=48, n_layer=2, n_head=4, vocab_size=99), pad_token_id=0,
        decoder_start_token_id=7)
    ref.save_pretrained(tmp_path)
    for config in (AutoConfig.from_pretrained(tmp_path), EncoderDecoderConfig.from_pretrained(tmp_path)):
        assert type(config) is EncoderDecoderConfig
        assert type(config.encoder) is W.BertConfig and config.encoder.hidden_size == 32
        assert config.decoder.model_type == "gpt2" and config.decoder.hidden_size == 48
        assert config.decoder.add_cross_attention and config.decoder.is_decoder
        assert (config.pad_token_id, config.decoder_start_token_id) == (0, 7)
    # And back: an unchanged round trip keeps every field transformers wrote.
    config.save_pretrained(tmp_path / "again")
    again = T.EncoderDecoderConfig.from_pretrained(tmp_path / "again")
    assert again.decoder.to_dict()["n_embd"] == 48 and again.encoder.intermediate_size == 37


def test_nested_configs_are_objects_not_copies_once_built():
    config = EncoderDecoderConfig(encoder=W.BertConfig(**SMALL), decoder=W.BertConfig(**SMALL))
    config.decoder.use_cache = False
    assert config.to_dict()["decoder"]["use_cache"] is False


@pytest.mark.parametrize("kw,error,match", [
    (dict(encoder=3), ConfigError, r"EncoderDecoderConfig.encoder must be a config object or a dict, got int"),
    (dict(decoder={"model_type": "t5"}), ConfigError, r"decoder has model_type 't5'; warmstart knows"),
    (dict(encoder={"hidden_size": 8}), ConfigError, r"encoder has model_type None"),
    (dict(decoder={"model_type": "bert", "hidden_size": 30, "num_attention_heads": 4}), ConfigError,
     r"hidden_size \(30\) must be a multiple of num_attention_heads \(4\)"),
    (dict(tie_encoder_decoder="yes"), ConfigError, r"tie_encoder_decoder must be of type bool"),
])
def test_bad_configs_name_the_problem(kw, error, match):
    with pytest.raises(error, match=match):
        EncoderDecoderConfig(**kw)


def test_from_encoder_decoder_configs_needs_configs():
    with pytest.raises(TypeError, match="decoder_config must be a config object"):
        EncoderDecoderConfig.from_encoder_decoder_configs(W.BertConfig(), {"model_type": "bert"})


def test_loading_a_single_model_config_is_refused(minilm_dir):
    with pytest.raises(ConfigError, match="holds a 'bert' config, not an encoder-decoder one"):
        EncoderDecoderConfig.from_pretrained(minilm_dir)


def test_auto_config_knows_encoder_decoder_without_importing_the_model(tmp_path):
    import subprocess
    import sys

    EncoderDecoderConfig.from_encoder_decoder_configs(W.BertConfig(**SMALL), W.BertConfig(**SMALL)).save_pretrained(
        tmp_path)
    code = (f"import warmstart; c = warmstart.AutoConfig.from_pretrained({str(tmp_path)!r}); "
            "print(type(c).__name__, c.decoder.add_cross_attention)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["EncoderDecoderConfig", "True"], out.stderr[-500:]
