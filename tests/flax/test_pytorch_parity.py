"""The Flax heads beyond test_bert_parity against our PyTorch models (proven against transformers) on the same
weights, moved through save_pretrained -> Flax from_pretrained: outputs, hidden states, attentions, losses and
gradients, with padding; cached == uncached; the cache's input errors."""
import jax
import numpy as np
import pytest
import torch

import warmstart as W
from warmstart.checkpoint.flax_layout import convert_to_flax, flatten_tree
from warmstart.checkpoint.keymaps import KEYMAPS

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
GPT2 = dict(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_inner=37, n_positions=64, resid_pdrop=0.0,
            embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=98, eos_token_id=98)
ATOL = 1e-5


def _jiggle(pt):
    with torch.no_grad():
        for p in pt.parameters():  # non-trivial biases and norms
            if p.dim() == 1:
                p.add_(0.1 * torch.randn(p.shape))
    return pt.eval()


def _pair(pt_cls, fx_cls, config, tmp_path):
    torch.manual_seed(0)
    pt = _jiggle(pt_cls(config))
    for module in pt.modules():
        if hasattr(module, "skip_padding"):
            module.skip_padding = False  # compute padded rows too, as Flax does
    pt.save_pretrained(tmp_path)
    return pt, fx_cls.from_pretrained(tmp_path)


def _inputs(pad=0, rows=2, length=7):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 98, (rows, length), generator=g)
    mask = torch.ones_like(ids)
    mask[-1, 5:] = 0
    ids[-1, 5:] = pad
    return ids, mask


def _close(a, b, what):
    b = b.detach().numpy() if hasattr(b, "detach") else np.asarray(b)
    d = float(np.abs(np.asarray(a, np.float32) - b).max())
    assert d <= ATOL, f"{what}: max abs diff {d:.3g}"


def _compare(fx_out, pt_out, fields, mask=None):
    for f in fields:
        a, b = fx_out[f], pt_out[f]
        if isinstance(a, tuple):
            assert len(a) == len(b), f
            for i, (x, y) in enumerate(zip(a, b)):
                _close(x, y, f"{f}[{i}]")
        else:
            _close(a, b, f)


def _encoder(rows=2):
    g = torch.Generator().manual_seed(2)
    states = torch.randn(rows, 5, 32, generator=g)
    mask = torch.ones(rows, 5, dtype=torch.long)
    mask[-1, -1] = 0
    return states, mask


CASES = [
    ("bert-pretraining", lambda: (W.BertForPreTraining, W.FlaxBertForPreTraining, W.BertConfig(**TINY)),
     ("prediction_logits", "seq_relationship_logits", "hidden_states", "attentions")),
    ("bert-nsp", lambda: (W.BertForNextSentencePrediction, W.FlaxBertForNextSentencePrediction,
                          W.BertConfig(**TINY)), ("logits", "hidden_states", "attentions")),
    ("roberta", lambda: (W.RobertaModel, W.FlaxRobertaModel, W.RobertaConfig(**TINY, pad_token_id=1)),
     ("last_hidden_state", "pooler_output", "hidden_states", "attentions")),
    ("roberta-mlm", lambda: (W.RobertaForMaskedLM, W.FlaxRobertaForMaskedLM, W.RobertaConfig(**TINY, pad_token_id=1)),
     ("logits", "hidden_states", "attentions")),
    ("gpt2", lambda: (W.GPT2Model, W.FlaxGPT2Model, W.GPT2Config(**GPT2)),
     ("last_hidden_state", "hidden_states", "attentions")),
]


@pytest.mark.parametrize("name,build,fields", CASES, ids=[c[0] for c in CASES])
def test_encoders_and_heads(name, build, fields, tmp_path):
    pt_cls, fx_cls, config = build()
    pt, fx = _pair(pt_cls, fx_cls, config, tmp_path)
    ids, mask = _inputs(pad=config.pad_token_id or 0)
    with torch.no_grad():
        want = pt(ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
    got = fx(ids.numpy(), attention_mask=mask.numpy(), output_hidden_states=True, output_attentions=True)
    _compare(got, want, fields)


def test_multiple_choice_with_loss(tmp_path):
    pt, fx = _pair(W.BertForMultipleChoice, W.FlaxBertForMultipleChoice, W.BertConfig(**TINY), tmp_path)
    ids, mask = _inputs(rows=6)
    ids, mask = ids.reshape(2, 3, 7), mask.reshape(2, 3, 7)
    labels = torch.tensor([2, 0])
    with torch.no_grad():
        want = pt(ids, attention_mask=mask, labels=labels)
    got = fx(ids.numpy(), attention_mask=mask.numpy(), labels=labels.numpy())
    _compare(got, want, ("logits", "loss"))
    with pytest.raises(ValueError, match="num_choices"):
        fx(ids.numpy(), labels=np.array([3, 0]))
    with pytest.raises(ValueError, match=r"\(batch, num_choices, sequence\)"):
        fx(ids[0].numpy())


DECODERS = [
    ("bert", lambda: (W.BertLMHeadModel, W.FlaxBertForCausalLM,
                      W.BertConfig(**TINY, is_decoder=True, add_cross_attention=True))),
    ("roberta", lambda: (W.RobertaForCausalLM, W.FlaxRobertaForCausalLM,
                         W.RobertaConfig(**TINY, pad_token_id=1, is_decoder=True, add_cross_attention=True))),
    ("gpt2", lambda: (W.GPT2LMHeadModel, W.FlaxGPT2LMHeadModel, W.GPT2Config(**GPT2, add_cross_attention=True))),
]


def _grads_as_flax(pt, has_prefix=True):
    named = {n: p.grad.numpy() for n, p in pt.named_parameters() if p.grad is not None}
    theirs = KEYMAPS[pt.keymap_name].to_theirs(named, model_has_prefix=has_prefix)
    return flatten_tree(convert_to_flax(theirs, tie_word_embeddings=True).tree)


@pytest.mark.parametrize("name,build", DECODERS, ids=[d[0] for d in DECODERS])
def test_decoders_outputs_loss_gradients_and_cache(name, build, tmp_path):
    pt_cls, fx_cls, config = build()
    pt, fx = _pair(pt_cls, fx_cls, config, tmp_path)
    ids, mask = _inputs(pad=config.pad_token_id if name == "roberta" else 0)
    states, enc_mask = _encoder()
    labels = ids.masked_fill(mask == 0, -100)
    out = pt(ids, attention_mask=mask, encoder_hidden_states=states, encoder_attention_mask=enc_mask,
             labels=labels, output_hidden_states=True, output_attentions=True)
    out.loss.backward()
    kwargs = dict(attention_mask=mask.numpy(), encoder_hidden_states=states.numpy(),
                  encoder_attention_mask=enc_mask.numpy())
    got = fx(ids.numpy(), **kwargs, labels=labels.numpy(), output_hidden_states=True, output_attentions=True)
    _compare(got, out, ("logits", "loss", "hidden_states", "attentions", "cross_attentions"))

    grads = jax.grad(lambda p: fx(ids.numpy(), **kwargs, labels=labels.numpy(), params=p).loss)(fx.params)
    mine = flatten_tree(grads)
    theirs = _grads_as_flax(pt)
    assert set(theirs) == set(mine)
    for path, g in theirs.items():
        d = float(np.abs(np.asarray(mine[path]) - g).max())
        assert d <= ATOL, f"grad {path}: max abs diff {d:.3g}"

    # Cached decoding: 3 tokens, then one at a time, equals the full forward.
    positions = np.asarray(fx._default_positions(ids.numpy()))
    cache = fx.init_cache(2, 7)
    steps = []
    for lo, hi in ((0, 3), (3, 4), (4, 5), (5, 6), (6, 7)):
        o = fx(ids.numpy()[:, lo:hi], attention_mask=mask.numpy(), position_ids=positions[:, lo:hi],
               past_key_values=cache, encoder_hidden_states=states.numpy(), encoder_attention_mask=enc_mask.numpy())
        cache = o.past_key_values
        steps.append(np.asarray(o.logits))
    _close(np.concatenate(steps, axis=1), out.logits, "cached logits")


def test_cache_input_errors(tmp_path):
    fx = W.FlaxGPT2LMHeadModel(W.GPT2Config(**GPT2))
    cache = fx.init_cache(1, 6)
    ids = np.array([[5, 6]], np.int32)
    with pytest.raises(ValueError, match="pass position_ids"):
        fx(ids, attention_mask=np.ones((1, 6), np.int32), past_key_values=cache)
    with pytest.raises(ValueError, match=r"covers 4 positions but the cache holds \[6\]"):
        fx(ids, attention_mask=np.ones((1, 4), np.int32), position_ids=np.array([[0, 1]]), past_key_values=cache)
    with pytest.raises(ValueError, match="keeps no cache"):
        W.FlaxBertModel(W.BertConfig(**TINY)).init_cache(1, 4)
    with pytest.raises(ValueError, match="max_length must be a positive int"):
        fx.init_cache(1, 0)


def test_roberta_position_table_counts_the_padding_offset():
    fx = W.FlaxRobertaModel(W.RobertaConfig(**TINY, pad_token_id=1))
    fx(np.full((1, 62), 5, np.int32))  # positions 2..63: fits
    with pytest.raises(ValueError, match="exceeds the position table.*minus 2 reserved"):
        fx(np.full((1, 63), 5, np.int32))


@pytest.mark.parametrize("build", [lambda: W.FlaxBertForMaskedLM(W.BertConfig(**TINY)),
                                   lambda: W.FlaxGPT2LMHeadModel(W.GPT2Config(**GPT2))], ids=["bert", "gpt2"])
def test_gradient_checkpointing_keeps_gradients(build):
    fx = build()
    ids = np.array([[5, 6, 7, 8]], np.int32)

    def grads():
        return flatten_tree(jax.grad(lambda p: fx(ids, params=p, labels=ids).loss)(fx.params))

    before = grads()
    fx.enable_gradient_checkpointing()
    after = grads()
    for path, g in before.items():
        np.testing.assert_allclose(np.asarray(after[path]), np.asarray(g), atol=1e-6, rtol=0, err_msg=path)


def test_pretraining_and_next_sentence_losses(tmp_path):
    ids, mask = _inputs()
    labels = ids.masked_fill(mask == 0, -100)
    nsp = torch.tensor([1, 0])
    pt, fx = _pair(W.BertForPreTraining, W.FlaxBertForPreTraining, W.BertConfig(**TINY), tmp_path / "pre")
    with torch.no_grad():
        want = pt(ids, attention_mask=mask, labels=labels, next_sentence_label=nsp)
    got = fx(ids.numpy(), attention_mask=mask.numpy(), labels=labels.numpy(), next_sentence_label=nsp.numpy())
    _compare(got, want, ("loss", "prediction_logits", "seq_relationship_logits"))
    pt, fx = _pair(W.BertForNextSentencePrediction, W.FlaxBertForNextSentencePrediction, W.BertConfig(**TINY),
                   tmp_path / "nsp")
    with torch.no_grad():
        want = pt(ids, attention_mask=mask, labels=nsp)
    _compare(fx(ids.numpy(), attention_mask=mask.numpy(), labels=nsp.numpy()), want, ("loss", "logits"))
    with pytest.raises(ValueError, match="labels contain 2"):
        fx(ids.numpy(), labels=np.array([2, 0]))
