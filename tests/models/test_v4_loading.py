"""v4 loading behaviours: config overrides given to from_pretrained, from_pretrained(None, config, state_dict),
and the small v4 model/config API (main_input_name, get_text_config, torch_dtype, is_composition).

transformers 5.23 still has the override semantics, so it is the oracle there; the rest is v4.46's documented API.
"""
import json
import logging

import pytest
import torch
import transformers

import warmstart as W
from parity import assert_close
from warmstart.checkpoint.pretrained import LoadingError, export_state_dict

BERT = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)
GPT2 = dict(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=64, pad_token_id=0, bos_token_id=1,
            eos_token_id=2)


@pytest.fixture(scope="module")
def two_label_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("two_labels")
    torch.manual_seed(0)
    W.BertForSequenceClassification(W.BertConfig(**BERT)).save_pretrained(folder)
    return folder


# ---- 1. config overrides on load ---------------------------------------------------------------------------
@pytest.mark.parametrize("loader", [W.BertForSequenceClassification, W.AutoModelForSequenceClassification])
def test_num_labels_override_gives_size_mismatch(two_label_dir, loader):
    with pytest.raises(LoadingError) as err:
        loader.from_pretrained(two_label_dir, num_labels=42)
    for part in ("classifier.weight", "(2, 32)", "(42, 32)", "ignore_mismatched_sizes"):
        assert part in str(err.value)
    # transformers 5.23 (the oracle) refuses it too.
    with pytest.raises(RuntimeError, match="ignore_mismatched_sizes"):
        transformers.BertForSequenceClassification.from_pretrained(two_label_dir, num_labels=42)


@pytest.mark.parametrize("loader", [W.BertForSequenceClassification, W.AutoModelForSequenceClassification])
def test_num_labels_override_with_ignore_mismatched_sizes(two_label_dir, loader):
    model, info = loader.from_pretrained(two_label_dir, num_labels=42, ignore_mismatched_sizes=True,
                                         output_loading_info=True)
    theirs, their_info = transformers.BertForSequenceClassification.from_pretrained(
        two_label_dir, num_labels=42, ignore_mismatched_sizes=True, output_loading_info=True)
    assert model.config.num_labels == 42 == theirs.config.num_labels
    assert model.config.id2label[41] == "LABEL_41"
    assert model.classifier.weight.shape == (42, 32) == theirs.classifier.weight.shape
    assert sorted(info["mismatched_keys"]) == sorted((k, tuple(a), tuple(b))
                                                     for k, a, b in their_info["mismatched_keys"])
    # Freshly initialised (v4: normal(0, initializer_range), bias 0), not the checkpoint's first rows.
    assert float(model.classifier.bias.detach().abs().max()) == 0.0
    assert 0.005 < float(model.classifier.weight.detach().std()) < 0.05
    # Everything else came from the checkpoint.
    ref = W.BertForSequenceClassification.from_pretrained(two_label_dir)
    assert torch.equal(model.bert.pooler.dense.weight, ref.bert.pooler.dense.weight)


def test_other_overrides_apply_after_the_checkpoint_config(two_label_dir):
    model = W.BertForSequenceClassification.from_pretrained(
        two_label_dir, id2label={0: "neg", 1: "pos"}, hidden_dropout_prob=0.0, problem_type="regression")
    assert model.config.label2id == {"neg": 0, "pos": 1}
    assert model.config.hidden_dropout_prob == 0.0 and model.config.problem_type == "regression"
    gpt_dir = two_label_dir.parent / "gpt2"
    W.GPT2LMHeadModel(W.GPT2Config(**GPT2)).save_pretrained(gpt_dir)
    gpt = W.GPT2LMHeadModel.from_pretrained(gpt_dir, attention_probs_dropout_prob=0.0, resid_pdrop=0.0)
    assert gpt.config.attn_pdrop == 0.0 and gpt.config.resid_pdrop == 0.0  # an alias works as an override
    with pytest.raises(ValueError, match="hidden_dropout_prob must be in"):
        W.BertForSequenceClassification.from_pretrained(two_label_dir, hidden_dropout_prob=3.0)


def test_given_config_object_is_not_changed(two_label_dir):
    config = W.BertConfig.from_pretrained(two_label_dir)
    model = W.BertForSequenceClassification.from_pretrained(two_label_dir, config=config, num_labels=3,
                                                            ignore_mismatched_sizes=True)
    assert model.config.num_labels == 3 and config.num_labels == 2


def test_encoder_decoder_overrides(tmp_path):
    enc = W.BertModel(W.BertConfig(**BERT))
    dec = W.BertLMHeadModel(W.BertConfig(**BERT, is_decoder=True, add_cross_attention=True))
    W.EncoderDecoderModel(encoder=enc, decoder=dec).save_pretrained(tmp_path)
    model = W.EncoderDecoderModel.from_pretrained(tmp_path, decoder_start_token_id=5, pad_token_id=0)
    assert model.config.decoder_start_token_id == 5 and model.config.pad_token_id == 0
    with pytest.raises(TypeError, match="not_a_field"):
        W.EncoderDecoderModel.from_pretrained(tmp_path, not_a_field=1)
    side = W.EncoderDecoderModel.from_encoder_decoder_pretrained(
        tmp_path / "none", tmp_path / "none", encoder_model=enc, decoder_model=dec, decoder_start_token_id=2)
    assert side.config.decoder_start_token_id == 2


# ---- 5. from_pretrained(None, config=..., state_dict=...) -------------------------------------------------
def test_from_pretrained_none_with_config_and_state_dict(two_label_dir):
    ref = W.BertForSequenceClassification.from_pretrained(two_label_dir)
    sd = ref.state_dict()  # our names are accepted as well as transformers'
    for state in (sd, export_state_dict(ref)):
        model = W.BertForSequenceClassification.from_pretrained(None, config=ref.config, state_dict=state)
        ids = torch.randint(3, 99, (2, 6))
        with torch.no_grad():
            assert_close(model(ids).logits, ref(ids).logits, "built from config + state_dict")
        assert not model.training
    auto = W.AutoModelForSequenceClassification.from_pretrained(None, config=ref.config,
                                                                 state_dict=export_state_dict(ref), num_labels=2)
    assert type(auto) is W.BertForSequenceClassification
    # transformers 5.23 takes the same call.
    theirs = transformers.BertForSequenceClassification.from_pretrained(
        None, config=transformers.BertConfig.from_pretrained(two_label_dir), state_dict=export_state_dict(ref))
    with torch.no_grad():
        ids = torch.randint(3, 99, (2, 6))
        assert_close(theirs(ids).logits, ref(ids).logits, "transformers from the same state dict")


def test_from_pretrained_none_errors():
    config = W.BertConfig(**BERT)
    for kwargs, shown in (({}, "got neither)"), ({"config": config}, "got config)"),
                          ({"state_dict": {}}, "got state_dict)")):
        with pytest.raises(ValueError, match=r"from_pretrained\(None, \.\.\.\) needs both config= and "
                                             r"state_dict= \(" + shown.replace(")", r"\)")):
            W.BertModel.from_pretrained(None, **kwargs)
    with pytest.raises(ValueError, match="needs both"):
        W.EncoderDecoderModel.from_pretrained(None)
    # A state dict that lacks backbone weights is still an error, not a random init.
    with pytest.raises(LoadingError, match="lacks"):
        W.BertModel.from_pretrained(None, config=config, state_dict={})


# ---- 3. small v4 API ---------------------------------------------------------------------------------------
def test_main_input_name():
    for model in (W.BertModel(W.BertConfig(**BERT)), W.GPT2LMHeadModel(W.GPT2Config(**GPT2)),
                  W.RobertaForMaskedLM(W.RobertaConfig(**BERT))):
        assert model.main_input_name == "input_ids"
        assert model.main_input_name == getattr(transformers, type(model).__name__).main_input_name
    assert W.EncoderDecoderModel.main_input_name == "input_ids"


def test_get_text_config_and_is_composition():
    bert = W.BertConfig(**BERT)
    assert bert.get_text_config() is bert and bert.get_text_config(decoder=True) is bert
    enc_dec = W.EncoderDecoderConfig.from_encoder_decoder_configs(W.BertConfig(**BERT), W.GPT2Config(**GPT2))
    # v4.46: "decoder" is among the names searched in both modes, "encoder" in neither.
    assert enc_dec.get_text_config() is enc_dec.decoder
    assert enc_dec.get_text_config(decoder=True) is enc_dec.decoder
    assert W.EncoderDecoderConfig.is_composition is True
    assert W.BertConfig.is_composition is False and W.GPT2Config.is_composition is False
    theirs = transformers.EncoderDecoderConfig.from_encoder_decoder_configs(
        transformers.BertConfig(**BERT), transformers.GPT2Config(**GPT2))
    assert theirs.get_text_config(decoder=True).model_type == enc_dec.get_text_config(decoder=True).model_type


def test_torch_dtype_beside_dtype(tmp_path):
    config = W.BertConfig(**BERT, torch_dtype="float16")
    assert config.dtype == "float16" and config.torch_dtype is torch.float16
    config.torch_dtype = torch.bfloat16
    assert config.dtype == "bfloat16" and config.torch_dtype is torch.bfloat16
    config.dtype = "float32"
    assert config.torch_dtype is torch.float32
    config.save_pretrained(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["torch_dtype"] == data["dtype"] == "float32"  # v4 reads torch_dtype, v5 dtype
    assert W.BertConfig.from_pretrained(tmp_path).torch_dtype is torch.float32
    model = W.BertModel.from_pretrained(None, config=W.BertConfig(**BERT),
                                        state_dict=W.BertModel(W.BertConfig(**BERT)).state_dict(),
                                        torch_dtype=torch.float16)
    assert model.dtype == torch.float16 and model.config.torch_dtype is torch.float16
    assert W.BertConfig(**BERT).torch_dtype is None


# ---- 7. padding without attention_mask ------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda: W.BertModel(W.BertConfig(**BERT)),
                                  lambda: W.GPT2LMHeadModel(W.GPT2Config(**GPT2)),
                                  lambda: W.BertGenerationEncoder(W.BertGenerationConfig(**BERT)),
                                  lambda: W.RobertaModel(W.RobertaConfig(**BERT))],
                         ids=["bert", "gpt2", "bert-generation", "roberta"])
def test_padding_without_mask_warns_once(make, caplog):
    model = make().eval()
    pad = model.config.pad_token_id
    padded = torch.tensor([[5, 6, 7, pad], [5, 6, pad, pad]])
    clean = torch.tensor([[5, 6, pad, 7]])  # pad only inside: v4 looks at the first and last column only
    with caplog.at_level(logging.WARNING, logger="warmstart.models"):
        model(clean)
        model(padded, attention_mask=torch.ones_like(padded))
        assert not [r for r in caplog.records if r.name == "warmstart.models"]
        model(padded)
        model(padded)
    records = [r for r in caplog.records if r.name == "warmstart.models"]
    assert len(records) == 1, records
    assert "attention_mask" in records[0].getMessage() and str(pad) in records[0].getMessage()


def test_padding_warning_names_the_shared_special_token(caplog):
    model = W.GPT2LMHeadModel(W.GPT2Config(**{**GPT2, "eos_token_id": 0}))
    with caplog.at_level(logging.WARNING, logger="warmstart.models"):
        model(torch.tensor([[5, 6, 0]]))
    (record,) = [r for r in caplog.records if r.name == "warmstart.models"]
    assert "eos_token_id" in record.getMessage()


def test_config_from_pretrained_label_overrides(two_label_dir):
    # v4 sets from_pretrained's keyword arguments on the loaded config, so they win over the stored label maps.
    assert W.BertConfig.from_pretrained(two_label_dir, num_labels=42).num_labels == 42
    assert W.AutoConfig.from_pretrained(two_label_dir, num_labels=5).id2label[4] == "LABEL_4"
    assert transformers.BertConfig.from_pretrained(two_label_dir, num_labels=42).num_labels == 42
    relabelled = W.AutoConfig.from_pretrained(two_label_dir, id2label={0: "a", 1: "b", 2: "c"})
    assert relabelled.num_labels == 3 and relabelled.label2id == {"a": 0, "b": 1, "c": 2}
