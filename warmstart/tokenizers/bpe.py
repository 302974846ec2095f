"""Byte-level BPE (GPT-2, RoBERTa): the pure-Python algorithm and the vocab/merges files.

Byte-level BPE (Radford et al. 2019, "Language Models are Unsupervised Multitask Learners", sec. 2.2)
works on the UTF-8 bytes of the text, each byte shown as one printable character so that
vocab.json and merges.txt stay readable. A text is first cut into pieces by the GPT-2 regex
(contractions, letter runs, digit runs, punctuation runs, whitespace), then each piece's byte
characters are merged pairwise, lowest merge rank first.

The merge order reproduces the `tokenizers` library exactly (it is what transformers runs): at
each step the adjacent pair with the lowest rank is merged, the leftmost one on ties, one pair at
a time. Short pieces use a plain scan; long ones (a 100k-letter run of CJK text is one piece) use
a heap so the cost stays O(n log n).

Four public classes follow transformers' names: `GPT2Tokenizer` / `RobertaTokenizer` run this
pure-Python code, `GPT2TokenizerFast` / `RobertaTokenizerFast` run the same model on `tokenizers`.
All four read a vocab.json + merges.txt pair or a tokenizer.json (what transformers v5 saves), and
write all of them, so folders move both ways between this library and transformers.

Documented behaviour on odd input (slow and fast alike): lone surrogates become U+FFFD before
encoding (UTF-8 cannot carry them); control and zero-width characters are ordinary bytes and are
encoded and decoded back unchanged; bytes missing from a (broken) vocabulary are dropped, with a
warning when the vocabulary is loaded.
"""

from __future__ import annotations

import heapq
import json
import os
import warnings

import regex
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

from .base_fast import PreTrainedTokenizerFast, load_backend, replace_surrogates
from .base_slow import PreTrainedTokenizer

VOCAB_FILES_NAMES = {"vocab_file": "vocab.json", "merges_file": "merges.txt"}

# The GPT-2 pre-tokenisation pattern, as in OpenAI's encoder.py and `tokenizers`' ByteLevel.
# Contractions are matched case-sensitively on purpose: that is what the released models saw.
GPT2_SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_SPLIT = regex.compile(GPT2_SPLIT_PATTERN)

# Pieces at most this long are merged with a plain O(n^2) scan, which is faster in Python for the
# short words that make up almost all text; longer ones go through the heap.
_SCAN_LIMIT = 48
# The word cache is cleared when it grows past this many entries, so one huge input cannot pin memory.
_CACHE_LIMIT = 100_000


def bytes_to_unicode() -> dict[int, str]:
    """The GPT-2 byte -> character table.

    Printable Latin-1 bytes stand for themselves; the other 68 bytes (controls, space, soft hyphen)
    are given the characters from U+0100 upward, in byte order, so no token contains whitespace.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    table = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


BYTE_ENCODER = bytes_to_unicode()
BYTE_DECODER = {c: b for b, c in BYTE_ENCODER.items()}
# str.translate table from a Latin-1 decoded byte string to the byte characters.
_LATIN1_TO_BYTE_CHARS = {b: c for b, c in BYTE_ENCODER.items()}


def to_byte_chars(text: str) -> str:
    """`text`'s UTF-8 bytes, each written as its printable byte character."""
    return text.encode("utf-8").decode("latin-1").translate(_LATIN1_TO_BYTE_CHARS)


def from_byte_chars(tokens: list[str], errors: str = "replace") -> str:
    """Join byte-level tokens back into text.

    A token made only of byte characters gives those bytes; any other token (an added token such as
    "中文") gives its own UTF-8 bytes, as `tokenizers`' ByteLevel decoder does. Invalid UTF-8 is
    handled by `errors` (default: U+FFFD, like the reference decoder).
    """
    out = bytearray()
    for token in tokens:
        try:
            out.extend(BYTE_DECODER[c] for c in token)
        except KeyError:
            out.extend(token.encode("utf-8"))
    return out.decode("utf-8", errors=errors)


# --------------------------------------------------------------------------- files


def _reject_duplicates(pairs: list[tuple[str, object]]) -> dict:
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"vocabulary has a duplicate entry {key!r} (ids {seen[key]} and {value})")
        seen[key] = value
    return seen


def read_vocab_json(path: str) -> dict[str, int]:
    """Read vocab.json ({token: id}), refusing an empty file, duplicate tokens or duplicate ids."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"BPE vocabulary file not found: {path!r}")
    with open(path, encoding="utf-8") as f:
        try:
            vocab = json.load(f, object_pairs_hook=_reject_duplicates)
        except json.JSONDecodeError as e:
            raise ValueError(f"BPE vocabulary {path!r} is not valid JSON: {e}") from None
    return check_vocab(vocab, source=path)


def check_vocab(vocab: object, source: str = "vocab") -> dict[str, int]:
    if not isinstance(vocab, dict):
        raise TypeError(f"{source}: a BPE vocabulary must map tokens to ids, got {type(vocab).__name__}")
    if not vocab:
        raise ValueError(f"{source}: the BPE vocabulary is empty")
    by_id: dict[int, str] = {}
    for token, idx in vocab.items():
        if not isinstance(token, str) or isinstance(idx, bool) or not isinstance(idx, int) or idx < 0:
            raise ValueError(f"{source}: bad vocabulary entry {token!r}: {idx!r} (want str -> int >= 0)")
        if idx in by_id:
            raise ValueError(f"{source}: tokens {by_id[idx]!r} and {token!r} share id {idx}")
        by_id[idx] = token
    return dict(vocab)


def read_merges_txt(path: str) -> list[tuple[str, str]]:
    """Read merges.txt: an optional "#version" line, then one "left right" pair per line."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"BPE merges file not found: {path!r}")
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[0].startswith("#version"):
        lines = lines[1:]
    return parse_merges([line for line in lines if line], source=path)


def parse_merges(merges: list, source: str = "merges") -> list[tuple[str, str]]:
    """Merges given as "a b" strings or (a, b) pairs -> list of pairs."""
    out = []
    for n, merge in enumerate(merges):
        pair = merge.split(" ") if isinstance(merge, str) else list(merge)
        if len(pair) != 2 or not all(isinstance(p, str) and p for p in pair):
            raise ValueError(f"{source}: merge #{n} {merge!r} is not two space-separated tokens")
        out.append((pair[0], pair[1]))
    return out


def check_merges(vocab: dict[str, int], merges: list[tuple[str, str]], source: str = "merges") -> None:
    """Each merge's parts and result must be in the vocabulary (`tokenizers` panics otherwise)."""
    for n, (a, b) in enumerate(merges):
        for part in (a, b, a + b):
            if part not in vocab:
                raise ValueError(f"{source}: merge #{n} ({a!r}, {b!r}) uses {part!r}, which is not in the vocabulary")


def missing_byte_chars(vocab: dict[str, int]) -> list[str]:
    return [c for c in BYTE_ENCODER.values() if c not in vocab]


def warn_if_bytes_missing(vocab: dict[str, int], source: str) -> None:
    missing = missing_byte_chars(vocab)
    if missing:
        # Both the reference and this library drop bytes that have no symbol; say so once.
        warnings.warn(
            f"{source}: byte-level vocabulary lacks {len(missing)} of the 256 byte symbols "
            f"(e.g. {missing[:5]}); text containing those bytes loses them when encoded",
            stacklevel=3,
        )


# --------------------------------------------------------------------------- algorithm


class ByteLevelBPE:
    """Pure-Python byte-level BPE over a checked vocabulary and merge list."""

    def __init__(self, vocab: dict[str, int], merges: list[tuple[str, str]]):
        self.vocab = vocab
        # A later duplicate of a merge overrides the earlier rank, as in `tokenizers`.
        self.ranks = {pair: rank for rank, pair in enumerate(merges)}
        # Both caches are keyed by the raw text piece, so a hit skips the byte conversion too.
        self._tokens: dict[str, list[str]] = {}
        self._ids: dict[str, list[int]] = {}

    @staticmethod
    def pieces(text: str, add_prefix_space: bool = False) -> list[str]:
        """Cut `text` into GPT-2 pieces (raw text, not yet byte characters)."""
        if not text:
            return []  # `tokenizers` gives nothing for empty text, even with add_prefix_space
        if add_prefix_space and not text.startswith(" "):
            text = " " + text
        return _SPLIT.findall(replace_surrogates(text))

    def tokenize(self, text: str, add_prefix_space: bool = False) -> list[str]:
        tokens: list[str] = []
        for piece in self.pieces(text, add_prefix_space):
            tokens.extend(self.bpe(piece))
        return tokens

    def encode_ids(self, text: str, add_prefix_space: bool = False) -> list[int]:
        ids: list[int] = []
        cache = self._ids
        for piece in self.pieces(text, add_prefix_space):
            hit = cache.get(piece)
            if hit is None:
                vocab = self.vocab
                hit = [vocab[t] for t in self.bpe(piece)]
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                cache[piece] = hit
            ids.extend(hit)
        return ids

    def bpe(self, piece: str) -> list[str]:
        """One raw text piece -> its BPE tokens (byte characters)."""
        cached = self._tokens.get(piece)
        if cached is not None:
            return cached
        # Symbols absent from the vocabulary are dropped before merging (no unk token in GPT-2 BPE).
        vocab = self.vocab
        symbols = [c for c in to_byte_chars(piece) if c in vocab]
        if len(symbols) > 1:
            symbols = self._merge_scan(symbols) if len(symbols) <= _SCAN_LIMIT else self._merge_heap(symbols)
        if len(self._tokens) >= _CACHE_LIMIT:
            self._tokens.clear()
        self._tokens[piece] = symbols
        return symbols

    def _merge_scan(self, symbols: list[str]) -> list[str]:
        ranks = self.ranks
        while len(symbols) > 1:
            best_rank, best = None, -1
            for i in range(len(symbols) - 1):
                rank = ranks.get((symbols[i], symbols[i + 1]))
                if rank is not None and (best_rank is None or rank < best_rank):
                    best_rank, best = rank, i
            if best < 0:
                break
            symbols[best : best + 2] = [symbols[best] + symbols[best + 1]]
        return symbols

    def _merge_heap(self, symbols: list[str]) -> list[str]:
        # A doubly linked list over the symbols plus a heap of (rank, position) candidates; a popped
        # candidate is used only if the pair at that position is still the one it was pushed for.
        ranks = self.ranks
        n = len(symbols)
        text = list(symbols)
        nxt = list(range(1, n + 1))
        prv = list(range(-1, n - 1))
        heap = []
        for i in range(n - 1):
            rank = ranks.get((text[i], text[i + 1]))
            if rank is not None:
                heap.append((rank, i, text[i + 1]))
        heapq.heapify(heap)
        while heap:
            rank, i, right = heapq.heappop(heap)
            j = nxt[i]
            if text[i] is None or j >= n or text[j] != right or ranks.get((text[i], right)) != rank:
                continue
            text[i] += right
            text[j] = None
            nxt[i] = nxt[j]
            if nxt[i] < n:
                prv[nxt[i]] = i
            p = prv[i]
            if p >= 0:
                r = ranks.get((text[p], text[i]))
                if r is not None:
                    heapq.heappush(heap, (r, p, text[i]))
            k = nxt[i]
            if k < n:
                r = ranks.get((text[i], text[k]))
                if r is not None:
                    heapq.heappush(heap, (r, i, text[k]))
        return [t for t in text if t is not None]


# --------------------------------------------------------------------------- loading


def read_tokenizer_json_bpe(path: str) -> tuple[dict[str, int], list[tuple[str, str]], dict[int, AddedToken]]:
    """(vocab, merges, added tokens) of a byte-level BPE tokenizer.json, as transformers v5 saves one."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"tokenizer file not found: {path!r}")
    with open(path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path!r} is not valid JSON: {e}") from None
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict) or model.get("type", "BPE") != "BPE" or "merges" not in model:
        kind = model.get("type") if isinstance(model, dict) else None
        raise ValueError(f"{path!r} does not hold a BPE model (model type {kind!r}); byte-level BPE needs one")
    vocab = check_vocab(model.get("vocab"), source=path)
    merges = parse_merges(model["merges"], source=path)
    added = {}
    for entry in data.get("added_tokens") or []:
        fields = {k: entry[k] for k in ("single_word", "lstrip", "rstrip", "normalized", "special") if k in entry}
        added[int(entry["id"])] = AddedToken(entry["content"], **fields)
    return vocab, merges, added


def load_bpe(cls_name: str, vocab_file, merges_file, tokenizer_file, vocab, merges, kwargs: dict):
    """Resolve the vocabulary sources a class was given into checked (vocab, merges).

    Priority: explicit `vocab`/`merges` objects, then vocab.json + merges.txt, then tokenizer.json.
    Added tokens found in a tokenizer.json are merged into kwargs["added_tokens_decoder"]."""
    if vocab is None and isinstance(vocab_file, dict):
        vocab, vocab_file = vocab_file, None
    if merges is None and isinstance(merges_file, list):
        merges, merges_file = merges_file, None
    if isinstance(vocab, str):
        vocab, vocab_file = None, vocab
    if isinstance(merges, str):
        merges, merges_file = None, merges
    if vocab is None and vocab_file is not None:
        vocab = read_vocab_json(vocab_file)
    if merges is None and merges_file is not None:
        merges = read_merges_txt(merges_file)
    if (vocab is None or merges is None) and tokenizer_file is not None:
        file_vocab, file_merges, added = read_tokenizer_json_bpe(tokenizer_file)
        vocab = file_vocab if vocab is None else vocab
        merges = file_merges if merges is None else merges
        if added:
            kwargs["added_tokens_decoder"] = {**added, **(kwargs.get("added_tokens_decoder") or {})}
    if vocab is None or merges is None:
        missing = "vocab.json (vocab_file)" if vocab is None else "merges.txt (merges_file)"
        raise FileNotFoundError(f"{cls_name} needs {missing}, or a tokenizer.json (tokenizer_file); none was given")
    source = vocab_file or tokenizer_file or "vocab"
    vocab = check_vocab(vocab, source=source)
    ids = sorted(vocab.values())
    if ids[-1] != len(ids) - 1:
        # Added tokens are numbered from len(vocab) on; a gap would make two tokens share an id.
        raise ValueError(f"{source}: vocabulary ids must be 0..{len(ids) - 1} without gaps, but the largest is {ids[-1]}")
    merges = parse_merges(merges, source=merges_file or tokenizer_file or "merges")
    check_merges(vocab, merges, source=merges_file or tokenizer_file or "merges")
    warn_if_bytes_missing(vocab, source)
    return vocab, merges


def save_bpe_files(vocab: dict[str, int], merges: list[tuple[str, str]], save_directory: str,
                   filename_prefix: str | None) -> tuple[str, str]:  # fmt: skip
    """Write vocab.json and merges.txt in the layout GPT-2 / transformers use."""
    if not os.path.isdir(save_directory):
        raise ValueError(f"save_vocabulary needs an existing folder, got {save_directory!r}")
    prefix = f"{filename_prefix}-" if filename_prefix else ""
    vocab_path = os.path.join(save_directory, prefix + VOCAB_FILES_NAMES["vocab_file"])
    merges_path = os.path.join(save_directory, prefix + VOCAB_FILES_NAMES["merges_file"])
    with open(vocab_path, "w", encoding="utf-8") as f:
        f.write(json.dumps(vocab, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    with open(merges_path, "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    return vocab_path, merges_path


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
