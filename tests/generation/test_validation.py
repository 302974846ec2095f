"""Bad settings fail before any work, each with a ValueError (or TypeError) naming the setting and its value."""
import pytest
import torch

import warmstart as W
from gen_support import EOS, batch
from parity import TINY


@pytest.fixture
def counted(seq2seq_pair):
    """The tiny bert2bert with a counter on its encoder: validation must fail before the encoder runs."""
    _, ours = seq2seq_pair("bert2bert")
    calls = []
    handle = ours.encoder.register_forward_hook(lambda *a: calls.append(1))
    yield ours, calls
    handle.remove()


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_beams=0), r"num_beams must be an integer >= 1, got 0"),
    (dict(num_beams=2, num_return_sequences=3), r"num_return_sequences \(3\) must be <= num_beams \(2\)"),
    (dict(num_return_sequences=2), r"num_return_sequences=2 needs several candidates"),
    (dict(do_sample=True, temperature=0.0), r"temperature must be a number > 0.*got 0.0"),
    (dict(do_sample=True, temperature=-1), r"temperature must be a number > 0.*got -1"),
    (dict(do_sample=True, top_p=0.0), r"top_p must be a number in \(0, 1\], got 0.0"),
    (dict(do_sample=True, top_p=1.5), r"top_p must be a number in \(0, 1\], got 1.5"),
    (dict(do_sample=True, top_k=-1), r"top_k must be an integer >= 0.*got -1"),
    (dict(typical_p=0), r"typical_p must be a number in \(0, 1\]"),
    (dict(min_p=2.0), r"min_p must be None or a number in \[0, 1\], got 2.0"),
    (dict(repetition_penalty=0), r"repetition_penalty must be a number > 0"),
    (dict(early_stopping="sometimes"), r"early_stopping must be True, False or 'never', got 'sometimes'"),
    (dict(max_new_tokens=0), r"max_new_tokens must be a positive integer, got 0"),
    (dict(no_repeat_ngram_size=-2), r"no_repeat_ngram_size must be an integer >= 0, got -2"),
    (dict(bad_words_ids=[1, 2]), r"bad_words_ids must be a non-empty list of non-empty lists"),
    (dict(eos_token_id=-2), r"eos_token_id must be None, a token id, a non-empty list .* or -1"),  # -1: v4's "never"
    (dict(num_beams=4, num_beam_groups=3), r"num_beams \(4\) must be a multiple of num_beam_groups \(3\)"),
    (dict(num_beams=4, num_beam_groups=2, do_sample=True), r"diverse beam search .* cannot sample"),
    (dict(max_time=0), r"max_time must be None or a number of seconds > 0"),
    (dict(stop_strings=[""]), r"stop_strings must be a non-empty string"),
    (dict(decoder_start_token_id=None, bos_token_id=None), r"decoder_start_token_id is not set"),
    (dict(min_new_tokens=3), r"min_new_tokens is set but eos_token_id is not"),
    (dict(min_length=5), r"min_length is set but eos_token_id is not"),
    (dict(stop_strings=["x"], tokenizer=object()), r"pad_token_id is not set"),
    (dict(max_length=100), r"needs 99 decoder positions, but the decoder has 64 \(max_position_embeddings = 64\)"),
    (dict(max_new_tokens=65), r"max_new_tokens=65 .* needs 65 decoder positions, but the decoder has 64"),
    (dict(max_length=1), r"the decoder prompt already has 1 tokens but max_length=1 allows at most 1"),
    (dict(eos_token_id=[5, 99]), r"eos_token_id=99 is outside the decoder's vocabulary \(size 99\)"),
    (dict(pad_token_id=120), r"pad_token_id=120 is outside the decoder's vocabulary"),
    (dict(guidance_scale=1.5), r"guidance_scale=1.5 is not supported"),
    (dict(frobnicate=1), r"neither generation settings nor inputs of EncoderDecoderModel: \['frobnicate'\]"),
    (dict(decoder_foo=1), r"\['decoder_foo'\]"),
    (dict(assistant_model=object(), num_beams=2), r"assisted generate .* only supported with greedy search"),
])
def test_bad_settings_fail_before_the_encoder_runs(counted, kwargs, match):
    ours, calls = counted
    ids, mask = batch()
    settings = {"pad_token_id": None} if "stop_strings" in kwargs else {}
    with pytest.raises(ValueError, match=match):
        ours.generate(ids, attention_mask=mask, **{**settings, **kwargs})
    assert not calls, "the encoder ran before the settings were rejected"


def test_bad_inputs(seq2seq_pair):
    _, ours = seq2seq_pair("bert2bert")
    with pytest.raises(ValueError, match=r"input_ids must be 2-D .* got shape \(5,\); add a batch dimension"):
        ours.generate(torch.arange(4, 9))
    with pytest.raises(TypeError, match=r"input_ids must hold integer token ids .* got dtype torch.float32"):
        ours.generate(torch.ones(1, 4))
    with pytest.raises(ValueError, match=r"pass the prompt either as `inputs` or as input_ids"):
        ours.generate(torch.ones(1, 4, dtype=torch.long), input_ids=torch.ones(1, 4, dtype=torch.long))
    with pytest.raises(TypeError, match=r"generation_config must be a GenerationConfig, got dict"):
        ours.generate(torch.ones(1, 4, dtype=torch.long), generation_config={"num_beams": 2})
    with pytest.raises(ValueError, match=r"an encoder-decoder needs encoder input"):
        ours.generate()


def test_models_that_cannot_generate():
    # An LM head built with is_decoder=False generates bidirectionally, as in v4 (test_v4_behaviours.py).
    bidirectional = W.BertLMHeadModel(W.BertConfig(**TINY))
    bare = W.BertModel(W.BertConfig(**TINY, is_decoder=True))
    with pytest.raises(ValueError, match=r"BertModel has no language-model head"):
        bare.generate(torch.ones(1, 3, dtype=torch.long))
    assert bare.generation_config is None and bidirectional.can_generate()
    masked = W.BertForMaskedLM(W.BertConfig(**TINY))
    assert not masked.can_generate() and masked.generation_config is None


def test_decoder_only_checks(causal_pair):
    _, ours = causal_pair("bert")
    ids = torch.randint(4, 90, (2, 5))
    with pytest.raises(ValueError, match=r"attention_mask shape \(2, 4\) does not match input_ids \(2, 5\)"):
        ours.generate(ids, attention_mask=torch.ones(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"neither generation settings nor inputs of BertLMHeadModel"):
        ours.generate(ids, encoder_outputs=None, decoder_input_ids=ids)
    with pytest.raises(ValueError, match=r"no input_ids and no bos_token_id"):
        ours.generate()
    with pytest.raises(ValueError, match=r"streaming follows a single sequence"):
        ours.generate(ids, streamer=W.TextStreamer(None), eos_token_id=EOS)
    with pytest.warns(UserWarning, match=r"right padding"):
        mask = torch.ones(2, 5, dtype=torch.long)
        mask[1, -2:] = 0
        ours.generate(ids, attention_mask=mask, max_new_tokens=2)
