"""TFPreTrainedModel: v4's TF surface on a Keras 3 model.

- v4's calling convention: ``model(inputs)`` with a dict (a tokenizer's output included), a list / tuple of
  tensors in ``call``'s argument order, or keywords; numpy arrays, python lists and tf tensors; eager, inside
  ``tf.function`` and with ``jit_compile=True``.
- Inputs are checked before the stack runs, with the PyTorch wing's messages: in eager mode on their values
  (ids inside the vocabulary, integer ids, lengths within the position table, mask and token-type shapes); inside
  a ``tf.function`` the shapes that are known when tracing are checked then and the values by ``tf.debugging``
  assertions at run time; XLA drops assertions, so under ``jit_compile`` only the traced checks remain.
- ``compile(optimizer)`` with no loss trains on the model's own loss, ``labels`` inside the input dict
  (``fit(dict_or_dataset)``), or as the ``y`` of ``fit(x, y)``, as v4 documented.
- Weights carry v4's names (``layers.named_weights``), which ``loading.py`` reads and writes as ``tf_model.h5``.
"""
from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Mapping

import numpy as np

from .backend import keras, tf
from .generation import TFGenerationMixin
from .layers import named_weights
from .loading import TFLoadingMixin

__all__ = ["TFPreTrainedModel", "unpack_inputs", "v4_model_name"]


def v4_model_name(cls_name: str) -> str:
    """Keras 2's automatic model name, which v4's files carry as their first name component:
    TFBertForMaskedLM -> tf_bert_for_masked_lm."""
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", cls_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()


def _is_tensorish(x) -> bool:
    return x is None or hasattr(x, "shape") and hasattr(x, "dtype")


def unpack_inputs(call):
    """v4's first-argument forms -> keywords of ``call``: a dict of named inputs, a list/tuple of tensors in the
    signature's order, or the main input itself. Unknown names and names given twice are errors naming them."""
    params = inspect.signature(call).parameters
    names = [n for n, p in params.items() if n != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    open_ended = any(p.kind == p.VAR_KEYWORD for p in params.values())  # call(..., **kwargs) takes more by name

    @functools.wraps(call)
    def wrapper(self, *args, **kwargs):
        if args:
            first, rest = args[0], args[1:]
            if isinstance(first, Mapping) or (hasattr(first, "keys") and hasattr(first, "__getitem__")
                                              and not _is_tensorish(first)):
                if rest:
                    raise TypeError(f"{type(self).__name__} got a dict of inputs and {len(rest)} more positional "
                                    f"argument(s); pass the rest inside the dict or as keywords")
                given = dict(first.items())
            elif isinstance(first, (list, tuple)) and first and all(_is_tensorish(x) for x in first) \
                    and not all(isinstance(x, np.ndarray) and x.ndim == 0 for x in first):
                if rest:
                    raise TypeError(f"{type(self).__name__} got a list of inputs and more positional arguments")
                if len(first) > len(names):
                    raise TypeError(f"{type(self).__name__} takes at most {len(names)} inputs in a list "
                                    f"({', '.join(names)}), got {len(first)}")
                given = dict(zip(names, first))
            else:
                if len(args) > len(names):
                    raise TypeError(f"{type(self).__name__}.call takes at most {len(names)} positional arguments, "
                                    f"got {len(args)}")
                given = dict(zip(names, args))
            unknown = sorted(k for k in given if k not in names)
            if unknown and not open_ended:
                raise TypeError(f"{type(self).__name__} got unknown input(s) {unknown}; it takes {names}")
            twice = sorted(k for k in given if k in kwargs and kwargs[k] is not None)
            if twice:
                raise TypeError(f"{type(self).__name__} got {twice} both in the inputs and as keywords")
            kwargs = {**given, **{k: v for k, v in kwargs.items() if v is not None or k not in given}}
        return call(self, **kwargs)

    return wrapper


# ---- input checks ----------------------------------------------------------------------------------------------
def _tensor(name: str, x):
    if x is None or isinstance(x, (tf.Tensor, tf.Variable)) or tf.is_tensor(x):
        return x
    try:
        return tf.convert_to_tensor(np.asarray(x))
    except Exception as e:  # ragged python lists, objects
        raise TypeError(f"{name} must be an array or tensor, got {type(x).__name__} that TensorFlow cannot read "
                        f"({e}); pad the batch to one length") from e


def _eager(x) -> bool:
    return tf.executing_eagerly() and not isinstance(x, tf.Variable) and hasattr(x, "numpy")


def check_ids(name: str, ids, upper: int, what: str):
    """Integer dtype and values in [0, upper) (tf.gather would fail late or, on some devices, return zeros);
    returns the ids as int32."""
    if ids is None:
        return None
    if not ids.dtype.is_integer:
        raise TypeError(f"{name} must be an integer tensor (int32 or int64), got dtype {ids.dtype.name}")
    if _eager(ids):
        values = ids.numpy()
        if values.size:
            lo, hi = int(values.min()), int(values.max())
            if lo < 0 or hi >= upper:
                raise ValueError(f"{name} contains {lo if lo < 0 else hi}, outside [0, {upper}) ({what} = {upper})")
        return tf.cast(ids, tf.int32)
    message = f"{name} contains ids outside [0, {upper}) ({what} = {upper})"
    ids = tf.cast(ids, tf.int32)
    with tf.control_dependencies([tf.debugging.assert_non_negative(ids, message=message),
                                  tf.debugging.assert_less(ids, tf.constant(upper, tf.int32), message=message)]):
        return tf.identity(ids)


def _static(shape) -> tuple:
    return tuple(shape.as_list()) if hasattr(shape, "as_list") else tuple(shape)


def _check_shape(name: str, got, want: tuple, hint: str = "") -> None:
    """Dimensions known on both sides must agree (None = unknown while tracing)."""
    got = _static(got)
    if len(got) != len(want) or any(g is not None and w is not None and g != w for g, w in zip(got, want)):
        raise ValueError(f"{name} shape {got} does not match {want}{hint}")


class _Flags(dict):
    pass


class TFPreTrainedModel(keras.Model, TFLoadingMixin, TFGenerationMixin):
    config_class = None
    base_model_prefix = "bert"
    main_input_name = "input_ids"
    takes_token_types = True  # GPT-2's models take no token types of their own (v4)
    _is_causal = False

    def __init__(self, config, *inputs, **kwargs):
        if self.config_class is not None and not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}")
        super().__init__(name=kwargs.pop("name", v4_model_name(type(self).__name__)), **kwargs)
        # v4 takes a BatchEncoding (a UserDict, which Keras' tree sees as one leaf) and python lists as the first
        # positional input; unpack_inputs converts them, so Keras' "only tensors positionally" check must not.
        self._allow_non_tensor_positional_args = True
        object.__setattr__(self, "_v4_children", [])
        object.__setattr__(self, "_v4_params", [])
        self.config = config
        self.generation_config = None

    # The two recording methods of layers.Layer, for the model's own children (a Model is not our Layer).
    def sub(self, name: str, layer, attr: str | None = None):
        setattr(self, attr or name, layer)
        self._v4_children.append((name, layer))
        return layer

    def _finish_init(self) -> None:
        self.built = True

    def named_weights(self) -> dict:
        """v4 name (relative to the model, no ``:0``) -> variable, in creation order."""
        return dict(named_weights(self))

    @property
    def dummy_inputs(self) -> dict:
        ids = tf.constant([[7, 6, 0, 0, 1], [1, 2, 3, 0, 0], [0, 0, 0, 4, 5]], tf.int32) % self.config.vocab_size
        return {"input_ids": ids}

    def get_input_embeddings(self):
        return getattr(self, self.base_model_prefix).embeddings.word_embeddings

    # ---- the inputs every model shares ----------------------------------------------------------------------
    def _prepare(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                 head_mask=None, inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None,
                 past_key_values=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                 is_decoder=None) -> dict:
        """Check and normalise the backbone's inputs -> the dict the main layer takes."""
        c = self.config
        input_ids, inputs_embeds = _tensor("input_ids", input_ids), _tensor("inputs_embeds", inputs_embeds)
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        main = getattr(self, self.base_model_prefix)
        words = main.embeddings.word_embeddings if hasattr(main, "embeddings") else main.wte
        if input_ids is not None:
            if input_ids.shape.rank != 2:
                raise ValueError(f"input_ids must be 2-D (batch, sequence), got shape {_static(input_ids.shape)}")
            input_ids = check_ids("input_ids", input_ids, words.rows, "vocab_size")
            batch, length = _static(input_ids.shape)
        else:
            if inputs_embeds.shape.rank != 3 or inputs_embeds.shape[-1] != c.hidden_size:
                raise ValueError(f"inputs_embeds must be (batch, sequence, {c.hidden_size}), got shape "
                                 f"{_static(inputs_embeds.shape)}")
            if not inputs_embeds.dtype.is_floating:
                raise TypeError(f"inputs_embeds must be floating point, got dtype {inputs_embeds.dtype.name}")
            inputs_embeds = tf.cast(inputs_embeds, tf.float32)
            batch, length = _static(inputs_embeds.shape)[:2]
        is_decoder = c.is_decoder if is_decoder is None else is_decoder
        use_cache = bool((c.use_cache if use_cache is None else use_cache) and is_decoder)
        past, past_len = self._check_past(past_key_values, batch)
        out = _Flags(input_ids=input_ids, inputs_embeds=inputs_embeds, past_key_values=past, use_cache=use_cache,
                     output_attentions=bool(c.output_attentions if output_attentions is None else output_attentions),
                     output_hidden_states=bool(c.output_hidden_states if output_hidden_states is None
                                               else output_hidden_states))
        out["position_ids"] = self._check_positions(position_ids, batch, length, past_len, main)
        out["token_type_ids"] = self._check_token_types(token_type_ids, batch, length, main)
        out["attention_mask"] = self._check_mask(attention_mask, batch, length, past_len)
        out["head_mask"] = self._check_head_mask(head_mask)
        out.update(self._check_encoder(encoder_hidden_states, encoder_attention_mask, batch))
        return out

    def _check_past(self, past, batch):
        if past is None:
            return None, 0
        if not isinstance(past, (list, tuple)) or len(past) != self.config.num_hidden_layers:
            raise ValueError(f"past_key_values must hold one entry per layer ({self.config.num_hidden_layers}), "
                             f"got {type(past).__name__} of length {len(past) if hasattr(past, '__len__') else '?'}")
        past = tuple(tuple(_tensor("past_key_values", t) for t in layer) if isinstance(layer, (list, tuple))
                     else _tensor("past_key_values", layer) for layer in past)
        first = past[0][0]
        return past, (first.shape[-2] if first.shape[-2] is not None else tf.shape(first)[-2])

    def _check_positions(self, position_ids, batch, length, past_len, main):
        position_ids = _tensor("position_ids", position_ids)
        table = self._position_rows(main)
        if position_ids is not None:
            _check_shape("position_ids", position_ids.shape, (None, length), f" (it must have the shape of "
                         f"input_ids {(batch, length)})")
            if position_ids.shape[0] not in (None, 1, batch):
                raise ValueError(f"position_ids must have the shape of input_ids {(batch, length)}, got "
                                 f"{_static(position_ids.shape)}")
            return check_ids("position_ids", position_ids, table, "max_position_embeddings")
        free = main.embeddings.first_free_position() if hasattr(main, "embeddings") else 0
        if isinstance(past_len, int) and length is not None and past_len + length + free > table:
            raise ValueError(
                f"sequence length {past_len + length} (past {past_len} + new {length}) exceeds the position table: "
                f"max_position_embeddings = {table}" + (f" minus {free} reserved" if free else "")
                + "; truncate the input (e.g. tokenizer(..., truncation=True, max_length=...))")
        return None

    def _position_rows(self, main) -> int:
        return main.embeddings.position_embeddings.rows if hasattr(main, "embeddings") else main.wpe.rows

    def _check_token_types(self, token_type_ids, batch, length, main):
        token_type_ids = _tensor("token_type_ids", token_type_ids)
        if token_type_ids is None:
            return None
        _check_shape("token_type_ids", token_type_ids.shape, (batch, length),
                     f" (it must have the shape of input_ids {(batch, length)})")
        if hasattr(main, "embeddings"):
            return check_ids("token_type_ids", token_type_ids, main.embeddings.token_type_embeddings.rows,
                             "type_vocab_size")
        return check_ids("token_type_ids", token_type_ids, main.wte.rows, "vocab_size")  # GPT-2: its word table

    def _check_mask(self, mask, batch, length, past_len):
        mask = _tensor("attention_mask", mask)
        if mask is None:
            return None
        total = past_len + length if isinstance(past_len, int) and length is not None else None
        if mask.shape.rank == 3:
            _check_shape("attention_mask", mask.shape, (batch, length, total),
                         " (a 3-D attention_mask is (batch, sequence, past + sequence))")
        else:
            _check_shape("attention_mask", mask.shape, (batch, total),
                         f" (input_ids {(batch, length)}" + (f" plus {past_len} cached positions" if past_len else "")
                         + "); pass a (batch, sequence) padding mask or a (batch, sequence, sequence) one")
        return mask

    def _check_head_mask(self, head_mask):
        head_mask = _tensor("head_mask", head_mask)
        if head_mask is None:
            return None
        c = self.config
        layers, heads = c.num_hidden_layers, c.num_attention_heads
        shape = _static(head_mask.shape)
        if shape == (heads,):
            head_mask = tf.tile(head_mask[None], [layers, 1])
        elif shape != (layers, heads):
            raise ValueError(f"head_mask must be (num_heads,) or (num_layers={layers}, num_heads={heads}), got "
                             f"shape {shape}")
        return tf.cast(head_mask, tf.float32)

    def _check_encoder(self, enc, enc_mask, batch) -> dict:
        enc, enc_mask = _tensor("encoder_hidden_states", enc), _tensor("encoder_attention_mask", enc_mask)
        if enc is None:
            return {"encoder_hidden_states": None, "encoder_attention_mask": None}
        if not self.config.add_cross_attention:
            raise ValueError("encoder_hidden_states were passed but this model has no cross-attention; build it "
                             "with is_decoder=True, add_cross_attention=True")
        width = self.config.hidden_size
        if enc.shape.rank != 3 or (batch is not None and enc.shape[0] not in (None, batch)) or enc.shape[-1] != width:
            raise ValueError(f"encoder_hidden_states must be (batch={batch}, source_length, {width}), got shape "
                             f"{_static(enc.shape)}")
        if enc_mask is not None:
            want = _static(enc.shape)[:2]
            if enc_mask.shape.rank == 3:
                _check_shape("encoder_attention_mask", [enc_mask.shape[0], enc_mask.shape[2]], want,
                             " (a 3-D encoder_attention_mask is (batch, sequence, source_length))")
            else:
                _check_shape("encoder_attention_mask", enc_mask.shape, want,
                             " (it must match encoder_hidden_states' (batch, source_length))")
        return {"encoder_hidden_states": tf.cast(enc, tf.float32), "encoder_attention_mask": enc_mask}

    def _run(self, training: bool, **inputs) -> dict:
        """Check the inputs and run the backbone: the main layer's dict of tensors."""
        return getattr(self, self.base_model_prefix)(self._prepare(**inputs), training=training)

    def _return(self, output, return_dict):
        use_dict = self.config.use_return_dict if return_dict is None else return_dict
        return output if use_dict else output.to_tuple()

    def export(self, filepath, format: str = "tf_saved_model", verbose: bool = True, input_signature=None,
               **kwargs):
        """Keras' export; a plain ``model.export(path)`` gets v4's signatures (``serving_default`` int32 ids,
        ``int64_serving`` int64) instead of Keras' single ``serve`` endpoint, which a subclassed model lacks."""
        if format == "tf_saved_model" and input_signature is None and not kwargs:
            from .export import export_saved_model

            return export_saved_model(self, filepath, verbose=verbose)
        return super().export(filepath, format=format, verbose=verbose, input_signature=input_signature, **kwargs)

    # ---- Keras training on the model's own loss ----------------------------------------------------------
    def _split_batch(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if not isinstance(x, Mapping):
            x = {self.main_input_name: x}
        x = dict(x)
        if y is not None and self.compiled_loss_is_default():
            label_names = self._label_names()
            if isinstance(y, Mapping):
                x.update(y)
            elif len(label_names) == 1:
                x[label_names[0]] = y
            else:
                raise ValueError(f"{type(self).__name__} takes labels {label_names}: pass y as a dict of them, or "
                                 f"put them in the input dict")
            y = None
        return x, y, sample_weight

    def compiled_loss_is_default(self) -> bool:
        return getattr(self, "loss", None) in (None, "passthrough")

    def _label_names(self) -> list[str]:
        params = inspect.signature(self.call).parameters
        return [n for n in ("labels", "start_positions", "end_positions", "next_sentence_label") if n in params]

    @staticmethod
    def _logits(y_pred):
        return y_pred.logits if hasattr(y_pred, "logits") else y_pred[0]

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """With no compiled loss: the mean of the model's own loss (labels came in ``x``); else Keras' rule on
        the logits."""
        if y is None:
            if getattr(y_pred, "loss", None) is None:
                raise ValueError(f"{type(self).__name__} was compiled without a loss, so it trains on its own loss, "
                                 f"but the batch has no {self._label_names()}: put the labels in the input dict")
            return tf.reduce_mean(y_pred.loss)
        return super().compute_loss(x=x, y=y, y_pred=self._logits(y_pred), sample_weight=sample_weight,
                                    training=training)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if y is None:  # own loss: only Keras' "loss" tracker, which train_step has updated
            return self.get_metrics_result()
        return super().compute_metrics(x, y, self._logits(y_pred), sample_weight=sample_weight)

    def predict_step(self, data):
        """The output's set fields as a dict (``model.predict(x)["logits"]``, as in v4's docs): Keras joins the
        batches field by field, which an output object with unset (None) fields would not allow."""
        x, _, _ = self._split_batch(data)
        return dict(self(x, training=False).items())

    def train_step(self, data):
        return super().train_step(self._split_batch(data))

    def test_step(self, data):
        return super().test_step(self._split_batch(data))
