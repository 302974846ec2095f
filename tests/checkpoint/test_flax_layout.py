"""The PyTorch <-> Flax (v4) layout rules, on the exported state of our tiny PyTorch models."""
import numpy as np
import pytest

import warmstart
from warmstart.checkpoint.flax_layout import convert_to_flax, flatten_tree, from_flax_tree, to_flax_tree
from warmstart.checkpoint.pretrained import export_state_dict

_BERT = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)


def _hf(model):
    return {k: v.detach().numpy() for k, v in export_state_dict(model).items()}


@pytest.mark.parametrize("build", [
    lambda: warmstart.BertForPreTraining(warmstart.BertConfig(**_BERT)),
    lambda: warmstart.BertForMaskedLM(warmstart.BertConfig(**_BERT)),
    lambda: warmstart.BertForSequenceClassification(warmstart.BertConfig(**_BERT)),
    lambda: warmstart.RobertaForCausalLM(warmstart.RobertaConfig(**_BERT, is_decoder=True)),
    lambda: warmstart.GPT2LMHeadModel(warmstart.GPT2Config(vocab_size=99, n_embd=32, n_layer=2, n_head=4)),
])
def test_round_trip_is_identical(build):
    hf = _hf(build())
    back = from_flax_tree(to_flax_tree(hf))
    assert set(back) == set(hf)
    for k in hf:
        assert back[k].dtype == hf[k].dtype and np.array_equal(back[k], hf[k]), k


def test_v4_paths_shapes():
    hf = _hf(warmstart.BertForMaskedLM(warmstart.BertConfig(**_BERT)))
    flat = flatten_tree(to_flax_tree(hf))
    assert flat["bert/embeddings/word_embeddings/embedding"].shape == (99, 32)
    assert flat["bert/embeddings/LayerNorm/scale"].shape == (32,)
    assert flat["bert/encoder/layer/0/intermediate/dense/kernel"].shape == (32, 37)  # (in, out)
    assert "cls/predictions/decoder/kernel" not in flat  # tied: the head uses the embedding table
    assert "cls/predictions/bias" in flat


def test_gpt2_conv1d_kernel_is_out_by_in_as_v4():
    hf = _hf(warmstart.GPT2Model(warmstart.GPT2Config(vocab_size=99, n_embd=32, n_layer=1, n_head=4)))
    flat = flatten_tree(to_flax_tree(hf, base_prefix="transformer", add_prefix=True))
    assert flat["transformer/h/0/attn/c_attn/kernel"].shape == (96, 32)
    assert flat["transformer/wte/embedding"].shape == (99, 32)


def test_prefix_added_and_stripped():
    hf = _hf(warmstart.BertForSequenceClassification(warmstart.BertConfig(**_BERT)))
    bare = to_flax_tree(hf, add_prefix=False)
    assert "embeddings" in bare and "bert" not in bare and "classifier" in bare  # head key left for the report
    base = {k[len("bert."):]: v for k, v in hf.items() if k.startswith("bert.")}
    assert set(to_flax_tree(base, base_prefix="bert", add_prefix=True)) == {"bert"}
    with pytest.raises(ValueError, match="base_prefix"):
        to_flax_tree(base, add_prefix=True)


def test_nothing_dropped_silently():
    state = {"embeddings.position_ids": np.arange(4)[None], "foo.running_mean": np.zeros(3, np.float32),
             "cls.predictions.decoder.bias": np.ones(5, np.float32), "cls.predictions.bias": np.ones(5, np.float32)}
    conv = convert_to_flax(state)
    assert set(conv.dropped) == {"embeddings.position_ids", "cls.predictions.decoder.bias"}
    assert flatten_tree(conv.tree)["foo/running_mean"].shape == (3,)  # unknown: kept for the loader to report
    with pytest.raises(ValueError, match="conv.weight"):
        to_flax_tree({"conv.weight": np.zeros((2, 2, 2, 2), np.float32)})
