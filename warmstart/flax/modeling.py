"""FlaxPreTrainedModel: v4's surface over a linen module, plus what its users asked for.

- ``__init__(config, input_shape=(1, 1), seed=0, dtype=jnp.float32, _do_init=True)``; ``.params`` is a plain dict
  whose setter names the missing keys; ``.module``, ``init_weights``, ``params_shape_tree``;
  ``to_bf16/to_fp16/to_fp32(params, mask=None)``. ``dtype`` is the compute dtype, params stay as stored.
- ``__call__`` checks its inputs in numpy first (ids in range, integer ids, lengths, mask shapes, dropout rng),
  with the offending value in the message, then runs one ``jax.jit``-compiled apply, cached by jax per input
  shape and flag (v4 re-traces eagerly on every call unless the user jits it). Under a caller's own jit or grad
  the inputs are tracers: the value checks are skipped, the shape checks still run.
- Heads take ``labels`` and return the PyTorch loss (``losses.py``).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax.traverse_util import flatten_dict, unflatten_dict

from .generation import FlaxGenerationMixin
from .loading import FlaxLoadingMixin

__all__ = ["FlaxPreTrainedModel"]


def _is_tracer(x) -> bool:
    return isinstance(x, jax.core.Tracer)


def check_ids(name: str, ids, upper: int, what: str) -> None:
    """Integer dtype and values in [0, upper), before any tracing (jnp.take would clamp silently)."""
    if ids is None:
        return
    dtype = np.dtype(ids.dtype)
    if not np.issubdtype(dtype, np.integer):
        raise TypeError(f"{name} must be an integer array, got dtype {dtype}")
    if _is_tracer(ids) or ids.size == 0:
        return
    values = np.asarray(ids)
    lo, hi = int(values.min()), int(values.max())
    if lo < 0 or hi >= upper:
        raise ValueError(f"{name} contains {lo if lo < 0 else hi}, outside [0, {upper}) ({what} = {upper})")


class FlaxPreTrainedModel(FlaxLoadingMixin, FlaxGenerationMixin):
    config_class = None
    module_class = None
    base_model_prefix = "bert"
    main_input_name = "input_ids"
    takes_token_types = True  # GPT-2's modules take none (v4)

    def __init__(self, config, input_shape=(1, 1), seed: int = 0, dtype=jnp.float32, _do_init: bool = True,
                 gradient_checkpointing: bool = False, **module_kwargs):
        if self.config_class is not None and not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}")
        self.config, self.dtype, self.input_shape = config, dtype, tuple(input_shape)
        self._module_kwargs = module_kwargs
        self._build(gradient_checkpointing)
        self.key = jax.random.PRNGKey(seed)
        self._is_initialized = _do_init
        self._shape_tree = jax.eval_shape(lambda k: self.init_weights(k, self.input_shape), self.key)
        self._params = self.init_weights(self.key, self.input_shape) if _do_init else None

    def _build(self, gradient_checkpointing: bool) -> None:
        self._module = self.module_class(config=self.config, dtype=self.dtype,
                                         gradient_checkpointing=gradient_checkpointing, **self._module_kwargs)
        # A new jit per module: jax caches traces per function, and a trace holds the module it was made with.
        self._apply = jax.jit(self._forward, static_argnames=("train", "output_attentions", "output_hidden_states"))

    def enable_gradient_checkpointing(self) -> None:
        """Recompute each layer's activations in the backward pass (``nn.remat``): less memory, more compute.
        Parameters and outputs are unchanged."""
        self._build(True)

    # ---- parameters ------------------------------------------------------------------------------------------
    @property
    def module(self):
        return self._module

    @property
    def params_shape_tree(self) -> dict:
        return self._shape_tree

    @property
    def required_params(self) -> set:
        return set(flatten_dict(self._shape_tree))

    @property
    def params(self) -> dict:
        if not self._is_initialized:
            raise ValueError("the model was built with _do_init=False, so it holds no params: pass params= to "
                             "each call, or build it with _do_init=True")
        return self._params

    @params.setter
    def params(self, params: dict) -> None:
        given = flatten_dict(dict(params))
        missing = sorted("/".join(k) for k in self.required_params - set(given))
        if missing:
            raise ValueError(f"the params tree lacks {len(missing)} required key(s): {missing[:10]}"
                             + (" ..." if len(missing) > 10 else ""))
        self._params = unflatten_dict(given)
        self._is_initialized = True

    def _dummy_inputs(self, input_shape):
        ids = jnp.zeros(input_shape, dtype="i4")
        inputs = dict(input_ids=ids, attention_mask=jnp.ones_like(ids),
                      position_ids=jnp.broadcast_to(jnp.arange(input_shape[-1]), input_shape))
        if self.takes_token_types:
            inputs["token_type_ids"] = jnp.zeros_like(ids)
        return inputs

    def init_weights(self, rng, input_shape, params: dict | None = None) -> dict:
        """Fresh parameters for ``input_shape``; with ``params``, only the keys it lacks are new (v4)."""
        params_rng, dropout_rng = jax.random.split(rng)
        inputs = self._dummy_inputs(tuple(input_shape))
        extra = {}
        if self.config.add_cross_attention:
            extra = dict(encoder_hidden_states=jnp.zeros(tuple(input_shape) + (self.config.hidden_size,)),
                         encoder_attention_mask=inputs["attention_mask"])
        fresh = self._module.init({"params": params_rng, "dropout": dropout_rng}, **inputs, **extra)["params"]
        if params is None:
            return fresh
        flat = flatten_dict(fresh)
        flat.update({k: v for k, v in flatten_dict(dict(params)).items() if k in flat})
        return unflatten_dict(flat)

    def _cast(self, params, dtype, mask):
        def cast(leaf, keep=True):
            return leaf.astype(dtype) if keep and jnp.issubdtype(leaf.dtype, jnp.floating) else leaf
        if mask is None:
            return jax.tree_util.tree_map(cast, params)
        return jax.tree_util.tree_map(cast, params, mask)

    def to_bf16(self, params, mask=None):
        """Floating leaves (where ``mask`` is True) cast to bfloat16; a new tree, the model's params unchanged."""
        return self._cast(params, jnp.bfloat16, mask)

    def to_fp16(self, params, mask=None):
        return self._cast(params, jnp.float16, mask)

    def to_fp32(self, params, mask=None):
        return self._cast(params, jnp.float32, mask)

    # ---- forward ---------------------------------------------------------------------------------------------
    def _check_backbone_inputs(self, input_ids, attention_mask, token_type_ids, position_ids, head_mask,
                               train, dropout_rng):
        c = self.config
        if input_ids is None or input_ids.ndim != 2:
            raise ValueError(f"input_ids must be 2-D (batch, sequence), got "
                             f"{None if input_ids is None else tuple(input_ids.shape)}")
        check_ids("input_ids", input_ids, c.vocab_size, "vocab_size")
        shape = tuple(input_ids.shape)
        for name, t in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids),
                        ("position_ids", position_ids)):
            if t is not None and tuple(t.shape) != shape:
                raise ValueError(f"{name} shape {tuple(t.shape)} does not match input_ids {shape}")
        if token_type_ids is not None:
            check_ids("token_type_ids", token_type_ids, c.type_vocab_size, "type_vocab_size")
        check_ids("position_ids", position_ids, c.max_position_embeddings, "max_position_embeddings")
        if position_ids is None and shape[1] + self._first_position() > c.max_position_embeddings:
            raise ValueError(f"sequence length {shape[1]} exceeds the position table: max_position_embeddings = "
                             f"{c.max_position_embeddings}" + (f" minus {self._first_position()} reserved"
                                                               if self._first_position() else "")
                             + "; truncate the input (e.g. tokenizer(..., truncation=True, max_length=...))")
        if head_mask is not None:
            want = (c.num_hidden_layers, c.num_attention_heads)
            if tuple(head_mask.shape) not in (want, want[1:]):
                raise ValueError(f"head_mask must be (num_heads,) or (num_layers, num_heads) = {want}, got "
                                 f"shape {tuple(head_mask.shape)}")
        if train and dropout_rng is None:
            raise ValueError("train=True applies dropout and needs dropout_rng (e.g. jax.random.PRNGKey(0))")

    def _first_position(self) -> int:
        return 0

    def _default_positions(self, input_ids):
        return jnp.broadcast_to(jnp.arange(input_ids.shape[-1]), input_ids.shape)

    def _backbone_inputs(self, input_ids, attention_mask, token_type_ids, position_ids, head_mask):
        """Defaults filled in (outside jit: they fix nothing about the compiled program but shapes)."""
        ids = jnp.asarray(input_ids)
        c = self.config
        if head_mask is not None:
            head_mask = jnp.asarray(head_mask, jnp.float32)  # float, not v4's int cast: soft masks work
            if head_mask.ndim == 1:
                head_mask = jnp.broadcast_to(head_mask, (c.num_hidden_layers, head_mask.shape[0]))
        inputs = dict(
            input_ids=ids,
            attention_mask=jnp.ones_like(ids) if attention_mask is None else jnp.asarray(attention_mask),
            position_ids=self._default_positions(ids) if position_ids is None else jnp.asarray(position_ids),
            head_mask=head_mask)
        if self.takes_token_types:
            inputs["token_type_ids"] = jnp.zeros_like(ids) if token_type_ids is None else jnp.asarray(token_type_ids)
        return inputs

    def _forward(self, params, inputs, labels, dropout_rng, train, output_attentions, output_hidden_states,
                 cache=None):
        rngs = {"dropout": dropout_rng} if train else {}
        flags = dict(deterministic=not train, output_attentions=output_attentions,
                     output_hidden_states=output_hidden_states, rngs=rngs)
        if cache is None:
            out = self._module.apply({"params": params}, **inputs, **flags)
        else:  # one decoding step: the cache comes back updated (v4's past_key_values)
            out, variables = self._module.apply({"params": params, "cache": cache}, **inputs, decode=True,
                                                mutable=["cache"], **flags)
            out = dict(out, past_key_values=variables["cache"])
        if labels is not None:
            out = dict(out, loss=self._loss(out, labels))
        return out

    def _loss(self, out, labels):
        raise NotImplementedError

    def _check_labels(self, labels: dict) -> None:
        """Value checks on the labels, before tracing; heads override."""

    # ---- decoding cache (v4) ---------------------------------------------------------------------------------
    def init_cache(self, batch_size: int, max_length: int) -> dict:
        """v4's empty decoding cache for ``batch_size`` rows of up to ``max_length`` tokens: pass it as
        ``past_key_values`` with the (batch, max_length) attention mask and the positions of the tokens fed."""
        if not self._is_causal():
            raise ValueError(f"{type(self).__name__} attends in both directions and keeps no cache; build it with "
                             "is_decoder=True")
        for name, n in (("batch_size", batch_size), ("max_length", max_length)):
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
                raise ValueError(f"{name} must be a positive int, got {n!r}")
        inputs = self._dummy_inputs((int(batch_size), int(max_length)))
        extra = {}
        if self.config.add_cross_attention:
            extra = dict(encoder_hidden_states=jnp.zeros((int(batch_size), 1, self.config.hidden_size)),
                         encoder_attention_mask=jnp.ones((int(batch_size), 1), "i4"))
        shapes = jax.eval_shape(lambda: self._module.init(jax.random.PRNGKey(0), **inputs, **extra))
        return jax.tree_util.tree_map(lambda x: jnp.zeros(x.shape, x.dtype), shapes["cache"])

    def _is_causal(self) -> bool:
        return bool(self.config.is_decoder)

    def _check_cache_inputs(self, input_ids, attention_mask, position_ids, past_key_values):
        if not self._is_causal():
            raise ValueError(f"past_key_values were passed but {type(self).__name__} keeps no cache (is_decoder=False)")
        if position_ids is None:
            raise ValueError("with past_key_values, pass position_ids: the positions of the tokens fed (the cache "
                             "does not know where padding puts them)")
        if attention_mask is None or np.ndim(attention_mask) != 2 or attention_mask.shape[0] != input_ids.shape[0]:
            raise ValueError("with past_key_values, pass attention_mask as (batch, max_length), the whole cache's "
                             f"padding mask; got {None if attention_mask is None else tuple(attention_mask.shape)}")
        lengths = {tuple(x.shape)[1] for x in jax.tree_util.tree_leaves(past_key_values) if np.ndim(x) == 4}
        if lengths != {attention_mask.shape[1]}:
            raise ValueError(f"attention_mask covers {attention_mask.shape[1]} positions but the cache holds "
                             f"{sorted(lengths)}")

    def _run(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             encoder_hidden_states=None, encoder_attention_mask=None, params=None, dropout_rng=None,
             train: bool = False, output_attentions=None, output_hidden_states=None, labels: dict | None = None,
             past_key_values=None):
        """The checked, jitted forward: a dict of arrays (``loss`` among them when labels are given)."""
        if past_key_values is not None:
            self._check_cache_inputs(input_ids, attention_mask, position_ids, past_key_values)
        self._check_backbone_inputs(input_ids, None if past_key_values is not None else attention_mask,
                                    token_type_ids, position_ids, head_mask, train, dropout_rng)
        inputs = self._backbone_inputs(input_ids, attention_mask, token_type_ids, position_ids, head_mask)
        if encoder_hidden_states is not None:
            if not self.config.add_cross_attention:
                raise ValueError("encoder_hidden_states were passed but this model has no cross-attention; build "
                                 "it with is_decoder=True, add_cross_attention=True")
            inputs["encoder_hidden_states"] = jnp.asarray(encoder_hidden_states)
            inputs["encoder_attention_mask"] = (
                jnp.ones(encoder_hidden_states.shape[:2], "i4") if encoder_attention_mask is None
                else jnp.asarray(encoder_attention_mask))
        labels = {k: v for k, v in (labels or {}).items() if v is not None} or None
        if labels is not None:
            self._check_labels(labels)
            labels = {k: jnp.asarray(v) for k, v in labels.items()}
        c = self.config
        return self._apply(
            self.params if params is None else params, inputs, labels, dropout_rng, train=bool(train),
            output_attentions=bool(c.output_attentions if output_attentions is None else output_attentions),
            output_hidden_states=bool(c.output_hidden_states if output_hidden_states is None
                                      else output_hidden_states), cache=past_key_values)

    def _finish(self, out, return_dict):
        return out if (self.config.return_dict if return_dict is None else return_dict) else out.to_tuple()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config.model_type}, dtype={jnp.dtype(self.dtype).name})"
