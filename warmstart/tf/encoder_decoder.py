"""TFEncoderDecoderModel: v4's TF encoder-decoder over two TF models, with the PyTorch wing's rules.

The composite routes tensors between ``encoder`` (a bare backbone: TFBertModel, TFRobertaModel...), ``decoder``
(a causal LM with cross-attention) and, when the widths differ and the decoder names no
``cross_attention_hidden_size``, ``enc_to_dec_proj``. Its weights carry v4's names (``encoder/bert/...``,
``decoder/transformer/...``, ``enc_to_dec_proj/kernel``), so v4's ``tf_model.h5`` files load and ours load in v4;
checkpoints of either framework are fitted side by side by ``composite.py``.

As our PyTorch EncoderDecoderModel (warmstart/models/encoder_decoder.py): ``labels`` are shifted right into the
decoder inputs and give the unshifted loss; the decoder mask made from labels keeps the start token visible;
unprefixed extra inputs (``token_type_ids``...) reach the encoder and ``decoder_``-prefixed ones the decoder.
Generation (generation.py) reaches the model through ``_gen_encode``, ``_gen_empty_cache`` and ``_gen_decode``.
"""
from __future__ import annotations

import logging

from ..config.encoder_decoder import EncoderDecoderConfig, check_shift_ids, composite_config
from ..config.loading import take_prefixed
from . import losses
from .auto import TFAutoModel, TFAutoModelForCausalLM
from .backend import tf
from .composite import TFCompositeLoadingMixin
from .layers import Dense
from .modeling import TFPreTrainedModel, _tensor, unpack_inputs
from .outputs import TFSeq2SeqLMOutput

__all__ = ["TFEncoderDecoderModel", "shift_tokens_right"]

log = logging.getLogger("warmstart")


def shift_tokens_right(labels, pad_token_id: int | None, decoder_start_token_id: int | None):
    """Teacher forcing (as the other wings): the decoder reads [start, y_0 .. y_{T-2}]; -100 becomes padding."""
    check_shift_ids(pad_token_id, decoder_start_token_id)
    labels = tf.cast(labels, tf.int32)
    start = tf.fill([tf.shape(labels)[0], 1], tf.constant(decoder_start_token_id, tf.int32))
    shifted = tf.concat([start, labels[:, :-1]], axis=1)
    return tf.where(shifted == -100, tf.constant(pad_token_id, tf.int32), shifted)


class TFEncoderDecoderModel(TFCompositeLoadingMixin, TFPreTrainedModel):
    config_class = EncoderDecoderConfig
    base_model_prefix = "encoder_decoder"
    _generates = True

    def __init__(self, config=None, encoder=None, decoder=None, **kwargs):
        config = composite_config(config, encoder, decoder, "TFEncoderDecoderModel")
        cross_size = getattr(config.decoder, "cross_attention_hidden_size", None)
        super().__init__(config, **kwargs)
        if encoder is None:
            encoder = TFAutoModel.from_config(config.encoder, name="encoder")
        if decoder is None:
            decoder = TFAutoModelForCausalLM.from_config(config.decoder, name="decoder")
        if not getattr(encoder, "_pt_is_base", False):
            raise ValueError(f"the encoder must be a bare model without a head, got {type(encoder).__name__}; load "
                             "it with TFAutoModel")
        # (the layers, not the config flag: from_encoder_decoder_configs sets that flag on the config it is given)
        if not getattr(decoder, "_generates", False) or not any("crossattention" in n
                                                                for n in decoder.named_weights()):
            raise ValueError(f"the decoder {type(decoder).__name__} has no cross-attention; build it with "
                             "is_decoder=True, add_cross_attention=True (from_encoder_decoder_pretrained does)")
        for side, sub in (("encoder", encoder), ("decoder", decoder)):
            # One config object per side, shared with the sub-model's layers that read it.
            if sub.config.to_dict() != getattr(config, side).to_dict():
                log.warning("the %s's own config differs from config.%s; the %s's is kept", side, side, side)
            setattr(config, side, sub.config)
            self.sub(side, sub)
        self.enc_to_dec_proj = None
        if config.encoder.hidden_size != config.decoder.hidden_size and cross_size is None:
            self.sub("enc_to_dec_proj", Dense(config.encoder.hidden_size, config.decoder.hidden_size,
                                              config.decoder.initializer_range))
        self._warned_start_is_pad = False
        self._finish_init()

    def get_encoder(self):
        return self.encoder

    def get_decoder(self):
        return self.decoder

    def get_input_embeddings(self):
        return self.encoder.get_input_embeddings()

    def get_output_embeddings(self):
        return self.decoder.get_input_embeddings()

    @property
    def dummy_inputs(self) -> dict:
        ids = tf.constant([[7, 6, 0, 0, 1], [1, 2, 3, 0, 0], [0, 0, 0, 4, 5]], tf.int32)
        return {"input_ids": ids % self.config.encoder.vocab_size,
                "decoder_input_ids": ids % self.config.decoder.vocab_size}

    def _project_states(self, states):
        """Encoder states (B, S, C_enc) in the decoder's width."""
        return states if self.enc_to_dec_proj is None else self.enc_to_dec_proj(states)

    # ---- v4's call -------------------------------------------------------------------------------------------------
    @unpack_inputs
    def call(self, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
             encoder_outputs=None, past_key_values=None, inputs_embeds=None, decoder_inputs_embeds=None, labels=None,
             use_cache=None, output_attentions=None, output_hidden_states=None, return_dict=None, training=False,
             **kwargs):
        dec_kwargs = take_prefixed(kwargs, "decoder_")
        shared = dict(output_attentions=output_attentions, output_hidden_states=output_hidden_states)
        if encoder_outputs is None:
            encoder_outputs = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                           inputs_embeds=inputs_embeds, return_dict=True, training=training,
                                           **shared, **kwargs)
            states = encoder_outputs.last_hidden_state
        else:
            if kwargs:
                raise TypeError(f"{sorted(kwargs)} are encoder inputs, but encoder_outputs were given")
            states = self._states_of(encoder_outputs)
        states = self._project_states(states)
        if labels is not None:
            labels = self._checked_labels(labels)
            if decoder_input_ids is None and decoder_inputs_embeds is None:
                decoder_input_ids = self.prepare_decoder_input_ids_from_labels(labels)
                if decoder_attention_mask is None:
                    decoder_attention_mask = self._mask_from_labels(decoder_input_ids)
            if use_cache is None:
                use_cache = False  # a training step never reads the cache
        elif decoder_input_ids is None and decoder_inputs_embeds is None:
            raise ValueError("the decoder needs decoder_input_ids, decoder_inputs_embeds or labels (from which "
                             "decoder_input_ids are made by shifting right)")
        dec = self.decoder(input_ids=decoder_input_ids, attention_mask=decoder_attention_mask,
                           encoder_hidden_states=states, encoder_attention_mask=attention_mask,
                           inputs_embeds=decoder_inputs_embeds, past_key_values=past_key_values, use_cache=use_cache,
                           return_dict=True, training=training, **shared, **dec_kwargs)
        loss = None
        if labels is not None:
            if labels.shape[:2] != dec.logits.shape[:2] and None not in labels.shape[:2] + dec.logits.shape[:2]:
                raise ValueError(f"labels shape {tuple(labels.shape)} does not match the decoder's output "
                                 f"{tuple(dec.logits.shape[:2])} (batch, target_length)")
            loss = losses.token_loss(labels, dec.logits)  # unshifted: the decoder inputs are the shifted labels
        enc = encoder_outputs if hasattr(encoder_outputs, "last_hidden_state") else None
        return self._return(TFSeq2SeqLMOutput(
            loss=loss, logits=dec.logits, past_key_values=dec.past_key_values,
            decoder_hidden_states=dec.hidden_states, decoder_attentions=dec.attentions,
            cross_attentions=dec.cross_attentions,
            encoder_last_hidden_state=enc.last_hidden_state if enc is not None else self._states_of(encoder_outputs),
            encoder_hidden_states=getattr(enc, "hidden_states", None),
            encoder_attentions=getattr(enc, "attentions", None)), return_dict)

    @staticmethod
    def _states_of(encoder_outputs):
        states = getattr(encoder_outputs, "last_hidden_state", None)
        if states is None:
            states = encoder_outputs[0] if isinstance(encoder_outputs, (tuple, list)) else encoder_outputs
        states = _tensor("encoder_outputs", states)
        if states is None or states.shape.rank != 3:
            raise ValueError("encoder_outputs must hold the encoder's (batch, source length, hidden) states, got "
                             f"{type(encoder_outputs).__name__}")
        return tf.cast(states, tf.float32)

    def _checked_labels(self, labels):
        labels = _tensor("labels", labels)
        if labels.shape.rank != 2:
            raise ValueError(f"labels must be 2-D (batch, target_length), got shape {tuple(labels.shape.as_list())}")
        if not labels.dtype.is_integer:
            raise TypeError(f"labels must be integer token ids, got dtype {labels.dtype.name}")
        if tf.executing_eagerly() and hasattr(labels, "numpy"):
            values = labels.numpy()
            vocab = self.config.decoder.vocab_size
            bad = values[(values != -100) & ((values < 0) | (values >= vocab))]
            if bad.size:
                raise ValueError(f"labels contain {int(bad[0])}, outside [0, {vocab}) (the decoder's vocab_size) "
                                 "and not -100 (ignored)")
        return tf.cast(labels, tf.int32)

    def prepare_decoder_input_ids_from_labels(self, labels):
        return shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)

    def _mask_from_labels(self, decoder_input_ids):
        """Padding hidden, the start token (position 0) never, even when it is the pad token (as the PyTorch wing;
        v4 hides it then, and its first prediction reads a fully masked row)."""
        pad = self.config.pad_token_id
        mask = tf.cast(decoder_input_ids != pad, tf.int32)
        mask = tf.concat([tf.ones_like(mask[:, :1]), mask[:, 1:]], axis=1)
        if pad == self.config.decoder_start_token_id and not self._warned_start_is_pad:
            self._warned_start_is_pad = True
            log.warning("decoder_start_token_id = pad_token_id = %s: the decoder mask made from labels keeps the start "
                        "position visible (transformers hides it); pass decoder_attention_mask to choose", pad)
        return mask

    # ---- generation hooks ------------------------------------------------------------------------------------------
    def _first_position(self) -> int:
        return self.decoder._first_position()

    def _gen_empty_cache(self, batch: int, length: int) -> tuple:
        return self.decoder._gen_empty_cache(batch, length)

    def _gen_decode(self, ids, positions, mask, cache, start, enc=None, enc_mask=None, types=None):
        return self.decoder._gen_decode(ids, positions, mask, cache, start, enc, enc_mask, None)

    def _gen_encode(self, inputs: dict):
        """(B, S, C_dec) encoder states as the decoder reads them."""
        encoder = self.encoder
        # generate() checked these on the host: the main layer directly, without the graph-time assertions.
        out = getattr(encoder, encoder.base_model_prefix)(dict(
            input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
            token_type_ids=inputs.get("token_type_ids"), position_ids=inputs.get("position_ids"), inputs_embeds=None,
            head_mask=None, past_key_values=None, encoder_hidden_states=None, encoder_attention_mask=None,
            use_cache=False, output_attentions=False, output_hidden_states=False), training=False)
        return self._project_states(out["last_hidden_state"])
