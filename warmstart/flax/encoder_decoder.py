"""FlaxEncoderDecoderModel: v4's Flax encoder-decoder over the existing Flax models, with the PyTorch wing's rules.

One linen module routes arrays between two modules it borrows from the family classes: ``encoder`` (the bare
backbone, pooler included, as v4's tree has it), ``decoder`` (the family's causal LM) and, when the hidden sizes
differ and the decoder names no ``cross_attention_hidden_size``, ``enc_to_dec_proj``. The parameter tree is v4's:
``encoder/<backbone>``, ``decoder/<causal LM>``, ``enc_to_dec_proj/{kernel,bias}``.

Beyond v4, as our PyTorch EncoderDecoderModel (warmstart/models/encoder_decoder.py): ``labels`` are shifted into
the decoder inputs and give the unshifted loss; the decoder mask made from labels keeps position 0 visible;
``token_type_ids`` reach the encoder; each side's positions default to its family's rule (RoBERTa counts from
``pad_token_id + 1`` over real tokens; v4 used 0, 1, 2... for every family, so pass those to reproduce v4 there).

Each side's input rules (checks, default positions and token types, cache checks, checkpoint fitting) are those
of its own Flax class, used through a *view*: an instance of that class holding only its config, never built.

Generation drives the model through pure, traceable hooks (warmstart/flax/generation.py): ``_encode_states``,
``_decode_step`` and ``_empty_cache``; checkpoints are read and written by ``composite.py``.
"""
from __future__ import annotations

import logging
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ..config.encoder_decoder import EncoderDecoderConfig, check_shift_ids
from . import outputs as O
from .auto import FlaxAutoModel, FlaxAutoModelForCausalLM
from .bert import _check_label_range
from .composite import FlaxCompositeLoadingMixin
from .losses import token_cross_entropy
from .modeling import FlaxPreTrainedModel

__all__ = ["FlaxEncoderDecoderModel", "FlaxEncoderDecoderModule", "shift_tokens_right"]

log = logging.getLogger("warmstart")

_FLAGS = ("method", "train", "output_attentions", "output_hidden_states")


def needs_projection(config: EncoderDecoderConfig) -> bool:
    """v4's rule for ``enc_to_dec_proj``: the widths differ and the decoder does not project the states itself."""
    return (config.encoder.hidden_size != config.decoder.hidden_size
            and getattr(config.decoder, "cross_attention_hidden_size", None) is None)


def shift_tokens_right(labels, pad_token_id: int | None, decoder_start_token_id: int | None):
    """Teacher forcing (as the PyTorch wing): the decoder reads [start, y_0 .. y_{T-2}]; -100 becomes padding."""
    check_shift_ids(pad_token_id, decoder_start_token_id)
    labels = jnp.asarray(labels)
    shifted = jnp.concatenate([jnp.full_like(labels[:, :1], decoder_start_token_id), labels[:, :-1]], axis=1)
    return jnp.where(shifted == -100, pad_token_id, shifted)


def side_view(cls, config, shape_tree=None, dtype=jnp.float32):
    """An unbuilt instance of a Flax model class that knows its config: its input rules without its module."""
    view = cls.__new__(cls)
    view.config, view._shape_tree, view.dtype = config, shape_tree, dtype
    return view


def _renamed(err: Exception, prefix: str) -> Exception:
    """The side's own error, with its argument names as the composite's caller spells them."""
    names = r"\b(input_ids|attention_mask|position_ids|token_type_ids)\b"
    return type(err)(re.sub(names, prefix + r"\1", str(err)))


class FlaxEncoderDecoderModule(nn.Module):
    """``encoder`` -> (``enc_to_dec_proj``) -> ``decoder``; each side takes its own family's keyword inputs."""

    config: EncoderDecoderConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self):
        enc, dec = self.config.encoder, self.config.decoder
        kw = dict(dtype=self.dtype, gradient_checkpointing=self.gradient_checkpointing)
        self.encoder = FlaxAutoModel._class_for(enc).module_class(enc, **kw)
        self.decoder = FlaxAutoModelForCausalLM._class_for(dec).module_class(dec, **kw)
        if needs_projection(self.config):
            self.enc_to_dec_proj = nn.Dense(dec.hidden_size, dtype=self.dtype,
                                            kernel_init=jax.nn.initializers.normal(dec.initializer_range))

    def encode(self, inputs: dict, deterministic: bool = True, output_attentions: bool = False,
               output_hidden_states: bool = False) -> dict:
        return self.encoder(**inputs, deterministic=deterministic, output_attentions=output_attentions,
                            output_hidden_states=output_hidden_states)

    def project(self, states):  # (B, S, C_enc) -> (B, S, C_dec)
        return self.enc_to_dec_proj(states) if needs_projection(self.config) else states

    def encode_states(self, inputs: dict):
        return self.project(self.encode(inputs)["last_hidden_state"])

    def decode(self, inputs: dict, encoder_hidden_states, encoder_attention_mask, deterministic: bool = True,
               output_attentions: bool = False, output_hidden_states: bool = False, decode: bool = False,
               project: bool = True, cross_cache: str = "off") -> dict:
        states = self.project(encoder_hidden_states) if project else encoder_hidden_states
        return self.decoder(**inputs, encoder_hidden_states=states, encoder_attention_mask=encoder_attention_mask,
                            deterministic=deterministic, output_attentions=output_attentions,
                            output_hidden_states=output_hidden_states, decode=decode, cross_cache=cross_cache)

    def __call__(self, encoder_inputs: dict, decoder_inputs: dict, deterministic: bool = True,
                 output_attentions: bool = False, output_hidden_states: bool = False):
        flags = dict(deterministic=deterministic, output_attentions=output_attentions,
                     output_hidden_states=output_hidden_states)
        enc = self.encode(encoder_inputs, **flags)
        dec = self.decode(decoder_inputs, enc["last_hidden_state"], encoder_inputs["attention_mask"], **flags)
        return enc, dec


class FlaxEncoderDecoderModel(FlaxCompositeLoadingMixin, FlaxPreTrainedModel):
    """A sequence-to-sequence model from a Flax encoder (FlaxAutoModel) and causal decoder (FlaxAutoModelForCausalLM).

    ``input_shape`` is (encoder shape, decoder shape), ((1, 1), (1, 1)) by default (v4).
    """

    config_class = EncoderDecoderConfig
    module_class = FlaxEncoderDecoderModule
    base_model_prefix = "encoder_decoder"
    _generates = True  # generate() drives it

    def __init__(self, config: EncoderDecoderConfig, input_shape=None, seed: int = 0, dtype=jnp.float32,
                 _do_init: bool = True, gradient_checkpointing: bool = False):
        if not isinstance(config, EncoderDecoderConfig):
            raise TypeError(f"FlaxEncoderDecoderModel needs an EncoderDecoderConfig, got {type(config).__name__}")
        enc, dec = config.encoder, config.decoder
        cross_size = getattr(dec, "cross_attention_hidden_size", None)
        if cross_size is not None and cross_size != enc.hidden_size:
            raise ValueError(f"the decoder's cross_attention_hidden_size ({cross_size}) must equal the encoder's "
                             f"hidden_size ({enc.hidden_size})")
        if not (dec.is_decoder and dec.add_cross_attention):
            raise ValueError("the decoder config needs is_decoder=True and add_cross_attention=True (got "
                             f"{dec.is_decoder}, {dec.add_cross_attention}); EncoderDecoderConfig."
                             "from_encoder_decoder_configs sets both")
        self._enc = side_view(FlaxAutoModel._class_for(enc), enc, dtype=dtype)
        self._dec = side_view(FlaxAutoModelForCausalLM._class_for(dec), dec, dtype=dtype)
        self._warned_start_is_pad = False
        input_shape = ((1, 1), (1, 1)) if input_shape is None else tuple(tuple(s) for s in input_shape)
        if len(input_shape) != 2 or any(len(s) != 2 for s in input_shape):
            raise ValueError(f"input_shape is ((batch, source length), (batch, target length)), got {input_shape}")
        super().__init__(config, input_shape, seed, dtype, _do_init, gradient_checkpointing=gradient_checkpointing)
        self._enc._shape_tree = self._shape_tree["encoder"]
        self._dec._shape_tree = self._shape_tree["decoder"]

    def _build(self, gradient_checkpointing: bool) -> None:
        self._module = FlaxEncoderDecoderModule(self.config, dtype=self.dtype,
                                                gradient_checkpointing=gradient_checkpointing)
        self._jit = jax.jit(self._apply_fn, static_argnames=_FLAGS)

    def init_weights(self, rng, input_shape, params: dict | None = None) -> dict:
        """Fresh parameters for (encoder shape, decoder shape); with ``params``, only the keys it lacks are new."""
        from flax.traverse_util import flatten_dict, unflatten_dict

        params_rng, dropout_rng = jax.random.split(rng)
        enc_shape, dec_shape = (tuple(s) for s in input_shape)
        fresh = self._module.init({"params": params_rng, "dropout": dropout_rng}, self._enc._dummy_inputs(enc_shape),
                                  self._dec._dummy_inputs(dec_shape))["params"]
        if params is None:
            return fresh
        flat = flatten_dict(fresh)
        flat.update({k: v for k, v in flatten_dict(dict(params)).items() if k in flat})
        return unflatten_dict(flat)

    # ---- what the lead's generate() and users read ----------------------------------------------------------------
    @property
    def decoder_config(self):
        return self.config.decoder

    def _decoder_first_position(self) -> int:
        return self._dec._first_position()

    def _decoder_pad_position(self) -> int:
        return self.config.decoder.pad_token_id if self._dec._first_position() else 0

    # ---- generation hooks: pure functions of arrays, traceable inside jit / lax.while_loop ----------------------
    def _encode_states(self, params, input_ids, attention_mask, token_type_ids=None, position_ids=None):
        """(B, S, C_dec) encoder states as the decoder reads them (through enc_to_dec_proj when there is one)."""
        inputs = self._enc._backbone_inputs(input_ids, attention_mask, token_type_ids, position_ids, None)
        return self._module.apply({"params": params}, inputs, method=FlaxEncoderDecoderModule.encode_states)

    def _decode_step(self, params, cache, input_ids, position_ids, attention_mask, encoder_hidden_states,
                     encoder_attention_mask, token_type_ids=None, cross_cache: str = "off"):
        """One cached decoder call: (B, T) tokens at ``position_ids``, ``attention_mask`` (B, L) over the whole
        cache, ``encoder_hidden_states`` already projected; ``cross_cache`` as in stack.cross_cache_step.
        Returns ((B, T, V) float32 logits, the new cache). The decoder takes no token types here (zeros)."""
        inputs = self._dec._backbone_inputs(input_ids, attention_mask, None, position_ids, None)
        out, variables = self._module.apply(
            {"params": params, "cache": cache}, inputs, encoder_hidden_states, encoder_attention_mask, decode=True,
            project=False, cross_cache=cross_cache, mutable=["cache"], method=FlaxEncoderDecoderModule.decode)
        return out["logits"].astype(jnp.float32), variables["cache"]

    def _empty_cache(self, batch_size: int, max_length: int, encoder_length: int | None = None):
        """The zero decoding cache for ``batch_size`` rows of ``max_length`` tokens; with ``encoder_length``, room
        for the cross-attention keys/values too (generate() fills them once)."""
        inputs = self._dec._dummy_inputs((batch_size, max_length))
        s = encoder_length or 1
        states = jnp.zeros((batch_size, s, self.config.decoder.hidden_size), self.dtype)
        mode = "fill" if encoder_length else "off"

        def init():
            return self._module.init(jax.random.PRNGKey(0), inputs, states, jnp.ones((batch_size, s), "i4"),
                                     project=False, cross_cache=mode, method=FlaxEncoderDecoderModule.decode)

        return jax.tree_util.tree_map(lambda x: jnp.zeros(x.shape, x.dtype), jax.eval_shape(init)["cache"])

    def init_cache(self, batch_size: int, max_length: int, encoder_outputs) -> dict:
        """v4's empty cache: pass it to ``decode`` as ``past_key_values`` with the (batch, max_length) decoder mask
        and the positions of the tokens fed."""
        for name, n in (("batch_size", batch_size), ("max_length", max_length)):
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
                raise ValueError(f"{name} must be a positive int, got {n!r}")
        self._states_of(encoder_outputs)  # checked; decode() reads the states afresh at every call
        return self._empty_cache(int(batch_size), int(max_length))

    # ---- checked, jitted calls -----------------------------------------------------------------------------------
    def _apply_fn(self, params, inputs, labels, dropout_rng, cache, *, method, train, output_attentions,
                  output_hidden_states):
        m = self._module
        kw = dict(deterministic=not train, output_attentions=output_attentions,
                  output_hidden_states=output_hidden_states, rngs={"dropout": dropout_rng} if train else {})
        if method == "forward":
            enc, dec = m.apply({"params": params}, inputs["encoder"], inputs["decoder"], **kw)
            out = dict(enc=enc, dec=dec)
            if labels is not None:  # unshifted: the decoder inputs already are the shifted labels
                out["loss"] = token_cross_entropy(dec["logits"], labels)
            return out
        if method == "encode":
            return m.apply({"params": params}, inputs, method=FlaxEncoderDecoderModule.encode, **kw)
        args = (inputs["decoder"], inputs["states"], inputs["mask"])
        if cache is None:
            return m.apply({"params": params}, *args, method=FlaxEncoderDecoderModule.decode, **kw)
        out, variables = m.apply({"params": params, "cache": cache}, *args, decode=True, mutable=["cache"],
                                 method=FlaxEncoderDecoderModule.decode, **kw)
        return dict(out, past_key_values=variables["cache"])

    def _call_jit(self, method, params, inputs, train, output_attentions, output_hidden_states, dropout_rng=None,
                  labels=None, cache=None):
        c = self.config
        return self._jit(
            self.params if params is None else params, inputs, labels, dropout_rng, cache, method=method,
            train=bool(train),
            output_attentions=bool(c.output_attentions if output_attentions is None else output_attentions),
            output_hidden_states=bool(c.output_hidden_states if output_hidden_states is None
                                      else output_hidden_states))

    def _encoder_inputs(self, input_ids, attention_mask, token_type_ids, position_ids, train, dropout_rng) -> dict:
        enc = self._enc
        if token_type_ids is not None and not enc.takes_token_types:
            raise ValueError(f"token_type_ids were passed but the encoder ({type(enc).__name__}) takes none")
        enc._check_backbone_inputs(input_ids, attention_mask, token_type_ids, position_ids, None, train, dropout_rng)
        return enc._backbone_inputs(input_ids, attention_mask, token_type_ids, position_ids, None)

    def _decoder_inputs(self, ids, mask, positions, past_key_values=None, batch=None) -> dict:
        dec = self._dec
        try:
            if past_key_values is not None:
                dec._check_cache_inputs(ids, mask, positions, past_key_values)
            dec._check_backbone_inputs(ids, None if past_key_values is not None else mask, None, positions, None,
                                       False, None)
        except (ValueError, TypeError) as e:
            raise _renamed(e, "decoder_") from None
        if batch is not None and ids.shape[0] != batch:
            raise ValueError(f"decoder_input_ids has {ids.shape[0]} rows but the encoder inputs have {batch}")
        return dec._backbone_inputs(ids, mask, None, positions, None)

    @staticmethod
    def _states_of(encoder_outputs):
        states = getattr(encoder_outputs, "last_hidden_state", None)
        if states is None:
            states = encoder_outputs[0] if isinstance(encoder_outputs, (tuple, list)) else encoder_outputs
        if getattr(states, "ndim", None) != 3:
            raise ValueError("encoder_outputs must hold the encoder's (batch, source length, hidden) states (the "
                             f"output of encode()), got {type(encoder_outputs).__name__}")
        return states

    def _check_labels(self, labels, decoder_input_ids) -> None:
        if getattr(labels, "ndim", None) != 2:
            raise ValueError(f"labels must be 2-D (batch, target_length), got {getattr(labels, 'shape', labels)}")
        if not np.issubdtype(np.dtype(labels.dtype), np.integer):
            raise TypeError(f"labels must be integer token ids, got dtype {labels.dtype}")
        _check_label_range(labels, self.config.decoder.vocab_size, what="the decoder's vocab_size")
        if decoder_input_ids is not None and tuple(decoder_input_ids.shape) != tuple(labels.shape):
            raise ValueError(f"labels shape {tuple(labels.shape)} does not match decoder_input_ids "
                             f"{tuple(decoder_input_ids.shape)}")

    def prepare_decoder_input_ids_from_labels(self, labels):
        return shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)

    def _mask_from_labels(self, decoder_input_ids):
        """Padding hidden, the start token (position 0) never, even when it is the pad token (as the PyTorch wing;
        transformers hides it then, and its first prediction reads a fully masked row)."""
        pad = self.config.pad_token_id
        mask = (decoder_input_ids != pad).astype("i4").at[:, 0].set(1)
        if pad == self.config.decoder_start_token_id and not self._warned_start_is_pad:
            self._warned_start_is_pad = True
            log.warning("decoder_start_token_id = pad_token_id = %s: the decoder mask made from labels keeps the start "
                        "position visible (transformers hides it); pass decoder_attention_mask to choose", pad)
        return mask

    # ---- public calls (v4's signatures) -------------------------------------------------------------------------
    def __call__(self, input_ids, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                 position_ids=None, decoder_position_ids=None, output_attentions=None, output_hidden_states=None,
                 return_dict=None, train: bool = False, params=None, dropout_rng=None, *, token_type_ids=None,
                 labels=None):
        enc_inputs = self._encoder_inputs(input_ids, attention_mask, token_type_ids, position_ids, train, dropout_rng)
        if labels is not None:
            self._check_labels(labels, decoder_input_ids)
            labels = jnp.asarray(labels)
            if decoder_input_ids is None:
                decoder_input_ids = self.prepare_decoder_input_ids_from_labels(labels)
                if decoder_attention_mask is None:
                    decoder_attention_mask = self._mask_from_labels(decoder_input_ids)
        elif decoder_input_ids is None:
            raise ValueError("pass decoder_input_ids (e.g. decoder_start_token_id followed by the target so far) or "
                             "labels, which are shifted right into decoder_input_ids")
        dec_inputs = self._decoder_inputs(decoder_input_ids, decoder_attention_mask, decoder_position_ids,
                                          batch=input_ids.shape[0])
        out = self._call_jit("forward", params, {"encoder": enc_inputs, "decoder": dec_inputs}, train,
                             output_attentions, output_hidden_states, dropout_rng, labels)
        enc, dec = out["enc"], out["dec"]
        return self._finish(O.FlaxSeq2SeqLMOutput(
            loss=out.get("loss"), logits=dec["logits"], decoder_hidden_states=dec["hidden_states"],
            decoder_attentions=dec["attentions"], cross_attentions=dec.get("cross_attentions"),
            encoder_last_hidden_state=enc["last_hidden_state"], encoder_hidden_states=enc["hidden_states"],
            encoder_attentions=enc["attentions"]), return_dict)

    def encode(self, input_ids, attention_mask=None, position_ids=None, output_attentions=None,
               output_hidden_states=None, return_dict=None, train: bool = False, params=None, dropout_rng=None,
               token_type_ids=None):
        """The encoder's outputs (not projected: ``decode`` projects them, as v4)."""
        inputs = self._encoder_inputs(input_ids, attention_mask, token_type_ids, position_ids, train, dropout_rng)
        out = self._call_jit("encode", params, inputs, train, output_attentions, output_hidden_states, dropout_rng)
        return self._finish(O.FlaxBaseModelOutput(last_hidden_state=out["last_hidden_state"],
                                                  hidden_states=out["hidden_states"], attentions=out["attentions"]),
                            return_dict)

    def decode(self, decoder_input_ids, encoder_outputs, encoder_attention_mask=None, decoder_attention_mask=None,
               decoder_position_ids=None, past_key_values=None, output_attentions=None, output_hidden_states=None,
               return_dict=None, train: bool = False, params=None, dropout_rng=None):
        """The decoder over ``encode``'s outputs. With ``past_key_values`` (``init_cache``), the decoder mask covers
        the whole cache (batch, max_length) and ``decoder_position_ids`` are required; the new cache comes back."""
        states = self._states_of(encoder_outputs)
        if train and dropout_rng is None:
            raise ValueError("train=True applies dropout and needs dropout_rng (e.g. jax.random.PRNGKey(0))")
        if encoder_attention_mask is None:
            encoder_attention_mask = jnp.ones(states.shape[:2], "i4")
        elif tuple(encoder_attention_mask.shape) != tuple(states.shape[:2]):
            raise ValueError(f"encoder_attention_mask shape {tuple(encoder_attention_mask.shape)} does not match the "
                             f"encoder states {tuple(states.shape[:2])} (batch, source length)")
        if getattr(decoder_input_ids, "ndim", None) != 2:
            raise ValueError(f"decoder_input_ids must be 2-D (batch, target length), got "
                             f"{getattr(decoder_input_ids, 'shape', decoder_input_ids)}")
        dec_inputs = self._decoder_inputs(decoder_input_ids, decoder_attention_mask, decoder_position_ids,
                                          past_key_values, batch=states.shape[0])
        inputs = {"decoder": dec_inputs, "states": jnp.asarray(states), "mask": jnp.asarray(encoder_attention_mask)}
        out = self._call_jit("decode", params, inputs, train, output_attentions, output_hidden_states, dropout_rng,
                             cache=past_key_values)
        return self._finish(O.FlaxCausalLMOutputWithCrossAttentions(
            logits=out["logits"], past_key_values=out.get("past_key_values"), hidden_states=out["hidden_states"],
            attentions=out["attentions"], cross_attentions=out.get("cross_attentions")), return_dict)
