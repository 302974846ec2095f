"""Flax generate() on FlaxEncoderDecoderModel: token-identical to our PyTorch generate (itself identical to
transformers) on tiny bert2bert / roberta2roberta / bert2gpt2 with padded inputs and on a bert2bert warm-started
from the real MiniLM checkpoint; v4.57.1's tokens on its own file; precomputed encoder_outputs; the encoder-length
buckets sharing one compilation; cross-attention keys/values computed once."""
from pathlib import Path

import jax
import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

import warmstart as W

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
GPT2 = dict(vocab_size=99, n_embd=48, n_layer=2, n_head=4, n_inner=37, n_positions=64, resid_pdrop=0.0,
            embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=98, eos_token_id=98)  # 48 wide: enc_to_dec_proj
ROBERTA = dict(TINY, pad_token_id=1, bos_token_id=0, eos_token_id=2, max_position_embeddings=66)
PAIRS = {
    "bert2bert": lambda: (W.BertConfig(**TINY), W.BertConfig(**TINY)),
    "roberta2roberta": lambda: (W.RobertaConfig(**ROBERTA), W.RobertaConfig(**ROBERTA)),
    "bert2gpt2": lambda: (W.BertConfig(**TINY), W.GPT2Config(**GPT2)),
}
START, PAD = 3, 0
EOS = [20, 30, 40, 50, 60]
V4 = Path(__file__).parents[1] / "assets" / "flax_v4_seq2seq"


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    built = {}

    def get(name):
        if name not in built:
            enc, dec = PAIRS[name]()
            dec.is_decoder = dec.add_cross_attention = True
            torch.manual_seed(0)
            config = W.EncoderDecoderConfig.from_encoder_decoder_configs(enc, dec, decoder_start_token_id=START,
                                                                         pad_token_id=PAD)
            pt = W.EncoderDecoderModel(config).eval()
            with torch.no_grad():
                for p in pt.parameters():  # non-trivial biases and norms
                    if p.dim() == 1:
                        p.add_(0.1 * torch.randn(p.shape))
            folder = tmp_path_factory.mktemp(name)
            pt.save_pretrained(folder)
            built[name] = pt, W.FlaxEncoderDecoderModel.from_pretrained(folder, from_pt=True)
        return built[name]

    return get


def _source(pad: int, rows: int = 3, length: int = 9):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(4, 97, (rows, length), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 4:] = 0
    ids[mask == 0] = pad
    return ids, mask


def _same_tokens(flax_seq, torch_seq, pad=PAD):
    flax_seq, torch_seq = np.asarray(flax_seq), torch_seq.numpy()
    n = torch_seq.shape[1]
    np.testing.assert_array_equal(flax_seq[:, :n], torch_seq)
    assert (flax_seq[:, n:] == pad).all()


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_greedy_and_beams_equal_pytorch(pair, name):
    pt, fx = pair(name)
    ids, mask = _source(pt.config.encoder.pad_token_id or 0)
    for kw in (dict(max_new_tokens=10, eos_token_id=EOS, no_repeat_ngram_size=2),
               dict(max_new_tokens=10, eos_token_id=EOS, num_beams=3, num_return_sequences=2)):
        want = pt.generate(ids, attention_mask=mask, **kw)
        out = fx.generate(ids.numpy(), attention_mask=mask.numpy(), **kw)
        assert out.sequences.shape == (ids.shape[0] * kw.get("num_return_sequences", 1), 11)
        _same_tokens(out.sequences, want)


def test_encoder_outputs_and_length_buckets(pair):
    """Precomputed encoder states (transformers #15161) give the same tokens; encoder inputs of 9 and 12 tokens
    share the 16-token bucket's compilation; a sampling run is reproducible from prng_key."""
    pt, fx = pair("bert2gpt2")
    ids, mask = _source(0)
    kw = dict(max_new_tokens=10, eos_token_id=EOS, no_repeat_ngram_size=2)
    plain = fx.generate(ids.numpy(), attention_mask=mask.numpy(), **kw).sequences
    states = fx.encode(ids.numpy(), attention_mask=mask.numpy())
    given = fx.generate(None, encoder_outputs=states, attention_mask=mask.numpy(), **kw).sequences
    np.testing.assert_array_equal(given, plain)
    traces = fx._generate_traces
    longer = torch.cat([ids, ids[:, :3]], dim=1)
    lmask = torch.cat([mask, torch.zeros_like(mask[:, :3])], dim=1)
    np.testing.assert_array_equal(fx.generate(longer.numpy(), attention_mask=lmask.numpy(), **kw).sequences, plain)
    assert fx._generate_traces == traces, "9 and 12 encoder tokens share one compiled program"
    # One row (run as two identical rows on CPU, the first returned) gives the first row's tokens
    one = fx.generate(ids[:1].numpy(), attention_mask=mask[:1].numpy(), **kw).sequences
    assert one.shape == (1, plain.shape[1])
    np.testing.assert_array_equal(one, plain[:1])
    sample = dict(do_sample=True, max_new_tokens=6, prng_key=jax.random.PRNGKey(1))
    a = fx.generate(ids.numpy(), attention_mask=mask.numpy(), **sample).sequences
    np.testing.assert_array_equal(a, fx.generate(ids.numpy(), attention_mask=mask.numpy(), **sample).sequences)


def test_cross_attention_computed_once(pair):
    """The prefill keeps the cross-attention keys/values; steps read them (no projection of the encoder states)."""
    _, fx = pair("bert2bert")
    cache = fx._empty_cache(2, 8, 5)
    leaves = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(cache)[0]]
    assert any("cross_key" in p for p in leaves) and any("cached_key" in p for p in leaves)


def test_v4_file_tokens():
    """transformers v4.57.1's greedy and beam tokens on its own roberta2roberta file (v4's generate gives NaN for a
    BERT encoder, so the other pairs are checked against PyTorch above). v4 numbered RoBERTa positions 0, 1, ...
    on both sides; passing those positions reproduces its tokens (ours count from padding_idx + 1 by default)."""
    folder = V4 / "roberta2roberta"
    expected = load_file(folder / "expected.safetensors")
    fx = W.FlaxEncoderDecoderModel.from_pretrained(folder)
    ids, mask = expected["inputs.input_ids"], expected["inputs.attention_mask"]
    v4_positions = dict(position_ids=np.broadcast_to(np.arange(ids.shape[1]), ids.shape),
                        decoder_position_ids=np.zeros((ids.shape[0], 1), np.int32))
    for key, kw in (("greedy.sequences", dict(max_length=10)), ("beam.sequences", dict(max_length=10, num_beams=3))):
        got = fx.generate(ids, attention_mask=mask, **v4_positions, **kw).sequences
        np.testing.assert_array_equal(got, expected[key])


@pytest.mark.slow
def test_minilm_bert2bert_equals_pytorch(minilm_dir, tmp_path):
    tok = W.AutoTokenizer.from_pretrained(minilm_dir)
    torch.manual_seed(0)
    pt = W.EncoderDecoderModel.from_encoder_decoder_pretrained(minilm_dir, minilm_dir)
    pt.config.decoder_start_token_id, pt.config.pad_token_id = tok.cls_token_id, tok.pad_token_id
    pt.config.eos_token_id = tok.sep_token_id
    pt.save_pretrained(tmp_path)
    pt = W.EncoderDecoderModel.from_pretrained(tmp_path).eval()
    fx = W.FlaxEncoderDecoderModel.from_pretrained(tmp_path, from_pt=True)
    batch = tok(["The cat sat on the mat.", "A storm is expected to bring heavy rain to the coast tonight."],
                padding=True, return_tensors="np")
    for kw in (dict(max_new_tokens=12), dict(max_new_tokens=12, num_beams=4)):
        want = pt.generate(torch.from_numpy(batch["input_ids"]), attention_mask=torch.from_numpy(
            batch["attention_mask"]), **kw)
        got = fx.generate(batch["input_ids"], attention_mask=batch["attention_mask"], **kw).sequences
        _same_tokens(got, want, tok.pad_token_id)
