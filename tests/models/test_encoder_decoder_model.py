"""EncoderDecoderModel behaviour beyond plain parity: construction paths, argument routing, label shifting,
tie_encoder_decoder, resizing, gradient checkpointing, loading options and the errors users meet first."""
import logging

import pytest
import torch
import transformers as T
from safetensors.torch import load_file, save_file

import warmstart as W
from parity import TINY, assert_close, spread_weights
from warmstart.checkpoint.composite import export_composite_state_dict
from warmstart.checkpoint.pretrained import LoadingError
from warmstart.models.encoder_decoder import EncoderDecoderConfig, EncoderDecoderModel


def _config(**kw):
    config = EncoderDecoderConfig.from_encoder_decoder_configs(W.BertConfig(**TINY), W.BertConfig(**TINY), **kw)
    config.decoder_start_token_id, config.pad_token_id = 3, 0
    return config


def _hf_and_ours(tmp_path, **dec):
    torch.manual_seed(0)
    config = T.EncoderDecoderConfig.from_encoder_decoder_configs(T.BertConfig(**TINY), T.BertConfig(**{**TINY, **dec}))
    config.decoder_start_token_id, config.pad_token_id = 3, 0
    hf = T.EncoderDecoderModel(config=config).eval()
    spread_weights(hf)
    hf.save_pretrained(tmp_path / "hf")
    return hf, EncoderDecoderModel.from_pretrained(tmp_path / "hf")


def _batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(4, 97, (2, 7), generator=g)
    mask = torch.tensor([[1] * 7, [1] * 5 + [0] * 2])
    labels = torch.randint(4, 97, (2, 5), generator=g)
    return ids * mask, mask, labels


# ---- construction ------------------------------------------------------------------------------------------
def test_built_from_config_through_the_auto_registry():
    model = EncoderDecoderModel(_config())
    assert type(model.encoder) is W.BertModel and type(model.decoder) is W.BertLMHeadModel
    assert model.get_encoder() is model.encoder and model.get_decoder() is model.decoder
    # One config object per side, shared down to the backbone that reads it.
    assert model.decoder.config is model.config.decoder and model.decoder.bert.config is model.config.decoder
    assert model.get_input_embeddings() is model.encoder.embeddings.word_embeddings
    assert model.get_output_embeddings() is model.decoder.cls.decoder
    assert model.get_output_embeddings().weight is model.decoder.bert.embeddings.word_embeddings.weight
    assert model.get_output_embeddings().weight is not model.get_input_embeddings().weight
    assert not hasattr(model, "enc_to_dec_proj")


def test_built_from_instances_keeps_their_weights():
    torch.manual_seed(0)
    encoder = W.BertModel(W.BertConfig(**TINY))
    decoder = W.BertLMHeadModel(W.BertConfig(**TINY, is_decoder=True, add_cross_attention=True))
    before = {k: v.clone() for k, v in {**encoder.state_dict(), **decoder.state_dict()}.items()}
    model = EncoderDecoderModel(encoder=encoder, decoder=decoder)
    assert model.encoder is encoder and model.decoder is decoder
    after = {**encoder.state_dict(), **decoder.state_dict()}
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.config.decoder.is_decoder and model.config.decoder.add_cross_attention


def test_different_hidden_sizes_add_a_projection():
    config = EncoderDecoderConfig.from_encoder_decoder_configs(
        W.BertConfig(**TINY), W.BertConfig(**{**TINY, "hidden_size": 48}))
    model = EncoderDecoderModel(config)
    assert (model.enc_to_dec_proj.in_features, model.enc_to_dec_proj.out_features) == (32, 48)


def test_construction_errors():
    with pytest.raises(ValueError, match="needs a config, or both an encoder and a decoder"):
        EncoderDecoderModel(encoder=W.BertModel(W.BertConfig(**TINY)))
    with pytest.raises(TypeError, match="config must be an EncoderDecoderConfig, got BertConfig"):
        EncoderDecoderModel(W.BertConfig(**TINY))
    with pytest.raises(ValueError, match="encoder must be a bare model without an LM head, got BertForMaskedLM"):
        EncoderDecoderModel(encoder=W.BertForMaskedLM(W.BertConfig(**TINY)),
                            decoder=W.BertLMHeadModel(W.BertConfig(**TINY, is_decoder=True, add_cross_attention=True)))
    with pytest.raises(ValueError, match="decoder BertLMHeadModel has no cross-attention"):
        EncoderDecoderModel(encoder=W.BertModel(W.BertConfig(**TINY)),
                            decoder=W.BertLMHeadModel(W.BertConfig(**TINY, is_decoder=True)))


def test_from_encoder_decoder_pretrained_routes_prefixed_arguments(tmp_path, caplog):
    torch.manual_seed(0)
    T.BertModel(T.BertConfig(**TINY)).save_pretrained(tmp_path / "enc")
    T.BertModel(T.BertConfig(**{**TINY, "hidden_size": 48})).save_pretrained(tmp_path / "dec")
    with caplog.at_level(logging.WARNING, logger="warmstart"):
        model = EncoderDecoderModel.from_encoder_decoder_pretrained(
            tmp_path / "enc", tmp_path / "dec", encoder_hidden_dropout_prob=0.0, decoder_bos_token_id=5,
            decoder_start_token_id=3, pad_token_id=0, encoder_add_pooling_layer=False)
    assert "newly initialised" in caplog.text and "crossattention" in caplog.text
    assert model.config.encoder.hidden_dropout_prob == 0.0 and model.config.decoder.bos_token_id == 5
    assert (model.config.decoder_start_token_id, model.config.pad_token_id) == (3, 0)
    assert model.encoder.pooler is None  # a model argument, not a config field, reached the encoder
    assert model.config.decoder.is_decoder and model.config.decoder.add_cross_attention
    assert model.enc_to_dec_proj.out_features == 48 and not model.training
    ref = T.EncoderDecoderModel.from_encoder_decoder_pretrained(str(tmp_path / "enc"), str(tmp_path / "dec"))
    for ours_side, ref_side in ((model.encoder, ref.encoder), (model.decoder.bert, ref.decoder.bert)):
        assert_close(ours_side.embeddings.word_embeddings.weight, ref_side.embeddings.word_embeddings.weight, "emb")
    # A ready model can stand in for either side.
    again = EncoderDecoderModel.from_encoder_decoder_pretrained(None, tmp_path / "dec", encoder_model=model.encoder)
    assert again.encoder is model.encoder
    with pytest.raises(ValueError, match="pass decoder_pretrained_model_name_or_path"):
        EncoderDecoderModel.from_encoder_decoder_pretrained(tmp_path / "enc")


# ---- forward arguments ---------------------------------------------------------------------------------------
def test_labels_are_shifted_right_with_start_and_pad():
    model = EncoderDecoderModel(_config())
    labels = torch.tensor([[10, 11, 12, -100], [20, -100, -100, -100]])
    assert model.prepare_decoder_input_ids_from_labels(labels).tolist() == [[3, 10, 11, 12], [3, 20, 0, 0]]


@pytest.mark.parametrize("missing,match", [("decoder_start_token_id", "config.decoder_start_token_id is None"),
                                           ("pad_token_id", "config.pad_token_id is None")])
def test_missing_token_ids_are_named(missing, match):
    model = EncoderDecoderModel(_config())
    setattr(model.config, missing, None)
    ids, mask, labels = _batch()
    with pytest.raises(ValueError, match=match):
        model(input_ids=ids, labels=labels)


def test_bad_inputs_name_the_problem():
    model = EncoderDecoderModel(_config())
    ids, mask, labels = _batch()
    with pytest.raises(ValueError, match=r"labels contain 500, outside \[0, 99\)"):
        model(input_ids=ids, labels=labels.clamp(max=10) + torch.tensor([[490], [0]]))
    with pytest.raises(TypeError, match="labels must be integer token ids"):
        model(input_ids=ids, labels=labels.float())
    with pytest.raises(ValueError, match="needs decoder_input_ids, decoder_inputs_embeds or labels"):
        model(input_ids=ids)
    with pytest.raises(TypeError, match="got a bare tensor; pass \\(tensor,\\)"):
        model(encoder_outputs=torch.zeros(2, 7, 32), decoder_input_ids=labels)
    with pytest.raises(ValueError, match=r"labels shape \(2, 4\) does not match the decoder's output \(2, 5\)"):
        model(input_ids=ids, decoder_input_ids=labels, labels=labels[:, :4])


def test_padded_labels_that_are_scored_match_transformers(tmp_path):
    # Labels padded with the pad id instead of -100: the loss reads logits at masked decoder positions, so they
    # must be computed even though padding is otherwise skipped.
    hf, ours = _hf_and_ours(tmp_path)
    ids, mask, labels = _batch()
    labels[1, 3:] = 0
    a = hf(input_ids=ids, attention_mask=mask, labels=labels)
    b = ours(input_ids=ids, attention_mask=mask, labels=labels)
    assert_close(a.loss, b.loss, "loss with scored padding")
    assert_close(a.logits, b.logits, "logits")
    assert ours.decoder.bert.skip_padding  # the model setting is untouched: the forward passes skip_padding=False itself


def test_prefixed_kwargs_embeddings_and_encoder_outputs_forms(tmp_path):
    hf, ours = _hf_and_ours(tmp_path)
    ids, mask, labels = _batch()
    dec = ours.prepare_decoder_input_ids_from_labels(labels)
    types = torch.zeros_like(ids)
    types[:, 4:] = 1
    dec_types = torch.ones_like(dec)
    kw = dict(input_ids=ids, attention_mask=mask, decoder_input_ids=dec, token_type_ids=types,
              decoder_token_type_ids=dec_types, decoder_position_ids=torch.arange(2, 7).expand(2, 5))
    with torch.no_grad():
        ref = hf(**kw).logits
        got = ours(**kw)
        assert_close(got.logits, ref, "token_type_ids to the encoder, decoder_* to the decoder")
        enc = ours.encoder(ids, attention_mask=mask, token_type_ids=types)
        rest = {k: v for k, v in kw.items() if k not in ("input_ids", "token_type_ids")}
        for form in ((enc.last_hidden_state,), enc, [enc.last_hidden_state]):
            assert_close(ours(encoder_outputs=form, **rest).logits, ref, f"encoder_outputs as {type(form).__name__}")
        emb = ours.encoder.embeddings.word_embeddings(ids)
        dec_emb = ours.decoder.bert.embeddings.word_embeddings(dec)
        by_emb = ours(inputs_embeds=emb, decoder_inputs_embeds=dec_emb,
                      **{k: v for k, v in kw.items() if k not in ("input_ids", "decoder_input_ids")}).logits
        assert_close(by_emb, ref, "inputs_embeds / decoder_inputs_embeds")
        as_tuple = ours(**kw, labels=labels, return_dict=False)
    assert isinstance(as_tuple, tuple) and as_tuple[0].dim() == 0 and as_tuple[1].shape == (2, 5, TINY["vocab_size"])


# ---- weights -------------------------------------------------------------------------------------------------
def test_tie_encoder_decoder_v4_semantics(tmp_path):
    model = EncoderDecoderModel(_config(tie_encoder_decoder=True))
    enc, dec = model.encoder, model.decoder.bert
    assert enc.embeddings.word_embeddings.weight is dec.embeddings.word_embeddings.weight
    assert enc.encoder.layer[1].attn.qkv.weight is dec.encoder.layer[1].attn.qkv.weight
    assert enc.encoder.layer[0].mlp_norm.bias is dec.encoder.layer[0].mlp_norm.bias
    assert enc.pooler.dense.weight is not None and dec.encoder.layer[0].cross_attn is not None  # stay separate
    spread_weights(model)
    ids, mask, labels = _batch()
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=mask, labels=labels).logits
    model.save_pretrained(tmp_path / "tied")
    state = load_file(tmp_path / "tied" / "model.safetensors")
    # Both copies are written, so transformers v5 (which no longer ties) loads the same numbers.
    assert torch.equal(state["encoder.encoder.layer.0.attention.self.query.weight"],
                       state["decoder.bert.encoder.layer.0.attention.self.query.weight"])
    hf = T.EncoderDecoderModel.from_pretrained(tmp_path / "tied").eval()
    with torch.no_grad():
        assert_close(hf(input_ids=ids, attention_mask=mask, labels=labels).logits, ref, "transformers loads tied")
    back = EncoderDecoderModel.from_pretrained(tmp_path / "tied")
    assert back.encoder.embeddings.word_embeddings.weight is back.decoder.bert.embeddings.word_embeddings.weight
    # A v4-style file holding one copy of each shared weight loads too: the other copy is filled in.
    one_copy = {k: v for k, v in state.items() if not (k.startswith("decoder.bert.") and "crossattention" not in k)}
    (tmp_path / "v4").mkdir()
    save_file(one_copy, tmp_path / "v4" / "model.safetensors")
    (tmp_path / "v4" / "config.json").write_text((tmp_path / "tied" / "config.json").read_text())
    v4 = EncoderDecoderModel.from_pretrained(tmp_path / "v4")
    with torch.no_grad():
        assert_close(v4(input_ids=ids, attention_mask=mask, labels=labels).logits, ref, "one-copy checkpoint")


def test_resize_token_embeddings_resizes_both_sides():
    model = EncoderDecoderModel(_config(tie_encoder_decoder=True))
    new = model.resize_token_embeddings(120)
    assert new is model.get_input_embeddings() and new.num_embeddings == 120
    assert model.config.encoder.vocab_size == model.config.decoder.vocab_size == 120
    assert model.decoder.cls.decoder.weight is model.decoder.bert.embeddings.word_embeddings.weight
    assert model.encoder.embeddings.word_embeddings.weight is model.decoder.bert.embeddings.word_embeddings.weight
    out = model(input_ids=torch.tensor([[110, 5]]), labels=torch.tensor([[119, 4]]))
    assert out.logits.shape[-1] == 120
    other = EncoderDecoderModel(EncoderDecoderConfig.from_encoder_decoder_configs(
        W.BertConfig(**TINY), W.BertConfig(**{**TINY, "vocab_size": 50})))
    with pytest.raises(ValueError, match=r"encoder \(99 tokens\) and decoder \(50 tokens\) have different"):
        other.resize_token_embeddings(120)


def test_gradient_checkpointing_gives_the_same_gradients(tmp_path):
    _, ours = _hf_and_ours(tmp_path)
    ids, mask, labels = _batch()
    ours.train()
    grads = []
    for on in (False, True):
        ours.zero_grad()
        (ours.gradient_checkpointing_enable if on else ours.gradient_checkpointing_disable)()
        ours(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        grads.append({n: p.grad.clone() for n, p in ours.named_parameters() if p.grad is not None})
    assert ours.is_gradient_checkpointing and grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        assert_close(grads[0][name], grads[1][name], name)


def test_loading_options_and_errors(tmp_path, minilm_dir):
    hf, _ = _hf_and_ours(tmp_path, hidden_size=48)
    model, info = EncoderDecoderModel.from_pretrained(tmp_path / "hf", output_loading_info=True, dtype="bfloat16",
                                                      decoder_start_token_id=7)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert model.dtype == torch.bfloat16 and model.enc_to_dec_proj.weight.dtype == torch.bfloat16
    assert model.config.decoder_start_token_id == 7 and not model.training
    with pytest.raises(TypeError, match=r"unexpected arguments \['no_such_option'\]"):
        EncoderDecoderModel.from_pretrained(tmp_path / "hf", no_such_option=1)
    with pytest.raises(LoadingError, match="holds a 'bert' model, not an encoder-decoder"):
        EncoderDecoderModel.from_pretrained(minilm_dir)


SOURCES = {  # (encoder checkpoint, decoder checkpoint) as the hub publishes them: bare models, GPT-2 with its head
    "bert2bert": lambda: (T.BertModel(T.BertConfig(**TINY)), T.BertModel(T.BertConfig(**TINY))),
    "roberta2roberta": lambda: (T.RobertaModel(T.RobertaConfig(**TINY, pad_token_id=1)),
                                T.RobertaModel(T.RobertaConfig(**TINY, pad_token_id=1))),
    "bert2gpt2": lambda: (T.BertModel(T.BertConfig(**TINY)),
                          T.GPT2LMHeadModel(T.GPT2Config(vocab_size=99, n_embd=48, n_layer=2, n_head=4, n_positions=64))),
}


@pytest.mark.parametrize("name", list(SOURCES))
def test_warm_start_matches_transformers_weight_for_weight(tmp_path, name):
    torch.manual_seed(0)
    enc, dec = SOURCES[name]()
    enc.save_pretrained(tmp_path / "enc")
    dec.save_pretrained(tmp_path / "dec")
    ours = EncoderDecoderModel.from_encoder_decoder_pretrained(tmp_path / "enc", tmp_path / "dec")
    ref = T.EncoderDecoderModel.from_encoder_decoder_pretrained(str(tmp_path / "enc"), str(tmp_path / "dec"))
    ref.save_pretrained(tmp_path / "ref")
    mine, theirs = export_composite_state_dict(ours), load_file(tmp_path / "ref" / "model.safetensors")
    fresh = ("crossattention", "crossattn", "enc_to_dec_proj", "cls.predictions", "lm_head", "ln_cross_attn", "q_attn")
    assert set(mine) == set(theirs), sorted(set(mine) ^ set(theirs))  # the keys transformers writes
    for key, value in mine.items():
        if not any(f in key for f in fresh):  # newly initialised on both sides: random, not comparable
            assert torch.equal(value, theirs[key]), key
    assert ours.config.decoder.is_decoder and ours.config.decoder.add_cross_attention


def test_auto_model_for_seq2seq_lm_loads_an_encoder_decoder_folder(tmp_path):
    import warmstart as W
    from parity import TINY

    enc = W.BertModel(W.BertConfig(**TINY))
    dec = W.BertLMHeadModel(W.BertConfig(**TINY, is_decoder=True, add_cross_attention=True))
    W.EncoderDecoderModel(encoder=enc, decoder=dec).save_pretrained(tmp_path)
    assert type(W.AutoModelForSeq2SeqLM.from_pretrained(tmp_path)) is W.EncoderDecoderModel
