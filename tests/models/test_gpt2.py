"""GPT2Model / GPT2LMHeadModel against transformers: pre-norm stack, Conv1D key map, token types through the word
table, attention scaling options, cross-attention, cached decoding, checkpoints both ways, bad inputs."""
import pytest
import torch
import transformers as T

import warmstart.models as M
from warmstart.checkpoint.keymaps import KEYMAPS
from warmstart.config import GPT2Config
from parity import assert_close, inputs, spread_weights

G_TINY = dict(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=64, resid_pdrop=0.0, embd_pdrop=0.0,
              attn_pdrop=0.0, initializer_range=0.2, bos_token_id=98, eos_token_id=98)
H = G_TINY["n_embd"]


def _pair(tmp_path, hf_cls, our_cls, **extra):
    torch.manual_seed(0)
    cfg = T.GPT2Config(**{**G_TINY, **extra})
    cfg._attn_implementation = "eager"
    hf = hf_cls(cfg)
    spread_weights(hf)
    hf.save_pretrained(tmp_path)
    return hf.eval(), our_cls.from_pretrained(tmp_path)


def _grads_close(hf, ours):
    grads = {n: p.grad for n, p in ours.named_parameters() if p.grad is not None}
    theirs = KEYMAPS["gpt2"].to_theirs(grads, model_has_prefix=bool(ours.base_model_prefix))
    hf_grads = {n: p.grad for n, p in hf.named_parameters() if p.grad is not None}
    assert hf_grads and set(hf_grads) <= set(theirs), set(hf_grads) - set(theirs)
    for name, g in hf_grads.items():
        assert_close(theirs[name], g, f"grad {name}")


@pytest.mark.parametrize("skip_padding", [True, False])
def test_model_matches_transformers_with_padding_and_token_types(tmp_path, skip_padding):
    hf, ours = _pair(tmp_path, T.GPT2Model, M.GPT2Model)
    ours.skip_padding = skip_padding
    ids, mask, types = inputs()
    real = mask.bool()
    kw = dict(attention_mask=mask, token_type_ids=types + 5)  # any ids of the word table
    a = hf(ids, **kw, output_hidden_states=True, output_attentions=True)
    b = ours(ids, **kw, output_hidden_states=True, output_attentions=True)
    assert len(b.hidden_states) == G_TINY["n_layer"] + 1
    for i, (x, y) in enumerate(zip(a.hidden_states, b.hidden_states)):
        assert_close(x[real], y[real], f"hidden_states[{i}]")  # the last one is after ln_f in both
    for i, (x, y) in enumerate(zip(a.attentions, b.attentions)):
        assert_close(x[0], y[0], f"attentions[{i}] (unpadded row)")
        assert_close(x[1][..., :6, :6], y[1][..., :6, :6], f"attentions[{i}] (real part of the padded row)")
    plain = ours(ids, **kw)
    assert_close(a.last_hidden_state[real], plain.last_hidden_state[real], "last_hidden_state")
    (a.last_hidden_state[real].mean()).backward()
    (plain.last_hidden_state[real].mean()).backward()
    _grads_close(hf, ours)


@pytest.mark.parametrize("extra", [
    {},
    {"scale_attn_by_inverse_layer_idx": True, "n_inner": 20, "activation_function": "relu"},
    {"scale_attn_weights": False, "layer_norm_epsilon": 1e-3},
    {"add_cross_attention": True},
], ids=["default", "inverse-layer-scale", "unscaled", "cross"])
def test_lm_head_matches_transformers(tmp_path, extra):
    hf, ours = _pair(tmp_path, T.GPT2LMHeadModel, M.GPT2LMHeadModel, **extra)
    ids, mask, _ = inputs()
    labels = ids.masked_fill(mask == 0, -100)
    kw = dict(attention_mask=mask, labels=labels)
    if extra.get("add_cross_attention"):
        kw.update(encoder_hidden_states=torch.randn(2, 5, H, generator=torch.Generator().manual_seed(1)),
                  encoder_attention_mask=torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]))
    a = hf(ids, **kw, output_attentions=True)
    b = ours(ids, **kw, output_attentions=True)
    real = mask.bool()
    assert_close(a.logits[real], b.logits[real], "logits")
    assert_close(a.loss, b.loss, "loss")
    if extra.get("add_cross_attention"):
        for i, (x, y) in enumerate(zip(a.cross_attentions, b.cross_attentions)):
            assert_close(x, y, f"cross_attentions[{i}]")
    a.loss.backward()
    ours(ids, **kw, use_cache=False).loss.backward()  # without a cache the padded rows are skipped
    _grads_close(hf, ours)
    assert ours.lm_head.weight is ours.transformer.wte.weight


def _step_by_step(model, ids, enc, enc_mask, legacy=False):
    steps, past = [], None
    with torch.no_grad():
        for t in range(ids.shape[1]):
            if legacy and past is not None:
                past = tuple(tuple(x.clone() for x in layer) for layer in past)
            o = model(ids[:, t:t + 1], past_key_values=past, encoder_hidden_states=enc,
                      encoder_attention_mask=enc_mask, use_cache=True)
            past = o.past_key_values
            if legacy:
                past = past if isinstance(past, tuple) else past.to_legacy_cache()
            steps.append(o.logits)
    return torch.cat(steps, 1), past


@pytest.mark.parametrize("cross", [True, False], ids=["cross", "self-only"])
def test_cached_decoding_equals_full_forward(tmp_path, cross):
    hf, ours = _pair(tmp_path, T.GPT2LMHeadModel, M.GPT2LMHeadModel, add_cross_attention=cross)
    ids = torch.randint(0, 99, (2, 7), generator=torch.Generator().manual_seed(3))
    enc = torch.randn(2, 4, H, generator=torch.Generator().manual_seed(4)) if cross else None
    enc_mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]]) if cross else None
    with torch.no_grad():
        full = ours(ids, encoder_hidden_states=enc, encoder_attention_mask=enc_mask).logits
        ref = hf(ids, encoder_hidden_states=enc, encoder_attention_mask=enc_mask).logits
    assert_close(full, ref, "full forward vs transformers")
    for legacy in (False, True):
        cached, past = _step_by_step(ours, ids, enc, enc_mask, legacy=legacy)
        assert_close(cached, full, f"cached (legacy={legacy}) vs full")
    assert len(past) == G_TINY["n_layer"] and len(past[0]) == (4 if cross else 2)
    # v4 GPT-2 caches held only self-attention (k, v); such tuples still work with cross-attention.
    with torch.no_grad():
        first = ours(ids[:, :4], encoder_hidden_states=enc, encoder_attention_mask=enc_mask, use_cache=True)
        self_only = tuple(layer[:2] for layer in first.past_key_values)  # v4 tuples (no cache object passed in)
        rest = ours(ids[:, 4:], past_key_values=self_only, encoder_hidden_states=enc, encoder_attention_mask=enc_mask)
    assert_close(rest.logits, full[:, 4:], "continuing from self-attention-only tuples")


def test_save_loads_in_transformers_and_back(tmp_path):
    torch.manual_seed(0)
    ours = M.GPT2LMHeadModel(GPT2Config(**G_TINY, add_cross_attention=True))
    spread_weights(ours)
    ours.eval().save_pretrained(tmp_path / "ours")
    hf, info = T.GPT2LMHeadModel.from_pretrained(tmp_path / "ours", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    # Conv1D layout: (in, out)
    assert hf.transformer.h[0].attn.c_attn.weight.shape == (H, 3 * H)
    assert hf.transformer.h[0].crossattention.c_attn.weight.shape == (H, 2 * H)
    ids, _, _ = inputs(pad_row_from=None)
    enc = torch.randn(2, 3, H)
    with torch.no_grad():
        assert_close(hf.eval()(ids, encoder_hidden_states=enc).logits, ours(ids, encoder_hidden_states=enc).logits,
                     "our save read by transformers")
    hf.save_pretrained(tmp_path / "hf")
    again = M.GPT2LMHeadModel.from_pretrained(tmp_path / "hf")
    with torch.no_grad():
        assert_close(again(ids, encoder_hidden_states=enc).logits, hf(ids, encoder_hidden_states=enc).logits,
                     "transformers' save read by us")


def test_old_checkpoint_buffers_are_ignored_quietly(tmp_path):
    hf = T.GPT2LMHeadModel(T.GPT2Config(**G_TINY, add_cross_attention=True)).eval()
    state = {k: v for k, v in hf.state_dict().items() if k != "lm_head.weight"}
    n = G_TINY["n_positions"]
    for i in range(G_TINY["n_layer"]):  # what v2-v4 checkpoints stored next to each attention layer
        for part in ("attn", "crossattention"):
            state[f"transformer.h.{i}.{part}.bias"] = torch.tril(torch.ones(n, n)).view(1, 1, n, n)
            state[f"transformer.h.{i}.{part}.masked_bias"] = torch.tensor(-1e4)
    (tmp_path / "old").mkdir()
    torch.save(state, tmp_path / "old" / "pytorch_model.bin")
    hf.config.to_json_file(tmp_path / "old" / "config.json")
    ours, info = M.GPT2LMHeadModel.from_pretrained(tmp_path / "old", output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []
    ids = torch.randint(0, 99, (1, 6))
    enc = torch.randn(1, 2, H)
    with torch.no_grad():
        assert_close(ours(ids, encoder_hidden_states=enc).logits, hf(ids, encoder_hidden_states=enc).logits, "old")
    # The bare model's checkpoint (no "transformer." prefix) loads into the LM head model; lm_head is tied.
    base = {k.removeprefix("transformer."): v for k, v in state.items()}
    (tmp_path / "bare").mkdir()
    torch.save(base, tmp_path / "bare" / "pytorch_model.bin")
    hf.config.to_json_file(tmp_path / "bare" / "config.json")
    again, info = M.GPT2LMHeadModel.from_pretrained(tmp_path / "bare", output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []


def test_warm_starting_cross_attention_is_reported(tmp_path):
    T.GPT2LMHeadModel(T.GPT2Config(**G_TINY)).save_pretrained(tmp_path)
    model, info = M.GPT2LMHeadModel.from_pretrained(tmp_path, add_cross_attention=True, output_loading_info=True)
    assert model.config.add_cross_attention
    assert "transformer.h.0.crossattention.c_attn.weight" in info["missing_keys"]
    assert "transformer.h.1.ln_cross_attn.weight" in info["missing_keys"]
    assert not [k for k in info["missing_keys"] if "crossattention" not in k and "ln_cross_attn" not in k]


def test_auto_classes_resolve_gpt2(tmp_path):
    M.GPT2LMHeadModel(GPT2Config(**G_TINY)).save_pretrained(tmp_path)
    assert type(M.AutoModel.from_pretrained(tmp_path)) is M.GPT2Model
    assert type(M.AutoModelForCausalLM.from_pretrained(tmp_path)) is M.GPT2LMHeadModel


def test_transformers_attribute_names():
    model = M.GPT2LMHeadModel(GPT2Config(**G_TINY))
    t = model.transformer
    assert t.wte is t.embeddings.word_embeddings and t.wpe.num_embeddings == 64 and len(t.h) == 2
    assert model.get_output_embeddings() is model.lm_head and model.lm_head.bias is None
    model.resize_token_embeddings(120)
    assert model.lm_head.weight.shape == (120, H) and model.lm_head.weight is t.wte.weight


# ---- bad inputs ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model():
    return M.GPT2LMHeadModel(GPT2Config(**G_TINY)).eval()


@pytest.mark.parametrize("kw,match", [
    (dict(input_ids=torch.full((1, 3), 99)), r"input_ids contains 99, outside \[0, 99\) \(vocab_size = 99\)"),
    (dict(input_ids=torch.ones(1, 65, dtype=torch.long)), r"sequence length 65 .*max_position_embeddings = 64"),
    (dict(input_ids=torch.ones(1, 3, dtype=torch.long), token_type_ids=torch.full((1, 3), 99)),
     r"token_type_ids contains 99, outside \[0, 99\) \(vocab_size = 99\)"),
    (dict(input_ids=torch.ones(1, 3, dtype=torch.long), encoder_hidden_states=torch.zeros(1, 2, H)),
     "no cross-attention"),
])
def test_bad_inputs(model, kw, match):
    with pytest.raises(ValueError, match=match):
        model(**kw)


def test_cache_plus_new_tokens_beyond_the_table(model):
    with torch.no_grad():
        past = model(torch.ones(1, 60, dtype=torch.long), use_cache=True).past_key_values
        with pytest.raises(ValueError, match=r"sequence length 65 \(past 60 \+ new 5\)"):
            model(torch.ones(1, 5, dtype=torch.long), past_key_values=past)


def test_always_causal_whatever_is_decoder_says(model):
    ids = torch.randint(0, 99, (1, 6))
    with torch.no_grad():
        full = model(ids).logits
        prefix = model(ids[:, :3]).logits
    assert model.config.is_decoder is False
    assert_close(full[:, :3], prefix, "a prefix does not see later tokens")


def test_bare_model_save_loads_in_transformers(tmp_path):
    torch.manual_seed(0)
    ours = M.GPT2Model(GPT2Config(**G_TINY, scale_attn_by_inverse_layer_idx=True)).eval()
    spread_weights(ours)
    ours.save_pretrained(tmp_path)
    hf, info = T.GPT2Model.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    ids, mask, _ = inputs()
    real = mask.bool()
    with torch.no_grad():
        assert_close(hf.eval()(ids, attention_mask=mask).last_hidden_state[real],
                     ours(ids, attention_mask=mask).last_hidden_state[real], "bare save read by transformers")


def test_gradient_checkpointing_same_grads_and_no_cache():
    torch.manual_seed(0)
    a = M.GPT2LMHeadModel(GPT2Config(**G_TINY, add_cross_attention=True)).train()
    b = M.GPT2LMHeadModel(GPT2Config(**G_TINY, add_cross_attention=True)).train()
    b.load_state_dict(a.state_dict())
    b.gradient_checkpointing_enable()
    ids = torch.randint(0, 99, (2, 8), generator=torch.Generator().manual_seed(1))
    enc = torch.randn(2, 3, H)
    la = a(ids, labels=ids, encoder_hidden_states=enc)
    lb = b(ids, labels=ids, encoder_hidden_states=enc)
    assert la.past_key_values is not None and lb.past_key_values is None  # a cache would be written twice
    la.loss.backward()
    lb.loss.backward()
    assert_close(la.loss, lb.loss, "loss")
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert_close(p.grad, q.grad, n)
    with pytest.raises(ValueError, match="gradient checkpointing"):
        b(ids[:, :1], past_key_values=la.past_key_values)
