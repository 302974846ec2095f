"""Flax generate() on the causal LMs against our PyTorch generate (token-identical to transformers, proven in
tests/generation) on the same weights: greedy and beam search with left padding, the processors, sampling
reproducibility, the compile cache, v4's output classes, and the PyTorch wing's errors before any tracing.

Each distinct setting compiles one program (seconds), so the grid is small and the models are shared."""
import warnings

import jax
import numpy as np
import pytest
import torch

import warmstart as W

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, is_decoder=True)
GPT2 = dict(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_inner=37, n_positions=64, resid_pdrop=0.0,
            embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=98, eos_token_id=98, pad_token_id=0)
EOS = [20, 30, 40, 50, 60]  # several EOS ids: rows end at different times
FAMILIES = {
    "bert": (W.BertLMHeadModel, W.FlaxBertForCausalLM, lambda: W.BertConfig(**TINY, pad_token_id=0)),
    "roberta": (W.RobertaForCausalLM, W.FlaxRobertaForCausalLM,
                lambda: W.RobertaConfig(**TINY, bos_token_id=0, pad_token_id=1, eos_token_id=2)),
    "gpt2": (W.GPT2LMHeadModel, W.FlaxGPT2LMHeadModel, lambda: W.GPT2Config(**GPT2)),
}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    built = {}

    def get(name):
        if name not in built:
            pt_cls, fx_cls, config = FAMILIES[name]
            torch.manual_seed(0)
            pt = pt_cls(config()).eval()
            with torch.no_grad():
                for p in pt.parameters():  # non-trivial biases and norms
                    if p.dim() == 1:
                        p.add_(0.1 * torch.randn(p.shape))
            folder = tmp_path_factory.mktemp(name)
            pt.save_pretrained(folder)
            built[name] = pt, fx_cls.from_pretrained(folder)
        return built[name]

    return get


def _prompt(pad: int, rows: int = 3, length: int = 6):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(4, 97, (rows, length), generator=g)
    mask = torch.ones_like(ids)
    mask[1, :2] = 0  # left padding
    ids[mask == 0] = pad
    return ids, mask


def _same_tokens(flax_seq, torch_seq, pad):
    """Flax sequences are v4's (rows, max_length), padded after the end; PyTorch's stop at the longest row."""
    flax_seq, torch_seq = np.asarray(flax_seq), torch_seq.numpy()
    n = torch_seq.shape[1]
    np.testing.assert_array_equal(flax_seq[:, :n], torch_seq)
    assert (flax_seq[:, n:] == pad).all()


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_greedy_and_beams_equal_pytorch(pair, name):
    pt, fx = pair(name)
    pad = pt.config.pad_token_id
    ids, mask = _prompt(pad)
    for kw in (dict(max_new_tokens=10, eos_token_id=EOS), dict(max_new_tokens=10, num_beams=3, eos_token_id=EOS,
                                                                num_return_sequences=2)):
        want = pt.generate(ids, attention_mask=mask, **kw)
        out = fx.generate(ids.numpy(), attention_mask=mask.numpy(), **kw)
        assert type(out).__name__ == ("FlaxBeamSearchOutput" if "num_beams" in kw else "FlaxGreedySearchOutput")
        assert out.sequences.shape == (ids.shape[0] * kw.get("num_return_sequences", 1), ids.shape[1] + 10)
        _same_tokens(out.sequences, want, pad)
    beams = pt.generate(ids, attention_mask=mask, return_dict_in_generate=True, output_scores=True, **kw)
    np.testing.assert_allclose(np.asarray(out.scores), beams.sequences_scores.numpy(), atol=1e-5)


def test_processors_equal_pytorch(pair):
    """min_new_tokens, no_repeat_ngram_size, repetition_penalty (left padding skipped), bad words (single and
    multi-token), forced EOS, length_penalty with early stopping: the same tokens as PyTorch."""
    pt, fx = pair("bert")
    ids, mask = _prompt(0)
    settings = (dict(max_new_tokens=12, eos_token_id=EOS, min_new_tokens=4, no_repeat_ngram_size=2,
                     repetition_penalty=1.3, bad_words_ids=[[5], [7, 8]], forced_eos_token_id=20),
                dict(max_new_tokens=12, eos_token_id=EOS, num_beams=2, length_penalty=0.5, early_stopping=True,
                     no_repeat_ngram_size=3))
    for kw in settings:
        want = pt.generate(ids, attention_mask=mask, **kw)
        _same_tokens(fx.generate(ids.numpy(), attention_mask=mask.numpy(), **kw).sequences, want, 0)


def test_sampling_is_reproducible_from_prng_key(pair):
    _, fx = pair("gpt2")
    ids, mask = _prompt(0)
    kw = dict(do_sample=True, top_k=10, top_p=0.9, temperature=0.7, max_new_tokens=8, num_return_sequences=2)
    a = fx.generate(ids.numpy(), attention_mask=mask.numpy(), prng_key=jax.random.PRNGKey(3), **kw)
    b = fx.generate(ids.numpy(), attention_mask=mask.numpy(), prng_key=jax.random.PRNGKey(3), **kw)
    c = fx.generate(ids.numpy(), attention_mask=mask.numpy(), prng_key=jax.random.PRNGKey(4), **kw)
    assert type(a).__name__ == "FlaxSampleOutput" and a.sequences.shape == (6, 14)
    np.testing.assert_array_equal(a.sequences, b.sequences)
    assert (np.asarray(a.sequences) != np.asarray(c.sequences)).any()
    # the filters hold: with top_k=1 sampling is greedy
    greedy = fx.generate(ids.numpy(), attention_mask=mask.numpy(), max_new_tokens=8).sequences
    one = fx.generate(ids.numpy(), attention_mask=mask.numpy(), max_new_tokens=8, do_sample=True, top_k=1).sequences
    np.testing.assert_array_equal(greedy, one)


def test_beam_sampling_runs_and_is_reproducible(pair):
    """v4's Flax generate raised on beam sampling."""
    _, fx = pair("roberta")
    ids, mask = _prompt(1)
    kw = dict(do_sample=True, num_beams=2, max_new_tokens=6, prng_key=jax.random.PRNGKey(0))
    a = fx.generate(ids.numpy(), attention_mask=mask.numpy(), **kw)
    b = fx.generate(ids.numpy(), attention_mask=mask.numpy(), **kw)
    assert type(a).__name__ == "FlaxBeamSearchOutput" and a.sequences.shape == (3, 12) and a.scores.shape == (3,)
    np.testing.assert_array_equal(a.sequences, b.sequences)


def test_compiled_once_per_shape_and_trace_false(pair):
    pt, fx = pair("bert")
    ids, mask = _prompt(0)
    kw = dict(max_new_tokens=10, eos_token_id=EOS)
    first = fx.generate(ids.numpy(), attention_mask=mask.numpy(), **kw).sequences  # compiled by an earlier test
    traces = fx._generate_traces
    again = fx.generate(ids.numpy() + 1, attention_mask=mask.numpy(), **kw).sequences
    assert fx._generate_traces == traces, "same shapes and settings: no new trace"
    assert (np.asarray(again) != np.asarray(first)).any()
    short = dict(max_new_tokens=3, num_beams=2)  # the Python loop runs each op eagerly: slow, so short
    python_loop = fx.generate(ids.numpy(), attention_mask=mask.numpy(), trace=False, **short).sequences
    np.testing.assert_array_equal(python_loop, fx.generate(ids.numpy(), attention_mask=mask.numpy(), **short).sequences)


def test_generation_config_and_defaults(pair, tmp_path):
    """generation_config follows the model config (v4); max_length defaults to v4's 20 tokens in all, with
    the PyTorch wing's warning; a saved generation_config.json comes back."""
    pt, fx = pair("gpt2")
    ids = np.full((1, 3), 7, np.int32)
    with pytest.warns(UserWarning, match="model-agnostic default max_length=20"):
        out = fx.generate(ids)
    assert out.sequences.shape == (1, 20)
    fx.generation_config = W.GenerationConfig(max_new_tokens=4, eos_token_id=98, pad_token_id=0)
    fx.save_pretrained(tmp_path)
    loaded = W.FlaxGPT2LMHeadModel.from_pretrained(tmp_path)
    assert loaded.generation_config.max_new_tokens == 4
    assert loaded.generate(ids).sequences.shape == (1, 7)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(top_p=1.5, do_sample=True), ValueError, "top_p"),
    (dict(num_beams=2, num_return_sequences=3), ValueError, "num_return_sequences"),
    (dict(max_new_tokens=3, penalty_alpha=0.6, top_k=4), ValueError, "penalty_alpha"),
    (dict(max_new_tokens=3, stop_strings=["x"]), ValueError, "stop_strings"),
    (dict(max_new_tokens=3, sequence_bias={(5,): 1.0}), ValueError, "does not implement the sequence_bias"),
    (dict(max_new_tokens=3, encoder_repetition_penalty=1.2), ValueError, "encoder_repetition_penalty"),
    (dict(max_new_tokens=3, eos_token_id=120), ValueError, "eos_token_id=120 is outside"),
    (dict(max_length=100), ValueError, "decoder positions"),
    (dict(max_new_tokens=3, min_new_tokens=2, eos_token_id=None), ValueError, "min_new_tokens is set but eos"),
    (dict(max_new_tokens=3, foo=1), ValueError, r"neither generation settings nor inputs.*foo"),
])
def test_errors_before_tracing(pair, kwargs, error, match):
    _, fx = pair("bert")
    traces = fx.__dict__.get("_generate_traces", 0)
    with pytest.raises(error, match=match), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fx.generate(np.full((1, 3), 7, np.int32), **kwargs)
    assert fx.__dict__.get("_generate_traces", 0) == traces


def test_input_errors(pair):
    _, fx = pair("bert")
    with pytest.raises(ValueError, match="input_ids contains 120, outside"):
        fx.generate(np.full((1, 3), 120), max_new_tokens=2)
    with pytest.raises(TypeError, match="integer token ids"):
        fx.generate(np.ones((1, 3), np.float32), max_new_tokens=2)
    with pytest.raises(ValueError, match="2-D"):
        fx.generate(np.ones((3,), np.int32), max_new_tokens=2)
    with pytest.raises(ValueError, match="attention_mask shape"):
        fx.generate(np.ones((1, 3), np.int32), attention_mask=np.ones((1, 4)), max_new_tokens=2)
    masked = W.FlaxBertForMaskedLM(W.BertConfig(**{**TINY, "is_decoder": False}))
    with pytest.raises(TypeError, match="cannot generate"):
        masked.generate(np.ones((1, 3), np.int32))
