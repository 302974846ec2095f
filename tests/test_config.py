"""BertConfig: every seed field, validation naming field and value, JSON both ways with transformers."""
import json

import pytest
import transformers as T

import warmstart as W
from warmstart.config import ConfigError


def test_defaults_and_fields():
    c = W.BertConfig()
    for name, value in dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                            intermediate_size=3072, hidden_act="gelu", max_position_embeddings=512,
                            type_vocab_size=2, layer_norm_eps=1e-12, pad_token_id=0, position_embedding_type="absolute",
                            is_decoder=False, add_cross_attention=False, chunk_size_feed_forward=0,
                            classifier_dropout=None, problem_type=None, num_labels=2, tie_word_embeddings=True,
                            use_cache=True, output_hidden_states=False, output_attentions=False).items():
        assert getattr(c, name) == value, name
    assert c.id2label == {0: "LABEL_0", 1: "LABEL_1"}


@pytest.mark.parametrize("kw,match", [
    (dict(hidden_size=100, num_attention_heads=12), r"hidden_size \(100\) must be a multiple of num_attention_heads \(12\)"),
    (dict(hidden_act="gelu_fancy"), r"hidden_act 'gelu_fancy' is unknown"),
    (dict(layer_norm_eps=0.0), r"layer_norm_eps must be positive, got 0.0"),
    (dict(layer_norm_eps=-1e-5), r"layer_norm_eps must be positive"),
    (dict(num_hidden_layers=2.0), r"num_hidden_layers must be of type int, got 2.0 \(float\)"),
    (dict(vocab_size="30522"), r"vocab_size must be of type int, got '30522'"),
    (dict(is_decoder=1), r"is_decoder must be of type bool, got 1"),
    (dict(position_embedding_type="rotary"), r"position_embedding_type must be one of"),
    (dict(problem_type="ranking"), r"problem_type must be one of"),
    (dict(hidden_dropout_prob=1.5), r"hidden_dropout_prob must be in \[0, 1\], got 1.5"),
    (dict(num_labels=0), r"num_labels must be a positive integer, got 0"),
    (dict(pad_token_id=40000), r"pad_token_id 40000 is outside the vocabulary"),
])
def test_validation_names_field_and_value(kw, match):
    with pytest.raises(ConfigError, match=match):
        W.BertConfig(**kw)


def test_transformers_config_loads_here_and_ours_loads_there(tmp_path):
    theirs = T.BertConfig(hidden_size=64, num_attention_heads=4, num_labels=3, is_decoder=True,
                          id2label={0: "a", 1: "b", 2: "c"}, classifier_dropout=0.2)
    theirs.save_pretrained(tmp_path / "hf")
    ours = W.BertConfig.from_pretrained(tmp_path / "hf")
    assert ours.hidden_size == 64 and ours.num_labels == 3 and ours.id2label[2] == "c" and ours.is_decoder
    assert ours.classifier_dropout == 0.2
    ours.position_embedding_type = "relative_key"
    ours.save_pretrained(tmp_path / "ours")
    back = T.BertConfig.from_pretrained(tmp_path / "ours")
    assert back.hidden_size == 64 and back.id2label == {0: "a", 1: "b", 2: "c"} and back.is_decoder
    assert back.label2id == {"a": 0, "b": 1, "c": 2}
    data = json.loads((tmp_path / "ours" / "config.json").read_text())
    assert data["model_type"] == "bert" and data["position_embedding_type"] == "relative_key"


def test_round_trip_dict_json_and_unknown_keys(tmp_path):
    c = W.BertConfig(hidden_size=64, num_attention_heads=4, my_custom_flag="x")
    again = W.BertConfig.from_dict(json.loads(c.to_json_string(use_diff=False)))
    assert again == c and again.my_custom_flag == "x"
    assert "hidden_size" in json.loads(c.to_json_string()) and "vocab_size" not in json.loads(c.to_json_string())
    assert W.BertConfig.from_pretrained(_save(c, tmp_path)) == c


def _save(c, tmp_path):
    c.save_pretrained(tmp_path)
    return tmp_path


def test_auto_config(tmp_path):
    W.BertConfig(hidden_size=64, num_attention_heads=4).save_pretrained(tmp_path)
    c = W.AutoConfig.from_pretrained(tmp_path)
    assert type(c) is W.BertConfig and c.hidden_size == 64
    assert type(W.AutoConfig.for_model("bert", hidden_size=32, num_attention_heads=4)) is W.BertConfig
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ConfigError, match="unknown model_type 'llama'"):
        W.AutoConfig.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        W.AutoConfig.from_pretrained(tmp_path)
