"""EncoderDecoderModel: any registered encoder feeding any registered causal decoder through cross-attention.

The warm-starting recipe of Rothe, Narayan & Severyn (2020), "Leveraging Pre-trained Checkpoints for Sequence
Generation Tasks": both halves start from pretrained checkpoints and the decoder gains freshly initialised
cross-attention. This class only routes tensors between two models built from the shared stack; it owns one layer
of its own, ``enc_to_dec_proj``, when the two hidden sizes differ.

Generation-friendly shape: the encoder runs once (pass its result back as ``encoder_outputs``), and each decoder
step reuses the cache, whose cross-attention keys/values are computed on the first step only.

Deliberate differences from transformers, each documented where it happens: ``resize_token_embeddings`` resizes
both sides when they share a vocabulary (transformers raises NotImplementedError); ``tie_encoder_decoder`` works
as in v4 (v5 ignores it); with ``labels`` the cache defaults to off (nothing reads it while training);
``decoder_start_token_id`` given to ``from_encoder_decoder_pretrained`` sets the composite config (transformers
strips the ``decoder_`` prefix and hands ``start_token_id`` to the decoder config, where nothing reads it); the
decoder mask made from labels never hides the start token, even when it is also the pad token.
"""
from __future__ import annotations

import inspect
import logging
import os
from typing import Any

import torch
from torch import nn

from .. import outputs as O
from ..checkpoint.composite import load_composite, save_composite
from ..checkpoint.pretrained import LoadRequest
from ..config.encoder_decoder import EncoderDecoderConfig, check_shift_ids, composite_config
from ..config.loading import side_config, take_prefixed
from ..nn import Attention, KVCache
from ..nn.losses import check_label_range, cross_entropy, padding_is_scored
from ..outputs import as_encoder_output
from .auto import AutoModel, AutoModelForCausalLM
from .base import PreTrainedModel

__all__ = ["EncoderDecoderModel", "EncoderDecoderConfig", "shift_tokens_right"]

log = logging.getLogger("warmstart")


def shift_tokens_right(labels: torch.Tensor, pad_token_id: int | None, decoder_start_token_id: int | None
                       ) -> torch.Tensor:
    """Teacher forcing: the decoder reads [start, y_0 .. y_{T-2}] and is scored against [y_0 .. y_{T-1}];
    ignored (-100) label positions become padding."""
    check_shift_ids(pad_token_id, decoder_start_token_id)
    shifted = labels.new_empty(labels.shape)
    shifted[:, 1:] = labels[:, :-1]
    shifted[:, 0] = decoder_start_token_id
    return shifted.masked_fill_(shifted == -100, pad_token_id)


def _check_labels(labels: torch.Tensor, vocab_size: int) -> None:
    if not isinstance(labels, torch.Tensor) or labels.dim() != 2:
        raise ValueError(f"labels must be a 2-D (batch, target_length) tensor, got "
                         f"{tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__}")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise TypeError(f"labels must be integer token ids (torch.long), got dtype {labels.dtype}")
    check_label_range(labels, vocab_size, what="the decoder's vocab_size")


def _cross_cached(past_key_values: Any) -> bool:
    if isinstance(past_key_values, KVCache):
        return past_key_values.has_cross(0)
    return isinstance(past_key_values, (tuple, list)) and bool(past_key_values) and len(past_key_values[0]) == 4


def _check_accepted(model: nn.Module, side: str, extras: dict[str, Any], prefix: str = "") -> None:
    """Reject extras the side's forward does not take, named as the caller spelled them (with their prefix);
    the side's own TypeError would name them without it, and with ``encoder_outputs`` none would be raised."""
    params = inspect.signature(model.forward).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(prefix + k for k in extras if k not in params)
    if unknown:
        raise TypeError(f"EncoderDecoderModel.forward() got unexpected arguments {unknown}: the {side} "
                        f"({type(model).__name__}) takes no such argument")


class EncoderDecoderModel(PreTrainedModel):
    """A sequence-to-sequence model from an encoder (AutoModel) and a causal decoder (AutoModelForCausalLM)."""

    config_class = EncoderDecoderConfig
    base_model_prefix = "encoder_decoder"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True

    def __init__(self, config: EncoderDecoderConfig | None = None, encoder: PreTrainedModel | None = None,
                 decoder: PreTrainedModel | None = None):
        config = composite_config(config, encoder, decoder, "EncoderDecoderModel")
        cross_size = getattr(config.decoder, "cross_attention_hidden_size", None)
        super().__init__(config)
        self.encoder = encoder if encoder is not None else AutoModel.from_config(config.encoder)
        self.decoder = decoder if decoder is not None else AutoModelForCausalLM.from_config(config.decoder)
        if self.encoder.get_output_embeddings() is not None:
            raise ValueError(f"the encoder must be a bare model without an LM head, got "
                             f"{type(self.encoder).__name__}; load it with AutoModel")
        if "encoder_hidden_states" not in inspect.signature(self.decoder.forward).parameters or not any(
                isinstance(m, Attention) and m.cross for m in self.decoder.modules()):
            raise ValueError(f"the decoder {type(self.decoder).__name__} has no cross-attention; build it with "
                             "is_decoder=True, add_cross_attention=True (from_encoder_decoder_pretrained does)")
        # One config object per side, shared with the sub-models (at every level: a head model and its
        # backbone), so that edits through model.config.decoder reach the layers that read them.
        for side in ("encoder", "decoder"):
            sub, shared = getattr(self, side), getattr(config, side)
            if sub.config.to_dict() != shared.to_dict():
                log.warning("the %s's own config differs from config.%s, which replaces it", side, side)
            old = sub.config
            for m in sub.modules():
                if getattr(m, "config", None) is old:
                    m.config = shared
        # Cross-attention keys/values are projected from vectors of the decoder's width.
        if config.encoder.hidden_size != config.decoder.hidden_size and cross_size is None:
            self.enc_to_dec_proj = nn.Linear(config.encoder.hidden_size, config.decoder.hidden_size)
        self._warned_start_is_pad = False  # the start-token mask warning is given once per model
        self.post_init()

    def post_init(self) -> None:
        # The sub-models arrive initialised (often pretrained): only the composite's own layer is initialised here.
        if hasattr(self, "enc_to_dec_proj"):
            self._init_weights(self.enc_to_dec_proj)
        self.tie_weights()

    def _init_weights(self, module: nn.Module) -> None:
        std = getattr(self.config.decoder, "initializer_range", 0.02)
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    # ---- parts -----------------------------------------------------------------------------------------------
    def get_encoder(self) -> PreTrainedModel:
        return self.encoder

    def get_decoder(self) -> PreTrainedModel:
        return self.decoder

    def get_input_embeddings(self) -> nn.Embedding:
        return self.encoder.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.encoder.set_input_embeddings(value)
        self.tie_weights()

    def get_output_embeddings(self):
        return self.decoder.get_output_embeddings()

    def set_output_embeddings(self, new_embeddings) -> None:
        self.decoder.set_output_embeddings(new_embeddings)

    # ---- weight sharing --------------------------------------------------------------------------------------
    def tie_weights(self) -> None:
        # Not the base rule: the decoder's output projection stays tied to the decoder's own input table (each
        # sub-model ties itself), never to the encoder's. Across the two sides only tie_encoder_decoder shares.
        if self.config.tie_encoder_decoder:
            for enc_name, dec_name in self.tied_weight_pairs():
                path, _, attr = enc_name.rpartition(".")
                setattr(self.encoder.get_submodule(path), attr, self.decoder.get_parameter(dec_name))

    def tied_weight_pairs(self) -> list[tuple[str, str]]:
        """(encoder name, decoder name) of each weight ``tie_encoder_decoder`` shares.

        v4 semantics: every parameter of the decoder's backbone whose path also exists in the encoder (same
        shape) is shared; the decoder's own layers (cross-attention, LM head) and the encoder's pooler are not.
        """
        if not self.config.tie_encoder_decoder:
            return []
        prefix = self.decoder.base_model_prefix
        base = self.decoder.base_model
        enc = dict(self.encoder.named_parameters(remove_duplicate=False))
        pairs = [(name, f"{prefix}.{name}" if prefix else name)
                 for name, p in base.named_parameters(remove_duplicate=False)
                 if name in enc and enc[name].shape == p.shape]
        untied = sorted(set(enc) - {a for a, _ in pairs})
        if untied:
            log.info("tie_encoder_decoder: encoder weights without a decoder counterpart stay separate: %s", untied)
        return pairs

    def resize_token_embeddings(self, new_num_tokens: int | None = None, pad_to_multiple_of: int | None = None,
                                mean_resizing: bool = True) -> nn.Embedding:
        """Resize both sides' token tables (and the decoder's output projection) to one new vocabulary size.

        transformers raises NotImplementedError here; resizing both sides together is the common case of a
        shared tokenizer gaining tokens. Sides with different vocabularies must be resized one by one.
        """
        enc_v, dec_v = self.config.encoder.vocab_size, self.config.decoder.vocab_size
        if enc_v != dec_v:
            raise ValueError(f"the encoder ({enc_v} tokens) and decoder ({dec_v} tokens) have different vocabularies; "
                             "resize them separately: model.encoder.resize_token_embeddings(...) and "
                             "model.decoder.resize_token_embeddings(...)")
        new = self.encoder.resize_token_embeddings(new_num_tokens, pad_to_multiple_of, mean_resizing)
        self.decoder.resize_token_embeddings(new_num_tokens, pad_to_multiple_of, mean_resizing)
        self.tie_weights()
        return self.get_input_embeddings() if self.config.tie_encoder_decoder else new

    # ---- forward ---------------------------------------------------------------------------------------------
    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                encoder_outputs=None, past_key_values=None, inputs_embeds=None, decoder_inputs_embeds=None,
                labels=None, use_cache=None, output_attentions=None, output_hidden_states=None, return_dict=None,
                **kwargs):
        # Unprefixed extras (token_type_ids, head_mask...) go to the encoder, decoder_-prefixed ones to the decoder.
        dec_kwargs = take_prefixed(kwargs, "decoder_")
        if kwargs:
            _check_accepted(self.encoder, "encoder", kwargs)
        if dec_kwargs:
            _check_accepted(self.decoder, "decoder", dec_kwargs, prefix="decoder_")
        shared = {"output_attentions": output_attentions, "output_hidden_states": output_hidden_states}
        if encoder_outputs is None:
            encoder_outputs = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                           inputs_embeds=inputs_embeds, return_dict=True, **shared, **kwargs)
        else:
            encoder_outputs = as_encoder_output(encoder_outputs)
        states = encoder_outputs.last_hidden_state  # (B, S, C_enc)
        if hasattr(self, "enc_to_dec_proj"):
            if _cross_cached(past_key_values):
                # The cache already holds the cross-attention keys/values, so nothing reads these values: a
                # zero-stride stand-in of the projected shape saves B*S*C_enc*C_dec multiply-adds per step.
                b, s, _ = states.shape
                states = states.new_zeros(()).expand(b, s, self.enc_to_dec_proj.out_features)
            else:
                states = self.enc_to_dec_proj(states)  # (B, S, C_dec)

        if labels is not None:
            _check_labels(labels, self.config.decoder.vocab_size)
            if decoder_input_ids is None and decoder_inputs_embeds is None:
                decoder_input_ids = self.prepare_decoder_input_ids_from_labels(labels)
                if decoder_attention_mask is None:
                    decoder_attention_mask = self._mask_from_labels(decoder_input_ids)
            if use_cache is None:
                use_cache = False  # a training step never reads the cache; building it costs copies
        elif decoder_input_ids is None and decoder_inputs_embeds is None:
            raise ValueError("the decoder needs decoder_input_ids, decoder_inputs_embeds or labels (from which "
                             "decoder_input_ids are made by shifting right)")

        if padding_is_scored(labels, decoder_attention_mask):
            # The loss (unshifted, below) reads the decoder's outputs at positions its mask hides: compute them.
            dec_kwargs["skip_padding"] = False
        dec = self.decoder(input_ids=decoder_input_ids, attention_mask=decoder_attention_mask,
                           encoder_hidden_states=states, encoder_attention_mask=attention_mask,
                           inputs_embeds=decoder_inputs_embeds, past_key_values=past_key_values,
                           use_cache=use_cache, return_dict=True, **shared, **dec_kwargs)
        logits = dec.logits  # (B, T, V)
        loss = None
        if labels is not None:
            if labels.shape != logits.shape[:2]:
                raise ValueError(f"labels shape {tuple(labels.shape)} does not match the decoder's output "
                                 f"{tuple(logits.shape[:2])} (batch, target_length)")
            # The loss is computed here, unshifted: the decoder input already is the shifted labels.
            loss = cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), labels_checked=True)
        out = O.Seq2SeqLMOutput(
            loss=loss, logits=logits, past_key_values=dec.past_key_values, decoder_hidden_states=dec.hidden_states,
            decoder_attentions=dec.attentions, cross_attentions=dec.cross_attentions,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            encoder_hidden_states=getattr(encoder_outputs, "hidden_states", None),
            encoder_attentions=getattr(encoder_outputs, "attentions", None),
        )
        return out if (self.config.return_dict if return_dict is None else return_dict) else out.to_tuple()

    def prepare_decoder_input_ids_from_labels(self, labels: torch.Tensor) -> torch.Tensor:
        return shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)

    def _mask_from_labels(self, decoder_input_ids: torch.Tensor) -> torch.Tensor:
        """The decoder mask for inputs shifted from labels: padding hidden, the start token (position 0) never.

        transformers builds ``decoder_input_ids != pad_token_id``, which also hides the start token when it equals
        the pad id (bert2gpt2: GPT-2's eos is its bos and pad): no position sees it, and the first prediction reads
        a fully masked attention row, whose values are arbitrary. Here position 0 stays visible, as in generation
        and in the mask a collator builds.
        """
        pad = self.config.pad_token_id
        mask = (decoder_input_ids != pad).to(decoder_input_ids.dtype)
        mask[:, 0] = 1  # shift_tokens_right put the start token there
        if pad == self.config.decoder_start_token_id and not self._warned_start_is_pad:
            self._warned_start_is_pad = True
            log.warning("decoder_start_token_id = pad_token_id = %s: the decoder mask made from labels keeps the start "
                        "position visible (transformers hides it, so its first prediction differs); pass "
                        "decoder_attention_mask to choose", pad)
        return mask

    @staticmethod
    def _reorder_cache(past_key_values, beam_idx: torch.Tensor):
        """Keep the cache rows of the beams chosen this step (a KVCache in place, legacy tuples as new tuples)."""
        if isinstance(past_key_values, KVCache):
            return past_key_values.reorder_cache(beam_idx)
        return tuple(tuple(t.index_select(0, beam_idx.to(t.device)) for t in layer) for layer in past_key_values)

    # ---- checkpoints -----------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *model_args: Any, **kwargs: Any):
        return load_composite(cls, pretrained_model_name_or_path, *model_args, **kwargs)

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> None:
        save_composite(self, save_directory, **kwargs)

    @classmethod
    def from_encoder_decoder_pretrained(cls, encoder_pretrained_model_name_or_path: str | os.PathLike | None = None,
                                        decoder_pretrained_model_name_or_path: str | os.PathLike | None = None,
                                        *model_args: Any, **kwargs: Any) -> "EncoderDecoderModel":
        """Warm-start both halves from single-model checkpoints (any registered families).

        ``encoder_*`` / ``decoder_*`` keyword arguments go to that side (config fields or loading options such as
        ``decoder_dtype``; ``encoder_model=`` / ``decoder_model=`` pass a ready model); the rest set the composite
        config (e.g. ``decoder_start_token_id``, ``pad_token_id``). The decoder is loaded with
        ``is_decoder=True, add_cross_attention=True``: its cross-attention is new and reported as such.
        """
        enc_kw = take_prefixed(kwargs, "encoder_")
        dec_kw = take_prefixed(kwargs, "decoder_", keep=("decoder_start_token_id",))
        encoder = enc_kw.pop("model", None)
        if encoder is None:
            if encoder_pretrained_model_name_or_path is None:
                raise ValueError("pass encoder_pretrained_model_name_or_path or a ready model as encoder_model=")
            if "config" not in enc_kw:
                enc_kw["config"] = side_config(encoder_pretrained_model_name_or_path, enc_kw, LoadRequest.KEYWORDS)
                if enc_kw["config"].is_decoder or enc_kw["config"].add_cross_attention:
                    log.info("%s is loaded as an encoder: causal mask and cross-attention off",
                             encoder_pretrained_model_name_or_path)
                    enc_kw["config"].is_decoder = enc_kw["config"].add_cross_attention = False
            encoder = AutoModel.from_pretrained(encoder_pretrained_model_name_or_path, *model_args, **enc_kw)
        decoder = dec_kw.pop("model", None)
        if decoder is None:
            if decoder_pretrained_model_name_or_path is None:
                raise ValueError("pass decoder_pretrained_model_name_or_path or a ready model as decoder_model=")
            if "config" not in dec_kw:
                dec_kw["config"] = side_config(decoder_pretrained_model_name_or_path, dec_kw, LoadRequest.KEYWORDS)
            if not (dec_kw["config"].is_decoder and dec_kw["config"].add_cross_attention):
                log.info("%s is loaded as a decoder: cross-attention layers are added and newly initialised",
                         decoder_pretrained_model_name_or_path)
                dec_kw["config"].is_decoder = dec_kw["config"].add_cross_attention = True
            decoder = AutoModelForCausalLM.from_pretrained(decoder_pretrained_model_name_or_path, **dec_kw)
        config = EncoderDecoderConfig.from_encoder_decoder_configs(encoder.config, decoder.config, **kwargs)
        return cls(config=config, encoder=encoder, decoder=decoder).eval()
