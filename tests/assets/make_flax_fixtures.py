"""Regenerate the transformers v4 Flax reference fixtures in ``tests/assets/flax_v4/``.

transformers 5.x deleted every Flax class, so the files and numbers warmstart's Flax wing is
checked against come from transformers 4.57.1 (the last release with Flax) in a virtual
environment of its own: it cannot share one with the project's transformers 5, and it needs
the JAX / Flax pins that still run on Python 3.11. The exact commands:

    python3 -m venv /tmp/tf457
    /tmp/tf457/bin/pip install torch==2.13.0 "transformers==4.57.1" \
        "jax[cpu]==0.10.2" "flax==0.12.8" safetensors numpy msgpack
    /tmp/tf457/bin/python tests/assets/make_flax_fixtures.py

(torch 2.13.0 must be the CPU-only build: on this project's machines pip finds that wheel
locally. torch is used only to write the ``pt/`` folders through v4's own Flax -> PyTorch
conversion.) Two runs write byte-identical files.

Each case folder ``<case>/`` (see ``CASES``) holds:

    config.json, flax_model.msgpack   v4's save_pretrained (+ generation_config.json where
                                      v4 writes one: the causal LM heads)
    expected.safetensors              ``inputs.<name>``: the inputs fed to v4 (int32);
                                      ``outputs.<field>`` / ``outputs.<field>.<i>``: every
                                      field of v4's output (tuples such as hidden_states and
                                      attentions one tensor per entry), called with
                                      output_hidden_states=True, output_attentions=True;
                                      decoders add ``outputs.cached_logits``, the logits of
                                      a PREFIX-token prefill then token-by-token decoding
                                      through v4's cache (equal to ``outputs.logits``)
    tree.json                         model / output class names, output field order, and
                                      the parameter tree (flat "a/b/c" path -> shape, dtype,
                                      in v4's msgpack order); decoders add the cache tree of
                                      ``init_cache(BATCH, SEQ)``

Extra folders pin the other v4 file layouts (bert_sequence_classification = EXTRAS_CASE):

    bert_sequence_classification/sharded/
        the same weights, save_pretrained(max_shard_size=SHARD_SIZE):
        flax_model-0000k-of-0000n.msgpack + flax_model.msgpack.index.json
    bert_sequence_classification/safetensors/
        the same weights, save_pretrained(safe_serialization=True): model.safetensors with
        Flax names ("bert.encoder.layer.0...kernel") and metadata format "flax"
    bert_sequence_classification/bf16/
        v4's to_bf16(params) saved as msgpack, its tree.json, and an expected.safetensors
        with v4's outputs from the reloaded bf16 weights (computed in float32)
    bert_masked_lm/pt/, gpt2_lm_head/pt/
        the same weights converted to PyTorch by v4's load_flax_checkpoint_in_pytorch_model
        (the function behind from_pretrained(from_flax=True)), written with
        save_pretrained(safe_serialization=True); the script stops if their logits differ
        from the Flax ones (atol 1e-5) or v4's from_pretrained(pt/, from_pt=True) does not give
        back the Flax params exactly

Biases and LayerNorm scales are drawn at random (v4 initialises them to 0 and 1, which a port
that forgot one would still match), and the init range is 0.2 so attention is far from uniform.

The script is a test-asset generator, run by hand; it is never imported by the test suite.
"""

import argparse
import json
import os
import shutil

import transformers

if not transformers.__version__.startswith("4."):
    raise SystemExit(
        f"this script needs the transformers 4.x Flax classes (5.x removed them), got "
        f"transformers {transformers.__version__} from {transformers.__file__}; run it with "
        f"/tmp/tf457/bin/python (see the module docstring)"
    )

import flax  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from flax.traverse_util import flatten_dict, unflatten_dict  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402
from transformers import BertConfig, GPT2Config, RobertaConfig  # noqa: E402
from transformers.modeling_flax_pytorch_utils import load_flax_checkpoint_in_pytorch_model  # noqa: E402

SEED = 1234
BATCH, SEQ, CHOICES, ENC_SEQ, HIDDEN = 2, 7, 3, 5, 32
PREFIX = 4  # tokens fed at once before the token-by-token cached decoding
SHARD_SIZE = "30KB"  # gives the ~80 KB bert_model 3+ shards
CROSS = {"is_decoder": True, "add_cross_attention": True}
# Heads sit on one layer to keep the fixtures small; the base models, bert_masked_lm and the
# BERT / GPT-2 decoders keep two so layer stacking and naming ("0", "1") stay pinned.
ONE = {"num_hidden_layers": 1}
EXTRAS_CASE = "bert_sequence_classification"  # also saved sharded, as safetensors and in bf16

# case folder, v4 class, family, config overrides, input kind
CASES = (
    ("bert_model", "FlaxBertModel", "bert", {}, "encoder"),
    ("bert_pretraining", "FlaxBertForPreTraining", "bert", ONE, "encoder"),
    ("bert_causal_lm", "FlaxBertForCausalLM", "bert", CROSS, "decoder"),
    ("bert_masked_lm", "FlaxBertForMaskedLM", "bert", {}, "encoder"),
    ("bert_next_sentence", "FlaxBertForNextSentencePrediction", "bert", ONE, "encoder"),
    ("bert_sequence_classification", "FlaxBertForSequenceClassification", "bert", {**ONE, "num_labels": 3},
     "encoder"),
    ("bert_multiple_choice", "FlaxBertForMultipleChoice", "bert", ONE, "choice"),
    ("bert_token_classification", "FlaxBertForTokenClassification", "bert", {**ONE, "num_labels": 5}, "encoder"),
    ("bert_question_answering", "FlaxBertForQuestionAnswering", "bert", ONE, "encoder"),
    ("roberta_model", "FlaxRobertaModel", "roberta", {}, "encoder"),
    ("roberta_causal_lm", "FlaxRobertaForCausalLM", "roberta", {**CROSS, **ONE}, "decoder"),
    ("roberta_masked_lm", "FlaxRobertaForMaskedLM", "roberta", ONE, "encoder"),
    ("gpt2_model", "FlaxGPT2Model", "gpt2", {}, "encoder"),
    ("gpt2_lm_head", "FlaxGPT2LMHeadModel", "gpt2", {"add_cross_attention": True}, "decoder"),
)
PT_CASES = ("bert_masked_lm", "gpt2_lm_head")
PAD_ID = {"bert": 0, "roberta": 1, "gpt2": 0}

METADATA = {
    "generated_by": f"transformers {transformers.__version__}, jax {jax.__version__}, flax {flax.__version__}"
}


def _config(family, overrides):
    overrides = dict(overrides)
    common = dict(vocab_size=99, num_attention_heads=4, initializer_range=0.2)
    if family == "gpt2":
        # GPT-2 has no pad token; 98 as bos/eos keeps every special id inside the tiny vocab.
        return GPT2Config(n_embd=HIDDEN, n_layer=overrides.pop("num_hidden_layers", 2), n_inner=37,
                          n_positions=64, bos_token_id=98, eos_token_id=98, **common, **overrides)
    sizes = dict(hidden_size=HIDDEN, num_hidden_layers=overrides.pop("num_hidden_layers", 2),
                 intermediate_size=37, max_position_embeddings=64)
    if family == "roberta":
        # type_vocab_size 1 and pad 1 as in the released RoBERTa checkpoints.
        return RobertaConfig(type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                             **sizes, **common, **overrides)
    return BertConfig(type_vocab_size=2, pad_token_id=0, **sizes, **common, **overrides)


def _perturb(params, seed):
    """Random biases and LayerNorm scales, walking the tree in v4's own key order."""
    rng = np.random.default_rng(seed)
    flat = flatten_dict(params)
    out = {}
    for path, value in flat.items():
        if path[-1] == "bias":
            value = jnp.asarray(rng.normal(0.0, 0.1, value.shape), dtype=value.dtype)
        elif path[-1] == "scale":
            value = jnp.asarray(rng.normal(1.0, 0.1, value.shape), dtype=value.dtype)
        out[path] = value
    return unflatten_dict(out)


def _inputs(family, kind, seed):
    rng = np.random.default_rng(seed)
    pad = PAD_ID[family]
    shape = (BATCH, CHOICES, SEQ) if kind == "choice" else (BATCH, SEQ)
    # Ids from 3 up never collide with a pad / bos / eos id of any family.
    input_ids = rng.integers(3, 98, shape).astype(np.int32)
    attention_mask = np.ones(shape, dtype=np.int32)
    # Right padding: the last row loses its tail (each choice a different amount).
    if kind == "choice":
        for c, length in enumerate((5, 7, 3)):
            attention_mask[-1, c, length:] = 0
    else:
        attention_mask[-1, 5:] = 0
    input_ids[attention_mask == 0] = pad
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
    if family == "bert":
        token_type_ids = np.zeros(shape, dtype=np.int32)
        token_type_ids[..., 3:] = 1
        token_type_ids[attention_mask == 0] = 0
        inputs["token_type_ids"] = token_type_ids
    elif family == "roberta":
        inputs["token_type_ids"] = np.zeros(shape, dtype=np.int32)
    if kind == "decoder":
        inputs["encoder_hidden_states"] = rng.normal(0.0, 1.0, (BATCH, ENC_SEQ, HIDDEN)).astype(np.float32)
        encoder_attention_mask = np.ones((BATCH, ENC_SEQ), dtype=np.int32)
        encoder_attention_mask[-1, 4:] = 0
        inputs["encoder_attention_mask"] = encoder_attention_mask
    return inputs


def _position_ids(family, input_ids):
    if family == "roberta":
        # v4 RoBERTa's default: count real tokens from pad + 1, padding keeps pad_token_id.
        real = (input_ids != PAD_ID["roberta"]).astype(np.int32)
        return (np.cumsum(real, axis=-1) * real + PAD_ID["roberta"]).astype(np.int32)
    return np.broadcast_to(np.arange(input_ids.shape[-1], dtype=np.int32), input_ids.shape).copy()


def _cached_logits(model, family, inputs):
    """Prefill PREFIX tokens, then one token at a time through v4's Flax cache.

    v4's cached call wants the attention mask over the whole cache (batch, max_length) and
    explicit position ids; both are the full forward's, sliced to the tokens fed.
    """
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    positions = _position_ids(family, ids)
    past = model.init_cache(BATCH, SEQ)
    extra = {k: inputs[k] for k in ("encoder_hidden_states", "encoder_attention_mask")}
    steps, start = [], 0
    for stop in [PREFIX] + list(range(PREFIX + 1, SEQ + 1)):
        step = dict(extra, input_ids=ids[:, start:stop], attention_mask=mask,
                    position_ids=positions[:, start:stop], past_key_values=past)
        if "token_type_ids" in inputs:
            step["token_type_ids"] = inputs["token_type_ids"][:, start:stop]
        out = model(**step)
        steps.append(np.asarray(out.logits))
        past, start = out.past_key_values, stop
    return np.concatenate(steps, axis=1)


def _flat_tree(tree):
    return {
        "/".join(path): {"shape": list(value.shape), "dtype": str(value.dtype)}
        for path, value in flatten_dict(flax.core.unfreeze(tree)).items()
    }


def _outputs(out):
    expected = {}
    for field, value in out.items():
        if isinstance(value, (tuple, list)):
            for i, item in enumerate(value):
                expected[f"outputs.{field}.{i}"] = np.asarray(item)
        else:
            expected[f"outputs.{field}"] = np.asarray(value)
    return expected


def _write_expected(folder, inputs, expected):
    tensors = {f"inputs.{k}": np.ascontiguousarray(v) for k, v in inputs.items()}
    for k, v in expected.items():
        if v.dtype != np.float32:
            raise SystemExit(f"{folder}: {k} came back as {v.dtype}; the fixtures store float32 only")
        tensors[k] = np.ascontiguousarray(v)
    # One metadata key: safetensors writes a multi-key header in hash order.
    save_file(tensors, os.path.join(folder, "expected.safetensors"), METADATA)


def _write_tree(folder, model_class, out, params, cache=None):
    sections = {"params": _flat_tree(params)}
    if cache is not None:
        sections["cache"] = _flat_tree(cache)
    # One tree entry a line: readable in a diff and a third the size of indented JSON.
    lines = [
        "{",
        f' "model_class": {json.dumps(model_class)},',
        f' "output_class": {json.dumps(type(out).__name__)},',
        f' "output_fields": {json.dumps(list(out.keys()))},',
    ]
    for s, (section, entries) in enumerate(sections.items()):
        lines.append(f" {json.dumps(section)}: {{")
        items = [f"  {json.dumps(path)}: {json.dumps(entry)}" for path, entry in entries.items()]
        lines.append(",\n".join(items))
        lines.append(" }" + ("," if s + 1 < len(sections) else ""))
    lines.append("}")
    with open(os.path.join(folder, "tree.json"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def _assert_same_params(a, b, where):
    fa, fb = flatten_dict(flax.core.unfreeze(a)), flatten_dict(flax.core.unfreeze(b))
    if set(fa) != set(fb):
        raise SystemExit(f"{where}: reloaded keys differ: {sorted(set(fa) ^ set(fb))}")
    for k in fa:
        if fa[k].dtype != fb[k].dtype or not np.array_equal(np.asarray(fa[k]), np.asarray(fb[k])):
            raise SystemExit(f"{where}: reloaded {'/'.join(k)} differs")


def _case(root, index, name, class_name, family, overrides, kind):
    cls = getattr(transformers, class_name)
    model = cls(_config(family, overrides), seed=SEED + index)
    model.params = _perturb(model.params, SEED + index)
    inputs = _inputs(family, kind, SEED + index)
    out = model(**inputs, output_hidden_states=True, output_attentions=True)
    expected = _outputs(out)
    cache = None
    if kind == "decoder":
        expected["outputs.cached_logits"] = _cached_logits(model, family, inputs)
        np.testing.assert_allclose(expected["outputs.cached_logits"], expected["outputs.logits"], atol=1e-5, rtol=0)
        cache = model.init_cache(BATCH, SEQ)

    folder = os.path.join(root, name)
    model.save_pretrained(folder)
    _assert_same_params(cls.from_pretrained(folder).params, model.params, folder)
    _write_expected(folder, inputs, expected)
    _write_tree(folder, class_name, out, model.params, cache)
    return model, inputs, expected


def _extras(root, model, inputs):
    base = os.path.join(root, EXTRAS_CASE)
    cls = type(model)

    sharded = os.path.join(base, "sharded")
    model.save_pretrained(sharded, max_shard_size=SHARD_SIZE)
    shards = [f for f in os.listdir(sharded) if f.startswith("flax_model-")]
    if len(shards) < 2:
        raise SystemExit(f"{sharded}: max_shard_size={SHARD_SIZE} gave {len(shards)} shard(s), need 2+")
    _assert_same_params(cls.from_pretrained(sharded).params, model.params, sharded)

    safe = os.path.join(base, "safetensors")
    model.save_pretrained(safe, safe_serialization=True)
    _assert_same_params(cls.from_pretrained(safe).params, model.params, safe)

    bf16 = os.path.join(base, "bf16")
    model.save_pretrained(bf16, params=model.to_bf16(model.params))
    reloaded = cls.from_pretrained(bf16)
    dtypes = {str(v.dtype) for v in flatten_dict(flax.core.unfreeze(reloaded.params)).values()}
    if dtypes != {"bfloat16"}:
        raise SystemExit(f"{bf16}: v4 reloaded the bf16 params as {sorted(dtypes)}")
    out = reloaded(**inputs)
    _write_expected(bf16, inputs, _outputs(out))
    _write_tree(bf16, type(model).__name__, out, reloaded.params)


def _extras_pt(root, name, class_name, inputs, expected):
    """v4's own Flax -> PyTorch conversion of the case's weights, checked on the same inputs."""
    folder = os.path.join(root, name)
    pt_cls = getattr(transformers, class_name[len("Flax"):])
    # 4.57.1's from_pretrained(from_flax=True) builds the model on the meta device and then
    # copies the Flax weights into it, which is a no-op (save_pretrained then fails on meta
    # tensors). Build it on the CPU and call the conversion from_pretrained would have used.
    pt_model = pt_cls(pt_cls.config_class.from_pretrained(folder))
    pt_model = load_flax_checkpoint_in_pytorch_model(pt_model, os.path.join(folder, "flax_model.msgpack"))
    pt_model.tie_weights()
    pt_model.eval()
    target = os.path.join(folder, "pt")
    pt_model.save_pretrained(target, safe_serialization=True)
    with torch.no_grad():
        pt_out = pt_model(**{k: torch.from_numpy(np.asarray(v)) for k, v in inputs.items()})
    np.testing.assert_allclose(pt_out.logits.numpy(), expected["outputs.logits"], atol=1e-5, rtol=0)
    flax_cls = getattr(transformers, class_name)
    _assert_same_params(flax_cls.from_pretrained(target, from_pt=True).params,
                        flax_cls.from_pretrained(folder).params, target)


def _total_size(root):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(root) for f in files)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(here, "flax_v4"), help="fixture root folder")
    args = parser.parse_args()

    # Keep the hand-written README; everything else is regenerated from scratch.
    os.makedirs(args.out, exist_ok=True)
    for entry in os.listdir(args.out):
        if os.path.isdir(os.path.join(args.out, entry)):
            shutil.rmtree(os.path.join(args.out, entry))

    for index, (name, class_name, family, overrides, kind) in enumerate(CASES):
        model, inputs, expected = _case(args.out, index, name, class_name, family, overrides, kind)
        if name == EXTRAS_CASE:
            _extras(args.out, model, inputs)
        if name in PT_CASES:
            _extras_pt(args.out, name, class_name, inputs, expected)
        print(f"wrote {name}: {len(expected)} expected tensors, {_total_size(os.path.join(args.out, name))} bytes")
    print(f"total {_total_size(args.out)} bytes under {args.out}")


if __name__ == "__main__":
    main()
