"""Checkpoints of TFEncoderDecoderModel: v4's files, our PyTorch EncoderDecoderModel's, and warm starts.

A composite checkpoint is two single-model checkpoints side by side under ``encoder`` / ``decoder`` (plus
``enc_to_dec_proj``): each side is fitted by its own TF model (``TFLoadingMixin._fit_checkpoint``), so name
conversion, strictness and the "newly initialised" report are the single models' own. v4 names the sides by the
sub-models' Keras names, which are ``encoder`` / ``decoder`` after its own warm start but the class's default
(``tf_bert_model``...) for a composite built from ready models; such files are read by their layer order.

Beyond v4: ``from_pretrained(pytorch_folder, from_pt=True)`` reads a PyTorch EncoderDecoderModel folder directly
(v4 refused it), and ``save_pretrained(..., for_pytorch=True)`` writes one.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..checkpoint.foreign import PROJECTION, SIDES, split_tf_sides
from ..checkpoint.report import loading_report
from ..checkpoint.tf_layout import pt_to_tf, tf_to_pt
from ..config.encoder_decoder import EncoderDecoderConfig
from ..config.loading import take_prefixed, warm_start_side_config
from .loading import TF_LOAD_KEYWORDS, TFLoadingError

__all__ = ["TFCompositeLoadingMixin"]

log = logging.getLogger("warmstart")


class TFCompositeLoadingMixin:
    """from_pretrained / save_pretrained / from_encoder_decoder_pretrained of TFEncoderDecoderModel."""

    def _fit_checkpoint(self, arrays: dict[str, Any], fmt: str, source: str, ignore_mismatched: bool) -> dict:
        sides, projection, other = split_tf_sides(arrays, fmt, getattr(self, "_h5_layout", None))
        for side in SIDES:
            if not sides[side]:
                raise TFLoadingError(f"{source} holds no {side} weights (no {side!r}-prefixed names): it is not an "
                                     "encoder-decoder checkpoint; warm-start one with "
                                     "TFEncoderDecoderModel.from_encoder_decoder_pretrained")
        info: dict[str, list] = {"missing_keys": [], "unexpected_keys": list(other), "mismatched_keys": [],
                                 "error_msgs": []}
        for side in SIDES:
            side_info = getattr(self, side)._fit_checkpoint(sides[side], fmt, f"{source} ({side})", ignore_mismatched)
            for name in ("missing_keys", "unexpected_keys"):
                info[name] += [f"{side}/{k}" for k in side_info[name]]
            info["mismatched_keys"] += [(f"{side}/{k}", g, w) for k, g, w in side_info["mismatched_keys"]]
        if self.enc_to_dec_proj is not None:
            self._fit_projection(projection, fmt, source, ignore_mismatched, info)
        elif projection:
            info["unexpected_keys"] += sorted(projection)
        return info

    def _fit_projection(self, projection: dict, fmt: str, source: str, ignore_mismatched: bool, info: dict) -> None:
        weights = {f"{PROJECTION}/{name}": var for name, var in
                   (("kernel", self.enc_to_dec_proj.kernel), ("bias", self.enc_to_dec_proj.bias))}
        shapes = {name: tuple(var.shape) for name, var in weights.items()}
        if fmt == "pt":
            conv = pt_to_tf(projection, shapes, tie_word_embeddings=False)
            theirs, unexpected = conv.arrays, list(conv.unexpected)
            mismatched = [(n, p, t) for n, t, p in conv.mismatched]
        else:
            theirs, unexpected, mismatched = {}, [], []
            for name, value in projection.items():
                if name not in shapes:
                    unexpected.append(name)
                elif tuple(value.shape) != shapes[name]:
                    mismatched.append((name, tuple(value.shape), shapes[name]))
                else:
                    theirs[name] = value
        sub = loading_report(source, type(self).__name__, weights, theirs, unexpected, mismatched,
                             may_be_new=lambda name: True, ignore_mismatched=ignore_mismatched, error=TFLoadingError)
        for name, value in theirs.items():
            weights[name].assign(np.asarray(value, dtype=np.float32))
        for name in ("missing_keys", "unexpected_keys", "mismatched_keys"):
            info[name] += sub[name]

    def _pytorch_state(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Our PyTorch EncoderDecoderModel's names: each side as its own PyTorch class names it, under
        ``encoder.`` / ``decoder.``, and ``enc_to_dec_proj.weight`` / ``.bias``."""
        state = {}
        for side in SIDES:
            sub = getattr(self, side)
            part = {k[len(side) + 1:]: v for k, v in arrays.items() if k.startswith(side + "/")}
            state.update({f"{side}.{k}": v for k, v in tf_to_pt(part, base_model=sub._pt_is_base).items()})
        proj = {k: v for k, v in arrays.items() if k.startswith(PROJECTION + "/")}
        if proj:
            state.update(tf_to_pt(proj, base_model=False))
        return state

    @classmethod
    def from_encoder_decoder_pretrained(cls, encoder_pretrained_model_name_or_path=None,
                                        decoder_pretrained_model_name_or_path=None, *model_args, **kwargs):
        """Warm-start both halves from single-model checkpoints (TF files, or PyTorch ones with
        ``encoder_from_pt=True`` / ``decoder_from_pt=True``, as v4).

        ``encoder_*`` / ``decoder_*`` keyword arguments go to that side (config fields or loading options;
        ``encoder_model=`` / ``decoder_model=`` pass ready TF models); the rest set the composite's config
        (``decoder_start_token_id``, ``pad_token_id``...). The decoder is loaded with ``is_decoder=True,
        add_cross_attention=True``: its cross-attention (and ``enc_to_dec_proj`` when the widths differ) is new
        and reported as such."""
        from .auto import TFAutoModel, TFAutoModelForCausalLM

        enc_kw = take_prefixed(kwargs, "encoder_")
        dec_kw = take_prefixed(kwargs, "decoder_", keep=("decoder_start_token_id",))
        loaded = []
        for side, path, side_kw, auto in (("encoder", encoder_pretrained_model_name_or_path, enc_kw, TFAutoModel),
                                          ("decoder", decoder_pretrained_model_name_or_path, dec_kw,
                                           TFAutoModelForCausalLM)):
            model = side_kw.pop("model", None)
            if model is None:
                if path is None:
                    raise ValueError(f"pass {side}_pretrained_model_name_or_path or a ready TF model as "
                                     f"{side}_model=")
                if side_kw.pop("output_loading_info", None):
                    raise ValueError(f"{side}_output_loading_info is not supported here: load the {side} alone to "
                                     "see its report")
                warm_start_side_config(side, path, side_kw, TF_LOAD_KEYWORDS)
                model = auto.from_pretrained(path, name=side, **side_kw)
            elif side_kw:
                raise ValueError(f"{side}_model= is a ready model; {sorted(side + '_' + k for k in side_kw)} "
                                 "cannot apply to it")
            loaded.append(model)
        encoder, decoder = loaded
        config = EncoderDecoderConfig.from_encoder_decoder_configs(encoder.config, decoder.config, **kwargs)
        model = cls(config, *model_args, encoder=encoder, decoder=decoder)
        if model.enc_to_dec_proj is not None:
            log.warning("newly initialised weights of %s (train them before use): %s/kernel, %s/bias (the encoder's "
                        "width %d differs from the decoder's %d)", cls.__name__, PROJECTION, PROJECTION,
                        config.encoder.hidden_size, config.decoder.hidden_size)
        return model
