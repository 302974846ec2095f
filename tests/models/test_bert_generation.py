"""BertGenerationEncoder / BertGenerationDecoder against transformers: outputs, attentions, loss, gradients,
cached decoding, checkpoints both ways, the seeds' warm start from a plain BERT checkpoint, bad inputs."""
import pytest
import torch
import transformers as T

import warmstart.models as M
from warmstart.checkpoint.keymaps import KEYMAPS
from warmstart.config import BertGenerationConfig
from parity import TINY, assert_close, inputs, spread_weights

BG_TINY = {k: v for k, v in TINY.items() if k != "type_vocab_size"}
H = TINY["hidden_size"]


def _pair(tmp_path, hf_cls, our_cls, **extra):
    torch.manual_seed(0)
    cfg = T.BertGenerationConfig(**BG_TINY, **extra)
    cfg._attn_implementation = "eager"  # attention probabilities are compared too
    hf = hf_cls(cfg)
    spread_weights(hf)
    hf.save_pretrained(tmp_path)
    return hf.eval(), our_cls.from_pretrained(tmp_path)


def _grads_close(hf, ours):
    grads = {n: p.grad for n, p in ours.named_parameters() if p.grad is not None}
    theirs = KEYMAPS["bert-generation"].to_theirs(grads, model_has_prefix=bool(ours.base_model_prefix))
    hf_grads = {n: p.grad for n, p in hf.named_parameters() if p.grad is not None}
    assert hf_grads and set(hf_grads) <= set(theirs), set(hf_grads) - set(theirs)
    for name, g in hf_grads.items():
        assert_close(theirs[name], g, f"grad {name}")


def _encoder_states(batch=2, length=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    enc = torch.randn(batch, length, H, generator=g)
    enc_mask = torch.ones(batch, length, dtype=torch.long)
    enc_mask[-1, length - 2:] = 0
    return enc, enc_mask


@pytest.mark.parametrize("skip_padding", [True, False])
def test_encoder_matches_transformers_with_padding(tmp_path, skip_padding):
    hf, ours = _pair(tmp_path, T.BertGenerationEncoder, M.BertGenerationEncoder)
    ours.skip_padding = skip_padding
    ids, mask, _ = inputs()
    real = mask.bool()
    a = hf(ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
    b = ours(ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
    assert len(b.hidden_states) == TINY["num_hidden_layers"] + 1
    for i, (x, y) in enumerate(zip(a.hidden_states, b.hidden_states)):
        assert_close(x, y, f"hidden_states[{i}]")
    for i, (x, y) in enumerate(zip(a.attentions, b.attentions)):
        assert_close(x, y, f"attentions[{i}]")
    # The plain call may skip padded rows; real tokens and gradients must be unchanged.
    plain = ours(ids, attention_mask=mask)
    assert_close(a.last_hidden_state[real], plain.last_hidden_state[real], "last_hidden_state")
    w = torch.randn(H, generator=torch.Generator().manual_seed(2))
    (a.last_hidden_state[real] @ w).mean().backward()
    (plain.last_hidden_state[real] @ w).mean().backward()
    _grads_close(hf, ours)
    assert b.past_key_values is None and not hasattr(b, "pooler_output")


def test_decoder_with_cross_attention_matches_transformers(tmp_path):
    hf, ours = _pair(tmp_path, T.BertGenerationDecoder, M.BertGenerationDecoder, is_decoder=True,
                     add_cross_attention=True)
    ids, mask, _ = inputs()
    enc, enc_mask = _encoder_states()
    labels = ids.masked_fill(mask == 0, -100)
    kw = dict(attention_mask=mask, encoder_hidden_states=enc, encoder_attention_mask=enc_mask, labels=labels)
    a = hf(ids, **kw, output_hidden_states=True, output_attentions=True)
    b = ours(ids, **kw, output_hidden_states=True, output_attentions=True)
    real = mask.bool()
    assert_close(a.logits[real], b.logits[real], "logits")
    assert_close(a.loss, b.loss, "loss")
    for name in ("hidden_states", "attentions", "cross_attentions"):
        assert len(getattr(a, name)) == len(getattr(b, name)), name
        for i, (x, y) in enumerate(zip(getattr(a, name), getattr(b, name))):
            assert_close(x[real] if name == "hidden_states" else x, y[real] if name == "hidden_states" else y,
                         f"{name}[{i}]")
    assert b.past_key_values is None  # labels switch the cache off, as in transformers
    a.loss.backward()
    ours(ids, **kw).loss.backward()  # the fast (packed) path must give the same gradients
    _grads_close(hf, ours)


def _step_by_step(model, ids, enc, enc_mask, legacy=False):
    steps, past = [], None
    with torch.no_grad():
        for t in range(ids.shape[1]):
            if legacy and past is not None:
                past = tuple(tuple(x.clone() for x in layer) for layer in past)  # plain v4 tuples in
            o = model(ids[:, t:t + 1], attention_mask=torch.ones(ids.shape[0], t + 1, dtype=torch.long),
                      encoder_hidden_states=enc, encoder_attention_mask=enc_mask, past_key_values=past,
                      use_cache=True)
            past = o.past_key_values
            if legacy:
                assert isinstance(past, tuple) or t == 0
                past = past if isinstance(past, tuple) else past.to_legacy_cache()
            steps.append(o.logits)
    return torch.cat(steps, 1), past


@pytest.mark.parametrize("cross", [True, False], ids=["cross", "self-only"])
def test_cached_decoding_equals_full_forward(tmp_path, cross):
    hf, ours = _pair(tmp_path, T.BertGenerationDecoder, M.BertGenerationDecoder, is_decoder=True,
                     add_cross_attention=cross)
    ids = torch.randint(1, 99, (2, 7), generator=torch.Generator().manual_seed(3))
    enc, enc_mask = _encoder_states() if cross else (None, None)
    with torch.no_grad():
        full = ours(ids, encoder_hidden_states=enc, encoder_attention_mask=enc_mask).logits
        ref = hf(ids, encoder_hidden_states=enc, encoder_attention_mask=enc_mask).logits
    assert_close(full, ref, "full forward vs transformers")
    cached, _ = _step_by_step(ours, ids, enc, enc_mask)
    assert_close(cached, full, "cached vs full")
    legacy, past = _step_by_step(ours, ids, enc, enc_mask, legacy=True)
    assert_close(legacy, full, "legacy tuples vs full")
    assert len(past) == TINY["num_hidden_layers"] and len(past[0]) == (4 if cross else 2)
    assert past[0][0].shape == (2, TINY["num_attention_heads"], 7, H // TINY["num_attention_heads"])


def test_save_loads_in_transformers_and_back(tmp_path):
    torch.manual_seed(0)
    ours = M.BertGenerationDecoder(BertGenerationConfig(**BG_TINY, is_decoder=True, add_cross_attention=True))
    spread_weights(ours)
    ours.eval().save_pretrained(tmp_path / "ours")
    hf, info = T.BertGenerationDecoder.from_pretrained(tmp_path / "ours", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    ids, mask, _ = inputs(pad_row_from=None)
    enc, enc_mask = _encoder_states()
    with torch.no_grad():
        a = hf.eval()(ids, encoder_hidden_states=enc, encoder_attention_mask=enc_mask).logits
        b = ours(ids, encoder_hidden_states=enc, encoder_attention_mask=enc_mask).logits
    assert_close(a, b, "our save read by transformers")
    assert_close(hf.lm_head.bias, ours.lm_head.decoder.bias, "lm_head.bias")
    hf.save_pretrained(tmp_path / "hf")
    again = M.BertGenerationDecoder.from_pretrained(tmp_path / "hf")
    with torch.no_grad():
        assert_close(again(ids, encoder_hidden_states=enc).logits, hf(ids, encoder_hidden_states=enc).logits,
                     "transformers' save read by us")
    assert again.lm_head.decoder.weight is again.bert.embeddings.word_embeddings.weight


def test_auto_classes_resolve_bert_generation(tmp_path):
    BertGenerationConfig(**BG_TINY, is_decoder=True).save_pretrained(tmp_path / "cfg")
    M.BertGenerationDecoder(BertGenerationConfig(**BG_TINY, is_decoder=True)).save_pretrained(tmp_path / "m")
    assert type(M.AutoModelForCausalLM.from_pretrained(tmp_path / "m")) is M.BertGenerationDecoder
    assert type(M.AutoModel.from_pretrained(tmp_path / "m")) is M.BertGenerationEncoder


# ---- the seeds' warm start: BertGeneration from a plain BERT checkpoint (MiniLM) ------------------------------------
SENTENCES = ["This is a long article to summarize", "A short one."]


def test_encoder_warm_started_from_bert_matches_transformers(minilm_dir):
    ours, info = M.BertGenerationEncoder.from_pretrained(minilm_dir, bos_token_id=101, eos_token_id=102,
                                                         output_loading_info=True)
    assert info["missing_keys"] == []
    assert sorted(info["unexpected_keys"]) == ["embeddings.token_type_embeddings.weight", "pooler.dense.bias",
                                               "pooler.dense.weight"]
    assert type(ours.config) is BertGenerationConfig and ours.config.model_type == "bert-generation"
    assert (ours.config.bos_token_id, ours.config.eos_token_id, ours.config.hidden_size) == (101, 102, 384)
    hf = T.BertGenerationEncoder.from_pretrained(minilm_dir, bos_token_id=101, eos_token_id=102).eval()
    tok = T.AutoTokenizer.from_pretrained(minilm_dir)
    batch = tok(SENTENCES, add_special_tokens=False, padding=True, return_tensors="pt",
                return_token_type_ids=False)
    with torch.no_grad():
        a = hf(**batch, output_hidden_states=True)
        b = ours(**batch, output_hidden_states=True)
        fast = ours(**batch)
    real = batch["attention_mask"].bool()
    for i, (x, y) in enumerate(zip(a.hidden_states, b.hidden_states)):
        assert_close(x[real], y[real], f"hidden_states[{i}]")
    assert_close(a.last_hidden_state[real], fast.last_hidden_state[real], "last_hidden_state (packed path)")


def test_decoder_warm_started_from_bert_reports_new_weights_and_trains(minilm_dir, tmp_path):
    decoder, info = M.BertGenerationDecoder.from_pretrained(
        minilm_dir, add_cross_attention=True, is_decoder=True, bos_token_id=101, eos_token_id=102,
        output_loading_info=True)
    missing = set(info["missing_keys"])
    assert "lm_head.bias" in missing
    assert {f"bert.encoder.layer.{i}.crossattention.self.query.weight" for i in range(6)} <= missing
    assert not any("attention.self.query" in k and "crossattention" not in k for k in missing)
    assert sorted(info["unexpected_keys"]) == ["embeddings.token_type_embeddings.weight", "pooler.dense.bias",
                                               "pooler.dense.weight"]
    encoder = M.BertGenerationEncoder.from_pretrained(minilm_dir, bos_token_id=101, eos_token_id=102)
    assert_close(decoder.bert.encoder.layer[0].attn.qkv.weight, encoder.encoder.layer[0].attn.qkv.weight, "shared")

    tok = T.AutoTokenizer.from_pretrained(minilm_dir)
    src = tok(SENTENCES[:1], add_special_tokens=False, return_tensors="pt").input_ids
    labels = tok(["This is a short summary"], return_tensors="pt").input_ids
    decoder.train()
    enc = encoder(src).last_hidden_state
    loss = decoder(labels, encoder_hidden_states=enc, labels=labels).loss
    loss.backward()
    assert torch.isfinite(loss) and decoder.bert.encoder.layer[0].cross_attn.q.weight.grad.abs().sum() > 0

    # transformers reads the warm-started decoder and computes the same logits.
    decoder.eval().save_pretrained(tmp_path)
    hf = T.BertGenerationDecoder.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        assert_close(hf(labels, encoder_hidden_states=enc.detach()).logits,
                     decoder(labels, encoder_hidden_states=enc.detach()).logits, "decoder logits")


# ---- bad inputs ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def encoder():
    return M.BertGenerationEncoder(BertGenerationConfig(**BG_TINY)).eval()


def test_token_type_ids_must_be_zero(encoder):
    ids = torch.ones(1, 4, dtype=torch.long)
    zeros = encoder(ids, token_type_ids=torch.zeros_like(ids)).last_hidden_state
    assert_close(zeros, encoder(ids).last_hidden_state, "all-zero token types are ignored")
    with pytest.raises(ValueError, match="no token type embeddings"):
        encoder(ids, token_type_ids=torch.ones_like(ids))


@pytest.mark.parametrize("make,match", [
    (lambda: torch.full((1, 3), 99), r"input_ids contains 99, outside \[0, 99\) \(vocab_size = 99\)"),
    (lambda: torch.ones(1, 65, dtype=torch.long), r"sequence length 65 .*max_position_embeddings = 64"),
    (lambda: torch.ones(1, 3), r"input_ids must be an integer tensor"),
])
def test_bad_ids(encoder, make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        encoder(make())


def test_encoder_states_need_cross_attention(encoder):
    with pytest.raises(ValueError, match="no cross-attention"):
        encoder(torch.ones(1, 3, dtype=torch.long), encoder_hidden_states=torch.zeros(1, 2, H))


def test_cross_attention_needs_is_decoder():
    with pytest.raises(ValueError, match="is_decoder"):
        M.BertGenerationDecoder(BertGenerationConfig(**BG_TINY, add_cross_attention=True))


def test_encoder_states_of_the_wrong_width():
    dec = M.BertGenerationDecoder(BertGenerationConfig(**BG_TINY, is_decoder=True, add_cross_attention=True))
    with pytest.raises(ValueError, match=r"encoder_hidden_states must be \(batch=1, source_length, 32\)"):
        dec(torch.ones(1, 3, dtype=torch.long), encoder_hidden_states=torch.zeros(1, 2, 48))


def test_encoder_save_loads_in_transformers(tmp_path):
    torch.manual_seed(0)
    ours = M.BertGenerationEncoder(BertGenerationConfig(**BG_TINY)).eval()
    spread_weights(ours)
    ours.save_pretrained(tmp_path)
    hf, info = T.BertGenerationEncoder.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    ids, mask, _ = inputs()
    real = mask.bool()
    with torch.no_grad():
        assert_close(hf.eval()(ids, attention_mask=mask).last_hidden_state[real],
                     ours(ids, attention_mask=mask).last_hidden_state[real], "encoder save read by transformers")
