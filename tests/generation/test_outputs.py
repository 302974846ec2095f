"""return_dict_in_generate outputs against transformers, and the work generate() does (encoder once, cross K/V
once, preallocated cache)."""
import pytest
import torch

from gen_support import EOS, batch
from parity import assert_close


def _compare_steps(a, b, what):
    assert len(a) == len(b), f"{what}: {len(a)} steps vs {len(b)}"
    for i, (x, y) in enumerate(zip(a, b)):
        finite = torch.isfinite(x)
        assert torch.equal(finite, torch.isfinite(y)), f"{what}[{i}]: -inf positions differ"
        assert_close(x[finite], y[finite], f"{what}[{i}]", atol=1e-4)


@pytest.mark.parametrize("kw", [dict(), dict(num_beams=3, num_return_sequences=2), dict(num_beams=2)],
                         ids=["greedy", "beam3x2", "beam2"])
def test_scores_logits_and_beam_outputs(seq2seq_pair, kw):
    hf, ours = seq2seq_pair("bert2bert")
    ids, mask = batch()
    common = dict(max_new_tokens=8, eos_token_id=EOS, return_dict_in_generate=True, output_scores=True,
                  output_logits=True, repetition_penalty=1.2, **kw)
    a = hf.generate(ids, attention_mask=mask, **common)
    b = ours.generate(ids, attention_mask=mask, **common)
    assert type(b).__name__ == type(a).__name__
    assert torch.equal(a.sequences[:, :1], b.sequences[:, :1]) and a.sequences.shape == b.sequences.shape
    _compare_steps(a.scores, b.scores, "scores")
    _compare_steps(a.logits, b.logits, "logits")
    if "num_beams" in kw:
        assert_close(a.sequences_scores, b.sequences_scores, "sequences_scores")
        assert torch.equal(a.beam_indices.long(), b.beam_indices.long())
        no_scores = ours.generate(ids, attention_mask=mask, **{**common, "output_scores": False})
        assert no_scores.sequences_scores is None  # as transformers: only with output_scores
    b.sequences[0, 0] = 5  # an ordinary tensor, not an inference-mode one


def test_attentions_and_hidden_states(seq2seq_pair):
    hf, ours = seq2seq_pair("bert2bert")
    ids, mask = batch()
    kw = dict(max_new_tokens=4, return_dict_in_generate=True, output_attentions=True, output_hidden_states=True,
              num_beams=2)
    hf.set_attn_implementation("eager")  # transformers' SDPA path returns no attention probabilities
    try:
        a = hf.generate(ids, attention_mask=mask, **kw)
    finally:
        hf.set_attn_implementation("sdpa")
    b = ours.generate(ids, attention_mask=mask, **kw)
    for field in ("encoder_attentions", "encoder_hidden_states"):
        for x, y in zip(getattr(a, field), getattr(b, field)):
            assert x.shape == y.shape, field
    for field in ("decoder_attentions", "cross_attentions", "decoder_hidden_states"):
        assert len(getattr(a, field)) == len(getattr(b, field)), field
        for step_a, step_b in zip(getattr(a, field), getattr(b, field)):
            assert [t.shape for t in step_a] == [t.shape for t in step_b], field
    for x, y in zip(a.cross_attentions[-1], b.cross_attentions[-1]):
        assert_close(x, y, "last step's cross-attention", atol=1e-4)


def test_decoder_only_output_class(causal_pair):
    _, ours = causal_pair("gpt2")
    ids = torch.randint(4, 90, (2, 5))
    out = ours.generate(ids, max_new_tokens=3, return_dict_in_generate=True, output_scores=True)
    assert type(out).__name__ == "GenerateDecoderOnlyOutput" and len(out.scores) == 3
    beams = ours.generate(ids, max_new_tokens=3, num_beams=2, return_dict_in_generate=True)
    assert type(beams).__name__ == "GenerateBeamDecoderOnlyOutput" and beams.beam_indices.shape == (2, 3)


def test_encoder_once_cross_kv_once_cache_preallocated(seq2seq_pair):
    _, ours = seq2seq_pair("bert2bert")
    ids, mask = batch()
    encoder_calls, kv_calls = [], []
    hooks = [ours.encoder.register_forward_hook(lambda *a: encoder_calls.append(1))]
    cross_kv = [m for n, m in ours.decoder.named_modules() if n.endswith("cross_attn.kv")]
    hooks += [m.register_forward_hook(lambda mod, inp, out: kv_calls.append(inp[0].shape[0])) for m in cross_kv]
    try:
        out = ours.generate(ids, attention_mask=mask, num_beams=4, max_new_tokens=9, return_dict_in_generate=True)
    finally:
        for h in hooks:
            h.remove()
    assert len(encoder_calls) == 1
    # one projection per layer, for the 3 inputs (not 3 x 4 beams): the beams share it
    assert kv_calls == [3] * len(cross_kv)
    cache = out.past_key_values  # v4's tuple of per-layer tuples (self k, v, cross k, v)
    assert isinstance(cache, tuple) and len(cache[0]) == 4
    k = cache[0][0]  # (rows, heads, used, head_dim), a view of the preallocated buffer
    assert k.shape[2] == out.sequences.shape[1] - 1
    rows, heads, _, dim = k.shape
    assert k.untyped_storage().nbytes() == rows * heads * 10 * dim * k.element_size()  # room for max_length, no more


def test_decoder_start_tokens_and_prefix(seq2seq_pair):
    """decoder_input_ids continue from a given prefix (the start token is prepended when missing)."""
    hf, ours = seq2seq_pair("bert2bert")
    ids, mask = batch()
    prefix = torch.tensor([[11, 12]] * 3)
    a = hf.generate(ids, attention_mask=mask, decoder_input_ids=prefix, max_new_tokens=5)
    b = ours.generate(ids, attention_mask=mask, decoder_input_ids=prefix, max_new_tokens=5)
    assert torch.equal(a, b) and torch.equal(b[:, :3], torch.tensor([[3, 11, 12]] * 3))


def test_encoder_outputs_can_be_passed(seq2seq_pair):
    _, ours = seq2seq_pair("bert2bert")
    ids, mask = batch()
    enc = ours.get_encoder()(ids, attention_mask=mask)
    assert torch.equal(ours.generate(encoder_outputs=enc, attention_mask=mask, max_new_tokens=5),
                       ours.generate(ids, attention_mask=mask, max_new_tokens=5))
