"""from_pretrained / save_pretrained for the TF models: v4's files, and PyTorch's, both ways.

Reading: ``tf_model.h5`` (or its shards), else ``model.safetensors`` (TF-named when its metadata says ``format:
tf``, otherwise PyTorch-named and converted by ``checkpoint/tf_layout.py``: kernels transposed, the backbone prefix
added or stripped), else, with ``from_pt=True``, ``pytorch_model.bin`` (torch's weights_only loader: no pickle code
runs). Loading is as strict as the PyTorch wing's: a backbone weight the checkpoint lacks is an error, a shape
mismatch is an error unless ``ignore_mismatched_sizes``; head weights (and the pooler and cross-attention a warm
start adds) keep their fresh values and are reported.

Writing: v4's ``tf_model.h5`` in its exact layout (shards past ``max_shard_size``), or with
``safe_serialization=True`` TF-named safetensors (format "tf", as v4), or with ``for_pytorch=True`` PyTorch-named
safetensors; ``saved_model=True`` adds a SavedModel under ``saved_model/<version>``; config.json names the
architecture without its ``TF`` prefix; everything in one atomic folder swap.
"""
from __future__ import annotations

import fnmatch
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..checkpoint import flax_io, tf_io
from ..checkpoint.keymaps import TF_NEW_WEIGHTS_OK
from ..checkpoint.report import loading_report
from ..checkpoint.tf_layout import pt_to_tf, tf_model_name, tf_to_pt
from ..config.base import CONFIG_NAME
from ..config.loading import attach_generation_config, load_model_config
from ..storage.atomic import atomic_save
from ..storage.files import CheckpointError, CheckpointNotFoundError
from ..storage.options import LoadOptions

__all__ = ["TFLoadingMixin", "TFLoadingError", "read_checkpoint"]

log = logging.getLogger("warmstart")


class TFLoadingError(ValueError):
    """The checkpoint does not fit the model (missing backbone weights, shape or dtype mismatches)."""


def _read_pytorch_bin(folder: Path) -> dict[str, np.ndarray]:
    from ..checkpoint.io import load_state_dict
    from ..storage.weights import find_weights

    import torch

    state = load_state_dict(find_weights(folder))
    return {k: (t.detach().cpu().float() if t.dtype == torch.bfloat16 else t.detach().cpu()).numpy()
            for k, t in state.items()}


def read_checkpoint(folder: Path, *, from_pt: bool) -> tuple[dict[str, Any], str, Any]:
    """(arrays, "tf" | "pt", the h5 layout info or None) from a checkpoint folder: tf_model.h5 first (unless
    ``from_pt``), then safetensors, then ``pytorch_model.bin`` with ``from_pt``."""
    has_h5 = (folder / tf_io.TF_WEIGHTS).is_file() or (folder / tf_io.TF_INDEX).is_file()
    if has_h5 and not from_pt:
        arrays, info = tf_io.read_tf_weights(folder)
        return arrays, "tf", info
    try:
        kind, files = flax_io.find_flax_weights(folder, from_pt=from_pt)
    except CheckpointNotFoundError:
        if not has_h5:
            raise
        arrays, info = tf_io.read_tf_weights(folder)  # from_pt=True on a TF folder: v4 read it anyway
        return arrays, "tf", info
    if kind == "msgpack":  # a Flax-only folder
        raise CheckpointNotFoundError(f"{str(folder)!r} holds Flax weights (flax_model.msgpack) only; load them "
                                      f"with the Flax class, save with for_pytorch=True, then load here")
    if kind == "bin":
        return _read_pytorch_bin(folder), "pt", None
    state, fmt = flax_io.read_safetensors_shards(files, folder)
    if fmt == "tf":
        return {k[:-2] if k.endswith(":0") else k: v for k, v in state.items()}, "tf", None
    if fmt == "flax":
        raise CheckpointError(f"{str(folder)!r} holds Flax-named safetensors; load them with the Flax class")
    return state, "pt", None


TF_LOAD_KEYWORDS = frozenset({"config", "from_pt", "ignore_mismatched_sizes", "output_loading_info",
                              "use_safetensors", *LoadOptions.names(), *LoadOptions.IGNORED})


class TFLoadingMixin:
    """from_pretrained / save_pretrained of TFPreTrainedModel."""

    _pt_is_base = False  # the PyTorch class of the same name has no backbone prefix (BertModel, GPT2Model)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """v4's keywords: ``config``, ``from_pt``, ``ignore_mismatched_sizes``, ``output_loading_info``, the hub
        options (``cache_dir``, ``revision``, ``local_files_only``...) and config fields (``num_labels=3``)."""
        options = LoadOptions.pop_from(kwargs)
        config = kwargs.pop("config", None)
        from_pt = bool(kwargs.pop("from_pt", False))
        ignore_mismatched = bool(kwargs.pop("ignore_mismatched_sizes", False))
        output_loading_info = bool(kwargs.pop("output_loading_info", False))
        kwargs.pop("use_safetensors", None)
        for name in ("from_tf", "from_flax"):
            if kwargs.pop(name, False):
                raise ValueError(f"{name}=True is for the other wings; a TF model reads TF files directly and "
                                 "PyTorch files (safetensors, or .bin with from_pt=True)")
        from ..storage.hub import MODEL_FILES, TF_MODEL_FILES, resolve

        folder = resolve(pretrained_model_name_or_path, options, files=MODEL_FILES if from_pt else TF_MODEL_FILES)
        config, model_kwargs = load_model_config(cls, folder, config, kwargs)
        model = cls(config, *model_args, **model_kwargs)
        arrays, fmt, layout = read_checkpoint(folder, from_pt=from_pt)
        object.__setattr__(model, "_h5_layout", layout)
        info = model._fit_checkpoint(arrays, fmt, str(folder), ignore_mismatched)
        attach_generation_config(model, folder)
        return (model, info) if output_loading_info else model

    def _fit_checkpoint(self, arrays: dict[str, Any], fmt: str, source: str, ignore_mismatched: bool) -> dict:
        """Assign the checkpoint's arrays to this model's weights; transformers' loading-info dict."""
        weights = self.named_weights()
        shapes = {name: tuple(var.shape) for name, var in weights.items()}
        unexpected: list[str] = []
        mismatched: list[tuple[str, tuple, tuple]] = []
        if fmt == "pt":
            conv = pt_to_tf(arrays, shapes, tie_word_embeddings=True)
            theirs, unexpected = conv.arrays, list(conv.unexpected)
            mismatched = [(n, p, t) for n, t, p in conv.mismatched]
        else:
            theirs = {}
            for name, value in arrays.items():
                if name not in shapes:
                    unexpected.append(name)
                    continue
                if tuple(value.shape) != shapes[name]:
                    mismatched.append((name, tuple(value.shape), shapes[name]))
                    continue
                theirs[name] = value
        for name, value in theirs.items():
            if not np.issubdtype(np.asarray(value).dtype, np.floating) and not str(value.dtype) == "bfloat16":
                raise TFLoadingError(f"{source}: weight {name!r} is stored as {value.dtype}, but the model expects "
                                     f"floating point; the checkpoint is corrupt or not a model")
        info = loading_report(source, type(self).__name__, weights, theirs, unexpected, mismatched,
                              may_be_new=self._may_be_new, ignore_mismatched=ignore_mismatched,
                              error=TFLoadingError)
        for name, value in theirs.items():
            weights[name].assign(np.asarray(value, dtype=np.float32))
        return info

    def _may_be_new(self, name: str) -> bool:
        """Whether a checkpoint may lack this weight: a head's, or one a warm start adds to the backbone."""
        prefix = self.base_model_prefix
        if not name.startswith(prefix + "/"):
            return True
        return any(fnmatch.fnmatchcase(name, p) for p in TF_NEW_WEIGHTS_OK.get(prefix, ()))

    # ---- saving ------------------------------------------------------------------------------------------------
    def save_pretrained(self, save_directory, saved_model: bool = False, version: int = 1,
                        push_to_hub: bool = False, signatures=None, max_shard_size: int | str = "10GB",
                        safe_serialization: bool = False, for_pytorch: bool = False, **ignored: Any) -> None:
        """Write config.json and the weights as v4 does, in one atomic folder swap.

        Beyond v4, ``for_pytorch=True`` writes PyTorch-named ``model.safetensors`` (format "pt") instead: the
        PyTorch class of the same name loads the folder directly, and so does this one."""
        if push_to_hub:
            raise NotImplementedError("push_to_hub is not supported: save to a folder, then upload it with "
                                      "huggingface_hub.upload_folder")
        if signatures is not None:
            raise NotImplementedError("custom signatures are not supported; the SavedModel gets v4's "
                                      "serving_default (int32) and int64_serving")
        if Path(save_directory).is_file():
            raise NotADirectoryError(f"save_pretrained needs a folder, but {save_directory} is a file")
        arrays = {name: var.numpy() for name, var in self.named_weights().items()}
        config = self.config
        name = type(self).__name__
        config.architectures = [name[2:] if name.startswith("TF") else name]

        def write(tmp: Path) -> None:
            config.to_json_file(tmp / CONFIG_NAME, use_diff=False)
            gen = getattr(self, "generation_config", None)
            if gen is not None and hasattr(gen, "save_pretrained_into"):
                gen.save_pretrained_into(tmp)
            if for_pytorch:
                from safetensors.numpy import save_file

                state = {k: np.ascontiguousarray(v) for k, v in self._pytorch_state(arrays).items()}
                save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
            elif safe_serialization:
                from safetensors.numpy import save_file

                save_file({k + ":0": v for k, v in arrays.items()}, str(tmp / "model.safetensors"),
                          metadata={"format": "tf"})
            else:
                tf_io.write_tf_weights(tmp, self._file_model_name(), self._h5_layers(arrays),
                                       max_shard_size=max_shard_size)
            if saved_model:
                from .export import export_saved_model

                export_saved_model(self, tmp / "saved_model" / str(int(version)))

        atomic_save(save_directory, write)

    def _pytorch_state(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The PyTorch class's state dict (``for_pytorch=True``)."""
        return tf_to_pt(arrays, base_model=self._pt_is_base)

    def _file_model_name(self) -> str:
        layout = getattr(self, "_h5_layout", None)
        if layout is not None and layout.model_name:
            return layout.model_name
        return tf_model_name(type(self).__name__)

    def _h5_layers(self, arrays: dict[str, np.ndarray]):
        """The file's layers: a loaded v4 file's own layout (layer order, weightless layers, weight order) when it
        still fits the model, so a load + save gives back the same file; else the model's own."""
        layout = getattr(self, "_h5_layout", None)
        if layout is not None and not layout.sharded:
            listed = {rel for _, rels in layout.layers for rel in rels}
            if listed == set(arrays):
                return [(layer, [(rel, arrays[rel]) for rel in rels]) for layer, rels in layout.layers]
        return tf_io.v4_layers(list(arrays.items()), self._v4_layer_names())

    def _v4_layer_names(self) -> list[str]:
        """v4's ``model.layers`` names: the named children, plus a head's weightless Dropout (the classification
        heads' ``dropout``, between the backbone and the classifier), which v4's files list as a layer group of its
        own. Keras 2 named it by a session counter; the name here is the one a fresh session gives:
        ``dropout_{1 + 3L}`` (embeddings 1, per layer 3; cross-attention adds 2 per layer)."""
        names = [name for name, _ in self._v4_children]
        from .backend import keras

        dropout = getattr(self, "dropout", None)
        if isinstance(dropout, keras.layers.Dropout) and self.base_model_prefix in names:
            c = self.config
            per_layer = 3 + (2 if getattr(c, "add_cross_attention", False) else 0)
            count = 1 + per_layer * c.num_hidden_layers
            names.insert(names.index(self.base_model_prefix) + 1, f"dropout_{count}")
        return names
