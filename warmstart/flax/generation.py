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

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..config.generation import GenerationConfig
from ..generation.host import ENCODER_BUCKET, HostPrompt, HostPromptMixin
from ..generation.mixin import GenerationMixin
from .outputs import _flax_output
from .processors import build_processors
from .search import SearchSpec, beam_search, greedy_or_sample, repeat_rows

__all__ = ["FlaxGenerationMixin", "FlaxGreedySearchOutput", "FlaxSampleOutput", "FlaxBeamSearchOutput",
           "ENCODER_BUCKET"]

FlaxGreedySearchOutput = _flax_output("FlaxGreedySearchOutput", "sequences")
FlaxSampleOutput = _flax_output("FlaxSampleOutput", "sequences")
FlaxBeamSearchOutput = _flax_output("FlaxBeamSearchOutput", "sequences", "scores")


class FlaxGenerationMixin(HostPromptMixin, GenerationMixin):
    """``generate`` and ``generation_config`` (the latter shared with the PyTorch wing's mixin)."""

    _who = "the Flax generate()"

    def _refuse_traced(self, name: str, x) -> None:
        if isinstance(x, jax.core.Tracer):
            raise TypeError(f"generate() takes concrete arrays, but {name} is traced: call generate outside jax.jit "
                            "(it compiles itself)")

    # ---- the model protocol, for causal LMs (FlaxEncoderDecoderModel has its own) ---------------------------------

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
        settings, prompt, spec, copies = self._gen_plan(input_ids, generation_config, kwargs)
        config, t0, nb = settings.config, spec.prompt_length, spec.num_beams
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
        program = self._generate_program(spec, processors, copies, config, bool(logits_processor),
                                         None if ignore is None else tuple(ignore.tolist()), trace, prompt)
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

    # ---- the compiled program -------------------------------------------------------------------------------
    def _gen_arrays(self, prompt: HostPrompt) -> dict:
        return jax.tree_util.tree_map(jnp.asarray, prompt.arrays())

    def _generate_program(self, spec: SearchSpec, processors, copies: int, config, custom: bool, ignore,
                          trace: bool, prompt: HostPrompt):
        """The jitted generation for these static settings (shapes are jax's own cache key). ``ignore`` (the
        repetition penalty's left-padding offsets, baked into its processor) is part of the key."""
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
