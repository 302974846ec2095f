"""generate() is token-identical to transformers 5.23 (model.generate there) for greedy and beam search.

Grids over the settings that change the search: length_penalty, early_stopping (True / False / "never"),
num_return_sequences, num_beams, the processors (repetition penalty, n-gram blocking, bad words, forced and
suppressed tokens, minimum lengths), several EOS ids, max/min lengths and padded batches — on tiny bert2bert,
roberta2roberta and bert2gpt2 encoder-decoders, tiny decoder-only models (BertLMHeadModel with left padding,
GPT-2, BertGeneration, RoBERTa) and a bert2bert warm-started from the MiniLM checkpoint.
"""
import itertools

import pytest
import torch

from gen_support import EOS, START, assert_same_tokens, batch

# Every (length_penalty, early_stopping) pair once, num_beams and num_return_sequences varied across them.
BEAM_GRID = [dict(num_beams=(2, 4)[i % 2], length_penalty=lp, early_stopping=es, num_return_sequences=(1, 2)[i // 2 % 2])
             for i, (lp, es) in enumerate(itertools.product((1.0, 0.5, 2.0, -1.0), (False, True, "never")))]
PROCESSORS = [dict(no_repeat_ngram_size=2), dict(repetition_penalty=1.3), dict(encoder_no_repeat_ngram_size=2),
              dict(bad_words_ids=[[10], [11, 12]]), dict(forced_bos_token_id=7), dict(forced_eos_token_id=9),
              dict(suppress_tokens=[5, 6]), dict(begin_suppress_tokens=[8]), dict(min_new_tokens=5),
              dict(min_length=6), dict(max_length=7), dict(sequence_bias=[[[17], -5.0], [[3, 17], 4.0]])]


def _compare(hf, ours, settings, ids, mask, prompt_len, **extra):
    for kw in settings:
        for eos in (None, EOS):
            if eos is None and any(k in kw for k in ("min_new_tokens", "min_length", "forced_eos_token_id")):
                continue  # these work through EOS (warmstart refuses them without one, see test_validation)
            kw = {"max_new_tokens": 10, **kw, "eos_token_id": eos} if "max_length" not in kw else {**kw,
                                                                                               "eos_token_id": eos}
            a = hf.generate(input_ids=ids, attention_mask=mask, **kw, **extra)
            b = ours.generate(input_ids=ids, attention_mask=mask, **kw)
            assert_same_tokens(a, b, prompt_len, eos, f"{kw}")


@pytest.mark.parametrize("name", ["bert2bert", "roberta2roberta", "bert2gpt2"])
def test_seq2seq_beam_grid(seq2seq_pair, name):
    hf, ours = seq2seq_pair(name)
    ids, mask = batch(pad_id=hf.config.encoder.pad_token_id or 0)
    _compare(hf, ours, BEAM_GRID, ids, mask, 1)


@pytest.mark.parametrize("name", ["bert2bert", "roberta2roberta", "bert2gpt2"])
def test_seq2seq_greedy_and_processors(seq2seq_pair, name):
    hf, ours = seq2seq_pair(name)
    ids, mask = batch(pad_id=hf.config.encoder.pad_token_id or 0)
    settings = [dict(max_new_tokens=12)] + [dict(num_beams=nb, **p) for p in PROCESSORS for nb in (1, 3)]
    _compare(hf, ours, settings, ids, mask, 1)


def test_seq2seq_unpadded_and_single_row(seq2seq_pair):
    hf, ours = seq2seq_pair("bert2bert")
    ids, _ = batch()
    for rows in (ids[:1], ids):
        _compare(hf, ours, [dict(), dict(num_beams=3)], rows, None, 1)


@pytest.mark.parametrize("name", ["bert", "gpt2", "bertgen"])
@pytest.mark.parametrize("padded", [False, True], ids=["full", "left-padded"])
def test_causal_lm(causal_pair, name, padded):
    hf, ours = causal_pair(name)
    pad = hf.config.pad_token_id if hf.config.pad_token_id is not None else 0
    ids, mask = batch(length=7, pad_id=pad, left=True)
    if not padded:
        ids, mask = batch(length=7, pad_id=pad, left=True)[0][:1].repeat(2, 1), None
    settings = [dict(), dict(repetition_penalty=1.5), dict(no_repeat_ngram_size=2), dict(min_new_tokens=4)]
    settings += [dict(num_beams=nb, length_penalty=lp, early_stopping=es, num_return_sequences=2)
                 for nb, lp, es in ((2, 1.0, False), (3, 2.0, True), (3, 0.5, "never"), (2, 2.0, "never"))]
    _compare(hf, ours, settings, ids, mask, ids.shape[1], pad_token_id=pad)


def test_roberta_causal_lm_with_v4_positions(causal_pair):
    """RoBERTa numbers positions from padding_idx + 1; transformers 5 generate() passes 0-based positions unless
    told otherwise, so the oracle gets the RoBERTa numbering explicitly."""
    hf, ours = causal_pair("roberta")
    for left in (False, True):
        ids, mask = batch(length=7, pad_id=1, left=True)
        if not left:
            ids, mask = ids[:1].repeat(2, 1), torch.ones(2, 7, dtype=torch.long)
        positions = (mask.cumsum(1) + 1) * mask + (1 - mask)  # pad + 1 + index among real tokens; pads: pad
        for kw in (dict(), dict(num_beams=3, num_return_sequences=2)):
            for eos in (None, EOS):
                a = hf.generate(input_ids=ids, attention_mask=mask, position_ids=positions, max_new_tokens=8,
                                eos_token_id=eos, **kw)
                b = ours.generate(input_ids=ids, attention_mask=mask, max_new_tokens=8, eos_token_id=eos, **kw)
                assert_same_tokens(a, b, 7, eos, f"left={left} {kw}")


def test_model_config_defaults_as_in_v4(seq2seq_pair):
    """The classic bert2bert recipe sets generation defaults on model.config; explicit arguments still win."""
    hf, ours = seq2seq_pair("bert2bert")
    ids, mask = batch()
    recipe = dict(num_beams=3, max_length=9, no_repeat_ngram_size=2, length_penalty=2.0, early_stopping=True,
                  eos_token_id=EOS)
    saved = {k: getattr(ours.config, k, None) for k in recipe}
    try:
        for k, v in recipe.items():
            setattr(ours.config, k, v)
        assert_same_tokens(hf.generate(ids, attention_mask=mask, **recipe), ours.generate(ids, attention_mask=mask),
                           1, EOS, "defaults from model.config")
        assert_same_tokens(hf.generate(ids, attention_mask=mask, **{**recipe, "num_beams": 1}),
                           ours.generate(ids, attention_mask=mask, num_beams=1), 1, EOS, "explicit argument wins")
    finally:
        for k, v in saved.items():
            setattr(ours.config, k, v)


TEXTS = ["The tower is 324 metres tall, about the same height as an 81-storey building, and the tallest structure "
         "in Paris. Its base is square, measuring 125 metres on each side.",
         "A man is playing a guitar on the street corner while people walk by."]
MINILM_SETTINGS = [
    dict(max_new_tokens=16),
    dict(max_new_tokens=16, repetition_penalty=1.2),
    dict(num_beams=4, max_length=20, no_repeat_ngram_size=3, length_penalty=2.0, early_stopping=True),
    dict(num_beams=4, max_new_tokens=12, num_return_sequences=2, early_stopping="never"),
    dict(num_beams=3, max_new_tokens=12, min_new_tokens=8, length_penalty=0.6),
]


def test_minilm_bert2bert(minilm_pair, minilm_tokenizer):
    hf, ours = minilm_pair
    enc = minilm_tokenizer(TEXTS, padding=True, return_tensors="pt")
    # [SEP] and "." end sequences: common enough that rows stop at different steps.
    eos = [minilm_tokenizer.sep_token_id, minilm_tokenizer.convert_tokens_to_ids(".")]
    for kw in MINILM_SETTINGS:
        a = hf.generate(**enc, eos_token_id=eos, **kw)
        b = ours.generate(**enc, eos_token_id=eos, **kw)
        assert_same_tokens(a, b, 1, eos, f"MiniLM bert2bert {kw}")
    assert ours.config.decoder_start_token_id == START + 98  # [CLS], the seeds' choice
