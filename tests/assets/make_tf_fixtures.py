"""Regenerate the transformers v4 TensorFlow reference fixtures in ``tests/assets/tf_v4/``.

transformers 5.x deleted every TensorFlow class, so the files and numbers warmstart's TF wing is
checked against come from transformers 4.57.1 (the last release with TF) in a virtual
environment of its own: it cannot share one with the project's transformers 5. v4's TF code is
written for Keras 2, so it runs on tf-keras with ``TF_USE_LEGACY_KERAS=1``. The exact commands:

    python3 -m venv /tmp/tf457
    /tmp/tf457/bin/pip install torch==2.13.0 "transformers==4.57.1" \
        "tensorflow==2.21.*" "tf-keras==2.21.*" h5py safetensors numpy
    TF_USE_LEGACY_KERAS=1 CUDA_VISIBLE_DEVICES="" TF_CPP_MIN_LOG_LEVEL=2 TF_ENABLE_ONEDNN_OPTS=0 \
        /tmp/tf457/bin/python tests/assets/make_tf_fixtures.py

(torch 2.13.0 must be the CPU-only build: on this project's machines pip finds that wheel
locally. torch is used only for the ``pt/`` and ``from_pt/`` folders, through v4's own
TF <-> PyTorch conversions. The script sets the four environment variables itself when they are
missing, before TensorFlow is imported.) Two runs write byte-identical files.

Each case folder ``<case>/`` (see ``CASES``) holds:

    config.json, tf_model.h5          v4's save_pretrained (+ generation_config.json where
                                      v4 writes one: the causal LM heads)
    expected.safetensors              ``inputs.<name>``: the inputs fed to v4 (int32);
                                      ``outputs.<field>`` / ``outputs.<field>.<i>[.<j>]``: every
                                      field of v4's output (tuples such as hidden_states,
                                      attentions and past_key_values one tensor per entry),
                                      called with output_hidden_states=True,
                                      output_attentions=True, training=False;
                                      heads add ``outputs.loss``, v4's loss from a second call
                                      with the ``LABELS`` of the case (stored as inputs too,
                                      their names listed in tree.json's ``label_inputs``);
                                      decoders add ``outputs.cached_logits``, the logits of a
                                      PREFIX-token prefill then token-by-token decoding through
                                      v4's past_key_values (equal to ``outputs.logits``)
    tree.json                         model / output class names, output field order, label
                                      inputs, ``model.name``, the names of ``model.layers``,
                                      ``model.weights`` (name, shape, dtype, in v4's order) and
                                      the exact structure of tf_model.h5: root attributes, each
                                      layer group's ``weight_names`` in order, every dataset's
                                      path, shape, dtype and storage

Extra folders pin the other v4 file layouts and conversions:

    bert_sequence_classification/sharded/
        the same weights, save_pretrained(max_shard_size=SHARD_SIZE):
        tf_model-0000k-of-0000n.h5 + tf_model.h5.index.json, and a tree.json with every shard's
        root attributes and datasets (v4 writes shards flat, not in Keras' layer groups)
    bert_masked_lm/pt/, gpt2_lm_head/pt/
        the same weights converted to PyTorch by v4's load_tf2_checkpoint_in_pytorch_model (the
        function behind from_pretrained(from_tf=True), which in 4.57.1 itself is broken: it
        loads into meta tensors), written with save_pretrained(safe_serialization=True); the
        script stops if their logits differ from the TF ones (atol 1e-5)
    bert_model/from_pt/
        a random PyTorch BertModel of the same config style (model.safetensors + config.json),
        loaded by v4's TFBertModel.from_pretrained(from_pt/, from_pt=True); expected.safetensors
        holds the TF outputs on bert_model's inputs (checked against the PyTorch ones, atol 1e-5)

Biases and LayerNorm weights (``bias``, ``beta``, ``gamma``) are drawn at random (v4 initialises
them to 0 and 1, which a port that forgot one would still match), and the init range is 0.2 so
attention is far from uniform. Keras' name counters are reset (clear_session) before each model
so every h5 file carries the canonical model name (``tf_bert_model``, not ``tf_bert_model_1``).

The script is a test-asset generator, run by hand; it is never imported by the test suite.
"""

import argparse
import json
import os
import shutil

for _key, _value in (("TF_USE_LEGACY_KERAS", "1"), ("CUDA_VISIBLE_DEVICES", ""),
                     ("TF_CPP_MIN_LOG_LEVEL", "2"), ("TF_ENABLE_ONEDNN_OPTS", "0")):
    os.environ.setdefault(_key, _value)

import transformers  # noqa: E402

if not transformers.__version__.startswith("4."):
    raise SystemExit(
        f"this script needs the transformers 4.x TensorFlow classes (5.x removed them), got "
        f"transformers {transformers.__version__} from {transformers.__file__}; run it with "
        f"/tmp/tf457/bin/python (see the module docstring)"
    )
if os.environ["TF_USE_LEGACY_KERAS"] != "1":
    raise SystemExit("v4's TF classes need Keras 2: set TF_USE_LEGACY_KERAS=1")

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402
import torch  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402
from transformers import BertConfig, GPT2Config, RobertaConfig  # noqa: E402
from transformers.modeling_tf_pytorch_utils import load_tf2_checkpoint_in_pytorch_model  # noqa: E402

SEED = 1234
BATCH, SEQ, CHOICES, ENC_SEQ, HIDDEN = 2, 7, 3, 5, 32
PREFIX = 4  # tokens fed at once before the token-by-token cached decoding
SHARD_SIZE = "20KB"  # gives the one-layer bert_sequence_classification several shards
CROSS = {"is_decoder": True, "add_cross_attention": True}
# Heads sit on one layer to keep the fixtures small; the base models, bert_masked_lm and the
# BERT / GPT-2 decoders keep two so layer stacking and naming ("layer_._0", "h_._1") stay pinned.
ONE = {"num_hidden_layers": 1}
EXTRAS_CASE = "bert_sequence_classification"  # also saved sharded
FROM_PT_CASE = "bert_model"  # also has from_pt/ (v4's PyTorch -> TF conversion)

# case folder, v4 class, family, config overrides, input kind, labels kind
CASES = (
    ("bert_model", "TFBertModel", "bert", {}, "encoder", None),
    ("bert_pretraining", "TFBertForPreTraining", "bert", ONE, "encoder", "pretraining"),
    ("bert_lm_head", "TFBertLMHeadModel", "bert", CROSS, "decoder", "causal"),
    ("bert_masked_lm", "TFBertForMaskedLM", "bert", {}, "encoder", "masked"),
    ("bert_next_sentence", "TFBertForNextSentencePrediction", "bert", ONE, "encoder", "next_sentence"),
    ("bert_sequence_classification", "TFBertForSequenceClassification", "bert", {**ONE, "num_labels": 3},
     "encoder", "sequence"),
    ("bert_multiple_choice", "TFBertForMultipleChoice", "bert", ONE, "choice", "choice"),
    ("bert_token_classification", "TFBertForTokenClassification", "bert", {**ONE, "num_labels": 5}, "encoder",
     "token"),
    ("bert_question_answering", "TFBertForQuestionAnswering", "bert", ONE, "encoder", "span"),
    ("roberta_model", "TFRobertaModel", "roberta", {}, "encoder", None),
    ("roberta_causal_lm", "TFRobertaForCausalLM", "roberta", {**CROSS, **ONE}, "decoder", "causal"),
    ("roberta_masked_lm", "TFRobertaForMaskedLM", "roberta", ONE, "encoder", "masked"),
    ("gpt2_model", "TFGPT2Model", "gpt2", {}, "encoder", None),
    ("gpt2_lm_head", "TFGPT2LMHeadModel", "gpt2", {"add_cross_attention": True}, "decoder", "causal"),
)
PT_CASES = ("bert_masked_lm", "gpt2_lm_head")
PAD_ID = {"bert": 0, "roberta": 1, "gpt2": 0}

METADATA = {
    "generated_by": f"transformers {transformers.__version__}, tensorflow {tf.__version__}, "
                    f"tf-keras {tf_keras.__version__}, h5py {h5py.__version__}, torch {torch.__version__}"
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


def _fresh(seed):
    """Reset Keras' name counters (canonical model names) and every random seed."""
    tf_keras.backend.clear_session()
    tf_keras.utils.set_random_seed(seed)


def _perturb(model, seed):
    """Random biases and LayerNorm weights, walking ``model.weights`` in v4's own order."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        leaf = weight.name.split("/")[-1]
        if leaf in ("bias:0", "beta:0"):
            weight.assign(rng.normal(0.0, 0.1, weight.shape).astype(np.float32))
        elif leaf == "gamma:0":
            weight.assign(rng.normal(1.0, 0.1, weight.shape).astype(np.float32))


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


def _labels(labels_kind, inputs, config, seed):
    """Labels suited to the head; -100 (ignored) on padding and, for masked LM, unmasked tokens."""
    if labels_kind is None:
        return {}
    rng = np.random.default_rng(seed + 1000)
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    if labels_kind == "causal":
        return {"labels": np.where(mask == 1, ids, -100).astype(np.int32)}
    if labels_kind in ("masked", "pretraining"):
        labels = np.full(ids.shape, -100, dtype=np.int32)
        labels[:, [1, 3, 4]] = rng.integers(3, 98, (ids.shape[0], 3))
        labels[mask == 0] = -100
        if labels_kind == "masked":
            return {"labels": labels}
        return {"labels": labels, "next_sentence_label": np.array([1, 0], dtype=np.int32)}
    if labels_kind == "next_sentence":
        return {"next_sentence_label": np.array([1, 0], dtype=np.int32)}
    if labels_kind == "sequence":
        return {"labels": np.array([2, 0], dtype=np.int32)}
    if labels_kind == "choice":
        return {"labels": np.array([1, 2], dtype=np.int32)}
    if labels_kind == "token":
        labels = rng.integers(0, config.num_labels, ids.shape).astype(np.int32)
        labels[mask == 0] = -100
        return {"labels": labels}
    if labels_kind == "span":
        return {"start_positions": np.array([1, 2], dtype=np.int32),
                "end_positions": np.array([4, 3], dtype=np.int32)}
    raise ValueError(labels_kind)


def _position_ids(family, input_ids):
    if family == "roberta":
        # v4 RoBERTa's default: count real tokens from pad + 1, padding keeps pad_token_id.
        real = (input_ids != PAD_ID["roberta"]).astype(np.int32)
        return (np.cumsum(real, axis=-1) * real + PAD_ID["roberta"]).astype(np.int32)
    return np.broadcast_to(np.arange(input_ids.shape[-1], dtype=np.int32), input_ids.shape).copy()


def _tf(inputs):
    return {k: tf.constant(v) for k, v in inputs.items()}


def _cached_logits(model, family, inputs):
    """Prefill PREFIX tokens, then one token at a time through v4's TF past_key_values.

    v4's TF cached call wants the attention mask over past + new tokens (batch, stop); the
    position ids are the full forward's, sliced to the tokens fed.
    """
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    positions = _position_ids(family, ids)
    extra = {k: inputs[k] for k in ("encoder_hidden_states", "encoder_attention_mask")}
    steps, past, start = [], None, 0
    for stop in [PREFIX] + list(range(PREFIX + 1, SEQ + 1)):
        step = dict(extra, input_ids=ids[:, start:stop], attention_mask=mask[:, :stop],
                    position_ids=positions[:, start:stop])
        if "token_type_ids" in inputs:
            step["token_type_ids"] = inputs["token_type_ids"][:, start:stop]
        out = model(_tf(step), past_key_values=past, use_cache=True, training=False)
        steps.append(out.logits.numpy())
        past, start = out.past_key_values, stop
    return np.concatenate(steps, axis=1)


def _flatten(prefix, value, into):
    if isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            _flatten(f"{prefix}.{i}", item, into)
    else:
        into[prefix] = np.asarray(value)


def _outputs(out):
    expected = {}
    for field, value in out.items():
        _flatten(f"outputs.{field}", value, expected)
    return expected


def _write_expected(folder, inputs, expected):
    tensors = {f"inputs.{k}": np.ascontiguousarray(v) for k, v in inputs.items()}
    for k, v in expected.items():
        if v.dtype != np.float32:
            raise SystemExit(f"{folder}: {k} came back as {v.dtype}; the fixtures store float32 only")
        tensors[k] = np.ascontiguousarray(v)
    # One metadata key: safetensors writes a multi-key header in hash order.
    save_file(tensors, os.path.join(folder, "expected.safetensors"), METADATA)


def _attr(obj, name):
    """An HDF5 attribute's value and its exact on-disk type (string kind, length, encoding)."""
    value = obj.attrs[name]
    dtype = obj.attrs.get_id(name).dtype
    info = h5py.check_string_dtype(dtype)
    if info is not None:
        kind = {"h5_type": "string", "length": info.length, "encoding": info.encoding}
    else:
        kind = {"h5_type": str(dtype)}
    shape = list(np.shape(value))
    if isinstance(value, np.ndarray):
        value = [v.decode("utf8") if isinstance(v, bytes) else v.item() if hasattr(v, "item") else v
                 for v in value.reshape(-1)]
    elif isinstance(value, bytes):
        value = value.decode("utf8")
    return {"value": value, "shape": shape, **kind}


def _dataset(dset):
    return {"shape": list(dset.shape), "dtype": str(dset.dtype), "chunks": dset.chunks,
            "compression": dset.compression, "fillvalue": dset.fillvalue.item()}


def _h5_single(path):
    """tf_model.h5 as Keras 2's save_weights writes it: root attrs, layer groups, datasets."""
    with h5py.File(path, "r") as f:
        root = {name: _attr(f, name) for name in sorted(f.attrs)}
        groups, datasets, seen = {}, {}, set()
        layer_names = [n.decode("utf8") if isinstance(n, bytes) else n for n in f.attrs["layer_names"]]
        for layer in layer_names + [g for g in f if g not in layer_names]:
            group = f[layer]
            groups[layer] = {name: _attr(group, name) for name in sorted(group.attrs)}
            for weight in groups[layer].get("weight_names", {}).get("value", []):
                key = f"{layer}/{weight}"
                datasets[key] = _dataset(group[weight])
                seen.add(key)
        every = []
        f.visititems(lambda n, o: every.append(n) if isinstance(o, h5py.Dataset) else None)
        if set(every) != seen:
            raise SystemExit(f"{path}: datasets outside weight_names: {sorted(set(every) ^ seen)}")

        def _group_attrs(name, obj):
            if isinstance(obj, h5py.Group) and name not in groups and len(obj.attrs):
                raise SystemExit(f"{path}: unexpected attributes on {name}")
        f.visititems(_group_attrs)
    return {"root_attrs": root, "groups": groups, "datasets": datasets}


def _h5_flat(path):
    """A v4 shard: root attrs and every dataset (visit order: HDF5's alphabetical)."""
    with h5py.File(path, "r") as f:
        root = {name: _attr(f, name) for name in sorted(f.attrs)}
        datasets, group_attrs = {}, {}

        def _visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                datasets[name] = _dataset(obj)
            elif len(obj.attrs):
                group_attrs[name] = {a: _attr(obj, a) for a in sorted(obj.attrs)}
        f.visititems(_visit)
    return {"root_attrs": root, "group_attrs": group_attrs, "datasets": datasets}


def _json_lines(sections):
    """One entry a line below the top level: readable in a diff, far smaller than indented JSON."""
    lines = ["{"]
    for s, (key, value) in enumerate(sections.items()):
        comma = "," if s + 1 < len(sections) else ""
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            lines.append(f" {json.dumps(key)}: {{")
            for i, (k, v) in enumerate(value.items()):
                if isinstance(v, dict) and v and all(isinstance(x, dict) for x in v.values()):
                    lines.append(f"  {json.dumps(k)}: {{")
                    lines.append(",\n".join(f"   {json.dumps(a)}: {json.dumps(b)}" for a, b in v.items()))
                    lines.append("  }" + ("," if i + 1 < len(value) else ""))
                else:
                    lines.append(f"  {json.dumps(k)}: {json.dumps(v)}" + ("," if i + 1 < len(value) else ""))
            lines.append(" }" + comma)
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _model_tree(model_class, model, out, label_inputs):
    return {
        "model_class": model_class,
        "output_class": type(out).__name__,
        "output_fields": list(out.keys()),
        "label_inputs": label_inputs,
        "model_name": model.name,
        "model_layers": [layer.name for layer in model.layers],
        "model_weights": {w.name: {"shape": list(w.shape), "dtype": w.dtype.name} for w in model.weights},
    }


def _write_tree(folder, sections):
    with open(os.path.join(folder, "tree.json"), "w", encoding="utf-8") as f:
        f.write(_json_lines(sections))


def _assert_same_weights(a, b, where):
    wa = {w.name.split("/", 1)[1]: w.numpy() for w in a.weights}
    wb = {w.name.split("/", 1)[1]: w.numpy() for w in b.weights}
    if set(wa) != set(wb):
        raise SystemExit(f"{where}: reloaded names differ: {sorted(set(wa) ^ set(wb))}")
    for k, value in wa.items():
        if value.dtype != wb[k].dtype or not np.array_equal(value, wb[k]):
            raise SystemExit(f"{where}: reloaded {k} differs")


def _case(root, index, name, class_name, family, overrides, kind, labels_kind):
    cls = getattr(transformers, class_name)
    config = _config(family, overrides)
    _fresh(SEED + index)
    model = cls(config)
    model.build_in_name_scope()
    _perturb(model, SEED + index)
    inputs = _inputs(family, kind, SEED + index)
    out = model(_tf(inputs), output_hidden_states=True, output_attentions=True, training=False)
    expected = _outputs(out)
    labels = _labels(labels_kind, inputs, config, SEED + index)
    if labels:
        labelled = model(_tf({**inputs, **labels}), training=False)
        first = "logits" if "logits" in out else next(iter(out.keys()))
        np.testing.assert_array_equal(np.asarray(labelled[first]), np.asarray(out[first]))
        expected["outputs.loss"] = labelled.loss.numpy()
    if kind == "decoder":
        expected["outputs.cached_logits"] = _cached_logits(model, family, inputs)
        np.testing.assert_allclose(expected["outputs.cached_logits"], expected["outputs.logits"], atol=1e-5, rtol=0)

    folder = os.path.join(root, name)
    model.save_pretrained(folder)
    tree = _model_tree(class_name, model, out, list(labels))
    tree["h5"] = _h5_single(os.path.join(folder, "tf_model.h5"))
    _assert_same_weights(cls.from_pretrained(folder), model, folder)
    _write_expected(folder, {**inputs, **labels}, expected)
    _write_tree(folder, tree)
    return model, inputs, expected


def _extras_sharded(root, model):
    sharded = os.path.join(root, EXTRAS_CASE, "sharded")
    model.save_pretrained(sharded, max_shard_size=SHARD_SIZE)
    shards = sorted(f for f in os.listdir(sharded) if f.startswith("tf_model-"))
    if len(shards) < 2:
        raise SystemExit(f"{sharded}: max_shard_size={SHARD_SIZE} gave {len(shards)} shard(s), need 2+")
    tree = {"model_name": model.name, "max_shard_size": SHARD_SIZE}
    for shard in shards:
        tree[shard] = _h5_flat(os.path.join(sharded, shard))
    _write_tree(sharded, tree)
    _assert_same_weights(type(model).from_pretrained(sharded), model, sharded)


def _extras_pt(root, name, class_name, inputs, expected):
    """v4's own TF -> PyTorch conversion of the case's weights, checked on the same inputs."""
    folder = os.path.join(root, name)
    pt_cls = getattr(transformers, class_name[len("TF"):])
    # 4.57.1's from_pretrained(from_tf=True) builds the model on the meta device and then
    # copies the TF weights into it, which is a no-op (every parameter stays meta). Build it on
    # the CPU and call the conversion from_pretrained would have used, with its arguments.
    pt_model = pt_cls(pt_cls.config_class.from_pretrained(folder))
    pt_model, info = load_tf2_checkpoint_in_pytorch_model(
        pt_model, os.path.join(folder, "tf_model.h5"), allow_missing_keys=True, output_loading_info=True)
    if info["unexpected_keys"] or info.get("mismatched_keys"):
        raise SystemExit(f"{folder}: v4's TF -> PyTorch conversion left {info}")
    pt_model.tie_weights()
    pt_model.eval()
    pt_model.save_pretrained(os.path.join(folder, "pt"), safe_serialization=True)
    with torch.no_grad():
        pt_out = pt_model(**{k: torch.from_numpy(np.asarray(v)) for k, v in inputs.items()})
    np.testing.assert_allclose(pt_out.logits.numpy(), expected["outputs.logits"], atol=1e-5, rtol=0)


def _extras_from_pt(root, index, inputs):
    """A random PyTorch BertModel through v4's PyTorch -> TF conversion (from_pretrained(from_pt=True))."""
    folder = os.path.join(root, FROM_PT_CASE, "from_pt")
    config = _config("bert", {})
    torch.manual_seed(SEED + 100 + index)
    pt_model = transformers.BertModel(config).eval()
    rng = np.random.default_rng(SEED + 100 + index)
    with torch.no_grad():
        for pname, param in pt_model.named_parameters():
            if pname.endswith(".bias"):
                param.copy_(torch.from_numpy(rng.normal(0.0, 0.1, tuple(param.shape)).astype(np.float32)))
            elif pname.endswith("LayerNorm.weight"):
                param.copy_(torch.from_numpy(rng.normal(1.0, 0.1, tuple(param.shape)).astype(np.float32)))
    pt_model.save_pretrained(folder, safe_serialization=True)
    with torch.no_grad():
        pt_out = pt_model(**{k: torch.from_numpy(v) for k, v in inputs.items()})

    _fresh(SEED + 100 + index)
    model = transformers.TFBertModel.from_pretrained(folder, from_pt=True)
    out = model(_tf(inputs), output_hidden_states=True, output_attentions=True, training=False)
    expected = _outputs(out)
    for field in ("last_hidden_state", "pooler_output"):
        np.testing.assert_allclose(expected[f"outputs.{field}"], getattr(pt_out, field).numpy(), atol=1e-5, rtol=0)
    _write_expected(folder, inputs, expected)
    _write_tree(folder, _model_tree("TFBertModel", model, out, []))


def _total_size(root):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(root) for f in files)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(here, "tf_v4"), help="fixture root folder")
    args = parser.parse_args()

    # Keep the hand-written README and the folders of other scripts (make_tf_seq2seq_fixtures.py); this script's
    # own case folders are regenerated from scratch.
    os.makedirs(args.out, exist_ok=True)
    for entry in os.listdir(args.out):
        if entry in {case[0] for case in CASES} and os.path.isdir(os.path.join(args.out, entry)):
            shutil.rmtree(os.path.join(args.out, entry))

    for index, (name, class_name, family, overrides, kind, labels_kind) in enumerate(CASES):
        model, inputs, expected = _case(args.out, index, name, class_name, family, overrides, kind, labels_kind)
        if name == EXTRAS_CASE:
            _extras_sharded(args.out, model)
        if name in PT_CASES:
            _extras_pt(args.out, name, class_name, inputs, expected)
        if name == FROM_PT_CASE:
            _extras_from_pt(args.out, index, inputs)
        print(f"wrote {name}: {len(expected)} expected tensors, {_total_size(os.path.join(args.out, name))} bytes")
    print(f"total {_total_size(args.out)} bytes under {args.out}")


if __name__ == "__main__":
    main()
