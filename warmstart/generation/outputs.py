"""What ``generate(..., return_dict_in_generate=True)`` returns, under transformers' class and field names.

``scores`` / ``logits`` hold one (batch*num_return_sequences or batch*num_beams, vocab) tensor per generated token;
beam outputs add ``sequences_scores`` (the length-penalised log-probability of each returned sequence, when
``output_scores``) and ``beam_indices`` (which beam each token came from, -1 past the end of a sequence).
"""
from __future__ import annotations

from ..outputs import _output

__all__ = ["GenerateDecoderOnlyOutput", "GenerateEncoderDecoderOutput", "GenerateBeamDecoderOnlyOutput",
           "GenerateBeamEncoderDecoderOutput"]

GenerateDecoderOnlyOutput = _output(
    "GenerateDecoderOnlyOutput", "sequences", "scores", "logits", "attentions", "hidden_states", "past_key_values")
GenerateEncoderDecoderOutput = _output(
    "GenerateEncoderDecoderOutput", "sequences", "scores", "logits", "encoder_attentions", "encoder_hidden_states",
    "decoder_attentions", "cross_attentions", "decoder_hidden_states", "past_key_values")
GenerateBeamDecoderOnlyOutput = _output(
    "GenerateBeamDecoderOnlyOutput", "sequences", "sequences_scores", "scores", "logits", "beam_indices",
    "attentions", "hidden_states", "past_key_values")
GenerateBeamEncoderDecoderOutput = _output(
    "GenerateBeamEncoderDecoderOutput", "sequences", "sequences_scores", "scores", "logits", "beam_indices",
    "encoder_attentions", "encoder_hidden_states", "decoder_attentions", "cross_attentions",
    "decoder_hidden_states", "past_key_values")

for _cls in (GenerateDecoderOnlyOutput, GenerateEncoderDecoderOutput, GenerateBeamDecoderOnlyOutput,
             GenerateBeamEncoderDecoderOutput):
    _cls.__module__ = __name__
