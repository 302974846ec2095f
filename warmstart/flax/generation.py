"""``generate()`` for the Flax models: one jit-compiled program per shape, over a preallocated cache.

The steps are the PyTorch wing's (warmstart/generation/generate.py): settings -> prompt -> plan -> search ->
output. Settings are resolved and validated by the shared, framework-free code (generation/settings.py), so a bad
setting or input fails with the same error, before anything is traced. The search (search.py) runs the encoder,
the prefill and the whole decoding loop inside one ``jax.jit``-compiled function, kept per model and static
setting in ``model._generate_programs``; jax caches its compilations per input shape, and encoder inputs are padded
(masked) to a multiple of ``ENCODER_BUCKET`` so that nearby lengths share one compilation.

Outputs are v4's: ``FlaxGreedySearchOutput`` / ``FlaxSampleOutput`` (``sequences`` (rows, max_length), padded
with pad_token_id after each row's end) and ``FlaxBeamSearchOutput`` (plus ``scores``, the length-normalised beam
scores). Beyond v4: repetition_penalty, min_new_tokens, bad_words_ids, beam sampling, ``max_new_tokens``,
precomputed ``encoder_outputs`` (transformers #15161), and the PyTorch wing's checks.

The model side is a small protocol (implemented by FlaxPreTrainedModel for causal LMs and by
FlaxEncoderDecoderModel): ``_decode_step(params, cache, ids, positions, mask, enc, enc_mask) -> (logits, cache)``,
``_empty_cache(batch, max_length, encoder_length)``, and for encoder-decoders ``_encode_states(params, ids, mask,
token_type_ids)``. The prefill passes ``cross_cache="fill"`` and every later step ``"read"``: cross-attention
keys/values are computed once per generation, not per step (v4 recomputed them).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..config.generation import GenerationConfig
from ..families import is_causal
from ..generation.mixin import GenerationMixin
from ..generation.settings import (check_token_ids, decoder_start_id, finished_row_pad, resolve_lengths,
                                   resolve_max_length, resolve_settings)
from .outputs import _flax_output
from .processors import build_processors, refuse_unsupported
from .search import SearchSpec, beam_search, greedy_or_sample, repeat_rows

__all__ = ["FlaxGenerationMixin", "FlaxGreedySearchOutput", "FlaxSampleOutput", "FlaxBeamSearchOutput",
           "ENCODER_BUCKET"]

ENCODER_BUCKET = 16

FlaxGreedySearchOutput = _flax_output("FlaxGreedySearchOutput", "sequences")
FlaxSampleOutput = _flax_output("FlaxSampleOutput", "sequences")
FlaxBeamSearchOutput = _flax_output("FlaxBeamSearchOutput", "sequences", "scores")


@dataclass
class _Prompt:
    batch: int
    ids: np.ndarray  # (B, T0): decoder-only prompt or decoder start tokens (+ a given prefix)
    mask: np.ndarray | None  # (B, T0), only when something is masked
    positions: np.ndarray  # (B, T0) decoder positions
    token_types: np.ndarray | None = None  # (B, T0), decoder-only
    encoder: dict | None = None  # encoder inputs (ids, mask, token types), padded to the bucket
    encoder_states: Any = None  # (B, S, C_enc) given as encoder_outputs


def _host_ids(name: str, x) -> np.ndarray:
    if isinstance(x, jax.core.Tracer):
        raise TypeError(f"generate() takes concrete arrays, but {name} is traced: call generate outside jax.jit (it "
                        "compiles itself)")
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


def _check_range(name: str, a: np.ndarray, upper: int, what: str) -> None:
    lo, hi = int(a.min()), int(a.max())
    if lo < 0 or hi >= upper:
        raise ValueError(f"{name} contains {lo if lo < 0 else hi}, outside [0, {upper}) ({what} = {upper})")


def _mask_like(name: str, mask, shape) -> np.ndarray:
    m = np.asarray(mask.detach().cpu().numpy() if hasattr(mask, "detach") else mask)
    if m.shape != tuple(shape):
        raise ValueError(f"{name} shape {m.shape} does not match its ids {tuple(shape)}")
    return (m != 0).astype(np.int32)


class FlaxGenerationMixin(GenerationMixin):
    """``generate`` and ``generation_config`` (the latter shared with the PyTorch wing's mixin)."""

    _lm_head = False  # causal-LM heads and encoder-decoders set True

    def can_generate(self) -> bool:
        config = getattr(self, "config", None)
        if config is None or not self._lm_head:
            return False
        return bool(getattr(config, "is_encoder_decoder", False)) or is_causal(config)

    # ---- the model protocol, for causal LMs (FlaxEncoderDecoderModel has its own) ---------------------------------
    @property
    def _seq2seq(self) -> bool:
        return bool(getattr(self.config, "is_encoder_decoder", False))

    @property
    def _gen_decoder_config(self):
        return self.config.decoder if self._seq2seq else self.config

    def _gen_positions(self) -> tuple[int, int]:
        """(first position id, position id under padding) of the decoder."""
        if self._seq2seq:
            return self._decoder_first_position(), self._decoder_pad_position()
        first = self._first_position()
        return first, (self.config.pad_token_id if first else 0)

    def _empty_cache(self, batch_size: int, max_length: int, encoder_length: int | None = None):
        """Zeros for the cache of ``max_length`` positions; with ``encoder_length``, also the cross-attention
        keys/values generate() computes once (stack.cross_cache_step)."""
        inputs = self._dummy_inputs((batch_size, max_length))
        extra = {}
        if self.config.add_cross_attention and encoder_length:
            extra = dict(encoder_hidden_states=jnp.zeros((batch_size, encoder_length, self.config.hidden_size)),
                         encoder_attention_mask=jnp.ones((batch_size, encoder_length), "i4"), cross_cache="fill")
        shapes = jax.eval_shape(lambda: self._module.init(jax.random.PRNGKey(0), **inputs, **extra))
        return jax.tree_util.tree_map(lambda x: jnp.zeros(x.shape, x.dtype), shapes["cache"])

    def _project_states(self, params, states):
        """Given encoder states in the decoder's width (enc_to_dec_proj, when the hidden sizes differ)."""
        proj = params.get("enc_to_dec_proj") if hasattr(params, "get") else None
        return states if proj is None else states @ proj["kernel"] + proj["bias"]

    def _decode_step(self, params, cache, input_ids, position_ids, attention_mask, encoder_hidden_states=None,
                     encoder_attention_mask=None, token_type_ids=None, cross_cache: str = "off"):
        inputs = dict(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)
        if self.takes_token_types:
            inputs["token_type_ids"] = jnp.zeros_like(input_ids) if token_type_ids is None else token_type_ids
        if encoder_hidden_states is not None:
            inputs.update(encoder_hidden_states=encoder_hidden_states, encoder_attention_mask=encoder_attention_mask,
                          cross_cache=cross_cache)
        out, variables = self._module.apply({"params": params, "cache": cache}, **inputs, decode=True,
                                            mutable=["cache"], deterministic=True)
        return out["logits"].astype(jnp.float32), variables["cache"]

    # ---- generate ------------------------------------------------------------------------------------------------
    def generate(self, input_ids=None, generation_config: GenerationConfig | None = None, prng_key=None,
                 trace: bool = True, params=None, logits_processor=None, **kwargs: Any):
        """Greedy search, sampling, beam search or beam sampling, per the generation config and the keyword
        settings (GenerationConfig fields); other keyword arguments are inputs: ``attention_mask``,
        ``token_type_ids``, for encoder-decoders ``encoder_outputs``, ``decoder_input_ids`` /
        ``decoder_attention_mask`` (a decoder prefix) and, beyond v4, ``position_ids`` / ``decoder_position_ids``
        (the encoder's and the decoder prompt's; default: each family's own numbering). ``prng_key`` seeds
        sampling (default PRNGKey(0)); ``trace=False`` runs the loop in Python (debugging); ``params`` replace the
        model's own; ``logits_processor``: v4 Flax processors ``fn(input_ids, scores, cur_len)``, jax-traceable."""
        if not self.can_generate():
            raise TypeError(f"{type(self).__name__} cannot generate: it has no left-to-right LM head; use a causal LM "
                            "(built with is_decoder=True) or a FlaxEncoderDecoderModel")
        settings = resolve_settings(self.generation_config, generation_config, kwargs)
        config = settings.config
        refuse_unsupported(config)
        if config.use_cache is False:
            warnings.warn("use_cache=False is ignored by the Flax generate(): its loop always decodes over a "
                          "preallocated cache (same tokens)", UserWarning, stacklevel=2)
        dec_config = self._gen_decoder_config
        prompt = self._gen_prompt(input_ids, settings)
        check_token_ids(settings, dec_config.vocab_size)

        # plan: lengths, processors, the static settings of the compiled program
        t0 = prompt.ids.shape[1]
        first, _ = self._gen_positions()
        table = dec_config.max_position_embeddings
        max_length = resolve_max_length(config, usable_positions=table - first, max_positions=table, prompt_len=t0,
                                        what="decoder prompt" if self._seq2seq else "prompt", stacklevel=4)
        resolve_lengths(settings, max_length, t0)
        eos = tuple(settings.eos_ids or ())
        pad = finished_row_pad(config, settings.eos_ids)
        nb = config.num_beams
        copies = max(nb, config.num_return_sequences if config.do_sample else 1)
        spec = SearchSpec(max_length=max_length, prompt_length=t0, eos=eos, pad=0 if pad is None else int(pad),
                          pad_finished=bool(eos), do_sample=bool(config.do_sample), num_beams=nb,
                          num_return_sequences=config.num_return_sequences,
                          length_penalty=float(config.length_penalty), early_stopping=config.early_stopping)
        # One row on CPU runs as two identical rows, the first returned: XLA's CPU backend lowers the one-row
        # (vector x matrix) products of a decoding step to a kernel ~3x slower than its two-row matrix products
        # (MiniLM bert2bert: 29 ms vs 9 ms a step), so the second row is nearly free.
        doubled = prompt.batch * copies == 1 and jax.default_backend() == "cpu"
        ignore = None  # repetition penalty: left padding is not part of the prompt
        if config.repetition_penalty != 1.0 and prompt.mask is not None:
            ignore = np.repeat(prompt.mask.argmax(axis=1).astype(np.int32), copies * (2 if doubled else 1))
        processors = build_processors(config, prompt_length=t0, eos_ids=settings.eos_ids,
                                      ignore=None if ignore is None else jnp.asarray(ignore),
                                      custom=logits_processor)
        program = self._generate_program(spec, processors, copies, config, bool(logits_processor), ignore is not None,
                                         trace, prompt)
        arrays = self._gen_arrays(prompt)
        if doubled:
            arrays = jax.tree_util.tree_map(lambda a: jnp.concatenate([a, a]), arrays)
        rng = jax.random.PRNGKey(0) if prng_key is None else prng_key
        out = program(self.params if params is None else params, arrays, rng)
        if doubled:
            out = out[:1]
        if nb > 1:
            return FlaxBeamSearchOutput(sequences=out[0], scores=out[1])
        return (FlaxSampleOutput if config.do_sample else FlaxGreedySearchOutput)(sequences=out)

    # ---- 2. prompt ------------------------------------------------------------------------------------------------
    def _gen_prompt(self, input_ids, settings) -> _Prompt:
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
        ids = _host_ids("input_ids", input_ids)
        _check_range("input_ids", ids, self.config.vocab_size, "vocab_size")
        mask = None if attention_mask is None else _mask_like("attention_mask", attention_mask, ids.shape)
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
            types = _host_ids("token_type_ids", token_types)
            if types.shape != ids.shape:
                raise ValueError(f"token_type_ids shape {types.shape} does not match input_ids {ids.shape}")
            _check_range("token_type_ids", types, self.config.type_vocab_size, "type_vocab_size")
        elif token_types is not None:
            raise ValueError(f"{type(self).__name__} takes no token_type_ids")
        return _Prompt(batch=ids.shape[0], ids=ids, mask=mask, positions=positions, token_types=types)

    def _seq2seq_prompt(self, input_ids, attention_mask, token_types, kwargs, config) -> _Prompt:
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
            states = jnp.asarray(states)
            if states.ndim != 3 or states.shape[-1] != enc_config.hidden_size:
                raise ValueError(f"encoder_outputs.last_hidden_state must be (batch, sequence, "
                                 f"{enc_config.hidden_size}), got shape {tuple(states.shape)}")
            batch, length = states.shape[:2]
            mask = np.ones((batch, length), np.int32) if attention_mask is None else \
                _mask_like("attention_mask", attention_mask, (batch, length))
            encoder = dict(attention_mask=mask)
        elif input_ids is not None:
            ids = _host_ids("input_ids", input_ids)
            _check_range("input_ids", ids, enc_config.vocab_size, "the encoder's vocab_size")
            batch, length = ids.shape
            mask = np.ones_like(ids) if attention_mask is None else _mask_like("attention_mask", attention_mask,
                                                                                ids.shape)
            types = None
            if token_types is not None:
                types = _host_ids("token_type_ids", token_types)
                if types.shape != ids.shape:
                    raise ValueError(f"token_type_ids shape {types.shape} does not match input_ids {ids.shape}")
                _check_range("token_type_ids", types, getattr(enc_config, "type_vocab_size", 1) or 1,
                             "the encoder's type_vocab_size")
            positions = None
            if encoder_positions is not None:
                positions = _host_ids("position_ids", encoder_positions)
                if positions.shape != ids.shape:
                    raise ValueError(f"position_ids shape {positions.shape} does not match input_ids {ids.shape}")
                _check_range("position_ids", positions, enc_config.max_position_embeddings,
                             "the encoder's max_position_embeddings")
            encoder = self._bucketed(ids, mask, types, positions)
        else:
            raise ValueError("an encoder-decoder needs encoder input: pass input_ids (or encoder_outputs)")
        start = decoder_start_id(config)
        dec = np.full((batch, 1), start, np.int32)
        dmask = None
        if decoder_ids is not None:
            given = _host_ids("decoder_input_ids", decoder_ids)
            if given.shape[0] != batch:
                raise ValueError(f"decoder_input_ids has {given.shape[0]} rows, the encoder input {batch}")
            _check_range("decoder_input_ids", given, self.config.decoder.vocab_size, "the decoder's vocab_size")
            gmask = None if decoder_mask is None else _mask_like("decoder_attention_mask", decoder_mask, given.shape)
            if bool((given[:, 0] != start).all()):
                given = np.concatenate([dec, given], axis=1)
                gmask = None if gmask is None else np.concatenate([np.ones((batch, 1), np.int32), gmask], axis=1)
            dec, dmask = given, (None if gmask is None or gmask.all() else gmask)
        first, pad_position = self._gen_positions()
        if decoder_positions is not None:
            positions = _host_ids("decoder_position_ids", decoder_positions)
            if positions.shape != dec.shape:
                raise ValueError(f"decoder_position_ids shape {positions.shape} does not match the decoder prompt "
                                 f"{dec.shape} (decoder_start_token_id first, then any decoder_input_ids)")
        elif dmask is None:
            positions = np.broadcast_to(np.arange(dec.shape[1], dtype=np.int32) + first, dec.shape).copy()
        else:
            positions = np.where(dmask == 0, pad_position, np.cumsum(dmask, axis=1) - 1 + first).astype(np.int32)
        return _Prompt(batch=batch, ids=dec, mask=dmask, positions=positions, encoder=encoder,
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

    # ---- 3-4. the compiled program -------------------------------------------------------------------------------
    def _gen_arrays(self, prompt: _Prompt) -> dict:
        arrays = dict(ids=prompt.ids, positions=prompt.positions)
        if prompt.mask is not None:
            arrays["mask"] = prompt.mask
        if prompt.token_types is not None:
            arrays["token_types"] = prompt.token_types
        if prompt.encoder is not None:
            arrays["encoder"] = prompt.encoder
        if prompt.encoder_states is not None:
            arrays["encoder_states"] = prompt.encoder_states
        return jax.tree_util.tree_map(jnp.asarray, arrays)

    def _generate_program(self, spec: SearchSpec, processors, copies: int, config, custom: bool, ignore: bool,
                          trace: bool, prompt: _Prompt):
        """The jitted generation for these static settings (shapes are jax's own cache key)."""
        keyed = ("repetition_penalty", "no_repeat_ngram_size", "bad_words_ids", "min_length", "min_new_tokens",
                 "forced_bos_token_id", "forced_eos_token_id", "suppress_tokens", "begin_suppress_tokens",
                 "temperature", "top_k", "top_p")
        key = (spec, copies, ignore, trace, prompt.encoder_states is not None,
               tuple(repr(getattr(config, k)) for k in keyed))
        programs = self.__dict__.setdefault("_generate_programs", {})
        if custom:  # user callables cannot be keyed safely: build (and compile) afresh
            return self._build_program(spec, processors, copies, trace)
        if key not in programs:
            programs[key] = self._build_program(spec, processors, copies, trace)
        return programs[key]

    def _build_program(self, spec: SearchSpec, processors, copies: int, trace: bool):
        seq2seq, model = self._seq2seq, self

        def step(params, dec, tokens):
            positions = dec["next_position"]
            logits, cache = model._decode_step(params, dec["cache"], tokens[:, None], positions[:, None], dec["mask"],
                                               dec.get("enc"), dec.get("enc_mask"),
                                               dec["types"][:, None] if "types" in dec else None, cross_cache="read")
            return logits[:, -1], dict(dec, cache=cache, next_position=positions + 1)

        def program(params, arrays, rng):
            model.__dict__["_generate_traces"] = model.__dict__.get("_generate_traces", 0) + 1  # at trace time only
            ids, positions = arrays["ids"], arrays["positions"]
            batch, t0 = ids.shape
            mask = jnp.ones((batch, spec.max_length), jnp.int32)
            if "mask" in arrays:
                mask = mask.at[:, :t0].set(arrays["mask"])
            dec = dict(mask=mask, next_position=positions[:, -1] + 1)
            enc = enc_mask = None
            if seq2seq:
                e = arrays["encoder"]
                enc_mask = e["attention_mask"]
                if "encoder_states" in arrays:
                    enc = model._project_states(params, arrays["encoder_states"])
                else:
                    enc = model._encode_states(params, e["input_ids"], enc_mask, e.get("token_type_ids"),
                                               e.get("position_ids"))
                dec.update(enc=enc, enc_mask=enc_mask)
            types = arrays.get("token_types")
            if types is not None:
                dec["types"] = types[:, -1]
            cache = model._empty_cache(batch, spec.max_length, None if enc is None else enc.shape[1])
            logits, cache = model._decode_step(params, cache, ids, positions, mask, enc, enc_mask, types,
                                               cross_cache="fill")
            dec["cache"] = cache
            logits = logits[:, -1]
            # Encoded and prefilled once per input; beams and samples then repeat the rows (as the PyTorch wing).
            dec, logits = repeat_rows(dec, copies), repeat_rows(logits, copies)
            if spec.num_beams > 1:
                return beam_search(spec, step, processors, params, ids, logits, dec, rng, trace)
            return greedy_or_sample(spec, step, processors, params, repeat_rows(ids, copies), logits, dec, rng,
                                    trace)

        return jax.jit(program) if trace else program
