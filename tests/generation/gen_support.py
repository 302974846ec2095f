"""Shared pieces of the generation tests (put on sys.path by this folder's conftest): model builders, batches and
the token comparison that ignores what follows a row's end."""
from __future__ import annotations

import torch
import transformers as T

import warmstart as W
from parity import TINY

H = TINY["hidden_size"]
GPT2_TINY = dict(vocab_size=99, n_embd=H, n_layer=2, n_head=4, n_positions=64, resid_pdrop=0.0, embd_pdrop=0.0,
                 attn_pdrop=0.0, initializer_range=0.2, bos_token_id=98, eos_token_id=98)
ROBERTA_TINY = dict(TINY, pad_token_id=1, bos_token_id=0, eos_token_id=2, max_position_embeddings=66)
BERTGEN_TINY = {k: v for k, v in TINY.items() if k != "type_vocab_size"}
START = 3  # decoder_start_token_id of the tiny encoder-decoders
EOS = [20, 30, 40, 50, 60]  # several EOS ids: frequent enough in random models that rows end at different times

SEQ2SEQ = {
    "bert2bert": lambda: (T.BertConfig(**TINY), T.BertConfig(**TINY)),
    "roberta2roberta": lambda: (T.RobertaConfig(**ROBERTA_TINY), T.RobertaConfig(**ROBERTA_TINY)),
    "bert2gpt2": lambda: (T.BertConfig(**TINY), T.GPT2Config(**GPT2_TINY)),
}
CAUSAL = {
    "bert": (lambda: T.BertLMHeadModel(T.BertConfig(**TINY, is_decoder=True)), W.BertLMHeadModel),
    "gpt2": (lambda: T.GPT2LMHeadModel(T.GPT2Config(**GPT2_TINY)), W.GPT2LMHeadModel),
    "roberta": (lambda: T.RobertaForCausalLM(T.RobertaConfig(**ROBERTA_TINY, is_decoder=True)),
                W.RobertaForCausalLM),
    "bertgen": (lambda: T.BertGenerationDecoder(T.BertGenerationConfig(**BERTGEN_TINY, is_decoder=True)),
                W.BertGenerationDecoder),
}


def batch(rows: int = 3, length: int = 9, pad_id: int = 0, seed: int = 1, left: bool = False):
    """Random token ids with a padded batch: row 1 loses 3 positions, row 2 five (right, or left for decoders)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, 97, (rows, length), generator=g)
    mask = torch.ones_like(ids)
    for row, cut in ((1, 3), (2, 5)):
        if row < rows:
            if left:
                mask[row, :cut] = 0
            else:
                mask[row, length - cut:] = 0
    ids[mask == 0] = pad_id
    return ids, mask


def content(seq: torch.Tensor, prompt_len: int, eos) -> torch.Tensor:
    """Blank what follows each row's first generated EOS.

    Rows that end early are filled up to the batch length; transformers fills with the EOS id instead of the pad id
    when the pad id is 0 (warmstart uses the pad id), so only the real tokens are compared."""
    seq = seq.clone()
    if eos is None:
        return seq
    gen = seq[:, prompt_len:]
    hit = torch.isin(gen, torch.tensor(eos if isinstance(eos, list) else [eos]))
    gen[(hit.long().cumsum(1) - hit.long()) > 0] = -7
    return seq


def assert_same_tokens(a: torch.Tensor, b: torch.Tensor, prompt_len: int, eos, what: str = "") -> None:
    assert a.shape == b.shape, f"{what}: shapes differ: transformers {tuple(a.shape)}, warmstart {tuple(b.shape)}"
    ca, cb = content(a, prompt_len, eos), content(b, prompt_len, eos)
    assert torch.equal(ca, cb), f"{what}:\ntransformers\n{a}\nwarmstart\n{b}"
