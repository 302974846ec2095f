"""GenerationConfig: defaults, JSON both ways with transformers, v4 model-config defaults, checkpoints."""
import json

import pytest
import torch
import transformers as T

import warmstart as W
from warmstart.generation import GenerationConfig
from gen_support import EOS, batch


def test_v4_defaults_and_explicit_fields():
    c = GenerationConfig()
    assert (c.max_length, c.num_beams, c.top_k, c.top_p, c.temperature, c.early_stopping) == (20, 1, 50, 1.0, 1.0,
                                                                                                  False)
    assert not c.is_set("max_length")
    c.max_length = 20
    assert c.is_set("max_length")  # assigning the default value still counts as a choice
    assert GenerationConfig(num_beams=3).is_set("num_beams")


def test_our_json_loads_in_transformers(tmp_path):
    ours = GenerationConfig(num_beams=4, max_length=142, no_repeat_ngram_size=3, length_penalty=2.0,
                            early_stopping=True, eos_token_id=[102, 1012], decoder_start_token_id=101,
                            bad_words_ids=[[7], [8, 9]])
    ours.save_pretrained(tmp_path)
    written = json.loads((tmp_path / "generation_config.json").read_text())
    assert "top_k" not in written  # only what differs from the defaults
    theirs = T.GenerationConfig.from_pretrained(tmp_path)
    for key in ("num_beams", "max_length", "no_repeat_ngram_size", "length_penalty", "early_stopping",
                "eos_token_id", "decoder_start_token_id", "bad_words_ids"):
        assert getattr(theirs, key) == getattr(ours, key), key


def test_transformers_json_loads_here(tmp_path):
    theirs = T.GenerationConfig(num_beams=5, do_sample=True, top_p=0.9, temperature=0.7, max_new_tokens=33,
                                pad_token_id=0, eos_token_id=2, repetition_penalty=1.1, cache_implementation="static")
    theirs.save_pretrained(tmp_path)
    ours = GenerationConfig.from_pretrained(tmp_path)
    for key in ("num_beams", "do_sample", "top_p", "temperature", "max_new_tokens", "pad_token_id", "eos_token_id",
                "repetition_penalty"):
        assert getattr(ours, key) == getattr(theirs, key), key
    assert ours.top_k == 50 and not ours.is_set("top_k")  # unset there -> our default
    back = GenerationConfig.from_dict(ours.to_dict())
    assert back == ours


def test_bad_files(tmp_path):
    (tmp_path / "generation_config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"must hold a JSON object, got list"):
        GenerationConfig.from_pretrained(tmp_path)
    (tmp_path / "generation_config.json").write_text('{"num_beams": 0}')
    with pytest.raises(ValueError, match=r"num_beams must be an integer >= 1, got 0"):
        GenerationConfig.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"Cannot find model .*missing"):
        GenerationConfig.from_pretrained(tmp_path / "missing")
    (tmp_path / "generation_config.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"no generation_config.json in"):
        GenerationConfig.from_pretrained(tmp_path)


def test_model_generation_config_follows_model_config(seq2seq_pair):
    """v4: generation_config is derived from model.config until it is edited or assigned."""
    _, ours = seq2seq_pair("bert2bert")
    saved = ours.generation_config
    try:
        ours.config.num_beams = 3
        assert ours.generation_config.num_beams == 3 and ours.generation_config.decoder_start_token_id == 3
        ours.generation_config.max_new_tokens = 5  # an edit: from now on the object is the user's
        ours.config.num_beams = 2
        assert ours.generation_config.num_beams == 3 and ours.generation_config.max_new_tokens == 5
        ours.generation_config = GenerationConfig(num_beams=4, decoder_start_token_id=3)
        assert ours.generation_config.num_beams == 4
        with pytest.raises(TypeError, match=r"must be a GenerationConfig, got dict"):
            ours.generation_config = {"num_beams": 2}
    finally:
        del ours.config.num_beams
        ours.generation_config = None  # back to "derived from the model config"
    assert ours.generation_config.num_beams == 1 and saved.num_beams == 1


def test_decoder_config_fills_composite_gaps(seq2seq_pair):
    """bert2gpt2 (the seeds' example): the GPT-2 decoder's eos/bos reach generation when the composite has none."""
    _, ours = seq2seq_pair("bert2gpt2")
    assert ours.generation_config.eos_token_id == 98 and ours.generation_config.bos_token_id == 98


def test_checkpoints_carry_generation_config(seq2seq_pair, tmp_path):
    hf, ours = seq2seq_pair("bert2bert")
    ours.generation_config = GenerationConfig(num_beams=3, max_new_tokens=6, decoder_start_token_id=3,
                                              eos_token_id=EOS, pad_token_id=0)
    try:
        ours.save_pretrained(tmp_path / "ours")
        theirs = T.EncoderDecoderModel.from_pretrained(tmp_path / "ours").eval()
        assert theirs.generation_config.num_beams == 3
        back = W.EncoderDecoderModel.from_pretrained(tmp_path / "ours")
        assert back.generation_config == ours.generation_config
        ids, mask = batch()
        assert torch.equal(back.generate(ids, attention_mask=mask), ours.generate(ids, attention_mask=mask))
        # transformers' own save: its generation_config.json is adopted here
        hf.generation_config.no_repeat_ngram_size = 2
        hf.save_pretrained(tmp_path / "hf")
        assert W.EncoderDecoderModel.from_pretrained(tmp_path / "hf").generation_config.no_repeat_ngram_size == 2
    finally:
        ours.generation_config = None
        hf.generation_config.no_repeat_ngram_size = None


def test_causal_lm_checkpoint(causal_pair, tmp_path):
    hf, ours = causal_pair("gpt2")
    ours.save_pretrained(tmp_path)
    data = json.loads((tmp_path / "generation_config.json").read_text())
    assert data == {"_from_model_config": True, "bos_token_id": 98, "eos_token_id": 98}
    assert W.GPT2LMHeadModel.from_pretrained(tmp_path).generation_config.eos_token_id == 98
    bare = W.BertModel(W.BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                    intermediate_size=8))
    bare.save_pretrained(tmp_path / "bare")
    assert not (tmp_path / "bare" / "generation_config.json").exists()  # nothing to generate with
