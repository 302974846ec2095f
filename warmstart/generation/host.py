"""generate()'s host-side steps for the compiled wings, Flax and TensorFlow (numpy only: no torch, jax or TF).

Both wings compile their whole decoding loop, so everything that is not the loop happens here, before anything is
traced, with the PyTorch wing's rules and messages: the settings are resolved and the strategies the loops lack
refused (``refuse_unsupported``); ``HostPromptMixin._gen_prompt`` checks the caller's arrays (numpy, jax, TF eager or
torch tensors) and builds the decoder prompt, its mask and positions as a ``HostPrompt`` of int32 numpy arrays
(warmstart/generation/prompt.py is its torch twin); ``_gen_plan`` adds the lengths and the search's static
settings (``SearchSpec``); ``compiled_processors`` maps the shared processor plan onto a wing's functions of the
same names. Encoder inputs are padded (masked) to a multiple of ``ENCODER_BUCKET`` so that nearby lengths share
one compiled program. A wing's mixin provides ``_gen_positions()``, ``takes_token_types``, ``_who`` (how errors
name it) and ``_refuse_traced(name, x)`` (a traced array cannot be read on the host).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..families import is_causal
from .plan import SearchSpec, processor_plan
from .settings import (check_token_ids, decoder_start_id, finished_row_pad, id_list, resolve_lengths,
                       resolve_max_length, resolve_settings)

__all__ = ["HostPrompt", "HostPromptMixin", "host_ids", "check_range", "mask_like", "refuse_unsupported",
           "compiled_processors", "ENCODER_BUCKET", "COMPILED_SUPPORTED"]

ENCODER_BUCKET = 16

# Strategies and outputs the compiled loops do not implement (processor settings are checked against the plan).
_UNSUPPORTED = {
    "num_beam_groups": lambda v: v == 1,
    "penalty_alpha": lambda v: v is None,
    "dola_layers": lambda v: v is None,
    "force_words_ids": lambda v: v is None,
    "constraints": lambda v: v is None,
    "stop_strings": lambda v: v is None,
    "max_time": lambda v: v is None,
    "prompt_lookup_num_tokens": lambda v: v is None,
    "output_attentions": lambda v: not v,
    "output_hidden_states": lambda v: not v,
    "output_logits": lambda v: not v,
}
COMPILED_SUPPORTED = ("greedy search, sampling, beam search and beam sampling with repetition_penalty, "
                      "no_repeat_ngram_size, bad_words_ids, min_length / min_new_tokens, forced BOS / EOS, "
                      "suppress_tokens, begin_suppress_tokens and temperature / top_k / top_p")


# plan step (generation/plan.py) -> (the wing's processor function, its arguments from the step's and ``ignore``)
_PROCESSORS = {
    "repetition_penalty": ("repetition_penalty", lambda a, ignore: (float(a["penalty"]), ignore)),
    "no_repeat_ngram": ("no_repeat_ngram", lambda a, ignore: (int(a["size"]),)),
    "bad_words": ("bad_words", lambda a, ignore: (a["bad_words_ids"], a["eos_ids"])),
    "min_length": ("min_length", lambda a, ignore: (int(a["min_length"]), a["eos_ids"])),
    "min_new_tokens": ("min_length", lambda a, ignore: (int(a["prompt_length"]) + int(a["min_new_tokens"]),
                                                        a["eos_ids"])),
    "forced_bos": ("forced_bos", lambda a, ignore: (int(a["bos_token_id"]),)),
    "forced_eos": ("forced_eos", lambda a, ignore: (int(a["max_length"]), id_list(a["eos_token_id"]))),
    "suppress_tokens": ("suppress", lambda a, ignore: (list(a["tokens"]),)),
    "begin_suppress_tokens": ("suppress", lambda a, ignore: (list(a["tokens"]), int(a["begin_index"]))),
    "temperature": ("temperature", lambda a, ignore: (float(a["temperature"]),)),
    "top_k": ("top_k", lambda a, ignore: (int(a["top_k"]), int(a["min_tokens_to_keep"]))),
    "top_p": ("top_p", lambda a, ignore: (float(a["top_p"]), int(a["min_tokens_to_keep"]))),
}


def compiled_processors(config, impl, who: str, *, prompt_length: int, eos_ids, ignore=None, custom=None) -> list:
    """A compiled wing's processors for the shared plan, in its order: each built by the function of that name in
    ``impl`` (the wing's processors module); ``custom`` ones (v4's protocol ``fn(input_ids, scores, cur_len)``) run
    after the built ones, before the warpers. A plan step without a compiled version is refused by name."""
    steps, warpers = processor_plan(config, prompt_length=prompt_length, eos_ids=eos_ids, has_encoder_ids=True)
    missing = [(name, a) for name, a in steps + warpers if name not in _PROCESSORS]
    if missing:
        name, a = missing[0]
        raise ValueError(f"{who} does not implement the {name} processor ({a or 'on'}): it runs "
                         f"{COMPILED_SUPPORTED}; use the PyTorch model for the rest")

    def make(name, a):
        function, args = _PROCESSORS[name]
        return getattr(impl, function)(*args(a, ignore))

    out = [make(name, a) for name, a in steps]
    out += [lambda ids, cur, s, fn=fn: fn(ids, s, cur) for fn in custom or ()]
    return out + [make(name, a) for name, a in warpers]


def refuse_unsupported(config, who: str) -> None:
    """A setting the compiled loops lack, refused by name (``who``: "the Flax generate()"...)."""
    for name, off in _UNSUPPORTED.items():
        value = getattr(config, name, None)
        if not off(value):
            raise ValueError(f"{who} does not support {name}={value!r}: it runs {COMPILED_SUPPORTED}; use the "
                             "PyTorch model for the rest")


@dataclass
class HostPrompt:
    batch: int
    ids: np.ndarray  # (B, T0): decoder-only prompt or decoder start tokens (+ a given prefix)
    mask: np.ndarray | None  # (B, T0), only when something is masked
    positions: np.ndarray  # (B, T0) decoder positions
    token_types: np.ndarray | None = None  # (B, T0), decoder-only
    encoder: dict | None = None  # encoder inputs (ids, mask, token types), padded to the bucket
    encoder_states: Any = None  # (B, S, C_enc) given as encoder_outputs

    def arrays(self) -> dict:
        """The arrays the compiled program takes (only those that are set: their presence is static)."""
        arrays = dict(ids=self.ids, positions=self.positions)
        if self.mask is not None:
            arrays["mask"] = self.mask
        if self.token_types is not None:
            arrays["token_types"] = self.token_types
        if self.encoder is not None:
            arrays["encoder"] = self.encoder
        if self.encoder_states is not None:
            arrays["encoder_states"] = self.encoder_states
        return arrays


def host_ids(name: str, x) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D (batch, sequence), got shape {a.shape}"
                         + ("; add a batch dimension" if a.ndim == 1 else ""))
    if not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"{name} must hold integer token ids, got dtype {a.dtype}")
    if a.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {a.shape})")
    return a.astype(np.int32)


def check_range(name: str, a: np.ndarray, upper: int, what: str) -> None:
    lo, hi = int(a.min()), int(a.max())
    if lo < 0 or hi >= upper:
        raise ValueError(f"{name} contains {lo if lo < 0 else hi}, outside [0, {upper}) ({what} = {upper})")


def mask_like(name: str, mask, shape) -> np.ndarray:
    m = np.asarray(mask.detach().cpu().numpy() if hasattr(mask, "detach") else mask)
    if m.shape != tuple(shape):
        raise ValueError(f"{name} shape {m.shape} does not match its ids {tuple(shape)}")
    return (m != 0).astype(np.int32)


class HostPromptMixin:
    """The prompt step of generate() on the host; see the module docstring for what a wing provides."""

    _who = "generate()"  # how the errors name this wing's generate
    _generates = False  # causal-LM heads and encoder-decoders set True

    def can_generate(self) -> bool:
        config = getattr(self, "config", None)
        if config is None or not self._generates:
            return False
        return bool(getattr(config, "is_encoder_decoder", False)) or is_causal(config)

    @property
    def _seq2seq(self) -> bool:
        return bool(getattr(self.config, "is_encoder_decoder", False))

    @property
    def _gen_decoder_config(self):
        return self.config.decoder if self._seq2seq else self.config

    def _refuse_traced(self, name: str, x) -> None:
        """Raise if ``x`` is a traced (symbolic) array of the wing's framework."""

    def _gen_plan(self, inputs, generation_config, kwargs: dict):
        """Settings -> prompt -> the search's static settings, every check done: (settings, prompt, spec,
        copies), where ``copies`` is how many rows each input becomes (beams, or samples per input)."""
        settings = resolve_settings(self.generation_config, generation_config, kwargs)
        config = settings.config
        refuse_unsupported(config, self._who)
        if config.use_cache is False:
            warnings.warn(f"use_cache=False is ignored by {self._who}: its loop always decodes over a cache of the "
                          "final length (same tokens)", UserWarning, stacklevel=3)
        dec_config = self._gen_decoder_config
        prompt = self._gen_prompt(inputs, settings)
        check_token_ids(settings, dec_config.vocab_size)
        t0 = prompt.ids.shape[1]
        first, _ = self._gen_positions()
        table = dec_config.max_position_embeddings
        max_length = resolve_max_length(config, usable_positions=table - first, max_positions=table, prompt_len=t0,
                                        what="decoder prompt" if self._seq2seq else "prompt", stacklevel=5)
        resolve_lengths(settings, max_length, t0)
        eos = tuple(settings.eos_ids or ())
        pad = finished_row_pad(config, settings.eos_ids)
        nb = config.num_beams
        copies = max(nb, config.num_return_sequences if config.do_sample else 1)
        spec = SearchSpec(max_length=max_length, prompt_length=t0, eos=eos, pad=0 if pad is None else int(pad),
                          pad_finished=bool(eos), do_sample=bool(config.do_sample), num_beams=nb,
                          num_return_sequences=config.num_return_sequences,
                          length_penalty=float(config.length_penalty), early_stopping=config.early_stopping)
        return settings, prompt, spec, copies

    def _host(self, name: str, x) -> np.ndarray:
        self._refuse_traced(name, x)
        return host_ids(name, x)

    def _host_array(self, name: str, x):
        self._refuse_traced(name, x)
        return x.detach().cpu().numpy() if hasattr(x, "detach") else x

    def _gen_prompt(self, input_ids, settings) -> HostPrompt:
        kwargs, config = settings.model_kwargs, settings.config
        if input_ids is not None and kwargs.get("input_ids") is not None:
            raise ValueError("pass the prompt either positionally or as input_ids=..., not both")
        input_ids = input_ids if input_ids is not None else kwargs.pop("input_ids", None)
        kwargs.pop("input_ids", None)
        attention_mask = kwargs.pop("attention_mask", None)
        token_types = kwargs.pop("token_type_ids", None)
        kwargs.pop("use_cache", None)
        if self._seq2seq:
            return self._seq2seq_prompt(input_ids, attention_mask, token_types, kwargs, config)
        unknown = sorted(kwargs)
        if unknown:
            raise ValueError(f"generate() got arguments that are neither generation settings nor inputs of "
                             f"{type(self).__name__}: {unknown}")
        if input_ids is None:
            if config.bos_token_id is None:
                raise ValueError("no input_ids and no bos_token_id to start from: pass a prompt or set bos_token_id")
            input_ids = np.full((1, 1), config.bos_token_id, np.int32)
        ids = self._host("input_ids", input_ids)
        check_range("input_ids", ids, self.config.vocab_size, "vocab_size")
        mask = None if attention_mask is None else mask_like("attention_mask", attention_mask, ids.shape)
        pad, eos = config.pad_token_id, settings.eos_ids
        if mask is None and pad is not None and ids.shape[0] > 1 and (eos is None or pad not in eos) \
                and bool((ids == pad).any()):
            mask = (ids != pad).astype(np.int32)  # transformers infers the mask from pad tokens the same way
        if mask is not None and bool((mask[:, -1] == 0).any()):
            warnings.warn("a decoder-only model is generating after right padding: pad on the left "
                          "(tokenizer.padding_side = 'left') so every row ends with a real token", UserWarning,
                          stacklevel=4)
        if mask is not None and bool(mask.all()):
            mask = None
        first, pad_position = self._gen_positions()
        if mask is None:
            positions = np.broadcast_to(np.arange(ids.shape[1], dtype=np.int32) + first, ids.shape).copy()
        else:
            positions = np.where(mask == 0, pad_position, np.cumsum(mask, axis=1) - 1 + first).astype(np.int32)
        types = None
        if token_types is not None and self.takes_token_types:
            types = self._host("token_type_ids", token_types)
            if types.shape != ids.shape:
                raise ValueError(f"token_type_ids shape {types.shape} does not match input_ids {ids.shape}")
            check_range("token_type_ids", types, self.config.type_vocab_size, "type_vocab_size")
        elif token_types is not None:
            raise ValueError(f"{type(self).__name__} takes no token_type_ids")
        return HostPrompt(batch=ids.shape[0], ids=ids, mask=mask, positions=positions, token_types=types)

    def _seq2seq_prompt(self, input_ids, attention_mask, token_types, kwargs, config) -> HostPrompt:
        enc_config = self.config.encoder
        encoder_outputs = kwargs.pop("encoder_outputs", None)
        decoder_ids = kwargs.pop("decoder_input_ids", None)
        decoder_mask = kwargs.pop("decoder_attention_mask", None)
        # Beyond v4: explicit positions (e.g. v4's own 0, 1, 2... for RoBERTa, to reproduce its outputs)
        encoder_positions = kwargs.pop("position_ids", None)
        decoder_positions = kwargs.pop("decoder_position_ids", None)
        unknown = sorted(kwargs)
        if unknown:
            raise ValueError(f"generate() got arguments that are neither generation settings nor inputs of "
                             f"{type(self).__name__}: {unknown}")
        encoder, states = None, None
        if encoder_outputs is not None:
            states = encoder_outputs[0] if isinstance(encoder_outputs, (tuple, list)) else \
                encoder_outputs["last_hidden_state"]
            states = np.asarray(self._host_array("encoder_outputs", states), np.float32)
            if states.ndim != 3 or states.shape[-1] != enc_config.hidden_size:
                raise ValueError(f"encoder_outputs.last_hidden_state must be (batch, sequence, "
                                 f"{enc_config.hidden_size}), got shape {tuple(states.shape)}")
            batch, length = states.shape[:2]
            mask = np.ones((batch, length), np.int32) if attention_mask is None else \
                mask_like("attention_mask", attention_mask, (batch, length))
            encoder = dict(attention_mask=mask)
        elif input_ids is not None:
            ids = self._host("input_ids", input_ids)
            check_range("input_ids", ids, enc_config.vocab_size, "the encoder's vocab_size")
            batch, length = ids.shape
            mask = np.ones_like(ids) if attention_mask is None else mask_like("attention_mask", attention_mask,
                                                                                ids.shape)
            types = None
            if token_types is not None:
                types = self._host("token_type_ids", token_types)
                if types.shape != ids.shape:
                    raise ValueError(f"token_type_ids shape {types.shape} does not match input_ids {ids.shape}")
                check_range("token_type_ids", types, getattr(enc_config, "type_vocab_size", 1) or 1,
                             "the encoder's type_vocab_size")
            positions = None
            if encoder_positions is not None:
                positions = self._host("position_ids", encoder_positions)
                if positions.shape != ids.shape:
                    raise ValueError(f"position_ids shape {positions.shape} does not match input_ids {ids.shape}")
                check_range("position_ids", positions, enc_config.max_position_embeddings,
                             "the encoder's max_position_embeddings")
            encoder = self._bucketed(ids, mask, types, positions)
        else:
            raise ValueError("an encoder-decoder needs encoder input: pass input_ids (or encoder_outputs)")
        start = decoder_start_id(config)
        dec = np.full((batch, 1), start, np.int32)
        dmask = None
        if decoder_ids is not None:
            given = self._host("decoder_input_ids", decoder_ids)
            if given.shape[0] != batch:
                raise ValueError(f"decoder_input_ids has {given.shape[0]} rows, the encoder input {batch}")
            check_range("decoder_input_ids", given, self.config.decoder.vocab_size, "the decoder's vocab_size")
            gmask = None if decoder_mask is None else mask_like("decoder_attention_mask", decoder_mask, given.shape)
            if bool((given[:, 0] != start).all()):
                given = np.concatenate([dec, given], axis=1)
                gmask = None if gmask is None else np.concatenate([np.ones((batch, 1), np.int32), gmask], axis=1)
            dec, dmask = given, (None if gmask is None or gmask.all() else gmask)
        first, pad_position = self._gen_positions()
        if decoder_positions is not None:
            positions = self._host("decoder_position_ids", decoder_positions)
            if positions.shape != dec.shape:
                raise ValueError(f"decoder_position_ids shape {positions.shape} does not match the decoder prompt "
                                 f"{dec.shape} (decoder_start_token_id first, then any decoder_input_ids)")
        elif dmask is None:
            positions = np.broadcast_to(np.arange(dec.shape[1], dtype=np.int32) + first, dec.shape).copy()
        else:
            positions = np.where(dmask == 0, pad_position, np.cumsum(dmask, axis=1) - 1 + first).astype(np.int32)
        return HostPrompt(batch=batch, ids=dec, mask=dmask, positions=positions, encoder=encoder,
                          encoder_states=states)

    def _bucketed(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray | None,
                  positions: np.ndarray | None = None) -> dict:
        """Encoder inputs padded (and masked) to a multiple of ENCODER_BUCKET, within the position table."""
        enc = self.config.encoder
        batch, length = ids.shape
        first = (enc.pad_token_id + 1) if enc.model_type == "roberta" else 0
        limit = enc.max_position_embeddings - first
        size = min(max(length, math.ceil(length / ENCODER_BUCKET) * ENCODER_BUCKET), max(limit, length))
        extra = size - length
        pad_id = enc.pad_token_id if enc.pad_token_id is not None else 0
        out = dict(input_ids=np.pad(ids, ((0, 0), (0, extra)), constant_values=pad_id),
                   attention_mask=np.pad(mask, ((0, 0), (0, extra))))
        if types is not None:
            out["token_type_ids"] = np.pad(types, ((0, 0), (0, extra)))
        if positions is not None:
            out["position_ids"] = np.pad(positions, ((0, 0), (0, extra)))
        return out

