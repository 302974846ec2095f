"""The TF generate() against our PyTorch generate() on the same weights: tokens identical and scores within 1e-5
for greedy search and beam search on bert2bert, roberta2roberta and bert2gpt2 and on causal LMs, with processors;
eager == XLA (scores included); sampling seeded; settings and inputs refused up front with the PyTorch wing's
errors. XLA compilations cost ~10-20 s each on 2 cores, so one test here compiles (test_search.py compiles the
beam search on a toy model)."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import warmstart as ws

sys.path.insert(0, str(Path(__file__).parent))

from support import (SEQ2SEQ, assert_close, bert_config, gpt2_config, ids_and_mask, pair,  # noqa: E402
                     seq2seq_pt)

import warmstart.tf as wtf  # noqa: E402
from warmstart.tf.backend import tf  # noqa: E402

ATOL = 1e-5


@pytest.fixture(scope="module")
def seq2seq(tmp_path_factory):
    cache = {}

    def get(kind):
        if kind not in cache:
            folder = tmp_path_factory.mktemp(kind)
            pt = seq2seq_pt(kind, folder)
            cache[kind] = (pt, wtf.TFEncoderDecoderModel.from_pretrained(folder, from_pt=True))
        return cache[kind]
    return get


def _source(kind):
    pad = SEQ2SEQ[kind][5] if kind == "roberta2roberta" else 0
    return ids_and_mask(pad=pad)


def _torch_generate(pt, ids, mask, **kw):
    with torch.no_grad():
        return pt.generate(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask), **kw)


def _same(got, want, scores: bool = True):
    np.testing.assert_array_equal(got.sequences.numpy(), want.sequences.numpy())
    if scores:
        assert len(got.scores) == len(want.scores)
        for i, (a, b) in enumerate(zip(got.scores, want.scores)):
            a, b = a.numpy(), b.numpy()
            np.testing.assert_array_equal(np.isneginf(a), np.isneginf(b), err_msg=f"masked tokens, step {i}")
            keep = ~np.isneginf(b)
            assert_close(a[keep], b[keep], f"scores step {i}", ATOL)


@pytest.mark.parametrize("kind", list(SEQ2SEQ))
def test_greedy_and_beams_equal_pytorch(seq2seq, kind):
    pt, tfm = seq2seq(kind)
    ids, mask = _source(kind)
    out = dict(output_scores=True, return_dict_in_generate=True)
    for kw in (dict(max_new_tokens=8), dict(max_new_tokens=8, num_beams=3, num_return_sequences=2,
                                              length_penalty=0.7, early_stopping=True)):
        want = _torch_generate(pt, ids, mask, **kw, **out)
        got = tfm.generate(ids, attention_mask=mask, **kw, **out)
        _same(got, want)
        if "num_beams" in kw:
            assert type(got).__name__ == "TFBeamSearchEncoderDecoderOutput"
            assert_close(got.sequences_scores, want.sequences_scores, "sequences_scores", ATOL)
            np.testing.assert_array_equal(got.beam_indices.numpy(), want.beam_indices.numpy())
        else:
            assert type(got).__name__ == "TFGreedySearchEncoderDecoderOutput"
    plain = tfm.generate(ids, attention_mask=mask, max_new_tokens=8)  # v4: a tensor of sequences
    assert isinstance(plain, tf.Tensor) and plain.dtype == tf.int32


def test_processors_equal_pytorch(seq2seq):
    pt, tfm = seq2seq("bert2bert")
    ids, mask = _source("bert2bert")
    kw = dict(max_new_tokens=9, no_repeat_ngram_size=2, repetition_penalty=1.4, min_new_tokens=4,
              bad_words_ids=[[16], [27, 16]], forced_eos_token_id=3, output_scores=True,
              return_dict_in_generate=True)
    _same(tfm.generate(ids, attention_mask=mask, **kw), _torch_generate(pt, ids, mask, **kw))
    kw = dict(kw, num_beams=2, suppress_tokens=[7, 60], decoder_start_token_id=5)
    _same(tfm.generate(ids, attention_mask=mask, **kw), _torch_generate(pt, ids, mask, **kw))


@pytest.mark.parametrize("name", ["GPT2LMHeadModel", "BertLMHeadModel"])
def test_causal_lm_equals_pytorch(tmp_path, name):
    config = gpt2_config() if name.startswith("GPT2") else bert_config(is_decoder=True)
    pt, tfm = pair(name, config, tmp_path)
    ids, mask = ids_and_mask(length=6)
    ids, mask = ids[:, ::-1].copy(), mask[:, ::-1].copy()  # left padding
    pt.generation_config.pad_token_id = tfm.generation_config.pad_token_id = 0
    out = dict(output_scores=True, return_dict_in_generate=True)
    for kw in (dict(max_new_tokens=6), dict(max_new_tokens=6, num_beams=3, repetition_penalty=1.2)):
        got = tfm.generate(ids, attention_mask=mask, **kw, **out)
        _same(got, _torch_generate(pt, ids, mask, **kw, **out))
        assert "DecoderOnly" in type(got).__name__


def test_xla_equals_eager_with_scores(seq2seq):
    _, tfm = seq2seq("bert2gpt2")
    ids, mask = _source("bert2gpt2")
    kw = dict(max_new_tokens=7, output_scores=True, return_dict_in_generate=True)
    eager = tfm.generate(ids, attention_mask=mask, **kw)
    traces = tfm.__dict__.get("_generate_traces", 0)
    xla = tfm.generate(ids, attention_mask=mask, jit_compile=True, **kw)
    np.testing.assert_array_equal(xla.sequences.numpy(), eager.sequences.numpy())
    assert len(xla.scores) == len(eager.scores)  # v4 dropped the scores under XLA
    for a, b in zip(xla.scores, eager.scores):
        assert_close(a, b, "XLA scores", ATOL)
    again = tfm.generate(ids[:, :6], attention_mask=mask[:, :6], jit_compile=True, **kw)  # same encoder bucket
    assert tfm.__dict__["_generate_traces"] == traces + 1, "the compiled program was traced again"
    assert again.sequences.shape[0] == 2


def test_sampling_is_seeded(seq2seq):
    _, tfm = seq2seq("bert2bert")
    ids, mask = _source("bert2bert")
    kw = dict(max_new_tokens=8, do_sample=True, top_k=20, top_p=0.9, temperature=1.5)
    a = tfm.generate(ids, attention_mask=mask, seed=[1, 2], **kw).numpy()
    np.testing.assert_array_equal(a, tfm.generate(ids, attention_mask=mask, seed=[1, 2], **kw).numpy())
    runs = [tfm.generate(ids, attention_mask=mask, seed=[s, 0], **kw).numpy() for s in range(3, 6)]
    assert any(r.shape != a.shape or (r != a).any() for r in runs)
    greedy = tfm.generate(ids, attention_mask=mask, max_new_tokens=8).numpy()
    np.testing.assert_array_equal(tfm.generate(ids, attention_mask=mask, max_new_tokens=8, do_sample=True,
                                               top_k=1, seed=[7, 7]).numpy(), greedy)
    beams = tfm.generate(ids, attention_mask=mask, max_new_tokens=5, do_sample=True, num_beams=2, seed=[1, 1],
                         return_dict_in_generate=True)
    assert type(beams).__name__ == "TFBeamSampleEncoderDecoderOutput"


def test_encoder_outputs_and_decoder_prefix(seq2seq):
    pt, tfm = seq2seq("bert2bert")
    ids, mask = _source("bert2bert")
    enc = tfm.encoder(input_ids=ids, attention_mask=mask)
    np.testing.assert_array_equal(
        tfm.generate(encoder_outputs=(enc.last_hidden_state,), attention_mask=mask, max_new_tokens=6).numpy(),
        tfm.generate(ids, attention_mask=mask, max_new_tokens=6).numpy())
    prefix = np.array([[2, 40], [2, 41]])
    want = _torch_generate(pt, ids, mask, max_new_tokens=5, decoder_input_ids=torch.from_numpy(prefix))
    got = tfm.generate(ids, attention_mask=mask, max_new_tokens=5, decoder_input_ids=prefix)
    np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_errors(seq2seq):
    pt, tfm = seq2seq("bert2bert")
    ids, mask = _source("bert2bert")
    for bad, match in ((dict(num_beams=0), "num_beams"), (dict(num_beam_groups=2, num_beams=2), "num_beam_groups"),
                       (dict(max_new_tokens=-1), "max_new_tokens"), (dict(eos_token_id=500), "eos_token_id=500"),
                       (dict(seed=[1]), "two integers"), (dict(output_attentions=True), "output_attentions"),
                       (dict(colour=1), "colour")):
        with pytest.raises(ValueError, match=match):
            tfm.generate(ids, **{"max_new_tokens": 3, **bad})
    with pytest.raises(ValueError, match="contains 120, outside"):
        tfm.generate(np.array([[5, 120]]))
    with pytest.raises(ValueError, match="2-D"):
        tfm.generate(np.array([5, 6]))
    with pytest.raises(TypeError, match="cannot generate"):
        wtf.TFBertModel(bert_config()).generate(ids)
    with pytest.raises(RuntimeError, match="jit_compile=True"):
        tf.function(lambda x: tfm.generate(x, max_new_tokens=2))(tf.constant(ids))


@pytest.mark.slow
def test_minilm_bert2bert_equals_pytorch(minilm_dir, tmp_path):
    tok = ws.AutoTokenizer.from_pretrained(minilm_dir)
    torch.manual_seed(0)
    pt = ws.EncoderDecoderModel.from_encoder_decoder_pretrained(minilm_dir, minilm_dir)
    pt.config.decoder_start_token_id, pt.config.pad_token_id = tok.cls_token_id, tok.pad_token_id
    pt.config.eos_token_id = tok.sep_token_id
    pt.save_pretrained(tmp_path)
    pt = ws.EncoderDecoderModel.from_pretrained(tmp_path).eval()
    tfm = wtf.TFEncoderDecoderModel.from_pretrained(tmp_path, from_pt=True)
    batch = tok(["The cat sat on the mat.", "A storm is expected to bring heavy rain to the coast tonight."],
                padding=True, return_tensors="np")
    ids, mask = batch["input_ids"], batch["attention_mask"]
    with torch.no_grad():
        want = pt(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                  decoder_input_ids=torch.from_numpy(ids[:, :6])).logits
    assert_close(tfm(input_ids=ids, attention_mask=mask, decoder_input_ids=ids[:, :6]).logits, want, "MiniLM logits")
    for kw in (dict(max_new_tokens=8), dict(max_new_tokens=8, num_beams=4)):
        np.testing.assert_array_equal(tfm.generate(ids, attention_mask=mask, **kw).numpy(),
                                      _torch_generate(pt, ids, mask, **kw).numpy())
