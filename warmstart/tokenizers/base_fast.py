"""`PreTrainedTokenizerFast`: the base for tokenizers backed by a `tokenizers.Tokenizer` (see `base.py`).

A call is handed whole to the Rust backend: we set its truncation and padding to what the call asked
(only when they changed since the last call, since re-setting them is not free), run `encode_batch`,
and read ids, masks and offsets back from the `Encoding`s. Before that we check the inputs the backend
would mishandle (it panics on a stride that is too large, rejects lone surrogates with a bare
TypeError, and silently ignores a max_length shorter than the special tokens), so that every such
case is a ValueError that names the problem.
"""

from __future__ import annotations

import copy
import json
import os
import re

from tokenizers import AddedToken, Tokenizer

from .base_core import EncodeOptions, PreTrainedTokenizerBase, _describe
from .base_encoding import BatchEncoding, PaddingStrategy, TruncationStrategy
from .base_io import FAST_TOKENIZER_FILE

_SURROGATE = re.compile("[\ud800-\udfff]")


def replace_surrogates(text: str) -> str:
    """Lone surrogates (not encodable as UTF-8) -> U+FFFD: one char for one char, so offsets hold."""
    return _SURROGATE.sub("\ufffd", text)


class PreTrainedTokenizerFast(PreTrainedTokenizerBase):
    is_fast = True
    vocab_files_names = {"tokenizer_file": FAST_TOKENIZER_FILE}

    def __init__(self, *args, tokenizer_object: Tokenizer | None = None, tokenizer_file: str | None = None, **kwargs):
        if args:
            raise TypeError(f"{type(self).__name__} takes keyword arguments only, got positional {args!r}")
        added = kwargs.pop("added_tokens_decoder", None) or {}
        if tokenizer_object is not None:
            if not isinstance(tokenizer_object, Tokenizer):
                raise TypeError(f"tokenizer_object must be a tokenizers.Tokenizer, got {_describe(tokenizer_object)}")
            backend = copy.deepcopy(tokenizer_object)
        elif tokenizer_file is not None:
            backend = load_backend(tokenizer_file)
        else:
            raise ValueError(f"{type(self).__name__} needs tokenizer_object= or tokenizer_file= (a tokenizer.json)")
        # tokenizer.json may carry the padding/truncation of whoever saved it; every call sets its own.
        backend.no_padding()
        backend.no_truncation()
        self._tokenizer = backend
        self._trunc_key = self._pad_key = None
        super().__init__(**kwargs)
        missing = [t for i, t in sorted(added.items()) if backend.token_to_id(str(t)) is None]
        if missing:
            self._add_tokens(missing)
        specials = [t for t in self.all_special_tokens_extended]
        backend.add_special_tokens(
            [t if isinstance(t, AddedToken) else AddedToken(t, special=True, normalized=False) for t in specials]
        )

    # ---------------------------------------------------------------------------------------------
    # Vocabulary
    # ---------------------------------------------------------------------------------------------
    @property
    def backend_tokenizer(self) -> Tokenizer:
        return self._tokenizer

    @property
    def decoder(self):
        return self._tokenizer.decoder

    @property
    def vocab_size(self) -> int:
        return self._tokenizer.get_vocab_size(with_added_tokens=False)

    def get_vocab(self) -> dict[str, int]:
        return self._tokenizer.get_vocab(with_added_tokens=True)

    @property
    def vocab(self) -> dict[str, int]:
        return self.get_vocab()

    def __len__(self) -> int:
        return self._tokenizer.get_vocab_size(with_added_tokens=True)

    @property
    def added_tokens_decoder(self) -> dict[int, AddedToken]:
        return dict(sorted(self._tokenizer.get_added_tokens_decoder().items()))

    @property
    def added_tokens_encoder(self) -> dict[str, int]:
        return {t.content: i for i, t in self.added_tokens_decoder.items()}

    def get_added_vocab(self) -> dict[str, int]:
        return self.added_tokens_encoder

    def _add_tokens(self, new_tokens: list, special_tokens: bool = False) -> int:
        if special_tokens:
            new_tokens = [t if isinstance(t, AddedToken) else AddedToken(t, special=True, normalized=False) for t in new_tokens]
            return self._tokenizer.add_special_tokens(new_tokens)
        return self._tokenizer.add_tokens(new_tokens)

    def _convert_token_to_id_with_added_voc(self, token: str) -> int:
        index = self._tokenizer.token_to_id(token)
        return self.unk_token_id if index is None else index

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        if isinstance(ids, int):
            return self._tokenizer.id_to_token(ids)
        skip = set(self.all_special_ids) if skip_special_tokens else ()
        return [self._tokenizer.id_to_token(int(i)) for i in ids if int(i) not in skip]

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        decoder = self._tokenizer.decoder
        return decoder.decode(tokens) if decoder is not None else " ".join(tokens)

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return self._tokenizer.num_special_tokens_to_add(pair)

    def _decode(self, ids: list[int], skip_special_tokens: bool) -> str:
        return self._tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)

    def train_new_from_iterator(self, text_iterator, vocab_size: int, length: int | None = None,
                                new_special_tokens=None, special_tokens_map=None, **kwargs):  # fmt: skip
        """A tokenizer of this class and pipeline trained on a new corpus (see `train_new`)."""
        from .train_new import train_new_from_iterator

        return train_new_from_iterator(self, text_iterator, vocab_size, length=length,
                                       new_special_tokens=new_special_tokens, special_tokens_map=special_tokens_map,
                                       **kwargs)  # fmt: skip

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, ...]:
        """The backend model's own vocabulary files (vocab.txt for WordPiece, vocab.json + merges.txt for BPE)."""
        return tuple(self._tokenizer.model.save(save_directory, filename_prefix))

    def _save_extra_files(self, save_directory: str, prefix: str) -> tuple[str, ...]:
        self._configure(None, None)  # save without the last call's padding/truncation
        path = os.path.join(save_directory, prefix + FAST_TOKENIZER_FILE)
        self._tokenizer.save(path)
        return (path,)

    # ---------------------------------------------------------------------------------------------
    # Encoding
    # ---------------------------------------------------------------------------------------------
    def tokenize(self, text: str, pair: str | None = None, add_special_tokens: bool = False, **kwargs) -> list[str]:
        if not isinstance(text, str):
            raise TypeError(f"tokenize() expects a str, got {_describe(text)}")
        split = kwargs.pop("split_special_tokens", self.split_special_tokens)
        if kwargs:
            raise TypeError(f"tokenize() got unexpected keyword arguments {sorted(kwargs)}")
        self._configure(None, None)
        self._tokenizer.encode_special_tokens = bool(split)
        return self._run(lambda: self._tokenizer.encode(text, pair, add_special_tokens=add_special_tokens),
                         lambda: self._tokenizer.encode(replace_surrogates(text),
                                                        None if pair is None else replace_surrogates(pair),
                                                        add_special_tokens=add_special_tokens)).tokens  # fmt: skip

    def _configure(self, trunc_key, pad_key) -> None:
        """Set the backend's truncation/padding, touching it only when the settings changed."""
        if trunc_key != self._trunc_key:
            if trunc_key is None:
                self._tokenizer.no_truncation()
            else:
                max_length, stride, strategy, direction = trunc_key
                self._tokenizer.enable_truncation(max_length, stride=stride, strategy=strategy, direction=direction)
            self._trunc_key = trunc_key
        if pad_key != self._pad_key:
            if pad_key is None:
                self._tokenizer.no_padding()
            else:
                length, direction, pad_id, pad_type_id, pad_token, multiple = pad_key
                self._tokenizer.enable_padding(direction=direction, pad_id=pad_id, pad_type_id=pad_type_id,
                                               pad_token=pad_token, length=length, pad_to_multiple_of=multiple)  # fmt: skip
            self._pad_key = pad_key

    def _encode_items(self, items: list, is_batched: bool, opts: EncodeOptions, kwargs: dict) -> BatchEncoding:
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unexpected keyword arguments {sorted(kwargs)}")
        for first, second in items:
            if not isinstance(first, str) or not (second is None or isinstance(second, str)):
                self._check_words(first, second, opts)
        trunc_key = pad_key = None
        if opts.truncation is not TruncationStrategy.DO_NOT_TRUNCATE and opts.max_length is not None:
            self._check_truncation(items, opts)
            trunc_key = (opts.max_length, opts.stride, opts.truncation.value, self.truncation_side)
        if opts.padding is not PaddingStrategy.DO_NOT_PAD:
            length = opts.max_length if opts.padding is PaddingStrategy.MAX_LENGTH else None
            pad_key = (length, opts.padding_side, self.pad_token_id, self.pad_token_type_id, self.pad_token,
                       opts.pad_to_multiple_of)  # fmt: skip
        self._configure(trunc_key, pad_key)
        backend = self._tokenizer
        if backend.encode_special_tokens != opts.split_special_tokens:
            backend.encode_special_tokens = opts.split_special_tokens
        add, pre = opts.add_special_tokens, opts.is_split_into_words
        what = f"truncation={opts.truncation.value!r}, max_length={opts.max_length}"
        if is_batched:
            inputs = [first if second is None else (first, second) for first, second in items]
            encodings = self._run(
                lambda: backend.encode_batch(inputs, add_special_tokens=add, is_pretokenized=pre),
                lambda: backend.encode_batch(_sanitize(inputs), add_special_tokens=add, is_pretokenized=pre),
                what,
            )
        else:  # one input: encode() skips encode_batch's thread-pool hand-off
            first, second = items[0]
            encodings = [self._run(
                lambda: backend.encode(first, second, add_special_tokens=add, is_pretokenized=pre),
                lambda: backend.encode(*_sanitize([first, second]), add_special_tokens=add, is_pretokenized=pre),
                what,
            )]  # fmt: skip
        return self._to_batch_encoding(encodings, is_batched, opts)

    def _check_words(self, first, second, opts: EncodeOptions) -> None:
        for seq in (first, second):
            if isinstance(seq, (list, tuple)) and seq and not isinstance(seq[0], str):
                raise TypeError(f"{type(self).__name__} encodes text or pre-split words, not ids; got {_describe(seq)}")
            if isinstance(seq, (list, tuple)) and not opts.is_split_into_words:
                raise TypeError("A list of words needs is_split_into_words=True")

    def _run(self, call, sanitized_call, what: str = ""):
        """Run a backend call, retrying once with lone surrogates replaced, and turn backend errors
        into ValueErrors (`what` describes the settings, for the message)."""
        try:
            try:
                return call()
            except TypeError:
                return sanitized_call()  # the backend only takes UTF-8 encodable text
        except Exception as err:  # the backend raises plain Exception for truncation failures
            hint = ""
            if "too short" in str(err):
                hint = (f" ({what}: the sequence this strategy truncates is not longer than the number of tokens "
                        "to remove; use a larger max_length or another strategy)")  # fmt: skip
            raise ValueError(f"{type(self).__name__}: the tokenizers backend refused the input: {err}{hint}") from err

    def _check_truncation(self, items: list, opts: EncodeOptions) -> None:
        """Reject, with a ValueError naming the lengths, what the backend would panic on, ignore, or
        answer with a bare "Truncation error" (same rules as the Python base)."""
        only = opts.truncation is not TruncationStrategy.LONGEST_FIRST
        measure = opts.stride > 0
        for pair in {second is not None for _, second in items}:
            n_special = self._tokenizer.num_special_tokens_to_add(pair) if opts.add_special_tokens else 0
            if opts.max_length < n_special:
                raise ValueError(
                    f"max_length={opts.max_length} is shorter than the {n_special} special tokens a "
                    f"{'pair' if pair else 'single sequence'} needs"
                )
            # With no room at all the backend empties both sequences of a pair even for 'only_*'.
            measure = measure or (pair and only and opts.max_length == n_special)
        if opts.truncation is TruncationStrategy.ONLY_SECOND and not all(second is not None for _, second in items):
            raise ValueError("truncation='only_second' needs a text_pair, but only one sequence was given")
        if not measure:
            return  # the backend's own "too short" errors are clear enough once wrapped (see _run)
        self._configure(None, None)
        pre = opts.is_split_into_words
        lengths = []
        for part in (0, 1):
            seqs = [item[part] for item in items if item[part] is not None]
            encs = self._run(lambda s=seqs: self._tokenizer.encode_batch(s, add_special_tokens=False, is_pretokenized=pre),
                             lambda s=seqs: self._tokenizer.encode_batch(_sanitize(s), add_special_tokens=False,
                                                                         is_pretokenized=pre))  # fmt: skip
            it = iter(len(e.ids) for e in encs)
            lengths.append([next(it) if item[part] is not None else None for item in items])
        for n1, n2 in zip(*lengths):
            n_special = self._tokenizer.num_special_tokens_to_add(n2 is not None) if opts.add_special_tokens else 0
            target = opts.max_length - n_special
            for which, length, kept in _backend_kept(n1, n2, target, opts.truncation):
                if kept < 0 or (kept == 0 and n2 is not None and only):
                    raise ValueError(
                        f"truncation={opts.truncation.value!r} would have to cut the {which} sequence ({length} "
                        f"tokens) down to {max(kept, 0)} to reach max_length={opts.max_length}; use a larger "
                        "max_length or another strategy"
                    )
                if kept > 0 and opts.stride >= kept:
                    raise ValueError(
                        f"stride={opts.stride} must be smaller than the {kept} tokens the {which} sequence keeps "
                        f"after truncation to max_length={opts.max_length}"
                    )

    def _to_batch_encoding(self, encodings: list, is_batched: bool, opts: EncodeOptions) -> BatchEncoding:
        if opts.return_overflowing_tokens:
            rows, sample = [], []
            for i, enc in enumerate(encodings):
                rows.append(enc)
                rows.extend(enc.overflowing)
                sample.extend([i] * (1 + len(enc.overflowing)))
        else:
            rows = encodings
        data = {"input_ids": [e.ids for e in rows]}
        if opts.return_token_type_ids:
            data["token_type_ids"] = [e.type_ids for e in rows]
        if opts.return_attention_mask:
            data["attention_mask"] = [e.attention_mask for e in rows]
        if opts.return_special_tokens_mask:
            data["special_tokens_mask"] = [e.special_tokens_mask for e in rows]
        if opts.return_offsets_mapping:
            data["offset_mapping"] = [e.offsets for e in rows]
        if opts.return_length:
            data["length"] = [len(e.ids) for e in rows]
        if opts.return_overflowing_tokens:
            data["overflow_to_sample_mapping"] = sample
        elif not is_batched and opts.return_tensors is None:
            # A single input gives flat lists (but, as in transformers, "length" stays a 1-list).
            data = {k: v[0] if v and isinstance(v[0], list) else v for k, v in data.items()}
        return BatchEncoding(data, rows, tensor_type=opts.return_tensors)


def _sanitize(inputs: list) -> list:
    def fix(x):
        if isinstance(x, str):
            return replace_surrogates(x)
        if isinstance(x, tuple):
            return tuple(fix(y) for y in x)
        if isinstance(x, list):
            return [fix(y) for y in x]
        return x

    return [fix(x) for x in inputs]


def _backend_kept(n1: int, n2: int | None, target: int, strategy: TruncationStrategy):
    """What the tokenizers backend keeps of each sequence: [(which, length, kept)] for the truncated ones.

    Mirrors tokenizers' truncate_encodings: longest_first on a pair gives the shorter sequence its full
    length if the longer can absorb the cut, else splits target in two (the odd token to the longer)."""
    total = n1 + (n2 or 0)
    if total <= target:
        return []
    if n2 is None:
        return [("first", n1, target)]
    if strategy is TruncationStrategy.ONLY_FIRST:
        return [("first", n1, target - n2)]
    if strategy is TruncationStrategy.ONLY_SECOND:
        return [("second", n2, target - n1)]
    short = min(n1, n2)
    keep_long = short if short > target else max(short, target - short)
    keep_short = short
    if keep_short + keep_long > target:
        keep_short, keep_long = target // 2, target // 2 + target % 2
    k1, k2 = (keep_long, keep_short) if n1 > n2 else (keep_short, keep_long)
    return [(w, n, k) for w, n, k in (("first", n1, k1), ("second", n2, k2)) if n > k]


def load_backend(tokenizer_file: str) -> Tokenizer:
    """Read a tokenizer.json, saying which file is wrong when it is missing or malformed."""
    if not os.path.isfile(tokenizer_file):
        raise FileNotFoundError(f"No tokenizer file at {tokenizer_file!r}")
    try:
        return Tokenizer.from_file(tokenizer_file)
    except Exception as err:
        try:
            with open(tokenizer_file, encoding="utf-8") as f:
                json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as json_err:
            raise ValueError(f"{tokenizer_file} is not a valid tokenizer.json (not JSON: {json_err})") from err
        raise ValueError(f"{tokenizer_file} is not a tokenizer.json the tokenizers library can read: {err}") from err
