"""Tokenizer bases: the shared contract for every warmstart tokenizer.

Two bases share one calling convention (`base_core.PreTrainedTokenizerBase`): `tok(text, text_pair,
padding=..., truncation=..., max_length=..., stride=..., return_tensors=..., ...)` on a string, a pair,
or batches of either, `text_target` (-> ``labels``), `pad()`, `encode`, `decode` / `batch_decode`,
special-token attributes (`base_special`), `add_tokens` / `add_special_tokens`, padding
(`base_pad`), and `from_pretrained` / `save_pretrained` in transformers' file layout (`base_io`).
Results are `BatchEncoding`s (`base_encoding`). Both families also get v4's ids-level helpers
(`prepare_for_model`, `truncate_sequences`, `prepare_seq2seq_batch`, the too-long warning: `base_ids`)
and chat templates (`apply_chat_template`: `chat`); fast ones `train_new_from_iterator` (`train_new`).

Contract for a pure-Python tokenizer: subclass `PreTrainedTokenizer` (`base_slow`)
--------------------------------------------------------------------------------------
Set up your vocabulary *before* calling ``super().__init__(**kwargs)`` (the base appends special
tokens missing from it, which needs `get_vocab`). Pass the special tokens (``unk_token=...`` etc.)
and any option you want written to tokenizer_config.json as keyword arguments to super().__init__.

Class attributes:
    vocab_files_names   {init kwarg: file name}, e.g. {"vocab_file": "vocab.txt"}; from_pretrained
                        passes each file found in the folder as that kwarg.
    model_input_names   default ["input_ids", "token_type_ids", "attention_mask"]; drop
                        "token_type_ids" if the model has none (it then is not returned by default).
    padding_side        "right" (default) or "left".

Required hooks:
    _tokenize(text) -> list[str]             text (without added/special tokens) -> tokens
    _convert_token_to_id(token) -> int       unknown tokens -> the unk id
    _convert_id_to_token(index) -> str
    get_vocab() -> dict[str, int]            the whole vocabulary *including* added tokens
                                             (e.g. ``{**self.vocab, **self.get_added_vocab()}``)
    vocab_size (property) -> int             the base vocabulary only
    save_vocabulary(save_directory, filename_prefix=None) -> tuple[str, ...]   paths written
Optional hooks (defaults in brackets):
    convert_tokens_to_string(tokens) -> str               [" ".join(tokens)]
    build_inputs_with_special_tokens(ids0, ids1=None)     [no special tokens]
    create_token_type_ids_from_sequences(ids0, ids1=None) [0s for ids0, 1s for ids1]
    get_special_tokens_mask(ids0, ids1=None, already_has_special_tokens=False)
                                                          [membership in all_special_ids / all 0s]
    num_special_tokens_to_add(pair=False)                 [derived from build_inputs_...]
    prepare_for_tokenization(text, is_split_into_words=False, **kwargs) -> (text, kwargs)
                                                          [unchanged]; pop the call-time kwargs you
                                                          understand, leftovers are a TypeError
    _tokenize_to_ids(text) -> list[int]                   [_tokenize + id lookups]; a faster fused
                                                          path for text without added tokens
Lone surrogates reach `_tokenize` untouched: drop or replace them there (BERT drops them as control
characters; `base_fast.replace_surrogates` maps them to U+FFFD one-for-one).

Contract for a tokenizer on the `tokenizers` library: subclass `PreTrainedTokenizerFast` (`base_fast`)
----------------------------------------------------------------------------------------------------
Build or load a `tokenizers.Tokenizer` (normalizer, pre-tokenizer, model, post-processor that adds
your special tokens, decoder) and call ``super().__init__(tokenizer_object=backend, **kwargs)``, or
pass ``tokenizer_file=path/to/tokenizer.json``. Everything else (encoding with the backend's own
truncation/padding, offsets, word_ids, decoding, added tokens, saving tokenizer.json and the model's
vocabulary files via ``backend.model.save``) is done by the base. Override
build_inputs_with_special_tokens / create_token_type_ids_from_sequences / get_special_tokens_mask to
give the v4 helpers your layout. Include ``"tokenizer_file": "tokenizer.json"`` in vocab_files_names
so from_pretrained passes it when present.

Documented edge-case behaviour (both families):
  * unknown padding / truncation strategy, bad padding_side, negative max_length/stride: ValueError;
  * max_length shorter than the special tokens, a strategy that cannot reach max_length (the chosen
    sequence is too short, 'only_second' without a pair): ValueError naming the lengths;
  * stride not smaller than what a truncated sequence keeps: ValueError (the backend would panic);
  * decode of ids outside [0, len(tokenizer)) (e.g. -100 labels): ValueError;
  * return_offsets_mapping / word_ids() on a pure-Python tokenizer: NotImplementedError / ValueError.
"""

from .base_core import EncodeOptions, PreTrainedTokenizerBase
from .base_encoding import (
    VERY_LARGE_INTEGER,
    BatchEncoding,
    CharSpan,
    PaddingStrategy,
    TensorType,
    TokenSpan,
    TruncationStrategy,
)
from .base_fast import PreTrainedTokenizerFast, replace_surrogates
from .base_slow import PreTrainedTokenizer
from .base_special import SPECIAL_TOKENS_ATTRIBUTES

__all__ = [
    "SPECIAL_TOKENS_ATTRIBUTES",
    "VERY_LARGE_INTEGER",
    "BatchEncoding",
    "CharSpan",
    "EncodeOptions",
    "PaddingStrategy",
    "PreTrainedTokenizer",
    "PreTrainedTokenizerBase",
    "PreTrainedTokenizerFast",
    "TensorType",
    "TokenSpan",
    "TruncationStrategy",
    "replace_surrogates",
]
