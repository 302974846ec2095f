"""The decoder mask made from labels never hides the start token, even where it is also the pad token.

bert2gpt2 is the case: GPT-2's eos is its bos and its pad, so decoder_start_token_id == pad_token_id, and
transformers' ``decoder_input_ids != pad_token_id`` hides position 0 (its first prediction then reads a fully masked
attention row). Ours keeps it visible: labels alone give what the mask with column 0 forced to 1 gives.
"""
import logging

import pytest
import torch
import transformers as T

from parity import TINY, assert_close, hf_encoder_decoder
from warmstart.models.encoder_decoder import EncoderDecoderModel

EOS = 98  # GPT-2's bos = eos = pad, and the decoder start token
GPT2_TINY = dict(vocab_size=99, n_embd=TINY["hidden_size"], n_layer=2, n_head=4, n_positions=64, resid_pdrop=0.0,
                 embd_pdrop=0.0, attn_pdrop=0.0, initializer_range=0.2, bos_token_id=EOS, eos_token_id=EOS,
                 pad_token_id=EOS)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bert2gpt2")
    hf = hf_encoder_decoder(T.BertConfig(**TINY), T.GPT2Config(**GPT2_TINY), start=EOS)
    assert hf.config.pad_token_id == hf.config.decoder_start_token_id == EOS
    hf.save_pretrained(folder)
    return hf.eval(), EncoderDecoderModel.from_pretrained(folder)


def _batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(4, 97, (2, 9), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    labels = torch.randint(4, 97, (2, 6), generator=g)
    labels[:, -1] = EOS  # targets end with eos, as GPT-2's tokenizer gives them
    labels[1, 4:] = -100  # ignored: these become padding in the shifted decoder input
    return ids, mask, labels


def _start_visible(ours, labels):
    dec = ours.prepare_decoder_input_ids_from_labels(labels)
    mask = (dec != ours.config.pad_token_id).long()
    assert not mask[:, 0].any()  # what transformers would hide
    mask[:, 0] = 1
    return mask


def test_labels_alone_keep_the_start_position_visible(pair):
    _, ours = pair
    ids, mask, labels = _batch()
    with torch.no_grad():
        implicit = ours(input_ids=ids, attention_mask=mask, labels=labels)
        explicit = ours(input_ids=ids, attention_mask=mask, labels=labels,
                        decoder_attention_mask=_start_visible(ours, labels))
    assert_close(implicit.logits, explicit.logits, "labels alone vs start-visible mask", atol=0.0)
    assert_close(implicit.loss, explicit.loss, "loss", atol=0.0)


def test_matches_transformers_given_the_start_visible_mask(pair):
    # transformers computes the same once the start position is visible to it too.
    hf, ours = pair
    ids, mask, labels = _batch()
    with torch.no_grad():
        a = hf(input_ids=ids, attention_mask=mask, labels=labels, decoder_attention_mask=_start_visible(ours, labels))
        b = ours(input_ids=ids, attention_mask=mask, labels=labels)
    scored = labels != -100
    assert_close(a.logits[scored], b.logits[scored], "logits")
    assert_close(a.loss, b.loss, "loss")


def test_start_equal_to_pad_is_warned_once_per_model(pair, caplog):
    _, ours = pair
    ours._warned_start_is_pad = False  # another test of this module may have used the model first
    ids, mask, labels = _batch()
    with caplog.at_level(logging.WARNING, logger="warmstart"), torch.no_grad():
        ours(input_ids=ids, attention_mask=mask, labels=labels)
        ours(input_ids=ids, attention_mask=mask, labels=labels)
        ours(input_ids=ids, attention_mask=mask, labels=labels, decoder_attention_mask=_start_visible(ours, labels))
    warned = [r for r in caplog.records if "decoder_start_token_id = pad_token_id = 98" in r.getMessage()]
    assert len(warned) == 1
