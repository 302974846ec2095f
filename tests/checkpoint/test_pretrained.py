"""from_pretrained / save_pretrained against transformers: both directions, every file layout, loading reports."""
import json

import pytest
import torch
import transformers as T
from safetensors.torch import load_file, save_file

import warmstart as W
from warmstart.checkpoint.pretrained import LoadingError
from parity import TINY, assert_close, inputs, spread_weights


def _hf(cls=T.BertForMaskedLM, **extra):
    torch.manual_seed(0)
    model = cls(T.BertConfig(**{**TINY, **extra}))
    spread_weights(model)
    return model.eval()


def _same(a, b, ids):
    with torch.no_grad():
        x, y = a(ids), b(ids)
    for field in ("logits", "prediction_logits", "start_logits", "last_hidden_state"):
        if hasattr(x, field):
            assert_close(getattr(x, field), getattr(y, field), field)
            return
    raise AssertionError(type(x))


@pytest.mark.parametrize("cls", ["BertForMaskedLM", "BertForPreTraining", "BertModel", "BertLMHeadModel",
                                 "BertForSequenceClassification", "BertForQuestionAnswering"])
def test_ours_saved_loads_in_transformers_and_back(tmp_path, cls):
    extra = {"is_decoder": True} if cls == "BertLMHeadModel" else {}
    hf = _hf(getattr(T, cls), **extra)
    hf.save_pretrained(tmp_path / "hf")
    ours = getattr(W, cls).from_pretrained(tmp_path / "hf")
    ours.save_pretrained(tmp_path / "ours")
    back = getattr(T, cls).from_pretrained(tmp_path / "ours").eval()
    ids, _, _ = inputs(pad_row_from=None)
    _same(hf, back, ids)
    _same(ours, back, ids)
    # And every tensor transformers saved survives our round trip under the same name.
    theirs, again = load_file(tmp_path / "hf" / "model.safetensors"), load_file(tmp_path / "ours" / "model.safetensors")
    assert set(theirs) == set(again)
    for k in theirs:
        assert torch.equal(theirs[k], again[k]), k
    config = json.loads((tmp_path / "ours" / "config.json").read_text())
    assert config["model_type"] == "bert" and config["architectures"] == [cls]


def test_sharded_bin_and_legacy_gamma_beta_checkpoints_load(tmp_path):
    hf = _hf()
    ids, _, _ = inputs(pad_row_from=None)
    hf.save_pretrained(tmp_path / "sharded", max_shard_size="20KB")
    assert (tmp_path / "sharded" / "model.safetensors.index.json").exists()
    _same(hf, W.BertForMaskedLM.from_pretrained(tmp_path / "sharded"), ids)

    state = {k: v.clone() for k, v in hf.state_dict().items()}
    (tmp_path / "bin").mkdir()
    torch.save(state, tmp_path / "bin" / "pytorch_model.bin")
    hf.config.to_json_file(tmp_path / "bin" / "config.json")
    _same(hf, W.BertForMaskedLM.from_pretrained(tmp_path / "bin"), ids)

    legacy = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
              for k, v in state.items()}
    legacy["cls.predictions.decoder.weight"] = state["bert.embeddings.word_embeddings.weight"]
    legacy["cls.predictions.decoder.bias"] = state["cls.predictions.bias"]
    (tmp_path / "legacy").mkdir()
    torch.save(legacy, tmp_path / "legacy" / "pytorch_model.bin")
    hf.config.to_json_file(tmp_path / "legacy" / "config.json")
    model, info = W.BertForMaskedLM.from_pretrained(tmp_path / "legacy", output_loading_info=True)
    _same(hf, model, ids)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []


def test_ours_sharded_save_loads_in_transformers(tmp_path):
    hf = _hf()
    hf.save_pretrained(tmp_path / "hf")
    ours = W.BertForMaskedLM.from_pretrained(tmp_path / "hf")
    ours.save_pretrained(tmp_path / "ours", max_shard_size="20KB")
    index = json.loads((tmp_path / "ours" / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1
    _same(hf, T.BertForMaskedLM.from_pretrained(tmp_path / "ours").eval(), inputs(pad_row_from=None)[0])


def test_prefix_added_and_stripped_between_base_and_heads(tmp_path):
    base = _hf(T.BertModel)
    base.save_pretrained(tmp_path / "base")
    model, info = W.BertForSequenceClassification.from_pretrained(tmp_path / "base", num_labels=4,
                                                                  output_loading_info=True)
    assert sorted(info["missing_keys"]) == ["classifier.bias", "classifier.weight"]
    assert model.config.num_labels == 4
    assert_close(model.bert.embeddings.word_embeddings.weight, base.embeddings.word_embeddings.weight, "prefix added")

    head = _hf(T.BertForPreTraining)
    head.save_pretrained(tmp_path / "head")
    bare, info = W.BertModel.from_pretrained(tmp_path / "head", output_loading_info=True)
    assert info["missing_keys"] == []
    assert any(k.startswith("cls.") for k in info["unexpected_keys"])
    ids = inputs(pad_row_from=None)[0]
    with torch.no_grad():
        assert_close(bare(ids).pooler_output, head.bert(ids).pooler_output, "stripped prefix")


def test_warm_starting_a_decoder_reports_new_cross_attention(tmp_path):
    _hf(T.BertModel).save_pretrained(tmp_path)
    model, info = W.BertLMHeadModel.from_pretrained(tmp_path, is_decoder=True, add_cross_attention=True,
                                                    output_loading_info=True)
    assert model.config.is_decoder and model.config.add_cross_attention
    assert any("crossattention" in k for k in info["missing_keys"])
    assert any("cls.predictions" in k for k in info["missing_keys"])
    assert "pooler.dense.weight" in [k.removeprefix("bert.") for k in info["unexpected_keys"]]


def test_more_layers_than_saved_is_an_error(tmp_path):
    _hf(T.BertModel).save_pretrained(tmp_path)
    with pytest.raises(LoadingError, match=r"encoder\.layer\.2\..*num_hidden_layers"):
        W.BertModel.from_pretrained(tmp_path, num_hidden_layers=3)


def test_shape_mismatch_error_and_ignore_mismatched_sizes(tmp_path):
    _hf(T.BertForSequenceClassification, num_labels=2).save_pretrained(tmp_path)
    with pytest.raises(LoadingError, match=r"classifier\.weight.*\(2, 32\).*\(5, 32\)"):
        W.BertForSequenceClassification.from_pretrained(tmp_path, num_labels=5)
    model, info = W.BertForSequenceClassification.from_pretrained(tmp_path, num_labels=5, ignore_mismatched_sizes=True,
                                                                  output_loading_info=True)
    assert ("classifier.weight", (2, 32), (5, 32)) in info["mismatched_keys"]
    assert model.classifier.weight.shape == (5, 32)


def test_int_tensor_where_float_expected(tmp_path):
    hf = _hf(T.BertModel)
    hf.save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    state["embeddings.word_embeddings.weight"] = state["embeddings.word_embeddings.weight"].to(torch.int32)
    save_file(state, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(LoadingError, match=r"word_embeddings\.weight.*torch\.int32"):
        W.BertModel.from_pretrained(tmp_path)


@pytest.mark.parametrize("kw", [{"dtype": torch.bfloat16}, {"torch_dtype": "bfloat16"}, {"dtype": "auto"}])
def test_dtype(tmp_path, kw):
    hf = _hf(T.BertModel)
    hf.to(torch.bfloat16).save_pretrained(tmp_path)
    model = W.BertModel.from_pretrained(tmp_path, **kw)
    assert model.dtype == torch.bfloat16
    assert W.BertModel.from_pretrained(tmp_path).dtype == torch.float32


def test_missing_model_names_what_was_looked_for(tmp_path):
    with pytest.raises(OSError, match="no-such-org/no-such-model"):
        W.BertModel.from_pretrained("no-such-org/no-such-model", cache_dir=str(tmp_path))
    with pytest.raises(OSError, match="does-not-exist"):
        W.BertModel.from_pretrained(str(tmp_path / "does-not-exist"))


def test_auto_classes_dispatch_on_model_type(tmp_path):
    _hf(T.BertForMaskedLM).save_pretrained(tmp_path)
    assert type(W.AutoModel.from_pretrained(tmp_path)) is W.BertModel
    assert type(W.AutoModelForMaskedLM.from_pretrained(tmp_path)) is W.BertForMaskedLM
    assert type(W.AutoModelForCausalLM.from_pretrained(tmp_path, is_decoder=True)) is W.BertLMHeadModel
    for name in ("SequenceClassification", "TokenClassification", "QuestionAnswering", "MultipleChoice",
                 "PreTraining", "NextSentencePrediction"):
        model = getattr(W, f"AutoModelFor{name}").from_pretrained(tmp_path)
        assert type(model).__name__ == f"BertFor{name}"
    assert type(W.AutoModel.from_config(W.BertConfig(**TINY))) is W.BertModel
    with pytest.raises(TypeError):
        W.AutoModel()


def test_save_over_existing_checkpoint_keeps_other_files(tmp_path):
    hf = _hf()
    hf.save_pretrained(tmp_path / "hf")
    ours = W.BertForMaskedLM.from_pretrained(tmp_path / "hf")
    out = tmp_path / "out"
    ours.save_pretrained(out, max_shard_size="20KB")
    (out / "README.md").write_text("mine")
    ours.save_pretrained(out)  # now a single file: the old shards and index must go
    names = sorted(p.name for p in out.iterdir())
    assert "README.md" in names and "model.safetensors" in names
    assert not any(n.startswith("model-") or n.endswith("index.json") for n in names)
    _same(hf, W.BertForMaskedLM.from_pretrained(out), inputs(pad_row_from=None)[0])
