"""GPT-2 and RoBERTa tokenizers: byte-level BPE, pure Python and on `tokenizers`.

Four public classes follow transformers' names: `GPT2Tokenizer` / `RobertaTokenizer` run the
pure-Python BPE of `bpe_model`, `GPT2TokenizerFast` / `RobertaTokenizerFast` run the same model on
`tokenizers`. All four read a vocab.json + merges.txt pair or a tokenizer.json (what transformers
v5 saves), and the fast ones write both, so folders move both ways between this library and
transformers. Slow and fast classes give the same ids on any text (the tests check it on arbitrary
Unicode); only the fast ones produce offsets.

Documented behaviour on odd input (slow and fast alike): lone surrogates become U+FFFD before
encoding (UTF-8 cannot carry them); control and zero-width characters are ordinary bytes and are
encoded and decoded back unchanged; bytes missing from a (broken) vocabulary are dropped, with a
warning when the vocabulary is loaded.
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

from .base_fast import PreTrainedTokenizerFast, load_backend
from .base_slow import PreTrainedTokenizer
from .bpe_model import (
    BYTE_DECODER, BYTE_ENCODER, VOCAB_FILES_NAMES, ByteLevelBPE, from_byte_chars, load_bpe, save_bpe_files,
)  # fmt: skip

__all__ = ["GPT2Tokenizer", "GPT2TokenizerFast", "RobertaTokenizer", "RobertaTokenizerFast"]


# --------------------------------------------------------------------------- special-token layouts


class _GPT2Layout:
    """GPT-2 adds nothing by default; add_bos_token / add_eos_token wrap each sequence (v5 template:
    `bos A eos` and `bos A eos bos B eos`)."""

    def _wrap(self, ids: list[int]) -> list[int]:
        bos = [self.bos_token_id] if self.add_bos_token else []
        eos = [self.eos_token_id] if self.add_eos_token else []
        return bos + list(ids) + eos

    def build_inputs_with_special_tokens(self, token_ids_0: list[int], token_ids_1: list[int] | None = None) -> list[int]:
        out = self._wrap(token_ids_0)
        return out if token_ids_1 is None else out + self._wrap(token_ids_1)

    def create_token_type_ids_from_sequences(self, token_ids_0: list[int], token_ids_1: list[int] | None = None) -> list[int]:
        first = [0] * len(self._wrap(token_ids_0))
        return first if token_ids_1 is None else first + [1] * len(self._wrap(token_ids_1))

    def get_special_tokens_mask(self, token_ids_0: list[int], token_ids_1: list[int] | None = None,
                                already_has_special_tokens: bool = False) -> list[int]:  # fmt: skip
        if already_has_special_tokens:
            return super().get_special_tokens_mask(token_ids_0, token_ids_1, already_has_special_tokens=True)

        def mask(ids):
            return [1] * self.add_bos_token + [0] * len(ids) + [1] * self.add_eos_token

        return mask(token_ids_0) if token_ids_1 is None else mask(token_ids_0) + mask(token_ids_1)


class _RobertaLayout:
    """RoBERTa: `<s> A </s>` and `<s> A </s></s> B </s>`; token type ids are all 0 (no segment embeddings)."""

    def build_inputs_with_special_tokens(self, token_ids_0: list[int], token_ids_1: list[int] | None = None) -> list[int]:
        cls, sep = [self.cls_token_id], [self.sep_token_id]
        if token_ids_1 is None:
            return cls + list(token_ids_0) + sep
        return cls + list(token_ids_0) + sep + sep + list(token_ids_1) + sep

    def create_token_type_ids_from_sequences(self, token_ids_0: list[int], token_ids_1: list[int] | None = None) -> list[int]:
        return [0] * len(self.build_inputs_with_special_tokens(token_ids_0, token_ids_1))

    def get_special_tokens_mask(self, token_ids_0: list[int], token_ids_1: list[int] | None = None,
                                already_has_special_tokens: bool = False) -> list[int]:  # fmt: skip
        if already_has_special_tokens:
            return super().get_special_tokens_mask(token_ids_0, token_ids_1, already_has_special_tokens=True)
        mask = [1] + [0] * len(token_ids_0) + [1]
        return mask if token_ids_1 is None else mask + [1] + [0] * len(token_ids_1) + [1]


# --------------------------------------------------------------------------- pure-Python classes


class _SlowByteLevelBPE(PreTrainedTokenizer):
    """Shared body of the pure-Python GPT-2 and RoBERTa tokenizers."""

    # tokenizer.json is read too (for its vocab and merges) since transformers v5 saves only that file.
    vocab_files_names = {**VOCAB_FILES_NAMES, "tokenizer_file": "tokenizer.json"}
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, vocab_file=None, merges_file=None, errors="replace", add_prefix_space=False, **kwargs):
        vocab, merges = load_bpe(type(self).__name__, vocab_file, merges_file, kwargs.pop("tokenizer_file", None),
                                 kwargs.pop("vocab", None), kwargs.pop("merges", None), kwargs)  # fmt: skip
        self.encoder = vocab
        self.decoder = {i: t for t, i in vocab.items()}
        self.bpe_ranks = {pair: rank for rank, pair in enumerate(merges)}
        self._merges = merges
        self._bpe = ByteLevelBPE(vocab, merges)
        self.byte_encoder, self.byte_decoder = BYTE_ENCODER, BYTE_DECODER  # v4 attribute names
        self.errors = errors
        self.add_prefix_space = add_prefix_space
        super().__init__(errors=errors, add_prefix_space=add_prefix_space, **kwargs)

    @property
    def vocab_size(self) -> int:
        return len(self.encoder)

    def get_vocab(self) -> dict[str, int]:
        return {**self.encoder, **self._added_tokens_encoder}

    def _tokenize(self, text: str, **kwargs) -> list[str]:
        return self._bpe.tokenize(text, self.add_prefix_space)

    def _tokenize_to_ids(self, text: str) -> list[int]:
        return self._bpe.encode_ids(text, self.add_prefix_space)

    def prepare_for_tokenization(self, text: str, is_split_into_words: bool = False, **kwargs):
        """v4: ``tokenize(text, add_prefix_space=True)`` (or the same keyword to a call) puts a space before
        the text, so its first word encodes like a word inside a sentence ("Ġhello"). False keeps the
        tokenizer's own setting (given at construction)."""
        add_prefix_space = kwargs.pop("add_prefix_space", None)
        if add_prefix_space is not None and not isinstance(add_prefix_space, bool):
            raise TypeError(f"add_prefix_space must be a bool, got {type(add_prefix_space).__name__}: {add_prefix_space!r}")
        if add_prefix_space and self._wants_prefix(text):
            text = " " + text
        return text, kwargs

    def _wants_prefix(self, text: str) -> bool:
        return True  # GPT-2 (v4): always, even before a leading space

    def _convert_token_to_id(self, token: str) -> int:
        index = self.encoder.get(token)
        if index is None:
            index = self.encoder.get(str(self.unk_token)) if self.unk_token is not None else None
            if index is None:
                index = self._added_tokens_encoder.get(str(self.unk_token))
        if index is None:
            raise ValueError(f"token {token!r} is not in the vocabulary and the tokenizer has no unk_token in it")
        return index

    def _convert_id_to_token(self, index: int) -> str:
        token = self.decoder.get(index)
        if token is None:
            raise ValueError(f"token id {index} is not in the vocabulary (ids 0..{len(self) - 1})")
        return token

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return from_byte_chars(tokens, self.errors)

    def clean_up_tokenization(self, text: str) -> str:
        """No-op, as in transformers v5 for BPE tokenizers: the WordPiece-era clean-up would delete real
        spaces before punctuation ("a ." -> "a."), which byte-level decoding reproduces exactly."""
        return text

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, ...]:
        return save_bpe_files(self.encoder, self._merges, save_directory, filename_prefix)


class GPT2Tokenizer(_GPT2Layout, _SlowByteLevelBPE):
    """GPT-2's byte-level BPE tokenizer in pure Python (transformers' `GPT2Tokenizer`).

    A leading space is part of a word ("Hello" and " Hello" differ); `add_prefix_space=True` adds
    one to each text (and to each word with is_split_into_words=True). No special tokens are added
    unless `add_bos_token` / `add_eos_token` ask for them."""

    def __init__(self, vocab_file=None, merges_file=None, errors="replace", unk_token="<|endoftext|>",
                 bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token=None, add_prefix_space=False,
                 add_bos_token=False, add_eos_token=False, **kwargs):  # fmt: skip
        self.add_bos_token = add_bos_token
        self.add_eos_token = add_eos_token
        super().__init__(vocab_file, merges_file, errors=errors, unk_token=unk_token, bos_token=bos_token,
                         eos_token=eos_token, pad_token=pad_token, add_prefix_space=add_prefix_space,
                         add_bos_token=add_bos_token, add_eos_token=add_eos_token, **kwargs)  # fmt: skip


class RobertaTokenizer(_RobertaLayout, _SlowByteLevelBPE):
    """RoBERTa's byte-level BPE tokenizer in pure Python: GPT-2's BPE with `<s> A </s></s> B </s>`."""

    def __init__(self, vocab_file=None, merges_file=None, errors="replace", bos_token="<s>", eos_token="</s>",
                 sep_token="</s>", cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
                 add_prefix_space=False, trim_offsets=True, **kwargs):  # fmt: skip
        # trim_offsets only matters for offsets, which the pure-Python classes do not produce; it is
        # kept so that a saved config round-trips to the fast class.
        self.trim_offsets = trim_offsets
        super().__init__(vocab_file, merges_file, errors=errors, bos_token=bos_token, eos_token=eos_token,
                         sep_token=sep_token, cls_token=cls_token, unk_token=unk_token, pad_token=pad_token,
                         mask_token=mask_token, add_prefix_space=add_prefix_space, trim_offsets=trim_offsets,
                         **kwargs)  # fmt: skip

    def _wants_prefix(self, text: str) -> bool:
        return bool(text) and not text[0].isspace()  # RoBERTa (v4): only before non-space text


# --------------------------------------------------------------------------- classes on `tokenizers`


def _bpe_backend(vocab: dict[str, int], merges: list[tuple[str, str]], add_prefix_space: bool) -> Tokenizer:
    """The same model on `tokenizers`, configured as transformers v5 configures it."""
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges, dropout=None, continuing_subword_prefix="",
                                   end_of_word_suffix="", fuse_unk=False))  # fmt: skip
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
    backend.decoder = decoders.ByteLevel()
    return backend


class _FastByteLevelBPE(PreTrainedTokenizerFast):
    vocab_files_names = {**VOCAB_FILES_NAMES, "tokenizer_file": "tokenizer.json"}
    model_input_names = ["input_ids", "attention_mask"]

    def _make_backend(self, vocab_file, merges_file, tokenizer_file, add_prefix_space, kwargs) -> Tokenizer:
        backend = kwargs.pop("tokenizer_object", None)
        if backend is not None:
            return backend
        file_post = None
        if tokenizer_file is not None:
            # As in transformers v5, tokenizer.json wins over vocab.json + merges.txt; its model is
            # rebuilt with this class's pre-tokenizer and decoder, its post-processor is kept.
            file_post = load_backend(tokenizer_file).post_processor
            vocab_file = merges_file = None
        vocab, merges = load_bpe(type(self).__name__, vocab_file, merges_file, tokenizer_file,
                                 kwargs.pop("vocab", None), kwargs.pop("merges", None), kwargs)  # fmt: skip
        backend = _bpe_backend(vocab, merges, add_prefix_space)
        if file_post is not None:
            backend.post_processor = file_post
        return backend

    def clean_up_tokenization(self, text: str) -> str:
        """No-op, as in transformers v5 for BPE tokenizers: the WordPiece-era clean-up would delete real
        spaces before punctuation ("a ." -> "a."), which byte-level decoding reproduces exactly."""
        return text


class GPT2TokenizerFast(_GPT2Layout, _FastByteLevelBPE):
    """GPT-2's byte-level BPE tokenizer on `tokenizers` (transformers' `GPT2TokenizerFast`; v5's `GPT2Tokenizer`)."""

    def __init__(self, vocab_file=None, merges_file=None, tokenizer_file=None, errors="replace",
                 unk_token="<|endoftext|>", bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token=None,
                 add_prefix_space=False, add_bos_token=None, add_eos_token=None, **kwargs):  # fmt: skip
        backend = self._make_backend(vocab_file, merges_file, tokenizer_file, add_prefix_space, kwargs)
        # Like transformers v5: a post-processor read from tokenizer.json is kept unless
        # add_bos_token / add_eos_token are given explicitly.
        keep_post = backend.post_processor is not None and add_bos_token is None and add_eos_token is None
        self.add_bos_token = bool(add_bos_token)
        self.add_eos_token = bool(add_eos_token)
        self.add_prefix_space = add_prefix_space
        self.errors = errors
        super().__init__(tokenizer_object=backend, vocab_file=vocab_file, merges_file=merges_file, errors=errors,
                         unk_token=unk_token, bos_token=bos_token, eos_token=eos_token, pad_token=pad_token,
                         add_prefix_space=add_prefix_space, add_bos_token=self.add_bos_token,
                         add_eos_token=self.add_eos_token, **kwargs)  # fmt: skip
        if not keep_post:
            self.update_post_processor()
        self._ready = True

    # Setting add_bos_token / add_eos_token after construction rebuilds the backend template, as in v5.
    @property
    def add_bos_token(self) -> bool:
        return self._add_bos_token

    @add_bos_token.setter
    def add_bos_token(self, value: bool) -> None:
        self._add_bos_token = bool(value)
        if getattr(self, "_ready", False):
            self.update_post_processor()

    @property
    def add_eos_token(self) -> bool:
        return self._add_eos_token

    @add_eos_token.setter
    def add_eos_token(self, value: bool) -> None:
        self._add_eos_token = bool(value)
        if getattr(self, "_ready", False):
            self.update_post_processor()

    def update_post_processor(self) -> None:
        """Rebuild the backend template from add_bos_token / add_eos_token (call after changing them)."""
        bos, eos = self.bos_token, self.eos_token
        use_bos, use_eos = self.add_bos_token and bos is not None, self.add_eos_token and eos is not None
        one = " ".join([f"{bos}:0"] * use_bos + ["$A:0"] + [f"{eos}:0"] * use_eos)
        two = " ".join([f"{bos}:1"] * use_bos + ["$B:1"] + [f"{eos}:1"] * use_eos)
        specials = {t: self.convert_tokens_to_ids(t) for t in [bos] * use_bos + [eos] * use_eos}
        self._tokenizer.post_processor = processors.TemplateProcessing(
            single=one, pair=f"{one} {two}", special_tokens=list(specials.items())
        )


class RobertaTokenizerFast(_RobertaLayout, _FastByteLevelBPE):
    """RoBERTa's byte-level BPE tokenizer on `tokenizers` (transformers' `RobertaTokenizerFast`).

    With trim_offsets=True (default) the offsets of "Ġword" tokens leave out the leading space."""

    def __init__(self, vocab_file=None, merges_file=None, tokenizer_file=None, errors="replace", bos_token="<s>",
                 eos_token="</s>", sep_token="</s>", cls_token="<s>", unk_token="<unk>", pad_token="<pad>",
                 mask_token="<mask>", add_prefix_space=False, trim_offsets=True, **kwargs):  # fmt: skip
        backend = self._make_backend(vocab_file, merges_file, tokenizer_file, add_prefix_space, kwargs)
        self.add_prefix_space = add_prefix_space
        self.trim_offsets = trim_offsets
        self.errors = errors
        super().__init__(tokenizer_object=backend, vocab_file=vocab_file, merges_file=merges_file, errors=errors,
                         bos_token=bos_token, eos_token=eos_token, sep_token=sep_token, cls_token=cls_token,
                         unk_token=unk_token, pad_token=pad_token, mask_token=mask_token,
                         add_prefix_space=add_prefix_space, trim_offsets=trim_offsets, **kwargs)  # fmt: skip
        self._tokenizer.post_processor = processors.RobertaProcessing(
            (self.sep_token, self.sep_token_id), (self.cls_token, self.cls_token_id),
            trim_offsets=trim_offsets, add_prefix_space=add_prefix_space,
        )  # fmt: skip
