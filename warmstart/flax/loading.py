"""from_pretrained / save_pretrained for the Flax models: v4's files, and PyTorch's, both ways.

Reading: ``flax_model.msgpack`` (or its shards), else ``model.safetensors`` (Flax-named when its metadata says
``format: flax``, otherwise PyTorch-named and converted: kernels transposed, ``scale`` / ``embedding`` names),
else, with ``from_pt=True``, ``pytorch_model.bin`` (read with torch's weights_only loader: no pickle code runs).
Loading is as strict as the PyTorch wing's: a backbone parameter the checkpoint lacks is an error, a shape
mismatch is an error unless ``ignore_mismatched_sizes``; head parameters (and the pooler and cross-attention a
warm start adds) are initialised fresh and reported. Params keep the dtype they were stored in; ``dtype`` is the
compute dtype (v4).

Writing: v4's ``flax_model.msgpack`` (shards past ``max_shard_size``) or, with ``safe_serialization=True``,
Flax-named safetensors, plus ``config.json`` with the architecture named without its ``Flax`` prefix, all in one
atomic folder swap.
"""
from __future__ import annotations

import fnmatch
import logging
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from ..checkpoint import flax_io
from ..checkpoint.flax_layout import (align_flat_prefix, convert_to_flax, flatten_tree, from_flax_tree,
                                      unflatten_tree)
from ..checkpoint.keymaps import FLAX_BACKBONE_ROOTS, FLAX_NEW_WEIGHTS_OK
from ..checkpoint.report import loading_report, short_list
from ..config.base import CONFIG_NAME
from ..config.loading import attach_generation_config, load_model_config
from ..storage.atomic import atomic_save
from ..storage.options import LoadOptions

__all__ = ["FlaxLoadingMixin", "FlaxLoadingError", "FLAX_LOAD_KEYWORDS"]

log = logging.getLogger("warmstart")


class FlaxLoadingError(ValueError):
    """The checkpoint does not fit the model (missing backbone parameters, shape or dtype mismatches)."""


def _numpy_state(torch_state: dict) -> dict[str, np.ndarray]:
    """torch tensors -> numpy, bfloat16 kept as bfloat16 (numpy cannot read a torch bfloat16 tensor directly)."""
    import ml_dtypes
    import torch

    out = {}
    for key, t in torch_state.items():
        t = t.detach().cpu()
        out[key] = t.float().numpy().astype(ml_dtypes.bfloat16) if t.dtype == torch.bfloat16 else t.numpy()
    return out


def _read_pytorch_bin(files: list[Path]) -> dict[str, np.ndarray]:
    try:
        from ..checkpoint.io import load_state_dict
        from ..storage.weights import find_weights
    except ImportError as e:  # pragma: no cover - torch is a core dependency
        raise ImportError(f"from_pt=True with pytorch_model.bin needs torch ({e}); pip install torch") from e
    return _numpy_state(load_state_dict(find_weights(files[0].parent)))


def read_checkpoint(folder: Path, *, from_pt: bool) -> tuple[dict[str, Any], str]:
    """(flat Flax-named params or PyTorch-named state, "flax" | "pt") from a checkpoint folder."""
    kind, files = flax_io.find_flax_weights(folder, from_pt=from_pt)
    if kind == "msgpack":
        return flatten_tree(flax_io.read_flax_weights(files[0])), "flax"
    if kind == "bin":
        return _read_pytorch_bin(files), "pt"
    state, fmt = flax_io.read_safetensors_shards(files, folder)
    if fmt == "flax":
        return {k.replace(".", "/"): v for k, v in state.items()}, "flax"
    return state, "pt"


# The keywords from_pretrained keeps for itself (the rest may name config fields).
FLAX_LOAD_KEYWORDS = frozenset({"config", "from_pt", "_do_init", "ignore_mismatched_sizes", "output_loading_info",
                                "input_shape", "seed", "dtype", *LoadOptions.names(), *LoadOptions.IGNORED})


class FlaxLoadingMixin:
    """from_pretrained / save_pretrained of FlaxPreTrainedModel."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, dtype=jnp.float32, *model_args, **kwargs):
        """v4's keywords: ``config``, ``from_pt``, ``_do_init``, ``ignore_mismatched_sizes``, ``input_shape``,
        ``seed``, ``output_loading_info``, the hub options (``cache_dir``, ``revision``, ``local_files_only``...)
        and config fields (``num_labels=3``) that update the checkpoint's config."""
        options = LoadOptions.pop_from(kwargs)
        config = kwargs.pop("config", None)
        from_pt = bool(kwargs.pop("from_pt", False))
        do_init = bool(kwargs.pop("_do_init", True))
        ignore_mismatched = bool(kwargs.pop("ignore_mismatched_sizes", False))
        output_loading_info = bool(kwargs.pop("output_loading_info", False))
        # Each class's own default shape unless one is given (a composite's is a pair of shapes).
        shape = {"input_shape": kwargs.pop("input_shape")} if "input_shape" in kwargs else {}
        seed = kwargs.pop("seed", 0)
        for name in ("from_tf", "from_flax"):
            if kwargs.pop(name, False):
                raise ValueError(f"{name}=True is for the other wings; a Flax model reads Flax files directly and "
                                 "PyTorch files with from_pt=True")
        from ..storage.hub import FLAX_MODEL_FILES, MODEL_FILES, resolve

        folder = resolve(pretrained_model_name_or_path, options, files=MODEL_FILES if from_pt else FLAX_MODEL_FILES)
        config, model_kwargs = load_model_config(cls, folder, config, kwargs)
        model = cls(config, *model_args, **shape, seed=seed, dtype=dtype, _do_init=False, **model_kwargs)
        theirs, fmt = read_checkpoint(folder, from_pt=from_pt)
        params, info = model._fit_checkpoint(theirs, fmt, str(folder), ignore_mismatched)
        attach_generation_config(model, folder)
        if do_init:
            if info["missing_keys"] or info["mismatched_keys"]:
                params = model.init_weights(model.key, model.input_shape, params)
            model.params = params
            result = model
        else:
            model._missing_keys = set(info["missing_keys"])
            if info["missing_keys"]:
                log.warning("%s: with _do_init=False the %d new parameter(s) are not initialised; fill them with "
                            "params = model.init_weights(model.key, model.input_shape, params)", folder,
                            len(info["missing_keys"]))
            result = (model, params)
        return (result, info) if output_loading_info else result

    def _fit_checkpoint(self, theirs: dict[str, Any], fmt: str, source: str, ignore_mismatched: bool):
        """Checkpoint arrays -> (the params tree that fits this model, transformers' loading-info dict)."""
        prefix = self.base_model_prefix
        shape_tree = flatten_tree(self.params_shape_tree)
        has_prefix = prefix in self.params_shape_tree
        if fmt == "pt":
            flat = flatten_tree(convert_to_flax(theirs, base_prefix=prefix, add_prefix=has_prefix,
                                                tie_word_embeddings=bool(self.config.tie_word_embeddings)).tree)
        else:
            flat = align_flat_prefix(theirs, base_prefix=prefix, add_prefix=has_prefix)
        unexpected = [k for k in flat if k not in shape_tree]
        mismatched, loadable = [], {}
        for key in flat:  # the checkpoint's order, so a loaded model saves back the very same file
            want = shape_tree.get(key)
            if want is None:
                continue
            got = np.asarray(flat[key]) if not hasattr(flat[key], "dtype") else flat[key]
            if jnp.issubdtype(want.dtype, jnp.floating) and not jnp.issubdtype(got.dtype, jnp.floating):
                raise FlaxLoadingError(f"{source}: parameter {key!r} is stored as {got.dtype}, but the model expects "
                                       f"floating point ({want.dtype}); the checkpoint is corrupt or not a model")
            if tuple(got.shape) != tuple(want.shape):
                mismatched.append((key, tuple(got.shape), tuple(want.shape)))
                continue
            loadable[key] = got
        info = loading_report(source, type(self).__name__, shape_tree, loadable, unexpected, mismatched,
                              may_be_new=lambda k: self._may_be_new(k, has_prefix),
                              ignore_mismatched=ignore_mismatched, error=FlaxLoadingError, what="parameter")
        params = unflatten_tree({k: jnp.asarray(v) for k, v in loadable.items()}) if loadable else {}
        return params, info

    def _may_be_new(self, path: str, has_prefix: bool) -> bool:
        """Whether a checkpoint may lack this parameter: a head's, or one a warm start adds to the backbone."""
        prefix = self.base_model_prefix
        if has_prefix:
            if not path.startswith(prefix + "/"):
                return True
            path = path[len(prefix) + 1:]
        elif path.split("/", 1)[0] not in FLAX_BACKBONE_ROOTS.get(prefix, ()):
            return True
        return any(fnmatch.fnmatchcase(path, p) for p in FLAX_NEW_WEIGHTS_OK.get(prefix, ()))

    def save_pretrained(self, save_directory, params=None, push_to_hub: bool = False,
                        max_shard_size: int | str = "10GB", safe_serialization: bool = False,
                        is_main_process: bool = True, for_pytorch: bool = False, **ignored: Any) -> None:
        """Write config.json and the params (``params`` or the model's own) as v4 does; atomic.

        Beyond v4, ``for_pytorch=True`` writes PyTorch-named ``model.safetensors`` (format "pt", kernels
        transposed back, tied projections left out) instead: the PyTorch class of the same name loads the folder
        directly, and so does this one."""
        if push_to_hub:
            raise NotImplementedError("push_to_hub is not supported: save to a folder, then upload it with "
                                      "huggingface_hub.upload_folder")
        if not is_main_process:
            return
        if Path(save_directory).is_file():
            raise NotADirectoryError(f"save_pretrained needs a folder, but {save_directory} is a file")
        tree = self.params if params is None else params
        missing = sorted(set(flatten_tree(self.params_shape_tree)) - set(flatten_tree(tree)))
        if missing:
            raise ValueError(f"the params to save lack {len(missing)} parameter(s) of {type(self).__name__}: "
                             f"{short_list(missing)}")
        # Not jax.tree_util.tree_map: it sorts dict keys, and the file keeps the tree's own order (v4's).
        host = unflatten_tree({k: np.asarray(v) for k, v in flatten_tree(tree).items()})
        config = self.config
        name = type(self).__name__
        config.architectures = [name[4:] if name.startswith("Flax") else name]

        def write(tmp: Path) -> None:
            config.to_json_file(tmp / CONFIG_NAME, use_diff=False)
            gen = getattr(self, "generation_config", None)
            if gen is not None and hasattr(gen, "save_pretrained_into"):
                gen.save_pretrained_into(tmp)
            if for_pytorch:
                from safetensors.numpy import save_file

                save_file(self._pytorch_state(host), str(tmp / "model.safetensors"), metadata={"format": "pt"})
            else:
                self._write_weights(host, tmp, safe_serialization, max_shard_size)

        atomic_save(save_directory, write)

    def _write_weights(self, host: dict, folder: Path, safe_serialization: bool, max_shard_size) -> None:
        if safe_serialization:
            flax_io.write_flax_safetensors(host, folder / "model.safetensors")
        else:
            flax_io.write_flax_weights(host, folder, max_shard_size=max_shard_size)

    def _pytorch_state(self, host: dict) -> dict[str, np.ndarray]:
        """The params under transformers' PyTorch names (a Flax head tree and its PyTorch model share prefixes)."""
        return {k: np.ascontiguousarray(v) for k, v in from_flax_tree(host).items()}

