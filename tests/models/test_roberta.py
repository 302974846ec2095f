"""RobertaModel / RobertaForMaskedLM / RobertaForCausalLM against transformers: padding-offset positions,
outputs, attentions, loss, gradients, cached decoding, checkpoints both ways, bad inputs."""
import pytest
import torch
import transformers as T

import warmstart.models as M
from warmstart.checkpoint.keymaps import KEYMAPS
from warmstart.config import RobertaConfig
from parity import TINY, assert_close, inputs, spread_weights

PAD = 1  # RoBERTa's pad id, after which positions are numbered
H = TINY["hidden_size"]


def _pair(tmp_path, hf_cls, our_cls, **extra):
    torch.manual_seed(0)
    cfg = T.RobertaConfig(**{**TINY, **extra})
    cfg._attn_implementation = "eager"
    hf = hf_cls(cfg)
    spread_weights(hf)
    hf.save_pretrained(tmp_path)
    return hf.eval(), our_cls.from_pretrained(tmp_path)


def _inputs(**kw):
    """Right-padded batch whose padding uses RoBERTa's pad id (positions depend on it) and no real token is PAD."""
    ids, mask, types = inputs(**kw)
    ids[(ids == PAD) & mask.bool()] = 3
    ids[mask == 0] = PAD
    return ids, mask, types


def _grads_close(hf, ours):
    grads = {n: p.grad for n, p in ours.named_parameters() if p.grad is not None}
    theirs = KEYMAPS["roberta"].to_theirs(grads, model_has_prefix=bool(ours.base_model_prefix))
    hf_grads = {n: p.grad for n, p in hf.named_parameters() if p.grad is not None}
    assert hf_grads and set(hf_grads) <= set(theirs), set(hf_grads) - set(theirs)
    for name, g in hf_grads.items():
        assert_close(theirs[name], g, f"grad {name}")


def test_positions_start_after_padding_index():
    model = M.RobertaModel(RobertaConfig(**TINY))
    ids = torch.tensor([[5, 6, 7, PAD], [PAD, PAD, 5, 6]])  # right and left padding
    pos = model.embeddings.default_position_ids(ids, ids.shape, 0, ids.device)
    assert pos.tolist() == [[2, 3, 4, 1], [1, 1, 2, 3]]
    assert model.embeddings.position_embeddings.padding_idx == PAD
    assert model.embeddings.position_embeddings.weight[PAD].abs().max() == 0


@pytest.mark.parametrize("skip_padding", [True, False])
def test_model_matches_transformers_with_padding(tmp_path, skip_padding):
    hf, ours = _pair(tmp_path, T.RobertaModel, M.RobertaModel)
    ours.skip_padding = skip_padding
    ids, mask, types = _inputs()
    real = mask.bool()
    kw = dict(attention_mask=mask, token_type_ids=types)
    a = hf(ids, **kw, output_hidden_states=True, output_attentions=True)
    b = ours(ids, **kw, output_hidden_states=True, output_attentions=True)
    for i, (x, y) in enumerate(zip(a.hidden_states, b.hidden_states)):
        assert_close(x, y, f"hidden_states[{i}]")
    for i, (x, y) in enumerate(zip(a.attentions, b.attentions)):
        assert_close(x, y, f"attentions[{i}]")
    plain = ours(ids, **kw)
    assert_close(a.last_hidden_state[real], plain.last_hidden_state[real], "last_hidden_state")
    assert_close(a.pooler_output, plain.pooler_output, "pooler_output")
    (a.pooler_output.sum() + a.last_hidden_state[real].mean()).backward()
    (plain.pooler_output.sum() + plain.last_hidden_state[real].mean()).backward()
    _grads_close(hf, ours)


@pytest.mark.parametrize("hf_cls,our_cls,extra", [
    (T.RobertaForMaskedLM, M.RobertaForMaskedLM, {}),
    (T.RobertaForCausalLM, M.RobertaForCausalLM, {"is_decoder": True}),
    (T.RobertaForCausalLM, M.RobertaForCausalLM, {"is_decoder": True, "add_cross_attention": True}),
    (T.RobertaForMaskedLM, M.RobertaForMaskedLM, {"hidden_act": "relu"}),  # the LM head keeps exact GELU
], ids=["masked-lm", "causal-lm", "causal-lm-cross", "masked-lm-relu"])
def test_heads_match_transformers(tmp_path, hf_cls, our_cls, extra):
    hf, ours = _pair(tmp_path, hf_cls, our_cls, **extra)
    ids, mask, types = _inputs()
    labels = ids.masked_fill(mask == 0, -100)
    labels[0, ::3] = -100
    kw = dict(attention_mask=mask, token_type_ids=types, labels=labels)
    if extra.get("add_cross_attention"):
        enc_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
        kw.update(encoder_hidden_states=torch.randn(2, 5, H), encoder_attention_mask=enc_mask)
    a = hf(ids, **kw, output_attentions=True)
    b = ours(ids, **kw, output_attentions=True)
    real = mask.bool()
    assert_close(a.logits[real], b.logits[real], "logits")
    assert_close(a.loss, b.loss, "loss")
    for i, (x, y) in enumerate(zip(a.attentions, b.attentions)):
        assert_close(x, y, f"attentions[{i}]")
    if extra.get("add_cross_attention"):
        assert len(b.cross_attentions) == TINY["num_hidden_layers"]
        for i, (x, y) in enumerate(zip(a.cross_attentions, b.cross_attentions)):
            assert_close(x, y, f"cross_attentions[{i}]")
    a.loss.backward()
    ours(ids, **kw).loss.backward()  # the fast path's gradients
    _grads_close(hf, ours)


def test_masked_lm_scores_padding_when_labels_ask(tmp_path):
    hf, ours = _pair(tmp_path, T.RobertaForMaskedLM, M.RobertaForMaskedLM)
    ids, mask, _ = _inputs()
    labels = ids.clone()  # padded positions are scored too: they must be computed, not skipped
    with torch.no_grad():
        assert_close(hf(ids, attention_mask=mask, labels=labels).loss,
                     ours(ids, attention_mask=mask, labels=labels).loss, "loss over padding")


def _step_by_step(model, ids, enc, legacy=False):
    steps, past = [], None
    with torch.no_grad():
        for t in range(ids.shape[1]):
            if legacy and past is not None:
                past = tuple(tuple(x.clone() for x in layer) for layer in past)
            o = model(ids[:, t:t + 1], encoder_hidden_states=enc, past_key_values=past, use_cache=True)
            past = o.past_key_values if not legacy else (
                o.past_key_values if isinstance(o.past_key_values, tuple) else o.past_key_values.to_legacy_cache())
            steps.append(o.logits)
    return torch.cat(steps, 1), past


@pytest.mark.parametrize("cross", [True, False], ids=["cross", "self-only"])
def test_cached_decoding_equals_full_forward(tmp_path, cross):
    hf, ours = _pair(tmp_path, T.RobertaForCausalLM, M.RobertaForCausalLM, is_decoder=True,
                     add_cross_attention=cross)
    ids = torch.randint(2, 99, (2, 7), generator=torch.Generator().manual_seed(3))
    enc = torch.randn(2, 4, H, generator=torch.Generator().manual_seed(4)) if cross else None
    with torch.no_grad():
        full = ours(ids, encoder_hidden_states=enc).logits
        assert_close(full, hf(ids, encoder_hidden_states=enc).logits, "full forward vs transformers")
    for legacy in (False, True):
        cached, past = _step_by_step(ours, ids, enc, legacy=legacy)
        assert_close(cached, full, f"cached (legacy={legacy}) vs full")
    assert len(past[0]) == (4 if cross else 2)


def test_save_loads_in_transformers_and_back(tmp_path):
    torch.manual_seed(0)
    ours = M.RobertaForMaskedLM(RobertaConfig(**TINY))
    spread_weights(ours)
    ours.eval().save_pretrained(tmp_path / "ours")
    hf, info = T.RobertaForMaskedLM.from_pretrained(tmp_path / "ours", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    ids, mask, _ = _inputs()
    real = mask.bool()
    with torch.no_grad():
        assert_close(hf.eval()(ids, attention_mask=mask).logits[real], ours(ids, attention_mask=mask).logits[real],
                     "our save read by transformers")
    assert_close(hf.lm_head.bias, ours.lm_head.decoder.bias, "lm_head.bias")
    # A bare RobertaModel checkpoint warm-starts the causal LM: head and cross-attention are new, pooler unused.
    T.RobertaModel(T.RobertaConfig(**TINY)).save_pretrained(tmp_path / "base")
    lm, info = M.RobertaForCausalLM.from_pretrained(tmp_path / "base", is_decoder=True, add_cross_attention=True,
                                                    output_loading_info=True)
    assert "lm_head.bias" in info["missing_keys"] and "lm_head.dense.weight" in info["missing_keys"]
    assert any("crossattention" in k for k in info["missing_keys"])
    assert "pooler.dense.weight" in info["unexpected_keys"]


def test_auto_classes_resolve_roberta(tmp_path):
    M.RobertaForMaskedLM(RobertaConfig(**TINY)).save_pretrained(tmp_path)
    assert type(M.AutoModel.from_pretrained(tmp_path)) is M.RobertaModel
    assert type(M.AutoModelForMaskedLM.from_pretrained(tmp_path)) is M.RobertaForMaskedLM
    assert type(M.AutoModelForCausalLM.from_pretrained(tmp_path, is_decoder=True)) is M.RobertaForCausalLM


# ---- bad inputs ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model():
    return M.RobertaForMaskedLM(RobertaConfig(**TINY)).eval()


def test_length_limit_is_the_table_minus_the_padding_offset(model):
    # 64 rows, positions 0 and 1 reserved: 62 tokens fit, 63 do not.
    assert model(torch.full((1, 62), 5)).logits.shape == (1, 62, 99)
    with pytest.raises(ValueError, match=r"sequence length 63 .*max_position_embeddings = 64 minus 2 reserved"):
        model(torch.full((1, 63), 5))


@pytest.mark.parametrize("kw,match", [
    (dict(input_ids=torch.full((1, 3), 99)), r"input_ids contains 99, outside \[0, 99\) \(vocab_size = 99\)"),
    (dict(input_ids=torch.ones(1, 3, dtype=torch.long), position_ids=torch.tensor([[2, 3, 64]])),
     r"position_ids contains 64, outside \[0, 64\)"),
    (dict(input_ids=torch.ones(1, 3, dtype=torch.long), token_type_ids=torch.full((1, 3), 2)),
     r"token_type_ids contains 2.*type_vocab_size"),
])
def test_bad_inputs(model, kw, match):
    with pytest.raises(ValueError, match=match):
        model(**kw)


@pytest.mark.parametrize("hf_cls,our_cls,field", [(T.RobertaModel, M.RobertaModel, "last_hidden_state"),
                                                  (T.RobertaForCausalLM, M.RobertaForCausalLM, "logits")])
def test_more_saves_load_in_transformers(tmp_path, hf_cls, our_cls, field):
    torch.manual_seed(0)
    ours = our_cls(RobertaConfig(**TINY, is_decoder=our_cls is M.RobertaForCausalLM)).eval()
    spread_weights(ours)
    ours.save_pretrained(tmp_path)
    hf, info = hf_cls.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    ids, mask, _ = _inputs()
    real = mask.bool()
    with torch.no_grad():
        a, b = hf.eval()(ids, attention_mask=mask), ours(ids, attention_mask=mask)
    assert_close(getattr(a, field)[real], getattr(b, field)[real], field)
    if field == "last_hidden_state":
        assert_close(a.pooler_output, b.pooler_output, "pooler_output")
