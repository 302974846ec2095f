"""Checkpoints of FlaxEncoderDecoderModel: v4's files, our PyTorch EncoderDecoderModel's, and warm starts.

A composite checkpoint is two single-model checkpoints side by side under ``encoder`` / ``decoder`` (plus
``enc_to_dec_proj``): each side is fitted by its own Flax class's rules (``FlaxLoadingMixin._fit_checkpoint``
through the model's side views), so name conversion, strictness and the "newly initialised" report are the
single models' own. The tree order of the file is kept, so a v4 file loaded and saved comes back byte-identical.
"""
from __future__ import annotations

import logging
from typing import Any

import jax.numpy as jnp
import numpy as np

from ..config.encoder_decoder import EncoderDecoderConfig
from ..config.loading import take_prefixed, warm_start_side_config
from .loading import FLAX_LOAD_KEYWORDS, FlaxLoadingError

__all__ = ["FlaxCompositeLoadingMixin"]

log = logging.getLogger("warmstart")

SIDES = ("encoder", "decoder")
PROJECTION = "enc_to_dec_proj"


def split_sides(state: dict[str, Any], fmt: str) -> tuple[dict[str, dict], dict[str, Any], list[str]]:
    """A composite's flat state -> (per-side states without the side name, the projection's leaves, other keys)."""
    sep = "/" if fmt == "flax" else "."
    sides: dict[str, dict] = {side: {} for side in SIDES}
    projection, other = {}, []
    for key, value in state.items():
        root, _, rest = key.partition(sep)
        if root in sides and rest:
            sides[root][rest] = value
        elif root == PROJECTION and rest:
            projection[rest] = value
        else:
            other.append(key)
    return sides, projection, other


def _projection_params(projection: dict[str, Any], fmt: str, want: dict | None, source: str,
                       ignore_mismatched: bool) -> tuple[dict, list[str], list]:
    """``enc_to_dec_proj`` {kernel, bias} from the checkpoint; (params, missing names, mismatched)."""
    if want is None:
        return {}, [], []
    if fmt == "pt":  # torch Linear: weight (out, in) is the transposed kernel
        projection = {("kernel" if k == "weight" else k): (np.asarray(v).T if k == "weight" else v)
                      for k, v in projection.items()}
    params, missing, mismatched = {}, [], []
    for leaf, shape in want.items():
        name = f"{PROJECTION}/{leaf}"
        if leaf not in projection:
            missing.append(name)
            continue
        got = np.asarray(projection[leaf])
        if tuple(got.shape) != tuple(shape.shape):
            mismatched.append((name, tuple(got.shape), tuple(shape.shape)))
            continue
        params[leaf] = jnp.asarray(got)
    if mismatched and not ignore_mismatched:
        raise FlaxLoadingError(f"{source}: shape mismatch: " + "; ".join(
            f"{k} is {g} in the checkpoint but {w} in the model" for k, g, w in mismatched)
            + "; pass ignore_mismatched_sizes=True to re-initialise it")
    return params, missing, mismatched


class FlaxCompositeLoadingMixin:
    """from_pretrained / save_pretrained / from_encoder_decoder_pretrained of FlaxEncoderDecoderModel."""

    def _fit_checkpoint(self, theirs: dict[str, Any], fmt: str, source: str, ignore_mismatched: bool):
        sides, projection, other = split_sides(theirs, fmt)
        params: dict[str, Any] = {}
        info: dict[str, list] = {"missing_keys": [], "unexpected_keys": list(other), "mismatched_keys": [],
                                 "error_msgs": []}
        # (A bare BERT's own "encoder/layer/..." names land in `encoder`: it is the missing decoder that tells.)
        for side in SIDES:
            if not sides[side]:
                raise FlaxLoadingError(f"{source} holds no {side} parameters (no {side!r}-prefixed names): it is "
                                       "not an encoder-decoder checkpoint; warm-start one with "
                                       "FlaxEncoderDecoderModel.from_encoder_decoder_pretrained")
        for side, view in (("encoder", self._enc), ("decoder", self._dec)):
            side_params, side_info = view._fit_checkpoint(sides[side], fmt, f"{source} ({side})", ignore_mismatched)
            params[side] = side_params
            for name in ("missing_keys", "unexpected_keys"):
                info[name] += [f"{side}/{k}" for k in side_info[name]]
            info["mismatched_keys"] += [(f"{side}/{k}", g, w) for k, g, w in side_info["mismatched_keys"]]
        proj, missing, mismatched = _projection_params(projection, fmt, self.params_shape_tree.get(PROJECTION),
                                                       source, ignore_mismatched)
        if proj:
            params[PROJECTION] = proj
        if missing:
            log.warning("%s: newly initialised parameters of %s (train them before use): %s", source,
                        type(self).__name__, ", ".join(missing))
        info["missing_keys"] += missing
        info["mismatched_keys"] += mismatched
        return params, info

    def _pytorch_state(self, host: dict) -> dict[str, np.ndarray]:
        """Our PyTorch EncoderDecoderModel's names: each side's own, under ``encoder.`` / ``decoder.``."""
        state = {}
        for side in SIDES:
            state.update({f"{side}.{k}": v for k, v in super()._pytorch_state(host[side]).items()})
        if PROJECTION in host:
            state.update(super()._pytorch_state({PROJECTION: host[PROJECTION]}))
        return state

    @classmethod
    def from_encoder_decoder_pretrained(cls, encoder_pretrained_model_name_or_path=None,
                                        decoder_pretrained_model_name_or_path=None, *model_args, **kwargs):
        """Warm-start both halves from single-model checkpoints (Flax files, or PyTorch with ``*_from_pt=True``).

        ``encoder_*`` / ``decoder_*`` keyword arguments go to that side (config fields or FlaxAutoModel loading
        options; ``encoder_model=`` / ``decoder_model=`` pass ready Flax models); ``dtype``, ``seed`` and
        ``input_shape`` build the composite and the rest set its config (``decoder_start_token_id``,
        ``pad_token_id``...). The decoder is loaded with ``is_decoder=True, add_cross_attention=True``: its
        cross-attention (and ``enc_to_dec_proj`` when the widths differ) is new and reported as such.
        """
        from .auto import FlaxAutoModel, FlaxAutoModelForCausalLM

        enc_kw = take_prefixed(kwargs, "encoder_")
        dec_kw = take_prefixed(kwargs, "decoder_", keep=("decoder_start_token_id",))
        dtype = kwargs.pop("dtype", jnp.float32)
        seed = kwargs.pop("seed", 0)
        input_shape = kwargs.pop("input_shape", None)
        for side, path, side_kw in (("encoder", encoder_pretrained_model_name_or_path, enc_kw),
                                    ("decoder", decoder_pretrained_model_name_or_path, dec_kw)):
            if path is None and "model" not in side_kw:
                raise ValueError(f"pass {side}_pretrained_model_name_or_path or a ready Flax model as {side}_model=")
        loaded = []
        for side, path, side_kw, auto in (("encoder", encoder_pretrained_model_name_or_path, enc_kw, FlaxAutoModel),
                                          ("decoder", decoder_pretrained_model_name_or_path, dec_kw,
                                           FlaxAutoModelForCausalLM)):
            model = side_kw.pop("model", None)
            if model is None:
                for name in ("_do_init", "output_loading_info"):
                    if side_kw.pop(name, None):
                        raise ValueError(f"{side}_{name} is not supported here: the composite holds both sides' "
                                         "params")
                warm_start_side_config(side, path, side_kw, FLAX_LOAD_KEYWORDS)
                side_kw.setdefault("dtype", dtype)
                model = auto.from_pretrained(path, **side_kw)
            elif side_kw:
                raise ValueError(f"{side}_model= is a ready model; {sorted(side + '_' + k for k in side_kw)} "
                                 "cannot apply to it")
            loaded.append(model)
        encoder, decoder = loaded
        config = EncoderDecoderConfig.from_encoder_decoder_configs(encoder.config, decoder.config, **kwargs)
        model = cls(config, *model_args, input_shape=input_shape, seed=seed, dtype=dtype, _do_init=False)
        params = {"encoder": encoder.params, "decoder": decoder.params}
        if PROJECTION in model.params_shape_tree:
            log.warning("newly initialised parameters of %s (train them before use): %s/kernel, %s/bias "
                        "(the encoder's width %d differs from the decoder's %d)", cls.__name__, PROJECTION,
                        PROJECTION, config.encoder.hidden_size, config.decoder.hidden_size)
            params = model.init_weights(model.key, model.input_shape, params)
        model.params = params
        return model
