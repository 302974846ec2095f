"""Helpers for parity tests against transformers (the oracle): tiny configs, weight transfer, comparisons."""
from __future__ import annotations

import torch

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64, type_vocab_size=2, hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0, initializer_range=0.2)
ATOL = 1e-5


def spread_weights(model: torch.nn.Module, seed: int = 0) -> None:
    """Random non-trivial biases and norms, so a swapped or dropped parameter cannot hide behind zeros/ones."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                base = 1.0 if "LayerNorm.weight" in name or name.endswith("ln_1.weight") else 0.0
                p.copy_(base + 0.1 * torch.randn(p.shape, generator=g))


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a.float() - b.float()).abs().max().item()


def assert_close(a, b, what: str = "", atol: float = ATOL) -> None:
    d = max_diff(a, b)
    assert d <= atol, f"{what}: max abs diff {d:.3g} > {atol}"


def inputs(batch: int = 2, length: int = 9, vocab: int = 99, pad_row_from: int | None = 6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab, (batch, length), generator=g)
    mask = torch.ones(batch, length, dtype=torch.long)
    if pad_row_from is not None:
        mask[-1, pad_row_from:] = 0
        ids[-1, pad_row_from:] = 0
    types = torch.zeros(batch, length, dtype=torch.long)
    types[:, length // 2:] = 1
    return ids, mask, types


def hf_encoder_decoder(encoder_config, decoder_config, start: int):
    """transformers' EncoderDecoderModel of two configs (the oracle), spread weights, ``decoder_start_token_id`` =
    start and ``pad_token_id`` = the decoder's (0 when it has none)."""
    import transformers as T

    torch.manual_seed(0)
    config = T.EncoderDecoderConfig.from_encoder_decoder_configs(encoder_config, decoder_config)
    config.decoder_start_token_id = start
    config.pad_token_id = decoder_config.pad_token_id if decoder_config.pad_token_id is not None else 0
    hf = T.EncoderDecoderModel(config=config)
    spread_weights(hf)
    return hf
