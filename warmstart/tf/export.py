"""SavedModel export with v4's serving signatures: ``serving_default`` takes int32 ids, ``int64_serving`` int64.

The model's weights are tracked by a Keras ``ExportArchive``; each signature runs the model on its inputs (cast to
int32, the ids' dtype inside) and returns the output fields that are tensors (``logits``, ``pooler_output``...), so
``tf.saved_model.load(path).signatures["serving_default"](input_ids=...)`` needs neither warmstart nor Keras.
"""
from __future__ import annotations

from pathlib import Path

from .backend import keras, tf

__all__ = ["serving_inputs", "export_saved_model"]


def serving_inputs(model, dtype=tf.int32) -> dict:
    """The TensorSpecs of the inputs a signature takes: ids, mask (and token types where the model has them);
    (batch, choices, sequence) for multiple choice."""
    rank = 3 if type(model).__name__.endswith("MultipleChoice") else 2
    shape = [None] * rank
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if model.takes_token_types else [])
    return {n: tf.TensorSpec(shape, dtype, name=n) for n in names}


def _tensors(output) -> dict:
    return {k: v for k, v in output.items() if isinstance(v, tf.Tensor)}


def export_saved_model(model, path, verbose: bool = False) -> Path:
    """Write ``model`` as a SavedModel at ``path`` with ``serving_default`` (int32) and ``int64_serving``."""
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(inputs):
        ids = {k: tf.cast(v, tf.int32) for k, v in inputs.items()}
        return _tensors(model(ids, training=False, return_dict=True))

    for name, dtype in (("serving_default", tf.int32), ("int64_serving", tf.int64)):
        archive.add_endpoint(name, tf.function(serve), input_signature=[serving_inputs(model, dtype)])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    archive.write_out(str(path), verbose=verbose)
    return path
