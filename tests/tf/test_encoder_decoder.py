"""TFEncoderDecoderModel against our PyTorch EncoderDecoderModel on the same weights: outputs, losses, v4's cache,
files both ways (h5, PyTorch folders with and without from_pt), warm starts, Keras fit, and the errors."""
import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import warmstart as ws

sys.path.insert(0, str(Path(__file__).parent))

from support import (SEQ2SEQ, assert_close, bert_config, gpt2_config, ids_and_mask, random_pt,  # noqa: E402
                     seq2seq_pt, to_np)

import warmstart.tf as wtf  # noqa: E402
from warmstart.tf.backend import tf  # noqa: E402

KINDS = list(SEQ2SEQ)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    cache = {}

    def get(kind):
        if kind not in cache:
            folder = tmp_path_factory.mktemp(kind)
            pt = seq2seq_pt(kind, folder)
            cache[kind] = (pt, wtf.TFEncoderDecoderModel.from_pretrained(folder, from_pt=True), folder)
        return cache[kind]
    return get


def _inputs(kind):
    pad = SEQ2SEQ[kind][5]
    ids, mask = ids_and_mask(pad=SEQ2SEQ[kind][5] if kind == "roberta2roberta" else 0)
    labels = np.random.RandomState(3).randint(3, 90, (2, 5)).astype(np.int64)
    labels[1, 3:] = -100
    dec_ids = np.random.RandomState(4).randint(3, 90, (2, 5)).astype(np.int64)
    dec_mask = np.ones_like(dec_ids)
    dec_mask[1, 4:] = 0
    return dict(ids=ids, mask=mask, labels=labels, dec_ids=dec_ids, dec_mask=dec_mask, pad=pad)


def _pt(pt, **kw):
    with torch.no_grad():
        return pt(**{k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()})


@pytest.mark.parametrize("kind", KINDS)
def test_outputs_and_losses_equal_pytorch(pairs, kind):
    pt, tfm, _ = pairs(kind)
    x = _inputs(kind)
    common = dict(input_ids=x["ids"], attention_mask=x["mask"], decoder_input_ids=x["dec_ids"],
                  decoder_attention_mask=x["dec_mask"], output_attentions=True, output_hidden_states=True)
    want, got = _pt(pt, **common), tfm(**common)
    for f in ("logits", "encoder_last_hidden_state"):
        assert_close(got[f], want[f], f)
    for f in ("decoder_hidden_states", "decoder_attentions", "cross_attentions", "encoder_hidden_states"):
        assert len(got[f]) == len(want[f])
        for i, (a, b) in enumerate(zip(got[f], want[f])):
            assert_close(a, b, f"{f}[{i}]")
    # labels only: shifted into the decoder inputs, the start token visible, the loss unshifted (PyTorch's)
    want, got = _pt(pt, input_ids=x["ids"], attention_mask=x["mask"], labels=x["labels"]), \
        tfm(input_ids=x["ids"], attention_mask=x["mask"], labels=x["labels"])
    assert tuple(got.loss.shape) == (1,)  # v4's TF loss shape
    assert_close(got.loss[0], want.loss, "loss from labels")
    assert_close(got.logits, want.logits, "logits from labels")
    # the seed's form: labels with explicit decoder inputs
    got = tfm(input_ids=x["ids"], decoder_input_ids=x["dec_ids"], labels=x["labels"])
    want = _pt(pt, input_ids=x["ids"], decoder_input_ids=x["dec_ids"], labels=x["labels"])
    assert_close(got.loss[0], want.loss, "loss with decoder_input_ids")
    # precomputed encoder outputs (a tuple, as v4 documents) and dict inputs
    enc = tfm.encoder(input_ids=x["ids"], attention_mask=x["mask"])
    again = tfm({"attention_mask": x["mask"], "decoder_input_ids": x["dec_ids"]}, encoder_outputs=(enc[0],))
    assert_close(again.logits, tfm(input_ids=x["ids"], attention_mask=x["mask"],
                                   decoder_input_ids=x["dec_ids"]).logits, "encoder_outputs")


@pytest.mark.parametrize("kind", ["bert2bert", "bert2gpt2"])
def test_v4_cache_decoding_equals_full_pass(pairs, kind):
    _, tfm, _ = pairs(kind)
    x = _inputs(kind)
    full = tfm(input_ids=x["ids"], attention_mask=x["mask"], decoder_input_ids=x["dec_ids"]).logits
    out = tfm(input_ids=x["ids"], attention_mask=x["mask"], decoder_input_ids=x["dec_ids"][:, :3], use_cache=True)
    steps = [out.logits]
    for t in range(3, 5):
        out = tfm(input_ids=x["ids"], attention_mask=x["mask"], decoder_input_ids=x["dec_ids"][:, t:t + 1],
                  past_key_values=out.past_key_values, use_cache=True)
        steps.append(out.logits)
    assert_close(tf.concat(steps, axis=1), full, "cached logits")


def test_files_both_ways(pairs, tmp_path):
    pt, tfm, _ = pairs("bert2gpt2")
    x = _inputs("bert2gpt2")
    call = dict(input_ids=x["ids"], attention_mask=x["mask"], decoder_input_ids=x["dec_ids"])
    want = tfm(**call).logits
    tfm.save_pretrained(tmp_path / "h5")
    import h5py

    with h5py.File(tmp_path / "h5" / "tf_model.h5") as f:  # v4's layout and names
        assert [n.decode() if isinstance(n, bytes) else n for n in f.attrs["layer_names"]] == \
            ["encoder", "decoder", "enc_to_dec_proj"]
        names = [n.decode() if isinstance(n, bytes) else n for n in f["encoder"].attrs["weight_names"]]
        assert names[0] == "tf_encoder_decoder_model/encoder/bert/embeddings/word_embeddings/weight:0"
    back = wtf.TFEncoderDecoderModel.from_pretrained(tmp_path / "h5")
    assert_close(back(**call).logits, want, "h5 round trip")
    back.save_pretrained(tmp_path / "again")
    assert (tmp_path / "h5" / "tf_model.h5").read_bytes() == (tmp_path / "again" / "tf_model.h5").read_bytes()
    tfm.save_pretrained(tmp_path / "pt", for_pytorch=True)
    pt_back = ws.EncoderDecoderModel.from_pretrained(tmp_path / "pt").eval()
    with torch.no_grad():
        got = pt_back(**{k: torch.from_numpy(v) for k, v in call.items()}).logits
    assert_close(got, want, "for_pytorch folder in our PyTorch class")


def test_from_pt_bin_folder(pairs, tmp_path):
    pt, tfm, _ = pairs("bert2bert")
    pt.save_pretrained(tmp_path, safe_serialization=False)
    assert (tmp_path / "pytorch_model.bin").is_file()
    model, info = wtf.TFEncoderDecoderModel.from_pretrained(tmp_path, from_pt=True, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []
    x = _inputs("bert2bert")
    call = dict(input_ids=x["ids"], attention_mask=x["mask"], decoder_input_ids=x["dec_ids"])
    assert_close(model(**call).logits, _pt(pt, **call).logits, "from .bin")


def test_warm_start_from_pytorch_and_tf_folders(tmp_path, caplog):
    enc = random_pt("BertModel", bert_config(), 0)
    enc.save_pretrained(tmp_path / "enc_pt")
    dec = random_pt("GPT2LMHeadModel", gpt2_config(n_embd=24), 1)  # a plain GPT-2 checkpoint
    dec.save_pretrained(tmp_path / "dec_pt")
    with caplog.at_level(logging.WARNING, logger="warmstart"):
        m = wtf.TFEncoderDecoderModel.from_encoder_decoder_pretrained(
            tmp_path / "enc_pt", tmp_path / "dec_pt", encoder_from_pt=True, decoder_from_pt=True,
            decoder_start_token_id=98, pad_token_id=98)
    assert m.config.decoder.add_cross_attention and m.config.decoder.is_decoder
    assert m.config.decoder_start_token_id == 98
    assert "enc_to_dec_proj" in caplog.text and "crossattention" in caplog.text
    ids, mask = ids_and_mask()
    with torch.no_grad():
        want = enc(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).last_hidden_state
    assert_close(m.encoder(input_ids=ids, attention_mask=mask).last_hidden_state, want, "warm-started encoder")
    # the same from TF folders (the seed's workaround: save each side, then warm-start)
    m.encoder.save_pretrained(tmp_path / "enc_tf")
    m.decoder.save_pretrained(tmp_path / "dec_tf")
    again = wtf.TFEncoderDecoderModel.from_encoder_decoder_pretrained(tmp_path / "enc_tf", tmp_path / "dec_tf")
    assert_close(again.decoder.transformer.wte.table, m.decoder.transformer.wte.table, "decoder from TF folder")


def test_fit_on_labels_in_the_input_dict(pairs):
    _, tfm, folder = pairs("bert2bert")
    model = wtf.TFEncoderDecoderModel.from_pretrained(folder)
    x = _inputs("bert2bert")
    data = {"input_ids": x["ids"], "attention_mask": x["mask"], "labels": x["labels"]}
    model.compile(optimizer=wtf.backend.keras.optimizers.Adam(1e-3), run_eagerly=True)  # no minutes of tracing
    before = float(model(data).loss[0])
    history = model.fit(data, epochs=3, batch_size=2, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert float(model(data).loss[0]) < before


def test_errors(pairs):
    _, tfm, _ = pairs("bert2bert")
    x = _inputs("bert2bert")
    with pytest.raises(ValueError, match="decoder_input_ids, decoder_inputs_embeds or labels"):
        tfm(input_ids=x["ids"])
    bad = x["labels"].copy()
    bad[0, 0] = 500
    with pytest.raises(ValueError, match="labels contain 500"):
        tfm(input_ids=x["ids"], labels=bad)
    enc = wtf.TFBertModel(bert_config())
    with pytest.raises(ValueError, match="no cross-attention"):
        wtf.TFEncoderDecoderModel(encoder=enc, decoder=wtf.TFBertLMHeadModel(bert_config(is_decoder=True)))
    with pytest.raises(ValueError, match="bare model"):
        wtf.TFEncoderDecoderModel(encoder=wtf.TFBertForMaskedLM(bert_config()), decoder=tfm.decoder)
    with pytest.raises(ValueError, match="needs a config, or both"):
        wtf.TFEncoderDecoderModel(encoder=enc)
    single = wtf.TFBertModel(bert_config())
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        single.save_pretrained(d)
        with pytest.raises(Exception, match="not an encoder-decoder"):
            wtf.TFEncoderDecoderModel.from_pretrained(d, config=tfm.config)
    assert to_np(tfm.prepare_decoder_input_ids_from_labels(x["labels"]))[1, 4] == 0  # -100 -> pad
