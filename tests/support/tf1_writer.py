"""Test helper: write TF1 checkpoints the way google-research/bert and TF-Hub's bertseq2seq name them, with
TensorFlow's own SaveV2 / MergeV2Checkpoints ops (the `tf` extra), from a PyTorch model's transformers state dict.

The renaming here is written independently of warmstart/checkpoint/tf1_layout.py (it goes the other way, from
transformers' names to google's), so a test that round-trips through both checks one against the other.
"""
from __future__ import annotations

import re

import numpy as np

_HEADS = {"cls.predictions.bias": "cls/predictions/output_bias",
          "cls.seq_relationship.weight": "cls/seq_relationship/output_weights",
          "cls.seq_relationship.bias": "cls/seq_relationship/output_bias",
          "classifier.weight": "output_weights", "classifier.bias": "output_bias",
          "qa_outputs.weight": "cls/squad/output_weights", "qa_outputs.bias": "cls/squad/output_bias"}
_TIED = ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias", "lm_head.decoder.weight",
         "lm_head.decoder.bias", "lm_head.bias")


def google_names(state: dict, prefix: str = "bert") -> dict[str, np.ndarray]:
    """transformers names of a BERT head model (or a bare BertModel / BertGeneration encoder) -> google's."""
    out = {}
    for key, tensor in state.items():
        array = tensor.detach().float().numpy() if hasattr(tensor, "detach") else np.asarray(tensor)
        if key in _TIED or key.endswith("position_ids"):
            continue
        if key in _HEADS:
            out[_HEADS[key]] = array
            continue
        if not key.startswith(prefix + ".") and not key.startswith(("cls.", "classifier.", "qa_outputs.")):
            key = f"{prefix}.{key}"
        parts = key.split(".")
        leaf, path = parts[-1], parts[:-1]
        path = re.sub(r"layer/(\d+)", r"layer_\1", "/".join(path))
        if path.endswith("_embeddings"):
            out[path] = array
        elif path.endswith("LayerNorm"):
            out[f"{path}/{'gamma' if leaf == 'weight' else 'beta'}"] = array
        elif leaf == "weight":
            out[f"{path}/kernel"] = np.ascontiguousarray(array.T)
        else:
            out[f"{path}/{leaf}"] = array
    return out


def seq2seq_names(encoder_state: dict, decoder_state: dict, module: str = "module/bert") -> dict[str, np.ndarray]:
    """A bertseq2seq bundle from a BertGeneration encoder and decoder (embeddings taken from the encoder)."""
    out = {}
    for name, array in google_names(encoder_state).items():
        out[f"{module}/{name[len('bert/'):]}"] = array
    for name, array in google_names(decoder_state).items():
        rest = name[len("bert/"):]
        if not rest.startswith("encoder/"):
            continue  # the decoder shares the encoder's embeddings
        rest = "decoder/" + rest[len("encoder/"):]
        rest = rest.replace("/crossattention/self/", "/attention/encdec/")
        rest = rest.replace("/crossattention/output/", "/attention/encdec_output/")
        out[f"{module}/{rest}"] = array
    return out


def with_adam(arrays: dict[str, np.ndarray], step: int = 1000) -> dict[str, np.ndarray]:
    """google-research's AdamWeightDecayOptimizer slots and the step counter beside every weight."""
    out = dict(arrays)
    for name, array in arrays.items():
        out[f"{name}/adam_m"] = np.full_like(array, 0.5)
        out[f"{name}/adam_v"] = np.full_like(array, 0.25)
    out["global_step"] = np.array(step, np.int64)
    return out


def write_tf1(prefix: str, arrays: dict[str, np.ndarray], shards: int = 1) -> None:
    """Save ``arrays`` as a TF1 bundle at ``prefix`` with TensorFlow, split over ``shards`` data files."""
    import os
    import tempfile

    import tensorflow as tf

    names = sorted(arrays)
    if shards == 1:
        tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                          tensors=[tf.constant(arrays[n]) for n in names])
        return
    with tempfile.TemporaryDirectory() as tmp:
        parts = []
        for k in range(shards):
            part = names[k::shards]
            parts.append(os.path.join(tmp, f"part{k}"))
            tf.raw_ops.SaveV2(prefix=parts[-1], tensor_names=part, shape_and_slices=[""] * len(part),
                              tensors=[tf.constant(arrays[n]) for n in part])
        tf.raw_ops.MergeV2Checkpoints(checkpoint_prefixes=parts, destination_prefix=prefix)
