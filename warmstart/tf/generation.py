"""``generate()`` for the TF models: the whole decoding loop as one TF program over a cache of the final length.

The steps are the other wings': settings (generation/settings.py, shared and validated before anything runs) ->
prompt (generation/host.py, the Flax wing's host-side checks and rules) -> plan (lengths, processors) -> search
(search.py: ``tf.while_loop``s) -> v4's outputs. The model is reached through three hooks: ``_gen_encode`` (the
encoder's states as the decoder reads them), ``_gen_empty_cache`` (zero key/value buffers of ``max_length``
positions per layer) and ``_gen_decode`` (one decoder call that writes its keys and values into those buffers at
a given slot, stack.py's ``cache_start``). The prefill also computes every layer's cross-attention keys and values,
which the loop then carries unchanged: once per generation, where v4 re-projected the encoder states at each step.

Every array keeps one shape for the whole loop, so ``jit_compile=True`` compiles the loop with XLA once per input
shape and setting (kept in ``model._generate_programs``) and eager mode runs the same program op by op: both give
the same tokens. Beyond v4: XLA returns the scores too, sequences are cut to the longest one in both modes,
repetition_penalty, bad_words_ids, min_new_tokens, beam sampling and precomputed ``encoder_outputs``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..config.generation import GenerationConfig
from ..generation.host import HostPrompt, HostPromptMixin
from ..generation.mixin import GenerationMixin
from ..generation.plan import SearchSpec
from .backend import tf
from .outputs import _tf_output
from .processors import build_processors
from .search import beam_search, greedy_or_sample, repeat_rows

__all__ = ["TFGenerationMixin", "TFGreedySearchDecoderOnlyOutput", "TFGreedySearchEncoderDecoderOutput",
           "TFSampleDecoderOnlyOutput", "TFSampleEncoderDecoderOutput", "TFBeamSearchDecoderOnlyOutput",
           "TFBeamSearchEncoderDecoderOutput", "TFBeamSampleDecoderOnlyOutput", "TFBeamSampleEncoderDecoderOutput"]

_ONLY = ("sequences", "scores", "attentions", "hidden_states")
_ENC_DEC = ("sequences", "scores", "encoder_attentions", "encoder_hidden_states", "decoder_attentions",
            "cross_attentions", "decoder_hidden_states")
_BEAM_ONLY = ("sequences", "sequences_scores", "scores", "beam_indices", "attentions", "hidden_states")
_BEAM_ENC_DEC = ("sequences", "sequences_scores", "scores", "beam_indices", "encoder_attentions",
                 "encoder_hidden_states", "decoder_attentions", "cross_attentions", "decoder_hidden_states")
TFGreedySearchDecoderOnlyOutput = _tf_output("TFGreedySearchDecoderOnlyOutput", *_ONLY)
TFGreedySearchEncoderDecoderOutput = _tf_output("TFGreedySearchEncoderDecoderOutput", *_ENC_DEC)
TFSampleDecoderOnlyOutput = _tf_output("TFSampleDecoderOnlyOutput", *_ONLY)
TFSampleEncoderDecoderOutput = _tf_output("TFSampleEncoderDecoderOutput", *_ENC_DEC)
TFBeamSearchDecoderOnlyOutput = _tf_output("TFBeamSearchDecoderOnlyOutput", *_BEAM_ONLY)
TFBeamSearchEncoderDecoderOutput = _tf_output("TFBeamSearchEncoderDecoderOutput", *_BEAM_ENC_DEC)
TFBeamSampleDecoderOnlyOutput = _tf_output("TFBeamSampleDecoderOnlyOutput", *_BEAM_ONLY)
TFBeamSampleEncoderDecoderOutput = _tf_output("TFBeamSampleEncoderDecoderOutput", *_BEAM_ENC_DEC)
for _cls in (TFGreedySearchDecoderOnlyOutput, TFGreedySearchEncoderDecoderOutput, TFSampleDecoderOnlyOutput,
             TFSampleEncoderDecoderOutput, TFBeamSearchDecoderOnlyOutput, TFBeamSearchEncoderDecoderOutput,
             TFBeamSampleDecoderOnlyOutput, TFBeamSampleEncoderDecoderOutput):
    _cls.__module__ = __name__

# settings the processors bake into a program: part of its cache key
_KEYED = ("repetition_penalty", "no_repeat_ngram_size", "bad_words_ids", "min_length", "min_new_tokens",
          "forced_bos_token_id", "forced_eos_token_id", "suppress_tokens", "begin_suppress_tokens", "temperature",
          "top_k", "top_p")


def _seed(seed) -> tf.Tensor:
    """v4's ``seed``: two ints for the stateless samplers; None draws them from TF's global generator (so
    tf.random.set_seed makes a run repeatable)."""
    if seed is None:
        return tf.random.uniform([2], maxval=2 ** 31 - 1, dtype=tf.int32)
    values = np.asarray(seed.numpy() if hasattr(seed, "numpy") else seed)
    if values.shape != (2,) or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"seed must be two integers (v4's stateless seed, e.g. seed=[1, 2]), got {seed!r}")
    return tf.constant(values.astype(np.int64) % (2 ** 31 - 1), tf.int32)


class TFGenerationMixin(HostPromptMixin, GenerationMixin):
    """``generate`` and ``generation_config`` (the latter shared with the other wings' mixins)."""

    _who = "the TensorFlow generate()"

    def _refuse_traced(self, name: str, x) -> None:
        if tf.is_tensor(x) and not hasattr(x, "numpy"):
            raise TypeError(f"generate() takes concrete inputs, but {name} is a symbolic tensor: call generate "
                            "eagerly with jit_compile=True, which compiles the whole loop with XLA itself, instead "
                            "of wrapping it in tf.function")

    # ---- the model protocol, for causal LMs (TFEncoderDecoderModel has its own) ---------------------------------

    def _first_position(self) -> int:
        main = getattr(self, self.base_model_prefix)
        return main.embeddings.first_free_position() if hasattr(main, "embeddings") else 0

    def _gen_positions(self) -> tuple[int, int]:
        """(first position id, position id under padding) of the decoder."""
        first = self._first_position()
        return first, (self._gen_decoder_config.pad_token_id if first else 0)

    def _gen_empty_cache(self, batch: int, length: int) -> tuple:
        c = self.config
        heads = c.num_attention_heads
        zeros = tf.zeros([batch, heads, length, c.hidden_size // heads], tf.float32)
        return tuple((zeros, zeros) for _ in range(c.num_hidden_layers))

    def _gen_decode(self, ids, positions, mask, cache, start, enc=None, enc_mask=None, types=None):
        """(B, T) tokens at ``positions``, written into the (B, H, L, D) buffers at slot ``start``; ``mask`` (B, L)
        covers the buffers. Returns ((B, T, V) logits, per layer (key, value[, cross key, cross value]))."""
        main = getattr(self, self.base_model_prefix)
        inputs = dict(input_ids=ids, position_ids=positions, token_type_ids=types, attention_mask=mask,
                      past_key_values=cache, cache_start=start, encoder_hidden_states=enc,
                      encoder_attention_mask=enc_mask, head_mask=None, inputs_embeds=None, use_cache=True,
                      output_attentions=False, output_hidden_states=False)
        out = main(inputs, training=False)
        return self._lm_logits(out["last_hidden_state"]), out["past_key_values"]

    # ---- generate ------------------------------------------------------------------------------------------------
    def generate(self, inputs=None, generation_config: GenerationConfig | None = None, logits_processor=None,
                 seed=None, **kwargs: Any):
        """Greedy search, sampling, beam search or beam sampling, per the generation config and the keyword
        settings (GenerationConfig fields); other keyword arguments are inputs: ``attention_mask``,
        ``token_type_ids``, for encoder-decoders ``encoder_outputs``, ``decoder_input_ids`` /
        ``decoder_attention_mask`` (a decoder prefix) and, beyond v4, ``position_ids`` / ``decoder_position_ids``.
        ``seed``: two ints for sampling (v4's stateless seed); ``jit_compile=True`` runs the loop compiled by XLA
        (compiled once per shape and setting); ``logits_processor``: v4 TF processors ``fn(input_ids, scores,
        cur_len)`` over the (rows, max_length) id buffer, which must be XLA-traceable under jit_compile.

        Returns the (rows, length) int32 sequences, or with ``return_dict_in_generate=True`` v4's output classes
        (``scores`` per generated token with ``output_scores=True``; beams add ``sequences_scores`` and
        ``beam_indices``)."""
        jit_compile = bool(kwargs.pop("jit_compile", False))
        if not self.can_generate():
            raise TypeError(f"{type(self).__name__} cannot generate: it has no left-to-right LM head; use a causal LM "
                            "(built with is_decoder=True) or a TFEncoderDecoderModel")
        if not tf.executing_eagerly():
            raise RuntimeError("generate() runs eagerly and compiles its own loop: call it outside tf.function and "
                               "pass jit_compile=True for XLA")
        settings, prompt, spec, copies = self._gen_plan(inputs, generation_config, kwargs)
        config = settings.config
        spec = spec._replace(output_scores=bool(config.return_dict_in_generate and config.output_scores))  # v4 TF
        arrays = self._gen_arrays(prompt)
        if config.repetition_penalty != 1.0 and prompt.mask is not None:  # left padding is not part of the prompt
            arrays["ignore"] = tf.constant(np.repeat(prompt.mask.argmax(axis=1).astype(np.int32), copies))
        # RoBERTa numbers its own positions when none are given, and a pad token it generates then sits at the
        # padding index (the PyTorch wing lets the model do so; its positions are explicit only after padding).
        pad_rule = self._gen_positions()[0] > 0 and prompt.mask is None
        program = self._generate_program(spec, config, settings.eos_ids, copies, logits_processor, jit_compile,
                                         sorted(arrays), pad_rule)
        out = program(arrays, _seed(seed))
        return self._gen_output(out, spec, config)

    # ---- arrays, program, output -----------------------------------------------------------------------------------
    def _gen_arrays(self, prompt: HostPrompt) -> dict:
        return tf.nest.map_structure(tf.constant, prompt.arrays())

    def _generate_program(self, spec: SearchSpec, config, eos_ids, copies: int, custom, jit_compile: bool,
                          names: list[str], pad_rule: bool):
        """The program for these static settings: eager, or XLA-compiled and kept (TF retraces per shape)."""
        if not jit_compile:
            return self._build_program(spec, config, eos_ids, copies, custom, pad_rule)
        # autograph=False: the loops are tf.while_loop / tf.cond already, and autograph's rewriting of every
        # Python function reached (the whole model) took most of the tracing time.
        if custom:  # user callables cannot be keyed safely: compile afresh
            return tf.function(self._build_program(spec, config, eos_ids, copies, custom, pad_rule),
                               jit_compile=True, autograph=False)
        key = (spec, copies, tuple(names), pad_rule, tuple(repr(getattr(config, k)) for k in _KEYED))
        programs = self.__dict__.setdefault("_generate_programs", {})
        if key not in programs:
            programs[key] = tf.function(self._build_program(spec, config, eos_ids, copies, None, pad_rule),
                                        jit_compile=True, autograph=False)
        return programs[key]

    def _build_program(self, spec: SearchSpec, config, eos_ids, copies: int, custom, pad_rule: bool):
        model, seq2seq = self, self._seq2seq
        pad_id = self._gen_decoder_config.pad_token_id

        def step(dec, tokens):
            cross = dec.get("cross")
            cache = dec["cache"] if cross is None else tuple(s + c for s, c in zip(dec["cache"], cross["kv"]))
            types = dec["types"][:, None] if "types" in dec else None
            positions = dec["next_position"]
            if pad_rule:
                positions = tf.where(tokens == pad_id, tf.constant(pad_id, tf.int32), positions)
            logits, present = model._gen_decode(
                tokens[:, None], positions[:, None], dec["mask"], cache, dec["slot"],
                None if cross is None else cross["enc"], None if cross is None else cross["enc_mask"], types)
            new = dict(dec, cache=tuple(p[:2] for p in present), next_position=dec["next_position"] + 1,
                       slot=dec["slot"] + 1)
            return logits[:, -1], new

        def program(arrays, seed):
            model.__dict__["_generate_traces"] = model.__dict__.get("_generate_traces", 0) + 1  # counts traces
            ids, positions = arrays["ids"], arrays["positions"]
            batch, t0 = ids.shape
            mask = tf.ones([batch, spec.max_length], tf.int32)
            if "mask" in arrays:
                mask = tf.concat([arrays["mask"], mask[:, t0:]], axis=1)
            enc = enc_mask = None
            if seq2seq:
                e = arrays["encoder"]
                enc_mask = e["attention_mask"]
                if "encoder_states" in arrays:
                    enc = model._project_states(arrays["encoder_states"])
                else:
                    enc = model._gen_encode(e)
            types = arrays.get("token_types")
            cache = model._gen_empty_cache(batch, spec.max_length)
            logits, present = model._gen_decode(ids, positions, mask, cache, 0, enc, enc_mask, types)
            dec = dict(cache=tuple(p[:2] for p in present), mask=mask, next_position=positions[:, -1] + 1,
                       slot=tf.constant(t0, tf.int32))
            if enc is not None:
                dec["cross"] = dict(kv=tuple(p[2:] for p in present), enc=enc, enc_mask=enc_mask)
            if types is not None:
                dec["types"] = types[:, -1]
            processors = build_processors(config, prompt_length=t0, eos_ids=eos_ids, ignore=arrays.get("ignore"),
                                          custom=custom)
            # Encoded and prefilled once per input; beams and samples then repeat the rows (as the PyTorch wing).
            dec, logits = repeat_rows(dec, copies), repeat_rows(logits[:, -1], copies)
            if spec.num_beams > 1:
                return beam_search(spec, step, processors, ids, logits, dec, seed)
            return greedy_or_sample(spec, step, processors, repeat_rows(ids, copies), logits, dec, seed)

        return program

    def _gen_output(self, out: dict, spec: SearchSpec, config):
        length = int(out["length"])
        sequences = out["sequences"][:, :length]
        if not config.return_dict_in_generate:
            return sequences
        scores = None
        if spec.output_scores:
            steps = int(out.get("cur", length)) - spec.prompt_length  # beams record a row per step run
            scores = tuple(out["scores"][i] for i in range(steps))
        seq2seq = self._seq2seq
        if spec.num_beams > 1:
            cls = ((TFBeamSampleEncoderDecoderOutput if seq2seq else TFBeamSampleDecoderOnlyOutput) if spec.do_sample
                   else (TFBeamSearchEncoderDecoderOutput if seq2seq else TFBeamSearchDecoderOnlyOutput))
            return cls(sequences=sequences, scores=scores,
                       sequences_scores=out["sequences_scores"] if spec.output_scores else None,
                       beam_indices=out["beam_indices"][:, :length - spec.prompt_length])
        cls = ((TFSampleEncoderDecoderOutput if seq2seq else TFSampleDecoderOnlyOutput) if spec.do_sample
               else (TFGreedySearchEncoderDecoderOutput if seq2seq else TFGreedySearchDecoderOnlyOutput))
        return cls(sequences=sequences, scores=scores)
