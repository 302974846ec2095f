"""GenerationMixin: what public models gain from the generation package — ``generate()`` and ``generation_config``.

Models hold no decoding code: ``model.generate(...)`` forwards to ``warmstart.generation.generate`` (imported on
first use, so models do not pay for the searches at import time).

``model.generation_config`` follows v4: unless it was assigned or edited, it is derived from ``model.config`` on every
access, so the classic recipe ``model.config.num_beams = 4`` (or ``decoder_start_token_id``, ``max_length``,
``no_repeat_ngram_size``...) takes effect; a loaded generation_config.json that was itself made from a model config
(``"_from_model_config": true``) keeps its values and takes later model.config changes on top. Assigning a
GenerationConfig, or editing the returned one, makes it the explicit configuration from then on.
"""
from __future__ import annotations

import inspect
from typing import Any

from ..config.generation import GenerationConfig
from ..families import is_causal

__all__ = ["GenerationMixin"]


class GenerationMixin:
    def can_generate(self) -> bool:
        """An encoder-decoder, or a causal LM: a model with a vocabulary head and a left-to-right stack, or a
        causal-LM head class (its forward takes ``past_key_values``) built with is_decoder=False, which v4 lets
        generate bidirectionally."""
        config = getattr(self, "config", None)
        if config is None:
            return False
        if getattr(config, "is_encoder_decoder", False):
            return True
        if self.get_output_embeddings() is None:
            return False
        return is_causal(config) or "past_key_values" in inspect.signature(type(self).forward).parameters

    @property
    def generation_config(self):
        current = self.__dict__.get("_generation_config")
        if not self.can_generate():
            return current
        if current is None or (current._from_model_config and not current._edited()):
            fresh = GenerationConfig.from_model_config(self.config)
            base = current._file_base if current is not None else None
            if base:
                # Loaded from a file that was itself made from a model config: keep the file's values, let fields
                # set on model.config since then win.
                fresh = GenerationConfig(**{**base, **{k: getattr(fresh, k) for k in fresh._explicit}},
                                         _from_model_config=True)
                object.__setattr__(fresh, "_file_base", base)
            if current is None or fresh != current:
                self.__dict__["_generation_config"] = current = fresh
        return current

    @generation_config.setter
    def generation_config(self, value) -> None:
        if value is not None and not isinstance(value, GenerationConfig):
            raise TypeError(f"generation_config must be a GenerationConfig, got {type(value).__name__}")
        self.__dict__["_generation_config"] = value

    def generate(self, inputs=None, generation_config=None, logits_processor=None, stopping_criteria=None,
                 prefix_allowed_tokens_fn=None, synced_gpus=None, assistant_model=None, streamer=None,
                 negative_prompt_ids=None, negative_prompt_attention_mask=None, **kwargs: Any):
        """Generate token ids: greedy, sampling, beam search, beam sampling or diverse beam search.

        ``assistant_model=`` (a small model of the same vocabulary) or ``prompt_lookup_num_tokens=`` drafts tokens
        that the model checks several at a time (assisted decoding, batch size 1; generation/assisted.py).

        Settings (GenerationConfig fields) may be passed as keyword arguments; other keyword arguments are model
        inputs (attention_mask, token_type_ids; for encoder-decoders decoder_input_ids / decoder_attention_mask and
        encoder arguments). Returns a (rows, length) tensor, or with ``return_dict_in_generate=True`` an output
        object with ``sequences``, ``scores``, ``sequences_scores``, ``beam_indices``... (transformers' names).
        ``tokenizer=`` is needed for ``stop_strings``; ``streamer=`` streams text (also for beam search).
        """
        from .generate import generate

        return generate(self, inputs, generation_config, logits_processor, stopping_criteria,
                        prefix_allowed_tokens_fn, synced_gpus, assistant_model, streamer, negative_prompt_ids,
                        negative_prompt_attention_mask, **kwargs)
