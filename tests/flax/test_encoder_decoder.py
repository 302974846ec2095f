"""FlaxEncoderDecoderModel: v4.57.1's files and outputs (tests/assets/flax_v4_seq2seq), our PyTorch
EncoderDecoderModel's logits and loss on the same weights (both directions of files), warm starts from single
models, _do_init=False, the cache against the full forward, and errors before any tracing."""
import json
import logging
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

import warmstart as W
from warmstart.checkpoint.flax_layout import flatten_tree
from warmstart.flax.loading import FlaxLoadingError

V4 = Path(__file__).parents[1] / "assets" / "flax_v4_seq2seq"
CASES = sorted(p.name for p in V4.iterdir() if p.is_dir())
ATOL = 1e-5
TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
GPT2 = dict(vocab_size=99, n_embd=48, n_layer=2, n_head=4, n_inner=37, n_positions=64, resid_pdrop=0.0,
            embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=98, eos_token_id=98)
ROBERTA = dict(TINY, pad_token_id=1, bos_token_id=0, eos_token_id=2, max_position_embeddings=66)
PAIRS = {"bert2bert": (W.BertConfig, TINY, W.BertConfig, TINY),
         "roberta2roberta": (W.RobertaConfig, ROBERTA, W.RobertaConfig, ROBERTA),
         "bert2gpt2": (W.BertConfig, TINY, W.GPT2Config, GPT2)}


def _v4(name):
    expected = load_file(V4 / name / "expected.safetensors")
    return {k[7:]: v for k, v in expected.items() if k.startswith("inputs.")}, expected


def _v4_positions(inputs):
    """v4 numbered every family's positions 0, 1, 2... (RoBERTa included); ours follow the family's rule."""
    return dict(position_ids=np.broadcast_to(np.arange(inputs["input_ids"].shape[1]), inputs["input_ids"].shape),
                decoder_position_ids=np.broadcast_to(np.arange(inputs["decoder_input_ids"].shape[1]),
                                                     inputs["decoder_input_ids"].shape))


@pytest.mark.parametrize("name", CASES)
def test_v4_file_loads_with_v4_outputs_and_saves_back_the_same_bytes(name, tmp_path):
    inputs, expected = _v4(name)
    tree = json.loads((V4 / name / "tree.json").read_text())
    model = W.FlaxEncoderDecoderModel.from_pretrained(V4 / name)
    fresh = flatten_tree(W.FlaxEncoderDecoderModel(model.config, _do_init=False).params_shape_tree)
    assert {k: list(v.shape) for k, v in fresh.items()} == {k: v["shape"] for k, v in tree["params"].items()}
    out = model(**inputs, **_v4_positions(inputs))
    for field in ("logits", "encoder_last_hidden_state"):
        assert np.abs(np.asarray(getattr(out, field)) - expected[f"outputs.{field}"]).max() <= ATOL, field
    model.save_pretrained(tmp_path)
    assert (tmp_path / "flax_model.msgpack").read_bytes() == (V4 / name / "flax_model.msgpack").read_bytes()
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == ["EncoderDecoderModel"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    built = {}

    def get(name):
        if name not in built:
            enc_cls, enc_kw, dec_cls, dec_kw = PAIRS[name]
            config = W.EncoderDecoderConfig.from_encoder_decoder_configs(
                enc_cls(**enc_kw), dec_cls(**dec_kw, is_decoder=True, add_cross_attention=True),
                decoder_start_token_id=3, pad_token_id=0)
            torch.manual_seed(0)
            pt = W.EncoderDecoderModel(config).eval()
            with torch.no_grad():
                for p in pt.parameters():
                    if p.dim() == 1:
                        p.add_(0.1 * torch.randn(p.shape))
            folder = tmp_path_factory.mktemp(name)
            pt.save_pretrained(folder)
            built[name] = pt, W.FlaxEncoderDecoderModel.from_pretrained(folder, from_pt=True), folder
        return built[name]

    return get


def _batch(pad=0):
    g = np.random.default_rng(0)
    ids = g.integers(4, 97, (2, 7))
    mask = np.ones_like(ids)
    mask[1, 5:] = 0
    ids[mask == 0] = pad
    labels = g.integers(4, 97, (2, 5))
    labels[1, 3:] = -100
    return ids, mask, labels


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_logits_and_loss_equal_pytorch(pair, name):
    pt, fx, _ = pair(name)
    ids, mask, labels = _batch(pt.config.encoder.pad_token_id or 0)
    types = np.zeros_like(ids)
    types[:, 4:] = 1
    with torch.no_grad():
        want = pt(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask), labels=torch.from_numpy(labels),
                  token_type_ids=torch.from_numpy(types))
    got = fx(ids, attention_mask=mask, labels=labels, token_type_ids=types)
    # Where the decoder mask made from the labels hides a position, the PyTorch wing skips computing it (zeros)
    seen = np.asarray(fx._mask_from_labels(fx.prepare_decoder_input_ids_from_labels(labels))) == 1
    assert not seen.all()
    assert np.abs(np.asarray(got.logits) - want.logits.numpy())[seen].max() <= ATOL
    assert abs(float(got.loss) - want.loss.item()) <= ATOL
    states = np.abs(np.asarray(got.encoder_last_hidden_state) - want.encoder_last_hidden_state.numpy())
    assert states[mask == 1].max() <= ATOL  # (padded source positions: skipped by the PyTorch wing too)
    no_types = np.asarray(fx(ids, attention_mask=mask, labels=labels).logits)
    assert np.abs(no_types - np.asarray(got.logits)).max() > 1e-3, "token_type_ids reach the encoder"


@pytest.mark.parametrize("name", ["bert2bert", "bert2gpt2"])
def test_pytorch_reads_our_files_and_we_read_them_back(pair, name, tmp_path):
    pt, fx, _ = pair(name)
    ids, mask, labels = _batch()
    fx.save_pretrained(tmp_path / "pt", for_pytorch=True)
    back = W.EncoderDecoderModel.from_pretrained(tmp_path / "pt").eval()
    with torch.no_grad():
        want = back(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask), labels=torch.from_numpy(labels))
    got = fx(ids, attention_mask=mask, labels=labels)
    assert abs(float(got.loss) - want.loss.item()) <= ATOL
    seen = np.asarray(fx._mask_from_labels(fx.prepare_decoder_input_ids_from_labels(labels))) == 1
    assert np.abs(np.asarray(got.logits) - want.logits.numpy())[seen].max() <= ATOL
    for kw in (dict(), dict(safe_serialization=True)):
        fx.save_pretrained(tmp_path / "fx", **kw)
        again = W.FlaxEncoderDecoderModel.from_pretrained(tmp_path / "fx")
        assert np.array_equal(np.asarray(again(ids, attention_mask=mask, labels=labels).logits),
                              np.asarray(got.logits))
    # _do_init=False: (model, params), and every call takes params=
    lazy, params = W.FlaxEncoderDecoderModel.from_pretrained(tmp_path / "pt", _do_init=False)
    with pytest.raises(ValueError, match="_do_init=False"):
        lazy(ids, attention_mask=mask, labels=labels)
    out = lazy(ids, attention_mask=mask, labels=labels, params=params)
    assert np.abs(np.asarray(out.logits) - np.asarray(got.logits)).max() <= ATOL


def test_output_flags_and_tuples(pair):
    _, fx, _ = pair("bert2gpt2")
    ids, mask, _ = _batch()
    out = fx(ids, attention_mask=mask, decoder_input_ids=ids[:, :4], output_attentions=True,
             output_hidden_states=True)
    assert len(out.encoder_hidden_states) == len(out.decoder_hidden_states) == 3  # embeddings + 2 layers
    assert out.encoder_attentions[0].shape == (2, 4, 7, 7) and out.decoder_attentions[0].shape == (2, 4, 4, 4)
    assert out.cross_attentions[0].shape == (2, 4, 4, 7)
    plain = fx(ids, attention_mask=mask, decoder_input_ids=ids[:, :4], return_dict=False)
    assert isinstance(plain, tuple) and np.array_equal(np.asarray(plain[0]), np.asarray(out.logits))


def test_cached_decoding_equals_the_full_forward(pair):
    _, fx, _ = pair("bert2gpt2")
    ids, mask, _ = _batch()
    dec = np.random.default_rng(1).integers(4, 97, (2, 6))
    full = np.asarray(fx(ids, attention_mask=mask, decoder_input_ids=dec).logits)
    enc = fx.encode(ids, attention_mask=mask)
    cache = fx.init_cache(2, 8, enc)
    dmask = np.zeros((2, 8), np.int32)
    steps = []
    for t in range(dec.shape[1]):
        dmask[:, t] = 1
        out = fx.decode(dec[:, t:t + 1], enc, encoder_attention_mask=mask, decoder_attention_mask=dmask,
                        decoder_position_ids=np.full((2, 1), t), past_key_values=cache)
        cache = out.past_key_values
        steps.append(np.asarray(out.logits[:, 0]))
    assert np.abs(np.stack(steps, 1) - full).max() <= ATOL
    whole = fx.decode(dec, enc, encoder_attention_mask=mask)
    assert np.abs(np.asarray(whole.logits) - full).max() <= ATOL


def test_warm_start_from_single_models(tmp_path, caplog):
    """bert2gpt2 from a PyTorch BERT and a PyTorch GPT-2: each side's weights as stored, the cross-attention and
    enc_to_dec_proj (32 vs 48 wide) reported new; a Flax encoder folder loads without from_pt."""
    torch.manual_seed(0)
    bert = W.BertModel(W.BertConfig(**TINY)).eval()
    gpt2 = W.GPT2LMHeadModel(W.GPT2Config(**GPT2)).eval()
    bert.save_pretrained(tmp_path / "bert")
    gpt2.save_pretrained(tmp_path / "gpt2")
    with caplog.at_level(logging.INFO, logger="warmstart"):
        fx = W.FlaxEncoderDecoderModel.from_encoder_decoder_pretrained(
            tmp_path / "bert", tmp_path / "gpt2", encoder_from_pt=True, decoder_from_pt=True,
            decoder_start_token_id=98, pad_token_id=0)
    text = caplog.text
    assert "crossattention" in text and "enc_to_dec_proj" in text
    assert fx.config.decoder.is_decoder and fx.config.decoder.add_cross_attention
    assert fx.config.decoder_start_token_id == 98
    ids = np.random.default_rng(0).integers(4, 97, (2, 7))
    with torch.no_grad():
        want = bert(torch.from_numpy(ids)).last_hidden_state.numpy()
    assert np.abs(np.asarray(fx.encode(ids).last_hidden_state) - want).max() <= ATOL
    wte = fx.params["decoder"]["transformer"]["wte"]["embedding"]
    assert np.array_equal(np.asarray(wte), gpt2.transformer.wte.weight.detach().numpy())
    assert fx.params["enc_to_dec_proj"]["kernel"].shape == (32, 48)
    out = fx(ids, decoder_input_ids=ids[:, :4])
    assert out.logits.shape == (2, 4, 99) and np.isfinite(np.asarray(out.logits)).all()
    W.FlaxBertModel.from_pretrained(tmp_path / "bert").save_pretrained(tmp_path / "bert_flax")
    flax_enc = W.FlaxEncoderDecoderModel.from_encoder_decoder_pretrained(tmp_path / "bert_flax", tmp_path / "bert",
                                                                         decoder_from_pt=True)
    assert np.abs(np.asarray(flax_enc.encode(ids).last_hidden_state) - want).max() <= ATOL
    assert "enc_to_dec_proj" not in flax_enc.params


def test_errors_name_the_problem(pair, tmp_path):
    pt, fx, folder = pair("bert2bert")
    ids, mask, labels = _batch()
    cases = [
        (dict(input_ids=ids), ValueError, "decoder_input_ids"),
        (dict(input_ids=ids, labels=np.where(labels > 0, 500, labels)), ValueError, "500"),
        (dict(input_ids=ids, labels=labels.astype(np.float32)), TypeError, "labels"),
        (dict(input_ids=ids, decoder_input_ids=ids[:1, :3]), ValueError, "rows"),
        (dict(input_ids=ids + 200, decoder_input_ids=ids), ValueError, "200|outside"),
        (dict(input_ids=ids, decoder_input_ids=ids[:, :3], decoder_attention_mask=mask), ValueError,
         "decoder_attention_mask"),
        (dict(input_ids=ids, labels=labels, train=True), ValueError, "dropout_rng"),
    ]
    for kwargs, error, match in cases:
        with pytest.raises(error, match=match):
            fx(**kwargs)
    with pytest.raises(TypeError, match="EncoderDecoderConfig"):
        W.FlaxEncoderDecoderModel(W.BertConfig(**TINY))
    W.FlaxBertModel(W.BertConfig(**TINY)).save_pretrained(tmp_path / "single")
    (tmp_path / "single" / "config.json").write_text((folder / "config.json").read_text())
    with pytest.raises(FlaxLoadingError, match="no decoder parameters.*not an encoder-decoder"):
        W.FlaxEncoderDecoderModel.from_pretrained(tmp_path / "single")
    with pytest.raises(ValueError, match="decoder_model="):
        W.FlaxEncoderDecoderModel.from_encoder_decoder_pretrained(folder, None)
    bigger = fx.config.to_dict()
    bigger["decoder"]["vocab_size"] = 120
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / "config.json").write_text(json.dumps(bigger))
    (tmp_path / "big" / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    with pytest.raises(FlaxLoadingError, match="shape mismatch.*word_embeddings"):
        W.FlaxEncoderDecoderModel.from_pretrained(tmp_path / "big")
    assert jnp.dtype(fx.dtype) == jnp.float32
