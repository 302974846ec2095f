"""The model contract (generation/contract.py): the facts generation reads about a model, read in one place, and the
cache whose rows repeat for beams and samples."""
from pathlib import Path

import pytest
import torch

import warmstart as W
from parity import TINY
from warmstart.generation.contract import ModelContract
from warmstart.nn.cache import KVCache
from warmstart.models.encoder_decoder import EncoderDecoderConfig, EncoderDecoderModel


@pytest.mark.parametrize("name, table, first, pad", [
    ("bert", 64, 0, 0), ("gpt2", 64, 0, 0), ("bertgen", 64, 0, 0),
    ("roberta", 66, 2, 1),  # RoBERTa numbers positions after its padding index 1 (fairseq)
])
def test_decoder_only_facts(causal_pair, name, table, first, pad):
    _, ours = causal_pair(name)
    c = ModelContract.of(ours)
    assert not c.seq2seq and c.lm is ours and c.backbone is ours.base_model and c.name == type(ours).__name__
    assert c.head is not c.backbone and any(m is ours.get_output_embeddings() for m in c.head.modules())
    assert (c.vocab_size, c.max_positions, c.first_position, c.pad_position) == (99, table, first, pad)
    assert c.usable_positions == table - first and c.encoder_inputs == frozenset()


def test_seq2seq_facts(seq2seq_pair):
    _, ours = seq2seq_pair("bert2gpt2")
    c = ModelContract.of(ours)
    assert c.seq2seq and c.lm is ours.get_decoder() and c.backbone is ours.get_decoder().base_model
    assert (c.vocab_size, c.max_positions, c.first_position) == (99, 64, 0)
    assert {"input_ids", "attention_mask", "token_type_ids"} <= c.encoder_inputs
    assert not any(k.startswith("decoder_") for k in c.encoder_inputs)


def test_left_padded_positions_follow_each_family(causal_pair):
    mask = torch.tensor([[1, 1, 1, 1], [0, 0, 1, 1]])
    roberta, gpt2 = ModelContract.of(causal_pair("roberta")[1]), ModelContract.of(causal_pair("gpt2")[1])
    assert torch.equal(roberta.prompt_positions(mask), torch.tensor([[2, 3, 4, 5], [1, 1, 2, 3]]))
    assert torch.equal(gpt2.prompt_positions(mask), torch.tensor([[0, 1, 2, 3], [0, 0, 0, 1]]))
    # Nothing padded: the stack numbers positions itself.
    assert gpt2.prompt_positions(torch.ones(2, 4, dtype=torch.long)) is None and gpt2.prompt_positions(None) is None


def test_encode_hands_the_decoder_states_in_its_own_width():
    torch.manual_seed(0)
    config = EncoderDecoderConfig.from_encoder_decoder_configs(
        W.BertConfig(**TINY), W.BertConfig(**{**TINY, "hidden_size": 48}))
    model = EncoderDecoderModel(config).eval()
    ids = torch.randint(4, 90, (2, 5))
    outputs, states = ModelContract.of(model).encode(ids, None, flags={"output_attentions": False,
                                                                       "output_hidden_states": False})
    assert outputs.last_hidden_state.shape == (2, 5, 32) and states.shape == (2, 5, 48)
    assert torch.allclose(states, model.enc_to_dec_proj(outputs.last_hidden_state))
    # Given encoder outputs are used as they are: the encoder does not run again.
    calls = []
    handle = model.encoder.register_forward_hook(lambda *a: calls.append(1))
    try:
        again, states2 = ModelContract.of(model).encode(None, None, outputs, flags={})
    finally:
        handle.remove()
    assert again is outputs and not calls and torch.equal(states, states2)


def test_the_cache_repeats_its_rows_and_keeps_its_room():
    cache = KVCache(max_length=10)
    k, v = torch.randn(2, 4, 3, 8), torch.randn(2, 4, 3, 8)  # (B, H, T, D)
    ck, cv = torch.randn(2, 4, 5, 8), torch.randn(2, 4, 5, 8)
    cache.update(0, k, v)
    cache.set_cross(0, ck, cv)
    cache.update(1, k + 1, v + 1)  # a layer without cross-attention
    assert cache.repeat_rows(1) is cache
    grown = cache.repeat_rows(3)
    assert isinstance(grown, KVCache) and grown.max_length == 10 and grown.get_seq_length() == 3
    first, second = grown.to_legacy_cache()
    assert torch.equal(first[0], k.repeat_interleave(3, 0)) and torch.equal(first[1], v.repeat_interleave(3, 0))
    assert torch.equal(first[2], ck.repeat_interleave(3, 0)) and torch.equal(first[3], cv.repeat_interleave(3, 0))
    assert len(second) == 2 and torch.equal(second[0], (k + 1).repeat_interleave(3, 0))
    assert first[0].untyped_storage().nbytes() == 6 * 4 * 10 * 8 * 4  # preallocated for max_length, no more
    # Beam search reorders self-attention rows only; the cross rows of one input are shared.
    grown.reorder_cache(torch.tensor([2, 2, 0, 3, 4, 5]), cross=False)
    assert torch.equal(grown.to_legacy_cache()[0][0][1], k[0]) and torch.equal(grown.to_legacy_cache()[0][2], first[2])


def test_only_the_contract_reads_model_internals():
    """generate() and the step protocol learn about the model through the contract alone."""
    package = Path(W.__file__).parent / "generation"
    for path in package.glob("*.py"):
        if path.name == "contract.py":
            continue
        text = path.read_text()
        for internal in (".embeddings", "enc_to_dec_proj", "first_free_position", "position_offset_from_padding"):
            assert internal not in text, f"{path.name} reads {internal}; ask the ModelContract instead"
