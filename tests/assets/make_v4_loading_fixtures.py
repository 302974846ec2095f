"""Regenerate the v4 reference fixtures in ``tests/assets/v4_loading/`` (head pruning, 3-D attention masks).

transformers 5.x removed ``prune_heads`` / ``config.pruned_heads`` and no longer accepts a 3-D
(batch, query, key) ``attention_mask``, so the values warmstart is checked against come from a transformers
4.46.3 install kept out of the project's virtual environment (set up as in make_relpos_fixtures.py):

    /work/main/.venv/bin/python -m pip install --no-deps --target /tmp/tf4 \
        "transformers==4.46.3" "tokenizers==0.20.3" "huggingface_hub==0.26.5" \
        requests urllib3 charset_normalizer certifi
    PYTHONPATH=/tmp/tf4 /work/main/.venv/bin/python tests/assets/make_v4_loading_fixtures.py

Cases (one folder each):

    bert_pruned     BertModel pruned with {0: [0], 1: [1, 2]} and then {1: [3]} (v4 accumulates the two calls in
                    config.pruned_heads), saved by v4: the checkpoint holds the smaller layers
    gpt2_pruned     GPT2LMHeadModel pruned with {0: [1], 1: [0, 3]}
    bert_mask3d     BertModel (encoder) run with a (batch, seq, seq) attention_mask
    decoder_mask3d  BertLMHeadModel (is_decoder, cross-attention) run with a 3-D self-attention mask, which v4
                    uses as given (no causal part added), and a 3-D (batch, seq, source) encoder_attention_mask

Each folder holds config.json + model.safetensors (v4's save_pretrained), inputs.safetensors and
expected.safetensors (outputs of v4 on those inputs). The script is a test-asset generator, run by hand; it is never
imported by the test suite.
"""

import argparse
import os
import shutil

import torch
import transformers
from safetensors.torch import save_file
from transformers import BertConfig, BertLMHeadModel, BertModel, GPT2Config, GPT2LMHeadModel

if not transformers.__version__.startswith("4."):
    raise SystemExit(
        f"this script needs a transformers 4.x oracle (head pruning and 3-D masks were removed in 5.x), got "
        f"transformers {transformers.__version__} from {transformers.__file__}; run it with PYTHONPATH=/tmp/tf4"
    )

SEED = 4321
BATCH, SEQ, ENC_SEQ, HIDDEN = 2, 6, 4, 32


def _bert_config(decoder=False):
    return BertConfig(
        vocab_size=99, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
        max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        # A wide init: attention far from uniform, so a wrongly removed head or mask moves outputs a lot.
        initializer_range=0.2, is_decoder=decoder, add_cross_attention=decoder, attn_implementation="eager",
    )


def _gpt2_config():
    return GPT2Config(vocab_size=99, n_embd=HIDDEN, n_layer=2, n_head=4, n_positions=64, resid_pdrop=0.0,
                      embd_pdrop=0.0, attn_pdrop=0.0, initializer_range=0.2, pad_token_id=0, bos_token_id=1,
                      eos_token_id=2, attn_implementation="eager")


def _build(model_cls, config):
    torch.manual_seed(SEED)
    model = model_cls(config)
    with torch.no_grad():  # v4 zero biases / unit LayerNorms would hide a dropped bias or a swapped slice
        for name, param in model.named_parameters():
            if name.endswith(".bias"):
                param.normal_(0.0, 0.1)
            elif "LayerNorm.weight" in name or name.endswith("ln_1.weight") or name.endswith("ln_2.weight"):
                param.normal_(1.0, 0.1)
    return model.eval()


def _ids():
    gen = torch.Generator().manual_seed(SEED)
    input_ids = torch.randint(3, 99, (BATCH, SEQ), generator=gen)
    attention_mask = torch.ones(BATCH, SEQ, dtype=torch.long)
    attention_mask[1, 4:] = 0
    input_ids[1, 4:] = 0  # pad_token_id
    return gen, {"input_ids": input_ids, "attention_mask": attention_mask}


def _mask3d(gen, cols):
    """(B, SEQ, cols) 0/1 pattern; every query keeps at least one key (column 0)."""
    mask = (torch.rand(BATCH, SEQ, cols, generator=gen) > 0.4).long()
    mask[:, :, 0] = 1
    return mask


def _per_layer(expected, prefix, tensors):
    for i, t in enumerate(tensors):
        expected[f"{prefix}.{i}"] = t


def bert_pruned():
    model = _build(BertModel, _bert_config())
    model.prune_heads({0: [0], 1: [1, 2]})
    model.prune_heads({1: [3]})
    assert model.config.pruned_heads == {0: [0], 1: [1, 2, 3]}, model.config.pruned_heads
    _, inputs = _ids()
    with torch.no_grad():
        out = model(**inputs, output_attentions=True)
    expected = {"last_hidden_state": out.last_hidden_state, "pooler_output": out.pooler_output}
    _per_layer(expected, "attentions", out.attentions)
    return model, inputs, expected


def gpt2_pruned():
    model = _build(GPT2LMHeadModel, _gpt2_config())
    model.prune_heads({0: [1], 1: [0, 3]})
    _, inputs = _ids()
    inputs["attention_mask"] = torch.ones_like(inputs["attention_mask"])
    with torch.no_grad():
        out = model(**inputs, output_attentions=True)
    expected = {"logits": out.logits}
    _per_layer(expected, "attentions", out.attentions)
    return model, inputs, expected


def bert_mask3d():
    model = _build(BertModel, _bert_config())
    gen, inputs = _ids()
    inputs["attention_mask"] = _mask3d(gen, SEQ)
    with torch.no_grad():
        out = model(**inputs, output_attentions=True)
        plain = model(**inputs)  # v4's SDPA path: the same numbers without returned probabilities
    torch.testing.assert_close(plain.last_hidden_state, out.last_hidden_state, atol=1e-5, rtol=0)
    expected = {"last_hidden_state": out.last_hidden_state, "pooler_output": out.pooler_output}
    _per_layer(expected, "attentions", out.attentions)
    return model, inputs, expected


def decoder_mask3d():
    model = _build(BertLMHeadModel, _bert_config(decoder=True))
    gen, inputs = _ids()
    inputs["attention_mask"] = _mask3d(gen, SEQ)
    inputs["encoder_hidden_states"] = torch.randn(BATCH, ENC_SEQ, HIDDEN, generator=gen)
    inputs["encoder_attention_mask"] = _mask3d(gen, ENC_SEQ)
    with torch.no_grad():
        out = model(**inputs, output_attentions=True)
    expected = {"logits": out.logits}
    _per_layer(expected, "attentions", out.attentions)
    _per_layer(expected, "cross_attentions", out.cross_attentions)
    return model, inputs, expected


CASES = {"bert_pruned": bert_pruned, "gpt2_pruned": gpt2_pruned, "bert_mask3d": bert_mask3d,
         "decoder_mask3d": decoder_mask3d}


def _save(folder, model, inputs, expected):
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    model.save_pretrained(folder, safe_serialization=True)
    gen_config = os.path.join(folder, "generation_config.json")
    if os.path.exists(gen_config):
        os.remove(gen_config)  # not what these fixtures are about
    metadata = {"generated_by": f"transformers {transformers.__version__}, torch {torch.__version__}"}
    save_file({k: v.contiguous() for k, v in inputs.items()}, os.path.join(folder, "inputs.safetensors"), metadata)
    save_file({k: v.detach().clone().contiguous() for k, v in expected.items()},
              os.path.join(folder, "expected.safetensors"), metadata)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(here, "v4_loading"), help="fixture root folder")
    args = parser.parse_args()
    for name, make in CASES.items():
        model, inputs, expected = make()
        _save(os.path.join(args.out, name), model, inputs, expected)
        print(f"wrote {name}: {sorted(expected)}")


if __name__ == "__main__":
    main()
