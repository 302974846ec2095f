"""Byte-level BPE (GPT-2, RoBERTa): the pure-Python algorithm, and reading/writing its files.

Byte-level BPE (Radford et al. 2019, "Language Models are Unsupervised Multitask Learners", sec. 2.2)
works on the UTF-8 bytes of the text, each byte shown as one printable character so that
vocab.json and merges.txt stay readable. A text is first cut into pieces by the GPT-2 regex
(contractions, letter runs, digit runs, punctuation runs, whitespace), then each piece's byte
characters are merged pairwise, lowest merge rank first.

The merge order reproduces the `tokenizers` library exactly (it is what transformers runs): at
each step the adjacent pair with the lowest rank is merged, the leftmost one on ties, one pair at
a time. Short pieces use a plain scan; long ones (a 100k-letter run of CJK text is one piece) use
a heap so the cost stays O(n log n).

Lone surrogates become U+FFFD before encoding (UTF-8 cannot carry them); control and zero-width
characters are ordinary bytes, encoded and decoded back unchanged; bytes missing from a (broken)
vocabulary are dropped, as `tokenizers` drops them, with a warning when the vocabulary is loaded.
"""

from __future__ import annotations

import heapq
import json
import os
import re
import warnings

from tokenizers import AddedToken

from .base_fast import replace_surrogates
from .bpe_unicode import LETTERS, NUMBERS, SPACES, char_class

VOCAB_FILES_NAMES = {"vocab_file": "vocab.json", "merges_file": "merges.txt"}

# The GPT-2 pre-tokenisation pattern, as in OpenAI's encoder.py and `tokenizers`' ByteLevel:
#     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
# with \p{L}, \p{N} and \s spelled out as the ranges `tokenizers` uses (see bpe_unicode.py).
# Contractions are matched case-sensitively on purpose: that is what the released models saw.
# The stdlib `re` runs this pattern several times faster than the `regex` package, which scans
# large explicit classes range by range; all-ASCII text (most of it) takes an ASCII-only twin.
_L, _N, _S = char_class(LETTERS), char_class(NUMBERS), char_class(SPACES)
GPT2_SPLIT_PATTERN = (
    f"'s|'t|'re|'ve|'m|'ll|'d| ?[{_L}]+| ?[{_N}]+| ?[^{_S}{_L}{_N}]+|[{_S}]+(?![^{_S}])|[{_S}]+"
)
_SPLIT = re.compile(GPT2_SPLIT_PATTERN)
_SPLIT_ASCII = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+", re.ASCII)


def gpt2_split(text: str) -> list[str]:
    """`text` cut into GPT-2 pieces (raw text)."""
    return (_SPLIT_ASCII if text.isascii() else _SPLIT).findall(text)

# Pieces at most this long are merged with a plain O(n^2) scan, which is faster in Python for the
# short words that make up almost all text; longer ones go through the heap.
_SCAN_LIMIT = 48
# The word caches are cleared when they grow past this many entries, and pieces longer than
# _CACHE_MAX_PIECE characters (which hardly ever repeat) are not cached, so memory stays bounded.
_CACHE_LIMIT = 100_000
_CACHE_MAX_PIECE = 256


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
        return gpt2_split(replace_surrogates(text))

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
                if len(piece) <= _CACHE_MAX_PIECE:
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
        if len(piece) <= _CACHE_MAX_PIECE:
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
