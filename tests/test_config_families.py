"""BertGenerationConfig, RobertaConfig, GPT2Config: transformers' defaults, validation, JSON both ways, AutoConfig."""
import json

import pytest
import transformers as T

from warmstart.config import AutoConfig, BertGenerationConfig, ConfigError, GPT2Config, RobertaConfig

FAMILIES = [(BertGenerationConfig, T.BertGenerationConfig), (RobertaConfig, T.RobertaConfig),
            (GPT2Config, T.GPT2Config)]
IDS = [f[0].__name__ for f in FAMILIES]


@pytest.mark.parametrize("ours,theirs", FAMILIES, ids=IDS)
def test_every_field_defaults_like_transformers(ours, theirs):
    a, b = ours(), theirs()
    assert a.model_type == b.model_type
    # v4 fields transformers 5 dropped (BertGeneration's position_embedding_type) have no oracle.
    fields = [f for f in ours.all_fields() if hasattr(b, f)]
    assert len(fields) > 15
    for name in fields:
        assert getattr(a, name) == getattr(b, name), name


def test_v4_only_field_defaults():
    assert BertGenerationConfig().position_embedding_type == "absolute"
    assert RobertaConfig().position_embedding_type == "absolute" and RobertaConfig().classifier_dropout is None


@pytest.mark.parametrize("ours,theirs", FAMILIES, ids=IDS)
def test_json_both_ways(tmp_path, ours, theirs):
    kw = dict(vocab_size=120, pad_token_id=3, bos_token_id=4, eos_token_id=5, is_decoder=True,
              add_cross_attention=True)
    size = {"n_embd": 64, "n_head": 4, "n_layer": 3} if ours is GPT2Config else \
        {"hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 3}
    mine = ours(**kw, **size)
    mine.save_pretrained(tmp_path / "ours")
    back = theirs.from_pretrained(tmp_path / "ours")
    for name, value in {**kw, **size}.items():
        assert getattr(back, name) == value, name
    back.save_pretrained(tmp_path / "hf")
    again = ours.from_pretrained(tmp_path / "hf")
    for name, value in {**kw, **size}.items():
        assert getattr(again, name) == value, name
    assert type(AutoConfig.from_pretrained(tmp_path / "hf")) is ours


def test_gpt2_names_and_their_aliases(tmp_path):
    c = GPT2Config(hidden_size=64, num_attention_heads=4, num_hidden_layers=3, max_position_embeddings=128)
    assert (c.n_embd, c.n_head, c.n_layer, c.n_positions) == (64, 4, 3, 128)
    assert (c.layer_norm_eps, c.hidden_act, c.intermediate_size) == (1e-5, "gelu_new", None)
    assert c.hidden_dropout_prob == c.resid_pdrop and c.attention_probs_dropout_prob == c.attn_pdrop
    c.hidden_size = 96
    c.num_attention_heads = 8
    assert c.n_embd == 96 and c.n_head == 8
    data = json.loads(c.to_json_string(use_diff=False))
    assert data["n_embd"] == 96 and "hidden_size" not in data and data["model_type"] == "gpt2"
    c.save_pretrained(tmp_path)
    assert T.GPT2Config.from_pretrained(tmp_path).hidden_size == 96


@pytest.mark.parametrize("cls,kw,match", [
    (GPT2Config, dict(n_embd=100, n_head=12), r"n_embd \(100\) must be a multiple of n_head \(12\)"),
    (GPT2Config, dict(activation_function="gelu_fancy"), r"activation_function 'gelu_fancy' is unknown"),
    (GPT2Config, dict(layer_norm_epsilon=0.0), r"layer_norm_epsilon must be positive, got 0.0"),
    (GPT2Config, dict(n_inner=0), r"n_inner must be positive, got 0"),
    (GPT2Config, dict(attn_pdrop=2.0), r"attn_pdrop must be in \[0, 1\], got 2.0"),
    (GPT2Config, dict(n_layer=2.0), r"n_layer must be of type int, got 2.0"),
    (GPT2Config, dict(summary_type="max"), r"summary_type must be one of"),
    (RobertaConfig, dict(pad_token_id=None), r"pad_token_id must be set"),
    (RobertaConfig, dict(max_position_embeddings=2), r"max_position_embeddings \(2\) leaves no position"),
    (RobertaConfig, dict(hidden_size=100, num_attention_heads=12), r"hidden_size \(100\) must be a multiple"),
    (BertGenerationConfig, dict(hidden_act="gelu_fancy"), r"hidden_act 'gelu_fancy' is unknown"),
    (BertGenerationConfig, dict(pad_token_id=50358), r"pad_token_id 50358 is outside the vocabulary"),
    (BertGenerationConfig, dict(position_embedding_type="rotary"), r"position_embedding_type must be one of"),
    (BertGenerationConfig, dict(hidden_dropout_prob=-0.1), r"hidden_dropout_prob must be in \[0, 1\]"),
])
def test_validation_names_field_and_value(cls, kw, match):
    with pytest.raises(ConfigError, match=match):
        cls(**kw)


def test_auto_config_knows_the_families():
    for model_type, cls in (("bert-generation", BertGenerationConfig), ("roberta", RobertaConfig),
                            ("gpt2", GPT2Config)):
        assert type(AutoConfig.for_model(model_type)) is cls


def test_bert_config_read_as_bert_generation(minilm_dir):
    c = BertGenerationConfig.from_pretrained(minilm_dir, is_decoder=True, bos_token_id=101)
    assert c.model_type == "bert-generation" and c.hidden_size == 384 and c.vocab_size == 30522
    assert c.is_decoder and c.bos_token_id == 101
