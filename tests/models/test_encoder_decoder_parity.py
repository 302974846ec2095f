"""EncoderDecoderModel against transformers for every encoder/decoder pairing on tiny random weights.

Each pair is built in transformers (the oracle), saved, and loaded by us: logits, loss, encoder/decoder hidden
states and attentions, cross-attentions and every gradient must agree (fp32, 1e-5); cached step-by-step decoding
must equal the full forward; our save must load back into transformers with the same logits.
"""
import pytest
import torch
import transformers as T

from parity import TINY, assert_close, hf_encoder_decoder
from warmstart.checkpoint.keymaps import KEYMAPS
from warmstart.models.encoder_decoder import EncoderDecoderModel
from warmstart.nn import KVCache

H = TINY["hidden_size"]
GPT2_TINY = dict(vocab_size=99, n_embd=H, n_layer=2, n_head=4, n_positions=64, resid_pdrop=0.0, embd_pdrop=0.0,
                 attn_pdrop=0.0, initializer_range=0.2, bos_token_id=98, eos_token_id=98)
ROBERTA_TINY = dict(TINY, pad_token_id=1, bos_token_id=0, eos_token_id=2, max_position_embeddings=66)
BERTGEN_TINY = {k: v for k, v in TINY.items() if k != "type_vocab_size"}

# name -> (encoder config, decoder config); decoders get is_decoder/add_cross_attention from the composite.
PAIRS = {
    "bert2bert": lambda: (T.BertConfig(**TINY), T.BertConfig(**TINY)),
    "bert2bert_wider_decoder": lambda: (T.BertConfig(**TINY), T.BertConfig(**{**TINY, "hidden_size": 48})),
    "bertgen2bertgen": lambda: (T.BertGenerationConfig(**BERTGEN_TINY), T.BertGenerationConfig(**BERTGEN_TINY)),
    "roberta2roberta": lambda: (T.RobertaConfig(**ROBERTA_TINY), T.RobertaConfig(**ROBERTA_TINY)),
    "bert2gpt2": lambda: (T.BertConfig(**TINY), T.GPT2Config(**GPT2_TINY)),
}
START = 3  # decoder_start_token_id; not the pad id of any family, so the first decoder position is never masked


def _pair(tmp_path, name):
    hf = hf_encoder_decoder(*PAIRS[name](), START)
    hf.set_attn_implementation("eager")  # attention probabilities are compared too
    hf.save_pretrained(tmp_path / "hf")
    ours = EncoderDecoderModel.from_pretrained(tmp_path / "hf")
    return hf.eval(), ours


def _batch(pad_id):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(4, 97, (2, 9), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    ids[1, 6:] = pad_id
    labels = torch.randint(4, 97, (2, 6), generator=g)
    labels[1, 4:] = -100  # ignored positions: become padding in the shifted decoder input
    return ids, mask, labels


def _hf_grads(ours):
    """Our gradients under transformers' names (each side through its own key map)."""
    out = {}
    for side in ("encoder", "decoder"):
        sub = getattr(ours, side)
        grads = {n: p.grad for n, p in sub.named_parameters() if p.grad is not None}
        theirs = KEYMAPS[sub.keymap_name].to_theirs(grads, model_has_prefix=bool(sub.base_model_prefix))
        out.update({f"{side}.{k}": v for k, v in theirs.items()})
    if hasattr(ours, "enc_to_dec_proj"):
        out.update({f"enc_to_dec_proj.{n}": p.grad for n, p in ours.enc_to_dec_proj.named_parameters()})
    return out


@pytest.mark.parametrize("name", list(PAIRS))
def test_logits_loss_and_gradients(tmp_path, name):
    hf, ours = _pair(tmp_path, name)
    ids, mask, labels = _batch(hf.config.encoder.pad_token_id or 0)
    a = hf(input_ids=ids, attention_mask=mask, labels=labels)
    b = ours(input_ids=ids, attention_mask=mask, labels=labels)
    scored = labels != -100
    assert_close(a.logits[scored], b.logits[scored], "logits")
    assert_close(a.loss, b.loss, "loss")
    assert b[0] is b.loss and b.past_key_values is None  # no cache built for a training step
    assert_close(a.encoder_last_hidden_state[mask.bool()], b.encoder_last_hidden_state[mask.bool()], "encoder")
    a.loss.backward()
    b.loss.backward()
    ours_grads = _hf_grads(ours)
    hf_grads = {n: p.grad for n, p in hf.named_parameters() if p.grad is not None}
    assert set(hf_grads) <= set(ours_grads), sorted(set(hf_grads) - set(ours_grads))
    for key, g in hf_grads.items():
        assert_close(ours_grads[key], g, f"grad {key}")


@pytest.mark.parametrize("name", list(PAIRS))
def test_hidden_states_attentions_and_cross_attentions(tmp_path, name):
    hf, ours = _pair(tmp_path, name)
    ids, mask, labels = _batch(hf.config.encoder.pad_token_id or 0)
    dec_ids = ours.prepare_decoder_input_ids_from_labels(labels)
    dec_mask = (dec_ids != ours.config.pad_token_id).long()
    kw = dict(input_ids=ids, attention_mask=mask, decoder_input_ids=dec_ids, decoder_attention_mask=dec_mask,
              output_hidden_states=True, output_attentions=True)
    with torch.no_grad():
        a, b = hf(**kw), ours(**kw)
    n_layers = 2
    for field in ("encoder_hidden_states", "decoder_hidden_states"):
        assert len(getattr(b, field)) == n_layers + 1, field
    for field in ("encoder_attentions", "decoder_attentions", "cross_attentions"):
        assert len(getattr(b, field)) == n_layers, field
    for field in ("encoder_hidden_states", "encoder_attentions", "decoder_hidden_states", "decoder_attentions",
                  "cross_attentions"):
        for i, (x, y) in enumerate(zip(getattr(a, field), getattr(b, field))):
            assert_close(x, y, f"{field}[{i}]")
    assert_close(a.encoder_last_hidden_state, b.encoder_last_hidden_state, "encoder_last_hidden_state")
    assert_close(a.logits, b.logits, "logits (every position)")


@pytest.mark.parametrize("name", list(PAIRS))
def test_our_save_loads_in_transformers(tmp_path, name):
    hf, ours = _pair(tmp_path, name)
    ours.save_pretrained(tmp_path / "ours")
    back, info = T.EncoderDecoderModel.from_pretrained(tmp_path / "ours", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    ids, mask, labels = _batch(hf.config.encoder.pad_token_id or 0)
    with torch.no_grad():
        a = back.eval()(input_ids=ids, attention_mask=mask, labels=labels)
        b = ours(input_ids=ids, attention_mask=mask, labels=labels)
    assert_close(a.logits[labels != -100], b.logits[labels != -100], "logits after our save")
    assert_close(a.loss, b.loss, "loss after our save")


def _step_by_step(model, enc_out, mask, dec_ids, legacy):
    steps, past = [], None if legacy else KVCache()  # v4: tuples come back unless a cache object goes in
    with torch.no_grad():
        for t in range(dec_ids.shape[1]):
            out = model(encoder_outputs=enc_out, attention_mask=mask, decoder_input_ids=dec_ids[:, t:t + 1],
                        past_key_values=past, use_cache=True)
            past = out.past_key_values
            if legacy:
                past = past.to_legacy_cache() if isinstance(past, KVCache) else past
                past = tuple(tuple(x.clone() for x in layer) for layer in past)  # plain tuples in, every step
            steps.append(out.logits)
    return torch.cat(steps, 1), past


@pytest.mark.parametrize("name", list(PAIRS))
def test_cached_decoding_equals_full_forward(tmp_path, name):
    hf, ours = _pair(tmp_path, name)
    ids, mask, labels = _batch(hf.config.encoder.pad_token_id or 0)
    dec_ids = ours.prepare_decoder_input_ids_from_labels(labels.clamp(min=4))
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask, decoder_input_ids=dec_ids).logits
        full = ours(input_ids=ids, attention_mask=mask, decoder_input_ids=dec_ids)
    assert_close(full.logits, ref, "full forward vs transformers")
    enc_out = (full.encoder_last_hidden_state,)  # the encoder ran once; the tuple form transformers accepts

    # Cross-attention keys/values are projected once per layer, on the first step only.
    calls = []
    hooks = [m.register_forward_hook(lambda *_: calls.append(1)) for n, m in ours.decoder.named_modules()
             if n.endswith("cross_attn.kv")]
    cached, cache = _step_by_step(ours, enc_out, mask, dec_ids, legacy=False)
    for h in hooks:
        h.remove()
    assert len(calls) == len(hooks) == 2
    assert isinstance(cache, KVCache)
    assert_close(cached, full.logits, "cached (KVCache) vs full")

    legacy, past = _step_by_step(ours, enc_out, mask, dec_ids, legacy=True)
    assert_close(legacy, full.logits, "cached (legacy tuples) vs full")
    assert len(past) == 2 and len(past[0]) == 4 and past[0][2].shape[2] == ids.shape[1]


@pytest.mark.parametrize("legacy", [False, True])
def test_reorder_cache_follows_beams(tmp_path, legacy):
    hf, ours = _pair(tmp_path, "bert2bert_wider_decoder")
    ids, mask, _ = _batch(0)
    ids, mask = ids.repeat(2, 1), mask.repeat(2, 1)  # 4 rows = 2 sources x 2 beams
    dec = torch.randint(4, 97, (4, 3), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        first = ours(input_ids=ids, attention_mask=mask, decoder_input_ids=dec, use_cache=True)
        past = first.past_key_values if legacy else KVCache.from_legacy_cache(first.past_key_values)  # v4: tuples out
        order = torch.tensor([2, 0, 0, 3])
        past = EncoderDecoderModel._reorder_cache(past, order)
        nxt = torch.tensor([[5], [6], [7], [8]])
        step = ours(encoder_outputs=(first.encoder_last_hidden_state[order],), attention_mask=mask[order],
                    decoder_input_ids=nxt, past_key_values=past, use_cache=True).logits
        ref = ours(input_ids=ids[order], attention_mask=mask[order],
                   decoder_input_ids=torch.cat([dec[order], nxt], 1)).logits[:, -1:]
    assert_close(step, ref, "step after reordering the cache")


@pytest.mark.parametrize("name", list(PAIRS))
def test_labels_padded_with_the_pad_id_are_scored(tmp_path, name):
    # Labels padded with pad_token_id (not -100) are scored where the derived decoder mask hides the input: those
    # positions must be computed, not skipped as padding.
    hf, ours = _pair(tmp_path, name)
    ids, mask, labels = _batch(hf.config.encoder.pad_token_id or 0)
    labels[1, 3:] = hf.config.pad_token_id
    a = hf(input_ids=ids, attention_mask=mask, labels=labels)
    b = ours(input_ids=ids, attention_mask=mask, labels=labels)
    assert_close(a.loss, b.loss, "loss")
    assert_close(a.logits, b.logits, "logits (every position)")
