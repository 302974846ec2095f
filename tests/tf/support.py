"""Shared helpers of test_parity / test_calling / test_errors: tiny configs, a PyTorch model with every weight
drawn at random, moved to TF through save_pretrained -> TF from_pretrained (the users' path), and comparisons."""
from __future__ import annotations

import numpy as np
import torch

import warmstart as ws
from warmstart.config.bert import BertConfig, RobertaConfig
from warmstart.config.gpt2 import GPT2Config

ATOL = 1e-5
TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
GPT2 = dict(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_inner=37, n_positions=64, resid_pdrop=0.0,
            embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=98, eos_token_id=98)


def bert_config(**kw) -> BertConfig:
    return BertConfig(**{**TINY, **kw})


def roberta_config(**kw) -> RobertaConfig:
    return RobertaConfig(**{**TINY, "pad_token_id": 1, **kw})


def gpt2_config(**kw) -> GPT2Config:
    return GPT2Config(**{**GPT2, **kw})


def random_pt(name: str, config, seed: int = 0):
    """Our PyTorch ``name`` with every parameter drawn N(0, 0.2) (norm scales around 1), padded rows computed."""
    torch.manual_seed(seed)
    pt = getattr(ws, name)(config)
    with torch.no_grad():
        for n, p in pt.named_parameters():
            torch.nn.init.normal_(p, std=0.2)
            if p.dim() == 1 and n.endswith("weight") and ("norm" in n or "ln_" in n):
                p.add_(1.0)
    for module in pt.modules():
        if hasattr(module, "skip_padding"):
            module.skip_padding = False  # compute padded positions too, as the TF models do
    return pt.eval()


def pair(pt_name: str, config, folder, seed: int = 0):
    """(PyTorch model, the TF model loaded from its save_pretrained folder)."""
    import warmstart.tf as wtf

    pt = random_pt(pt_name, config, seed)
    pt.save_pretrained(folder)
    return pt, getattr(wtf, "TF" + pt_name).from_pretrained(folder)


def ids_and_mask(rows: int = 2, length: int = 7, pad: int = 0, seed: int = 1):
    """int64 ids in [3, 98) with the last row padded after 5 tokens (mask 0 there, pad id)."""
    rng = np.random.RandomState(seed)
    ids = rng.randint(3, 98, (rows, length)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[-1, 5:] = 0
    ids[-1, 5:] = pad
    return ids, mask


def encoder_states(rows: int = 2, source: int = 5, width: int = 32, seed: int = 2):
    rng = np.random.RandomState(seed)
    states = rng.randn(rows, source, width).astype(np.float32)
    mask = np.ones((rows, source), np.int64)
    mask[-1, -1] = 0
    return states, mask


def to_np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    if hasattr(x, "numpy"):
        return x.numpy()
    return np.asarray(x)


def max_diff(a, b) -> float:
    a, b = to_np(a).astype(np.float64), to_np(b).astype(np.float64)
    assert a.shape == b.shape, f"shapes {a.shape} vs {b.shape}"
    return float(np.abs(a - b).max()) if a.size else 0.0


def assert_close(a, b, what: str, atol: float = ATOL) -> None:
    d = max_diff(a, b)
    assert d <= atol, f"{what}: max abs diff {d:.3g} > {atol}"


def compare(got, want, fields, atol: float = ATOL) -> None:
    """Every field (tuples entry by entry) of a TF output against a PyTorch output."""
    for f in fields:
        a, b = got[f], want[f]
        assert a is not None and b is not None, f"{f}: TF {a is None and 'None'} / PyTorch {b is None and 'None'}"
        if isinstance(b, (tuple, list)):
            assert isinstance(a, (tuple, list)) and len(a) == len(b), f"{f}: {len(a)} entries vs {len(b)}"
            for i, (x, y) in enumerate(zip(a, b)):
                assert_close(x, y, f"{f}[{i}]", atol)
        else:
            assert_close(a, b, f, atol)


# ---- encoder-decoders --------------------------------------------------------------------------------------------
# kind -> (encoder class, decoder class, decoder config, decoder_start_token_id, pad_token_id, eos_token_id)
SEQ2SEQ = {
    "bert2bert": ("BertModel", "BertLMHeadModel", lambda: bert_config(is_decoder=True, add_cross_attention=True),
                  bert_config, 2, 0, 3),
    "roberta2roberta": ("RobertaModel", "RobertaForCausalLM",
                        lambda: roberta_config(is_decoder=True, add_cross_attention=True), roberta_config, 0, 1, 2),
    # GPT-2 narrower than BERT: enc_to_dec_proj exists; start = pad = eos = 98, as bert2gpt2 users set it
    "bert2gpt2": ("BertModel", "GPT2LMHeadModel", lambda: gpt2_config(n_embd=24, add_cross_attention=True),
                  bert_config, 98, 98, 98),
}


def seq2seq_pt(kind: str, folder=None):
    """Our PyTorch EncoderDecoderModel of ``kind`` with every weight random (saved to ``folder`` when given)."""
    enc_name, dec_name, dec_config, enc_config, start, pad, eos = SEQ2SEQ[kind]
    pt = ws.EncoderDecoderModel(encoder=random_pt(enc_name, enc_config(), 0),
                                decoder=random_pt(dec_name, dec_config(), 1)).eval()
    pt.config.decoder_start_token_id, pt.config.pad_token_id, pt.config.eos_token_id = start, pad, eos
    if folder is not None:
        pt.save_pretrained(folder)
    return pt
