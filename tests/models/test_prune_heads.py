"""prune_heads() and config.pruned_heads (v4 API that transformers 5 removed).

Checked two ways: against the math (a pruned layer computes what the unpruned one computes with those heads zeroed
through ``head_mask``) and against v4.46.3 checkpoints pruned and saved by v4 itself (tests/assets/v4_loading, made
by tests/assets/make_v4_loading_fixtures.py): they load (the layers are built pruned from config.pruned_heads) and
give v4's outputs.
"""
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import warmstart as W
from parity import assert_close

ASSETS = Path(__file__).parent.parent / "assets" / "v4_loading"
BERT = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
GPT2 = dict(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=64, pad_token_id=0, bos_token_id=1,
            eos_token_id=2, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)


def _case(name):
    folder = ASSETS / name
    return folder, load_file(folder / "inputs.safetensors"), load_file(folder / "expected.safetensors")


@pytest.mark.parametrize("make", [lambda: W.BertModel(W.BertConfig(**BERT)),
                                  lambda: W.GPT2Model(W.GPT2Config(**GPT2))], ids=["bert", "gpt2"])
def test_pruned_equals_head_mask_zero(make):
    torch.manual_seed(0)
    model = make().eval()
    ids = torch.randint(3, 99, (2, 7))
    head_mask = torch.ones(2, 4)
    head_mask[0, 0] = head_mask[1, 1] = head_mask[1, 2] = 0
    with torch.no_grad():
        want = model(ids, head_mask=head_mask).last_hidden_state
        model.prune_heads({0: [0], 1: [1, 2]})
        out = model(ids, output_attentions=True)
        fast = model(ids).last_hidden_state
    assert_close(out.last_hidden_state, want, "pruned vs head_mask")
    assert_close(fast, want, "pruned, fast path")
    assert [a.shape[1] for a in out.attentions] == [3, 2]


def test_pruned_heads_accumulate_and_repeat_is_noop():
    model = W.BertModel(W.BertConfig(**BERT))
    model.prune_heads({0: [0], 1: [1, 2]})
    model.prune_heads({1: [3, 1]})  # head 1 again: nothing more happens to it
    assert model.config.pruned_heads == {0: [0], 1: [1, 2, 3]}
    assert [layer.attn.num_heads for layer in model.encoder.layer] == [3, 1]
    assert model.encoder.layer[1].attn.qkv.weight.shape == (3 * 8, 32)
    assert model.encoder.layer[1].attn.out.weight.shape == (32, 8)


def test_prune_heads_errors_name_the_bad_index():
    model = W.BertModel(W.BertConfig(**BERT))
    with pytest.raises(ValueError, match=r"heads \[4\].*0\.\.3"):
        model.prune_heads({0: [4]})
    with pytest.raises(ValueError, match="layer 5"):
        model.prune_heads({5: [0]})
    with pytest.raises(TypeError, match="dict"):
        model.prune_heads([0, 1])
    with pytest.raises(ValueError, match="pruned_heads"):  # a ConfigError
        W.BertConfig(**BERT, pruned_heads={"a": [0]})
    enc_dec = W.EncoderDecoderModel(encoder=W.BertModel(W.BertConfig(**BERT)),
                                    decoder=W.BertLMHeadModel(W.BertConfig(**BERT, is_decoder=True,
                                                                           add_cross_attention=True)))
    with pytest.raises(NotImplementedError, match="model.encoder.prune_heads"):
        enc_dec.prune_heads({0: [0]})


def test_pruned_save_load_roundtrip(tmp_path):
    torch.manual_seed(0)
    model = W.BertForSequenceClassification(W.BertConfig(**BERT)).eval()
    model.prune_heads({0: [0], 1: [1, 2]})
    ids = torch.randint(3, 99, (2, 7))
    model.save_pretrained(tmp_path)
    # As v4 writes it: layer keys as strings.
    assert json.loads((tmp_path / "config.json").read_text())["pruned_heads"] == {"0": [0], "1": [1, 2]}
    again = W.BertForSequenceClassification.from_pretrained(tmp_path)
    assert again.config.pruned_heads == {0: [0], 1: [1, 2]}
    with torch.no_grad():
        assert_close(again(ids).logits, model(ids).logits, "reloaded pruned model")


def test_v4_pruned_bert_checkpoint_loads_and_matches():
    folder, x, want = _case("bert_pruned")
    model = W.BertModel.from_pretrained(folder)
    assert model.config.pruned_heads == {0: [0], 1: [1, 2, 3]}
    with torch.no_grad():
        out = model(**x, output_attentions=True)
        plain = model(**x, skip_padding=False)
    assert_close(out.last_hidden_state, want["last_hidden_state"], "last_hidden_state")
    assert_close(out.pooler_output, want["pooler_output"], "pooler_output")
    assert_close(plain.last_hidden_state, want["last_hidden_state"], "fast path")
    for i, a in enumerate(out.attentions):
        assert_close(a, want[f"attentions.{i}"], f"attentions.{i}")


def test_v4_pruned_gpt2_checkpoint_loads_and_matches(tmp_path):
    folder, x, want = _case("gpt2_pruned")
    model = W.GPT2LMHeadModel.from_pretrained(folder)
    with torch.no_grad():
        out = model(**x, output_attentions=True)
    assert_close(out.logits, want["logits"], "logits")
    for i, a in enumerate(out.attentions):
        assert_close(a, want[f"attentions.{i}"], f"attentions.{i}")
    # Saved by us, read back by us: still the same model.
    model.save_pretrained(tmp_path)
    with torch.no_grad():
        assert_close(W.GPT2LMHeadModel.from_pretrained(tmp_path)(**x).logits, want["logits"], "re-saved")


def test_pruned_gpt2_cached_generation_equals_uncached():
    torch.manual_seed(0)
    model = W.GPT2LMHeadModel(W.GPT2Config(**GPT2)).eval()
    model.prune_heads({0: [1], 1: [0, 3]})  # layers with different head counts share one cache
    ids = torch.tensor([[5, 6, 7], [8, 9, 10]])
    with torch.no_grad():
        got = model.generate(ids, max_new_tokens=5, do_sample=False)
        want = ids
        for _ in range(5):
            step = model(want, use_cache=False).logits[:, -1].argmax(-1, keepdim=True)
            want = torch.cat([want, step], dim=1)
    assert torch.equal(got, want)
