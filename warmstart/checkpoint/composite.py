"""Checkpoints of composite models (EncoderDecoderModel) in transformers' layout.

One folder, one config.json (model_type "encoder-decoder", nested sub-configs) and one state dict whose keys are
``encoder.*`` / ``decoder.*`` — each part named exactly as that family's own checkpoint would name it, so each side
is mapped with its own family key map — plus the composite's own layers (``enc_to_dec_proj.*``) under their names.
"""
from __future__ import annotations

import copy
from typing import Any

import torch

from .keymaps import KEYMAPS
from ..config.base import PretrainedConfig
from ..config.loading import apply_config_overrides, read_model_config
from .pretrained import LoadingError, LoadRequest, _short, check_no_folder, export_state_dict, load_into, log, \
    save_pretrained

__all__ = ["export_composite_state_dict", "load_composite_state_dict", "load_composite", "save_composite"]


def _parts(model) -> tuple[dict[str, Any], dict[str, torch.nn.Module]]:
    """Children that are whole models (mapped by their key map) and plain layers (saved under their own names)."""
    models, layers = {}, {}
    for name, child in model.named_children():
        (models if getattr(child, "keymap_name", "") else layers)[name] = child
    return models, layers


def hf_names(sub_model, our_name: str) -> list[str]:
    """Every HF key one of our parameters is stored under (three for a fused q/k/v projection)."""
    keymap = KEYMAPS[sub_model.keymap_name]
    tensor = sub_model.get_parameter(our_name).detach()
    return list(keymap.to_theirs({our_name: tensor}, model_has_prefix=bool(sub_model.base_model_prefix)))


# ---- saving ----------------------------------------------------------------------------------------------------
def export_composite_state_dict(model) -> dict[str, torch.Tensor]:
    """transformers-named state dict of the whole model.

    Weights shared between the two sides (``tie_encoder_decoder``) are written under both names: transformers v5
    no longer re-ties them on load, and with both copies present every loader gets every key.
    """
    models, layers = _parts(model)
    out: dict[str, torch.Tensor] = {}
    for name, sub in models.items():
        out.update({f"{name}.{k}": v for k, v in export_state_dict(sub).items()})
    for name, layer in layers.items():
        out.update({f"{name}.{k}": v for k, v in layer.state_dict().items()})
    return out


def save_composite(model, save_directory, **kwargs: Any) -> None:
    state_dict = kwargs.pop("state_dict", None)
    save_pretrained(model, save_directory, state_dict=state_dict if state_dict is not None
                    else export_composite_state_dict(model), **kwargs)


# ---- loading ---------------------------------------------------------------------------------------------------
def fill_tied(model, theirs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """With tie_encoder_decoder, a v4 checkpoint may hold only one copy of each shared weight: fill in the other."""
    pairs = getattr(model, "tied_weight_pairs", lambda: [])()
    if not pairs:
        return theirs
    theirs = dict(theirs)
    for enc_name, dec_name in pairs:
        enc_keys = ["encoder." + k for k in hf_names(model.encoder, enc_name)]
        dec_keys = ["decoder." + k for k in hf_names(model.decoder, dec_name)]
        for a, b in zip(enc_keys, dec_keys):
            if a not in theirs and b in theirs:
                theirs[a] = theirs[b]
            elif b not in theirs and a in theirs:
                theirs[b] = theirs[a]
    return theirs


def load_composite_state_dict(model, theirs: dict[str, torch.Tensor], *, source: str = "state_dict",
                              ignore_mismatched_sizes: bool = False) -> dict[str, list]:
    """Route ``encoder.*`` / ``decoder.*`` keys to the sub-models' own loaders; merge their reports."""
    models, layers = _parts(model)
    theirs = fill_tied(model, theirs)
    split: dict[str, dict[str, torch.Tensor]] = {name: {} for name in (*models, *layers)}
    unexpected: list[str] = []
    for key, tensor in theirs.items():
        head, _, rest = key.partition(".")
        if head in split and rest:
            split[head][rest] = tensor
        else:
            unexpected.append(key)
    info = {"missing_keys": [], "unexpected_keys": unexpected, "mismatched_keys": [], "error_msgs": []}
    for name, sub in models.items():
        if not split[name]:
            raise LoadingError(f"{source} holds no {name}.* weights: is it an encoder-decoder checkpoint? (found "
                               f"{_short(sorted({k.partition('.')[0] + '.*' for k in theirs}))})")
        part = load_into(sub, split[name], source=f"{source} [{name}]", ignore_mismatched_sizes=ignore_mismatched_sizes)
        for field in ("missing_keys", "unexpected_keys"):
            info[field] += [f"{name}.{k}" for k in part[field]]
        info["mismatched_keys"] += [(f"{name}.{k}", got, want) for k, got, want in part["mismatched_keys"]]
        info["error_msgs"] += part["error_msgs"]
    for name, layer in layers.items():
        _load_layer(layer, name, split[name], info, source, ignore_mismatched_sizes)
    model.tie_weights()
    return info


def _load_layer(layer: torch.nn.Module, name: str, got: dict[str, torch.Tensor], info: dict, source: str,
                ignore_mismatched_sizes: bool) -> None:
    own = layer.state_dict()
    targets = dict(layer.named_parameters()) | dict(layer.named_buffers())
    with torch.no_grad():
        for key, want in own.items():
            full = f"{name}.{key}"
            if key not in got:
                info["missing_keys"].append(full)
                continue
            if tuple(got[key].shape) != tuple(want.shape):
                if not ignore_mismatched_sizes:
                    raise LoadingError(f"{source}: shape mismatch: {full} is {tuple(got[key].shape)} in the "
                                       f"checkpoint but {tuple(want.shape)} in the model")
                info["mismatched_keys"].append((full, tuple(got[key].shape), tuple(want.shape)))
                continue
            targets[key].copy_(got[key])
    info["unexpected_keys"] += [f"{name}.{k}" for k in got if k not in own]
    new = [k for k in info["missing_keys"] if k.startswith(name + ".")]
    if new:
        log.warning("%s: newly initialised weights (train them before use): %s", source, _short(new))


def load_composite(cls, path_or_repo_id, *model_args: Any, **kwargs: Any):
    """``EncoderDecoderModel.from_pretrained``: a folder saved by either library."""
    request = LoadRequest.pop_from(kwargs)
    folder = request.folder(path_or_repo_id) if path_or_repo_id is not None else None
    if folder is None:
        check_no_folder(cls, request)
    config = request.config
    if isinstance(config, PretrainedConfig):
        config = copy.deepcopy(config)  # the caller's object is not changed by the overrides below
    elif config is None:
        if request.foreign is not None and request.foreign[0] == "tf1" and not (folder / "config.json").is_file():
            raise LoadingError(
                f"{cls.__name__}.from_pretrained(from_tf=True): the TF1 checkpoint {str(request.foreign[1])!r} has "
                "no encoder-decoder config.json beside it; pass config=EncoderDecoderConfig."
                "from_encoder_decoder_configs(encoder_config, decoder_config)")
        data = read_model_config(folder, None, cls)
        if data.get("model_type") != cls.config_class.model_type:
            raise LoadingError(
                f"{folder} holds a {data.get('model_type')!r} model, not an encoder-decoder; to warm-start from "
                f"single checkpoints use {cls.__name__}.from_encoder_decoder_pretrained(encoder_path, decoder_path)")
        config = cls.config_class.from_dict(data)
        config.name_or_path = str(folder)
    else:
        config = cls.config_class.from_pretrained(config)
    # Remaining keyword arguments update the config, as transformers' from_pretrained does.
    apply_config_overrides(config, kwargs)
    if kwargs:
        raise TypeError(f"{cls.__name__}.from_pretrained got unexpected arguments {sorted(kwargs)}: neither loading "
                        f"options nor {type(config).__name__} fields")
    model = cls(config, *model_args)
    # Each side reads its own stack of a bertseq2seq TF1 checkpoint (a plain BERT one gives both sides its stack).
    theirs = request.weights(folder, sides={s: s for s in ("encoder", "decoder")}) if folder is not None \
        else request.state_dict
    info = load_composite_state_dict(model, theirs, source=request.source(folder) if folder is not None
                                     else "state_dict",
                                     ignore_mismatched_sizes=request.ignore_mismatched_sizes)
    return request.finish(model, folder, theirs, info)
