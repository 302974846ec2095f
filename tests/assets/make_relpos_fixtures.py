"""Regenerate the relative-position BERT reference fixtures in ``tests/assets/relpos/``.

transformers 5.x no longer implements ``position_embedding_type`` = "relative_key" /
"relative_key_query", so the numbers warmstart is checked against come from a transformers
4.x install that is kept out of the project's virtual environment. The exact commands:

    /work/main/.venv/bin/python -m pip install --no-deps --target /tmp/tf4 \
        "transformers==4.46.3" "tokenizers==0.20.3" "huggingface_hub==0.26.5" \
        requests urllib3 charset_normalizer certifi
    PYTHONPATH=/tmp/tf4 /work/main/.venv/bin/python tests/assets/make_relpos_fixtures.py

(tokenizers and huggingface_hub are pinned inside /tmp/tf4 only because transformers 4.46.3
refuses to import next to the newer releases in .venv; this script uses neither of them.)

For each case ``<kind>_<type>`` (kind: "encoder" = BertModel with pooler, "decoder" =
BertLMHeadModel with is_decoder and cross-attention; type: relative_key, relative_key_query)
the folder holds:

    config.json, model.safetensors   written by v4's save_pretrained(safe_serialization=True)
    inputs.safetensors               input_ids, attention_mask, token_type_ids
                                     (+ decoder: encoder_hidden_states, encoder_attention_mask,
                                     labels, labels_masked)
    expected.safetensors             see ``_encoder_case`` / ``_decoder_case`` for the keys

The script is a test-asset generator, run by hand; it is never imported by the test suite.
"""

import argparse
import json
import os
import shutil

import torch
import transformers
from safetensors.torch import save_file
from transformers import BertConfig, BertLMHeadModel, BertModel

if not transformers.__version__.startswith("4."):
    raise SystemExit(
        f"this script needs a transformers 4.x oracle (relative positions were removed in 5.x), "
        f"got transformers {transformers.__version__} from {transformers.__file__}; "
        f"run it with PYTHONPATH=/tmp/tf4 (see the module docstring)"
    )

POSITION_TYPES = ("relative_key", "relative_key_query")
SEED = 1234
BATCH, SEQ, ENC_SEQ, HIDDEN = 2, 7, 5, 32
PREFIX = 4  # tokens fed at once before the token-by-token cached decoding


def _config(position_type, decoder):
    return BertConfig(
        vocab_size=99,
        hidden_size=HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
        type_vocab_size=2,
        hidden_act="gelu",
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        # A wider init than BERT's 0.02 so attention is far from uniform and a wrong
        # relative-position term moves the outputs by much more than any tolerance.
        initializer_range=0.2,
        position_embedding_type=position_type,
        is_decoder=decoder,
        add_cross_attention=decoder,
        attn_implementation="eager",
    )


def _build(model_cls, config, **kwargs):
    torch.manual_seed(SEED)
    model = model_cls(config, **kwargs)
    # v4 initialises every bias to 0 and every LayerNorm to (1, 0); a port that forgot a bias
    # or swapped LayerNorm affine terms would still match those. Perturb them, and give the
    # distance table a larger spread so the relative term clearly shapes the attention.
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "LayerNorm.weight" in name:
                param.normal_(1.0, 0.1)
            elif name.endswith(".bias"):
                param.normal_(0.0, 0.1)
            elif "distance_embedding" in name:
                param.normal_(0.0, 0.5)
    return model.eval()


def _inputs(decoder):
    gen = torch.Generator().manual_seed(SEED)
    input_ids = torch.randint(1, 99, (BATCH, SEQ), generator=gen)
    attention_mask = torch.ones(BATCH, SEQ, dtype=torch.long)
    attention_mask[1, 5:] = 0  # row 1 is padded at the tail
    input_ids[1, 5:] = 0  # pad_token_id
    token_type_ids = torch.tensor([[0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 1, 0, 0]])
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
    if decoder:
        inputs["encoder_hidden_states"] = torch.randn(BATCH, ENC_SEQ, HIDDEN, generator=gen)
        encoder_attention_mask = torch.ones(BATCH, ENC_SEQ, dtype=torch.long)
        encoder_attention_mask[1, 4:] = 0
        inputs["encoder_attention_mask"] = encoder_attention_mask
        inputs["labels"] = input_ids.clone()
        labels_masked = input_ids.clone()
        labels_masked[attention_mask == 0] = -100  # the usual "ignore padding" labels
        inputs["labels_masked"] = labels_masked
    return inputs


def _per_layer(expected, prefix, tensors):
    for i, t in enumerate(tensors):
        expected[f"{prefix}.{i}"] = t


def _encoder_case(position_type):
    model = _build(BertModel, _config(position_type, decoder=False), add_pooling_layer=True)
    inputs = _inputs(decoder=False)
    with torch.no_grad():
        out = model(**inputs, output_hidden_states=True, output_attentions=True)
    expected = {"last_hidden_state": out.last_hidden_state, "pooler_output": out.pooler_output}
    _per_layer(expected, "hidden_states", out.hidden_states)
    _per_layer(expected, "attentions", out.attentions)

    if position_type == "relative_key_query":
        # Gradient reference: d(last_hidden_state.sum()) w.r.t. the layer-0 distance table
        # and the word embeddings (a fresh forward, so nothing is kept from no_grad above).
        model.zero_grad()
        model(**inputs).last_hidden_state.sum().backward()
        expected["grad.distance_embedding.layer0"] = (
            model.encoder.layer[0].attention.self.distance_embedding.weight.grad
        )
        expected["grad.word_embeddings"] = model.embeddings.word_embeddings.weight.grad
    return model, inputs, expected


def _decoder_case(position_type):
    model = _build(BertLMHeadModel, _config(position_type, decoder=True))
    inputs = _inputs(decoder=True)
    model_inputs = {k: v for k, v in inputs.items() if not k.startswith("labels")}
    with torch.no_grad():
        out = model(**model_inputs, labels=inputs["labels"], output_hidden_states=True, output_attentions=True)
        loss_masked = model(**model_inputs, labels=inputs["labels_masked"]).loss
    expected = {
        "logits": out.logits,
        "loss": out.loss,
        "loss_masked": loss_masked,
        "last_hidden_state": out.hidden_states[-1],
    }
    _per_layer(expected, "hidden_states", out.hidden_states)
    _per_layer(expected, "attentions", out.attentions)
    _per_layer(expected, "cross_attentions", out.cross_attentions)
    expected["cached_logits"] = _cached_logits(model, model_inputs)
    torch.testing.assert_close(expected["cached_logits"], out.logits, atol=1e-5, rtol=0)
    return model, inputs, expected


def _cached_logits(model, inputs):
    """Prefill PREFIX tokens, then feed the rest one at a time through the v4 KV cache."""
    enc = {"encoder_hidden_states": inputs["encoder_hidden_states"],
           "encoder_attention_mask": inputs["encoder_attention_mask"]}
    ids, mask, types = inputs["input_ids"], inputs["attention_mask"], inputs["token_type_ids"]
    with torch.no_grad():
        out = model(input_ids=ids[:, :PREFIX], attention_mask=mask[:, :PREFIX],
                    token_type_ids=types[:, :PREFIX], use_cache=True, **enc)
        steps, past = [out.logits], out.past_key_values
        for t in range(PREFIX, ids.shape[1]):
            # The mask always covers past + current tokens; the model sees one new token.
            out = model(input_ids=ids[:, t:t + 1], attention_mask=mask[:, :t + 1],
                        token_type_ids=types[:, t:t + 1], past_key_values=past, use_cache=True, **enc)
            steps.append(out.logits)
            past = out.past_key_values
    return torch.cat(steps, dim=1)


def _save(folder, model, inputs, expected):
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    model.save_pretrained(folder, safe_serialization=True)
    # One metadata key: safetensors writes a multi-key header in hash order, and a single
    # key keeps regenerated files byte-identical.
    metadata = {"generated_by": f"transformers {transformers.__version__}, torch {torch.__version__}"}
    save_file({k: v.contiguous() for k, v in inputs.items()}, os.path.join(folder, "inputs.safetensors"), metadata)
    save_file({k: v.detach().clone().contiguous() for k, v in expected.items()},
              os.path.join(folder, "expected.safetensors"), metadata)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(here, "relpos"), help="fixture root folder")
    args = parser.parse_args()

    summary = {}
    for position_type in POSITION_TYPES:
        for kind, make in (("encoder", _encoder_case), ("decoder", _decoder_case)):
            name = f"{kind}_{position_type}"
            model, inputs, expected = make(position_type)
            _save(os.path.join(args.out, name), model, inputs, expected)
            summary[name] = {k: list(v.shape) for k, v in expected.items()}
            print(f"wrote {name}: {len(expected)} expected tensors")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
