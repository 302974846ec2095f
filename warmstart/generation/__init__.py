"""Text generation: GenerationConfig, logits processors, stopping criteria, streamers and generate().

The public models inherit ``GenerationMixin`` (``model.generate``, ``model.generation_config``); decoding itself
lives here, driving any causal LM of the shared stack through one step protocol (step.py). GenerationConfig, the
settings every wing shares, lives with the configs (``warmstart.config.generation``) and is re-exported here.
Names resolve lazily, so models importing the mixin do not pull in the searches.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "warmstart.config.generation": ["GenerationConfig", "GENERATION_CONFIG_NAME"],
    ".generate": ["generate"],
    ".constraints": ["Constraint", "PhrasalConstraint", "DisjunctiveConstraint", "ConstraintListState"],
    ".mixin": ["GenerationMixin"],
    ".outputs": ["GenerateDecoderOnlyOutput", "GenerateEncoderDecoderOutput", "GenerateBeamDecoderOnlyOutput",
                 "GenerateBeamEncoderDecoderOutput"],
    ".processors": [
        "LogitsProcessor", "LogitsProcessorList", "MinLengthLogitsProcessor", "MinNewTokensLengthLogitsProcessor",
        "TemperatureLogitsWarper", "RepetitionPenaltyLogitsProcessor", "EncoderRepetitionPenaltyLogitsProcessor",
        "TopKLogitsWarper", "TopPLogitsWarper", "MinPLogitsWarper", "TypicalLogitsWarper", "EpsilonLogitsWarper",
        "EtaLogitsWarper", "NoRepeatNGramLogitsProcessor", "EncoderNoRepeatNGramLogitsProcessor",
        "SequenceBiasLogitsProcessor", "NoBadWordsLogitsProcessor", "PrefixConstrainedLogitsProcessor",
        "ForcedBOSTokenLogitsProcessor", "ForcedEOSTokenLogitsProcessor", "InfNanRemoveLogitsProcessor",
        "ExponentialDecayLengthPenalty", "LogitNormalization", "SuppressTokensLogitsProcessor",
        "SuppressTokensAtBeginLogitsProcessor", "HammingDiversityLogitsProcessor"],
    ".stopping": ["StoppingCriteria", "StoppingCriteriaList", "MaxLengthCriteria", "MaxTimeCriteria",
                  "EosTokenCriteria", "StopStringCriteria"],
    ".streamers": ["BaseStreamer", "TextStreamer", "TextIteratorStreamer"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'warmstart.generation' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
