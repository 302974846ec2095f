"""What a head's forward takes: transformers' v4 arguments (by name or position), no unknown keyword swallowed,
and ``skip_padding`` as an argument rather than an attribute toggled from outside."""
import pytest
import torch

import warmstart as W
from parity import TINY, assert_close, inputs
from warmstart.models.encoder_decoder import EncoderDecoderModel

GPT2 = dict(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=64, resid_pdrop=0.0, embd_pdrop=0.0,
            attn_pdrop=0.0)
ROBERTA = dict(TINY, pad_token_id=1, max_position_embeddings=66)
BERTGEN = {k: v for k, v in TINY.items() if k != "type_vocab_size"}

HEADS = {
    "BertModel": lambda: W.BertModel(W.BertConfig(**TINY)),
    "BertForPreTraining": lambda: W.BertForPreTraining(W.BertConfig(**TINY)),
    "BertLMHeadModel": lambda: W.BertLMHeadModel(W.BertConfig(**TINY, is_decoder=True)),
    "BertForMaskedLM": lambda: W.BertForMaskedLM(W.BertConfig(**TINY)),
    "BertForNextSentencePrediction": lambda: W.BertForNextSentencePrediction(W.BertConfig(**TINY)),
    "BertForSequenceClassification": lambda: W.BertForSequenceClassification(W.BertConfig(**TINY)),
    "BertForTokenClassification": lambda: W.BertForTokenClassification(W.BertConfig(**TINY)),
    "BertForQuestionAnswering": lambda: W.BertForQuestionAnswering(W.BertConfig(**TINY)),
    "RobertaForCausalLM": lambda: W.RobertaForCausalLM(W.RobertaConfig(**ROBERTA, is_decoder=True)),
    "RobertaForMaskedLM": lambda: W.RobertaForMaskedLM(W.RobertaConfig(**ROBERTA)),
    "GPT2LMHeadModel": lambda: W.GPT2LMHeadModel(W.GPT2Config(**GPT2)),
    "BertGenerationDecoder": lambda: W.BertGenerationDecoder(W.BertGenerationConfig(**BERTGEN, is_decoder=True)),
}
CAUSAL = ["BertLMHeadModel", "RobertaForCausalLM", "GPT2LMHeadModel", "BertGenerationDecoder"]


@pytest.mark.parametrize("name", list(HEADS))
def test_unknown_keywords_are_named(name):
    model = HEADS[name]().eval()
    ids = torch.randint(4, 90, (2, 5))
    with pytest.raises(TypeError, match="no_such_argument"):
        model(ids, no_such_argument=1)


def test_multiple_choice_rejects_unknown_keywords_too():
    model = W.BertForMultipleChoice(W.BertConfig(**TINY)).eval()
    with pytest.raises(TypeError, match="no_such_argument"):
        model(torch.randint(4, 90, (2, 3, 5)), no_such_argument=1)


def test_next_sentence_prediction_keeps_the_v3_label_name():
    model = W.BertForNextSentencePrediction(W.BertConfig(**TINY)).eval()
    ids, labels = torch.randint(4, 90, (2, 5)), torch.tensor([0, 1])
    with torch.no_grad():
        assert_close(model(ids, next_sentence_label=labels).loss, model(ids, labels=labels).loss, "v3 name")
    with pytest.raises(TypeError, match=r"got unexpected arguments \['next_sentence_labels'\]"):
        model(ids, next_sentence_labels=labels)


@pytest.mark.parametrize("name", CAUSAL)
def test_positional_arguments_keep_v4_order(name):
    # Heads hand their arguments on by name; a positional call must still land on the same parameters.
    model = HEADS[name]().eval()
    ids, mask, _ = inputs(vocab=90)
    by_name = model(input_ids=ids, attention_mask=mask, labels=ids)
    if name == "GPT2LMHeadModel":  # v4 order: input_ids, past_key_values, attention_mask
        by_position = model(ids, None, mask, labels=ids)
    else:
        by_position = model(ids, mask, labels=ids)
    assert_close(by_name.logits, by_position.logits, "logits")
    assert_close(by_name.loss, by_position.loss, "loss")


@pytest.mark.parametrize("name", CAUSAL)
def test_causal_heads_take_skip_padding(name):
    model = HEADS[name]().eval()
    ids, mask, _ = inputs(vocab=90)
    real = mask.bool()
    kw = dict(attention_mask=mask, use_cache=False)  # a kept cache would need the padded positions too
    with torch.no_grad():
        skipped = model(ids, **kw).logits
        computed = model(ids, **kw, skip_padding=False).logits
        full = model(ids, **kw, output_hidden_states=True).logits  # states returned: never skipped
    assert_close(skipped[real], full[real], "real positions, padding skipped")
    assert_close(computed, full, "every position, padding computed")
    assert not torch.allclose(skipped[~real], full[~real])  # padded rows are only computed when asked


def test_scored_decoder_padding_is_computed_without_touching_the_decoder():
    # Labels on positions the derived decoder mask hides: the decoder is told to compute them (skip_padding=False
    # passed in), and no attribute of it changes.
    enc = W.BertModel(W.BertConfig(**TINY))
    dec = W.BertLMHeadModel(W.BertConfig(**TINY, is_decoder=True, add_cross_attention=True))
    model = EncoderDecoderModel(encoder=enc, decoder=dec).eval()
    model.config.decoder_start_token_id, model.config.pad_token_id = 3, 0
    ids, mask, _ = inputs(vocab=90)
    labels = torch.randint(4, 90, (2, 6))
    labels[1, 3:] = 0  # padded with the pad id, so scored
    dec_ids = model.prepare_decoder_input_ids_from_labels(labels)
    with torch.no_grad():
        got = model(input_ids=ids, attention_mask=mask, labels=labels)
        model.decoder.bert.skip_padding = False
        want = model(input_ids=ids, attention_mask=mask, decoder_input_ids=dec_ids,
                     decoder_attention_mask=(dec_ids != 0).long(), labels=labels)
    assert_close(got.logits, want.logits, "logits at every position")
    assert_close(got.loss, want.loss, "loss")


def test_encoder_decoder_names_unknown_arguments_as_passed():
    enc = W.BertModel(W.BertConfig(**TINY))
    dec = W.BertLMHeadModel(W.BertConfig(**TINY, is_decoder=True, add_cross_attention=True))
    model = EncoderDecoderModel(encoder=enc, decoder=dec).eval()
    ids = torch.randint(4, 90, (2, 5))
    with pytest.raises(TypeError, match=r"unexpected arguments \['decoder_no_such_argument'\]: the decoder"):
        model(input_ids=ids, decoder_input_ids=ids, decoder_no_such_argument=1)
    with pytest.raises(TypeError, match=r"unexpected arguments \['no_such_argument'\]: the encoder"):
        model(input_ids=ids, decoder_input_ids=ids, no_such_argument=1)
    enc_out = model.encoder(ids)
    with pytest.raises(TypeError, match=r"\['no_such_argument'\]"):  # even when the encoder does not run
        model(encoder_outputs=enc_out, decoder_input_ids=ids, no_such_argument=1)
