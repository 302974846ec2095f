"""from_pretrained / save_pretrained: checkpoint folders in transformers' layout <-> our models.

Loading is strict where silence would hurt: a backbone weight the checkpoint lacks (e.g. a config asking for more
layers than were saved) is an error, not a random init; a shape or dtype mismatch is an error unless
``ignore_mismatched_sizes``. Weights a task head legitimately adds (classifier, pooler, cross-attention when
warm-starting a decoder) are initialised fresh and reported, as are checkpoint weights the model does not use.

Keyword arguments naming config fields update the checkpoint's config before the model is built (v4), so
``num_labels=42`` on a 2-label checkpoint really builds 42 labels. ``from_pretrained(None, config=..., state_dict=...)``
builds from the config and loads that state dict; one of the two alone is refused.
"""
from __future__ import annotations

import fnmatch
import logging
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

    # Every keyword pop_from takes: loading options, never config fields.
    KEYWORDS = frozenset({"config", "dtype", "torch_dtype", "output_loading_info", "ignore_mismatched_sizes",
                          "state_dict", *LoadOptions.names(), *LoadOptions.IGNORED})

    @classmethod
    def pop_from(cls, kwargs: dict[str, Any]) -> "LoadRequest":
        dtype, torch_dtype = kwargs.pop("dtype", None), kwargs.pop("torch_dtype", None)
        return cls(options=LoadOptions.pop_from(kwargs), config=kwargs.pop("config", None),
                   dtype=dtype if dtype is not None else torch_dtype,
                   output_loading_info=kwargs.pop("output_loading_info", False),
                   ignore_mismatched_sizes=kwargs.pop("ignore_mismatched_sizes", False),
                   state_dict=kwargs.pop("state_dict", None))

    def folder(self, path_or_repo_id) -> Path:
        # Imported on use: huggingface_hub takes ~0.5 s to import, which building a model from a config never needs.
        from ..storage.hub import resolve

        return resolve(path_or_repo_id, self.options)

    def weights(self, folder: Path) -> dict[str, torch.Tensor]:
        return self.state_dict if self.state_dict is not None else load_state_dict(folder)

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
    config, model_kwargs = load_model_config(cls, folder, request.config, kwargs)
    model = cls(config, *model_args, **model_kwargs)
    theirs = request.weights(folder)
    info = load_into(model, theirs, source=str(folder), ignore_mismatched_sizes=request.ignore_mismatched_sizes)
    return request.finish(model, folder, theirs, info)


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
