"""from_pretrained / save_pretrained: checkpoint folders in transformers' layout <-> our models.

Loading is strict where silence would hurt: a backbone weight the checkpoint lacks (e.g. a config asking for more
layers than were saved) is an error, not a random init; a shape or dtype mismatch is an error unless
``ignore_mismatched_sizes``. Weights a task head legitimately adds (classifier, pooler, cross-attention when
warm-starting a decoder) are initialised fresh and reported, as are checkpoint weights the model does not use.

Keyword arguments naming config fields update the checkpoint's config before the model is built (v4), so
``num_labels=42`` on a 2-label checkpoint really builds 42 labels. ``from_pretrained(None, config=..., state_dict=...)``
builds from the config and loads that state dict; one of the two alone is refused.

``from_tf=True`` / ``from_flax=True`` read what TF or Flax wrote (a TF1 checkpoint, ``tf_model.h5``,
``flax_model.msgpack``; ``foreign.py``) without importing either framework, then fit it like any checkpoint.
"""
from __future__ import annotations

import fnmatch
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..config.base import CONFIG_NAME, PretrainedConfig
from ..config.loading import attach_generation_config, load_model_config, read_model_config
from ..storage.atomic import atomic_save
from ..storage.options import LoadOptions
from .io import load_state_dict, save_state_dict
from .keymaps import KEYMAPS, normalize_legacy_names

__all__ = ["load_pretrained", "save_pretrained", "LoadingError", "LoadRequest", "resolve_dtype",
           "read_model_config", "attach_generation_config"]

log = logging.getLogger("warmstart")


class LoadingError(ValueError):
    """The checkpoint does not fit the model (missing backbone weights, shape or dtype mismatches)."""


def resolve_dtype(dtype: Any, state: dict[str, torch.Tensor] | None = None) -> torch.dtype | None:
    if dtype is None:
        return None
    if dtype == "auto":
        floats = [t.dtype for t in (state or {}).values() if t.dtype.is_floating_point]
        return floats[0] if floats else None
    if isinstance(dtype, str):
        value = getattr(torch, dtype.replace("torch.", ""), None)
        if not isinstance(value, torch.dtype):
            raise ValueError(f"unknown dtype {dtype!r}; use e.g. 'float32', 'bfloat16', torch.float16 or 'auto'")
        dtype = value
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating point torch dtype or 'auto', got {dtype!r}")
    return dtype


@dataclass
class LoadRequest:
    """Everything ``from_pretrained`` takes besides config fields and model arguments, parsed once for every
    loader (single models and composites)."""

    options: LoadOptions
    config: Any = None
    dtype: Any = None
    output_loading_info: bool = False
    ignore_mismatched_sizes: bool = False
    state_dict: dict[str, torch.Tensor] | None = None
    from_tf: bool = False
    from_flax: bool = False
    foreign: tuple[str, Path] | None = None  # (kind, location) once folder() found TF or Flax weights

    # Every keyword pop_from takes: loading options, never config fields.
    KEYWORDS = frozenset({"config", "dtype", "torch_dtype", "output_loading_info", "ignore_mismatched_sizes",
                          "state_dict", "from_tf", "from_flax", *LoadOptions.names(), *LoadOptions.IGNORED})

    @classmethod
    def pop_from(cls, kwargs: dict[str, Any]) -> "LoadRequest":
        dtype, torch_dtype = kwargs.pop("dtype", None), kwargs.pop("torch_dtype", None)
        return cls(options=LoadOptions.pop_from(kwargs), config=kwargs.pop("config", None),
                   dtype=dtype if dtype is not None else torch_dtype,
                   output_loading_info=kwargs.pop("output_loading_info", False),
                   ignore_mismatched_sizes=kwargs.pop("ignore_mismatched_sizes", False),
                   state_dict=kwargs.pop("state_dict", None), from_tf=bool(kwargs.pop("from_tf", False)),
                   from_flax=bool(kwargs.pop("from_flax", False)))

    def folder(self, path_or_repo_id) -> Path:
        # Imported on use: huggingface_hub takes ~0.5 s to import, which building a model from a config never needs.
        from ..storage.hub import resolve

        if not (self.from_tf or self.from_flax):
            folder = resolve(path_or_repo_id, self.options)
            from .foreign import safetensors_kind

            kind = safetensors_kind(folder)
            if kind is not None:  # Flax / TF names (v4's safe_serialization there): v4 converted them unasked
                log.info("%s: model.safetensors holds %s weights; converting them", folder, kind.split("_")[0])
                self.foreign = (kind, folder)
            return folder
        from ..storage.hub import FLAX_MODEL_FILES, TF1_MODEL_FILES, TF_MODEL_FILES
        from .foreign import find_foreign

        if self.from_tf and self.from_flax:
            raise ValueError("pass from_tf=True or from_flax=True, not both")
        local = Path(os.fspath(path_or_repo_id)) if isinstance(path_or_repo_id, (str, os.PathLike)) else None
        if local is not None and not local.is_dir() and (local.is_file() or local.with_name(local.name + ".index")
                                                         .is_file()):
            # A TF1 checkpoint's .index file or prefix (the seed's "./tf_model/model.ckpt.index").
            self.foreign = find_foreign(local, from_tf=self.from_tf, from_flax=self.from_flax)
            return self.foreign[1].parent
        files = (*TF_MODEL_FILES, *TF1_MODEL_FILES) if self.from_tf else FLAX_MODEL_FILES
        folder = resolve(path_or_repo_id, self.options, files=files)
        self.foreign = find_foreign(folder, from_tf=self.from_tf, from_flax=self.from_flax)
        return folder

    def config_source(self, cls) -> Any:
        """``config=`` as given, or for a TF1 checkpoint without config.json google-research's bert_config.json."""
        if self.config is not None or self.foreign is None or self.foreign[0] != "tf1":
            return self.config
        from .foreign import tf1_config_file

        found = tf1_config_file(self.foreign[1])
        if found is None:
            raise FileNotFoundError(
                f"{cls.__name__}.from_pretrained(from_tf=True): no config.json or bert_config.json beside the TF1 "
                f"checkpoint {str(self.foreign[1])!r}; pass config= (a config object, or its file)")
        return found

    def weights(self, folder: Path, *, side: str | None = None,
                sides: dict[str, str | None] | None = None) -> dict[str, torch.Tensor]:
        """The checkpoint's state dict; for TF / Flax weights ``side`` / ``sides`` as ``foreign.read_foreign``."""
        if self.state_dict is not None:
            return self.state_dict
        if self.foreign is None:
            return load_state_dict(folder)
        from .foreign import read_foreign

        got = read_foreign(*self.foreign, side=side, sides=sides)
        if got.skipped:
            optimizer = [k for k, why in got.skipped.items() if why.startswith("optimizer")]
            other = [k for k, why in got.skipped.items() if not why.startswith("optimizer")]
            if optimizer:
                log.info("%s: skipped %d optimizer tensor(s) and step counters: %s", got.source, len(optimizer),
                         _short(optimizer))
            if other:
                log.info("%s: left out %d tensor(s): %s", got.source, len(other),
                         _short([f"{k} ({got.skipped[k]})" for k in other]))
        return {k: numpy_to_torch(k, v) for k, v in got.state.items()}

    def source(self, folder: Path) -> str:
        return str(self.foreign[1]) if self.foreign is not None else str(folder)

    def finish(self, model, folder: Path, theirs: dict[str, torch.Tensor], info: dict):
        """What every loader does once the weights are in: dtype, generation_config.json, eval mode."""
        target = resolve_dtype(self.dtype, theirs)
        if target is not None:
            model.to(target)
            model.config.dtype = str(target).replace("torch.", "")
        attach_generation_config(model, folder)
        model.eval()  # as transformers: a loaded model is ready for inference
        return (model, info) if self.output_loading_info else model


def load_pretrained(cls, path_or_repo_id, *model_args, **kwargs):
    request = LoadRequest.pop_from(kwargs)
    if path_or_repo_id is None:
        return _load_without_folder(cls, request, model_args, kwargs)
    folder = request.folder(path_or_repo_id)
    config, model_kwargs = load_model_config(cls, folder, request.config_source(cls), kwargs)
    model = cls(config, *model_args, **model_kwargs)
    # A decoder reads the decoder stack of a bertseq2seq TF1 checkpoint (any other source has one stack).
    theirs = request.weights(folder, side="decoder" if getattr(config, "is_decoder", False) else "encoder")
    info = load_into(model, theirs, source=request.source(folder),
                     ignore_mismatched_sizes=request.ignore_mismatched_sizes)
    return request.finish(model, folder, theirs, info)


def numpy_to_torch(name: str, array) -> torch.Tensor:
    """A numpy array from a foreign file as a torch tensor (bfloat16 through its bits: torch cannot read
    ml_dtypes' numpy bfloat16)."""
    import numpy as np

    array = np.asarray(array)
    if array.dtype.name == "bfloat16":
        return torch.from_numpy(array.copy(order="C").view(np.int16)).view(torch.bfloat16)
    if array.dtype.kind not in "fiub":
        raise LoadingError(f"weight {name!r} has dtype {array.dtype}, which is not a tensor dtype")
    if all(s >= 0 and s % array.itemsize == 0 for s in array.strides):
        # A strided view (a transposed kernel) stays one: copying it into the model's weight is the one copy, and
        # torch's strided copy is several times faster than numpy's.
        return torch.from_numpy(array)
    return torch.from_numpy(array.copy(order="C"))


def check_no_folder(cls, request: LoadRequest) -> None:
    """v4's ``from_pretrained(None, config=..., state_dict=...)``: both are needed, since a model built from a config
    alone would be a random init that loading must never pass off as pretrained."""
    if request.config is None or request.state_dict is None:
        given = [n for n, v in (("config", request.config), ("state_dict", request.state_dict)) if v is not None]
        raise ValueError(
            f"{cls.__name__}.from_pretrained(None, ...) needs both config= and state_dict= (got "
            f"{', '.join(given) or 'neither'}); pass a checkpoint folder or hub id to load one, or build an untrained "
            f"model with {cls.__name__}(config)")


def _load_without_folder(cls, request: LoadRequest, model_args, kwargs):
    check_no_folder(cls, request)
    config, model_kwargs = load_model_config(cls, None, request.config, kwargs)
    model = cls(config, *model_args, **model_kwargs)
    info = load_into(model, request.state_dict, ignore_mismatched_sizes=request.ignore_mismatched_sizes)
    return request.finish(model, None, request.state_dict, info)


def load_into(model, theirs: dict[str, torch.Tensor], *, source: str = "state_dict",
              ignore_mismatched_sizes: bool = False) -> dict[str, list]:
    """Copy an HF-named state dict into ``model``; return transformers' loading-info dict."""
    keymap = KEYMAPS[model.keymap_name]
    has_prefix = bool(model.base_model_prefix)
    ours, origin, incomplete = keymap.to_ours(normalize_legacy_names(dict(theirs)), model_has_prefix=has_prefix)
    own = model.state_dict()
    tied = _tied_names(model)

    unexpected = [origin[k] for k in ours if k not in own] + incomplete
    mismatched, errors, reinit = [], [], set()
    loadable: dict[str, torch.Tensor] = {}
    for key, tensor in ours.items():
        if key not in own:
            continue
        want = own[key]
        if want.dtype.is_floating_point and not tensor.dtype.is_floating_point:
            raise LoadingError(f"{source}: weight {origin[key]!r} is stored as {tensor.dtype}, but the model "
                               f"expects floating point ({want.dtype}); the checkpoint is corrupt or not a model")
        if tuple(tensor.shape) != tuple(want.shape):
            mismatched.append((origin[key], tuple(tensor.shape), tuple(want.shape)))
            reinit.add(key)
            continue
        loadable[key] = tensor
    if mismatched and not ignore_mismatched_sizes:
        shown = "; ".join(f"{name} is {got} in the checkpoint but {want} in the model" for name, got, want in mismatched)
        raise LoadingError(f"{source}: shape mismatch: {shown}. Check the config (vocab_size, hidden_size, "
                           "num_labels...) or pass ignore_mismatched_sizes=True to re-initialise these weights")
    missing = [k for k in own if k not in loadable and k not in tied and k not in reinit]
    pre = model.base_model_prefix + "."
    required = [k for k in missing if not any(fnmatch.fnmatchcase(k.removeprefix(pre), p) for p in model.new_weights_ok)]
    if required:
        names = [n for k in required for n in keymap.theirs_names(k, model_has_prefix=has_prefix)]
        raise LoadingError(
            f"{source} lacks {len(names)} weight(s) that {type(model).__name__} needs: {_short(names)}. Does the "
            "config match the checkpoint (num_hidden_layers, position_embedding_type...)?")
    with torch.no_grad():
        params = dict(model.named_parameters(remove_duplicate=False)) | dict(model.named_buffers())
        for key, tensor in loadable.items():
            params[key].copy_(tensor)
    model.tie_weights()

    missing_hf = [n for k in missing for n in keymap.theirs_names(k, model_has_prefix=has_prefix)]
    if missing_hf:
        log.warning("%s: newly initialised weights of %s (train them before use): %s", source,
                    type(model).__name__, _short(missing_hf))
    if unexpected:
        log.info("%s: checkpoint weights not used by %s: %s", source, type(model).__name__, _short(unexpected))
    for name, got, want in mismatched:
        log.warning("%s: %s re-initialised: shape %s in the checkpoint, %s in the model", source, name, got, want)
    return {"missing_keys": missing_hf, "unexpected_keys": unexpected, "mismatched_keys": mismatched,
            "error_msgs": errors}


def _tied_names(model) -> set[str]:
    """Our names of parameters that are the same tensor as an earlier-named one (tied output embeddings)."""
    seen: dict[int, str] = {}
    tied = set()
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in seen:
            tied.add(name)
        else:
            seen[id(p)] = name
    return tied


def _short(names: list[str], n: int = 8) -> str:
    return ", ".join(names[:n]) + (f" ... (+{len(names) - n} more)" if len(names) > n else "")


# ---- saving ----------------------------------------------------------------------------------------------------
def export_state_dict(model) -> dict[str, torch.Tensor]:
    """Our weights under transformers' names, tied duplicates left out (transformers re-ties on load)."""
    tied = _tied_names(model)
    ours = {k: v for k, v in model.state_dict(keep_vars=False).items() if k not in tied}
    keymap = KEYMAPS[model.keymap_name]
    return keymap.to_theirs(ours, model_has_prefix=bool(model.base_model_prefix))


def _config_for_save(model) -> PretrainedConfig:
    config = model.config
    config.architectures = [type(model).__name__]
    config.dtype = str(model.dtype).replace("torch.", "")
    return config


def save_pretrained(model, save_directory, *, max_shard_size: int | str = "5GB", safe_serialization: bool = True,
                    state_dict: dict[str, torch.Tensor] | None = None, is_main_process: bool = True,
                    **ignored: Any) -> None:
    if not is_main_process:
        return
    if Path(save_directory).is_file():
        raise NotADirectoryError(f"save_pretrained needs a folder, but {save_directory} is a file")
    theirs = state_dict if state_dict is not None else export_state_dict(model)
    config = _config_for_save(model)

    def write(tmp: Path) -> None:
        config.to_json_file(tmp / CONFIG_NAME, use_diff=False)
        gen = getattr(model, "generation_config", None)
        if gen is not None and hasattr(gen, "save_pretrained_into"):
            gen.save_pretrained_into(tmp)
        if safe_serialization:
            save_state_dict(theirs, tmp, max_shard_size=max_shard_size)
        else:
            torch.save({k: v.contiguous() for k, v in theirs.items()}, tmp / "pytorch_model.bin")

    atomic_save(save_directory, write)
