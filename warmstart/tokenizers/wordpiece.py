"""BERT's WordPiece tokenizers: `BertTokenizer` (pure Python) and `BertTokenizerFast` (`tokenizers`).

The pure-Python pipeline is the original BERT one (Devlin et al. 2018, google-research/bert
tokenization.py), which transformers' Python BertTokenizer reproduces:

  1. clean: drop NUL, U+FFFD and control characters (Unicode category C*, except tab/newline/CR,
     which count as whitespace). Lone surrogates are category Cs, so they are dropped too;
  2. put spaces around CJK ideographs (tokenize_chinese_chars);
  3. NFC-normalise, split on whitespace (Python's str.split);
  4. per word, unless in never_split: lower-case and/or strip accents (NFD, drop category Mn), then
     split off every punctuation character (category P*, plus all non-alphanumeric ASCII);
  5. WordPiece: greedy longest-match-first against the vocabulary, continuation pieces prefixed
     "##"; a word longer than max_input_chars_per_word, or one with no full match, becomes [UNK].

Speed comes from doing steps 1-3 on whole strings with C-level str methods (`str.translate` with
tables filled lazily from the running Python's `unicodedata`, so results match it exactly), and from
caching steps 4-5 per distinct whitespace-separated word: real text repeats words, so most words cost
one dict lookup.

The two classes give the same ids except where their Unicode data differ: the Python class uses the
running Python's `unicodedata` (as transformers' Python class does), the fast one the tables compiled
into `tokenizers`. So code points unassigned in Python's Unicode version (category Cn) are dropped by
the Python class and kept (as [UNK]) by the fast one, characters whose category changed between the
two versions may split differently, a word-final Greek capital sigma lower-cases to the final form
only in Python, and with do_lower_case=False only the Python class NFC-composes (e.g. "e" + U+0301).
Each class matches its transformers counterpart exactly.

Behaviour on odd input is the same in both classes: control, zero-width (category Cf) and lone-
surrogate characters are removed, 100k-character inputs are fine (a 100k-character word is one
[UNK]). The fast class replaces lone surrogates with U+FFFD before the Rust backend sees them (it
cannot take them), which its normaliser then removes like the Python class does.
"""

from __future__ import annotations

import os
import re
import unicodedata

from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

from .base_fast import PreTrainedTokenizerFast, load_backend
from .base_slow import PreTrainedTokenizer

VOCAB_FILES_NAMES = {"vocab_file": "vocab.txt"}

# CJK Unified Ideographs blocks, as listed by the original BERT code (Hangul, kana are not included).
_CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)  # fmt: skip


def _is_cjk(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def _is_dropped(cp: int) -> bool:
    """NUL, U+FFFD and control characters (category C*, which includes unassigned code points and lone
    surrogates), but not tab/newline/CR: BERT treats those as whitespace."""
    return cp in (0, 0xFFFD) or (unicodedata.category(chr(cp))[0] == "C" and cp not in (9, 10, 13))


class _CharTable(dict):
    """A `str.translate` table filled lazily from unicodedata: one C-level dict lookup per character
    once a character has been seen, instead of a Python function call (or a regex over ~700 ranges)."""

    def __init__(self, rule):
        super().__init__()
        self._rule = rule

    def __missing__(self, cp: int):
        value = self[cp] = self._rule(cp)
        return value


# Step 1 (+ step 2): drop what BERT drops, optionally put spaces around CJK ideographs.
_CLEAN = _CharTable(lambda cp: None if _is_dropped(cp) else chr(cp))
_CLEAN_CJK = _CharTable(lambda cp: None if _is_dropped(cp) else (f" {chr(cp)} " if _is_cjk(cp) else chr(cp)))
# Accent stripping: after NFD, drop the non-spacing marks (category Mn).
_NO_MARKS = _CharTable(lambda cp: None if unicodedata.category(chr(cp)) == "Mn" else chr(cp))
# Punctuation: category P*, plus every non-alphanumeric ASCII character ("$", "^", "`", ... too).
_PUNCT = _CharTable(lambda cp: unicodedata.category(chr(cp))[0] == "P" or (33 <= cp <= 126 and not chr(cp).isalnum()))

# ASCII fast path: the ASCII control characters other than \t \n \r are deleted.
_ASCII_DROP = {cp: None for cp in [*range(0, 9), 11, 12, *range(14, 32), 127]}
_ASCII_PUNCT = re.compile(r"[!-/:-@\[-`{-~]|[^!-/:-@\[-`{-~]+")


def _split_punctuation(word: str) -> list[str]:
    if word.isascii():
        return _ASCII_PUNCT.findall(word)
    pieces, start = [], 0
    for i, ch in enumerate(word):
        if _PUNCT[ord(ch)]:
            if start < i:
                pieces.append(word[start:i])
            pieces.append(ch)
            start = i + 1
    if start < len(word):
        pieces.append(word[start:])
    return pieces


class BasicTokenizer:
    """Steps 1-4 above: text -> words and punctuation, before WordPiece (v4's helper class)."""

    def __init__(self, do_lower_case=True, never_split=None, tokenize_chinese_chars=True, strip_accents=None,
                 do_split_on_punc=True):  # fmt: skip
        self.do_lower_case = do_lower_case
        self.never_split = set(never_split or ())
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.strip_accents = strip_accents
        self.do_split_on_punc = do_split_on_punc

    def split_words(self, text: str) -> list[str]:
        """Steps 1-3: clean, space out CJK ideographs, NFC, split on whitespace."""
        if text.isascii():
            return text.translate(_ASCII_DROP).split()
        text = text.translate(_CLEAN_CJK if self.tokenize_chinese_chars else _CLEAN)
        return unicodedata.normalize("NFC", text).split()

    def split_word(self, word: str, never_split=frozenset()) -> list[str]:
        """Step 4 for one whitespace-separated word."""
        if word in never_split:
            return [word]
        if self.do_lower_case:
            word = word.lower()
            if self.strip_accents is not False:
                word = _strip_accents(word)
        elif self.strip_accents:
            word = _strip_accents(word)
        if not word:
            return []
        if not self.do_split_on_punc or word in never_split:
            return [word]
        return _split_punctuation(word)

    def tokenize(self, text: str, never_split=None) -> list[str]:
        """Text -> basic tokens (v4 API)."""
        never = self.never_split.union(never_split) if never_split else self.never_split
        return [piece for word in self.split_words(text) for piece in self.split_word(word, never)]


def _strip_accents(word: str) -> str:
    if word.isascii():
        return word
    return unicodedata.normalize("NFD", word).translate(_NO_MARKS)


class WordpieceTokenizer:
    """Step 5: greedy longest-match-first WordPiece over one word (v4's helper class)."""

    def __init__(self, vocab: dict[str, int], unk_token: str, max_input_chars_per_word: int = 100):
        self.vocab = vocab
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word
        # No vocabulary entry is longer than this, so longer candidate substrings need no lookup.
        self._longest = max((len(t) for t in vocab), default=0)

    def tokenize_word(self, word: str) -> list[str]:
        if len(word) > self.max_input_chars_per_word:
            return [self.unk_token]
        vocab, pieces, start, n = self.vocab, [], 0, len(word)
        if word in vocab:  # most words are whole vocabulary entries
            return [word]
        while start < n:
            end = min(n, start + self._longest)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in vocab:
                    break
                end -= 1
            else:
                return [self.unk_token]
            pieces.append(piece)
            start = end
        return pieces

    def tokenize(self, text: str) -> list[str]:
        """Whitespace-separated words -> WordPiece tokens (v4 API)."""
        return [piece for word in text.split() for piece in self.tokenize_word(word)]


def load_vocab(vocab_file: str) -> dict[str, int]:
    """vocab.txt (one token per line, id = line number) -> {token: id}; rejects empty / duplicate vocabularies."""
    if not isinstance(vocab_file, (str, os.PathLike)) or not os.path.isfile(vocab_file):
        raise FileNotFoundError(f"No WordPiece vocabulary file at {vocab_file!r}")
    try:
        with open(vocab_file, encoding="utf-8") as f:
            tokens = f.read().split("\n")
    except UnicodeDecodeError as err:
        raise ValueError(f"{vocab_file} is not a UTF-8 text vocabulary (one token per line): {err}") from err
    if tokens and tokens[-1] == "":
        tokens.pop()  # the final newline
    if not tokens:
        raise ValueError(f"The vocabulary file {vocab_file} is empty")
    vocab: dict[str, int] = {}
    for index, token in enumerate(tokens):
        if token in vocab:
            raise ValueError(f"{vocab_file} lists the token {token!r} twice (lines {vocab[token] + 1} and {index + 1})")
        vocab[token] = index
    return vocab


def vocab_from_tokenizer_json(tokenizer_file: str) -> tuple[dict[str, int], dict]:
    """The WordPiece vocabulary and added tokens inside a tokenizer.json (transformers v5 saves only that)."""
    backend = load_backend(tokenizer_file)
    if not isinstance(backend.model, WordPiece):
        raise ValueError(f"{tokenizer_file} holds a {type(backend.model).__name__} model, not WordPiece")
    vocab = backend.get_vocab(with_added_tokens=False)
    if not vocab:
        raise ValueError(f"The WordPiece vocabulary in {tokenizer_file} is empty")
    return vocab, backend.get_added_tokens_decoder()


def _check_unk(vocab: dict[str, int], unk_token, where: str) -> None:
    if str(unk_token) not in vocab:
        raise ValueError(f"The vocabulary {where} has no unknown token {str(unk_token)!r}")


class _BertLayout:
    """BERT's special-token layout, shared by both classes: [CLS] A [SEP] (B [SEP])."""

    def build_inputs_with_special_tokens(self, token_ids_0: list[int], token_ids_1: list[int] | None = None) -> list[int]:
        """[CLS] A [SEP], or [CLS] A [SEP] B [SEP] for a pair."""
        cls, sep = [self.cls_token_id], [self.sep_token_id]
        if token_ids_1 is None:
            return cls + list(token_ids_0) + sep
        return cls + list(token_ids_0) + sep + list(token_ids_1) + sep

    def create_token_type_ids_from_sequences(self, token_ids_0: list[int], token_ids_1: list[int] | None = None) -> list[int]:
        """0 for [CLS] A [SEP], 1 for B [SEP]."""
        first = [0] * (len(token_ids_0) + 2)
        return first if token_ids_1 is None else first + [1] * (len(token_ids_1) + 1)

    def get_special_tokens_mask(self, token_ids_0: list[int], token_ids_1: list[int] | None = None,
                                already_has_special_tokens: bool = False) -> list[int]:  # fmt: skip
        """1 at [CLS]/[SEP] positions of the built sequence, 0 elsewhere."""
        if already_has_special_tokens:
            return super().get_special_tokens_mask(token_ids_0, token_ids_1, already_has_special_tokens=True)
        mask = [1] + [0] * len(token_ids_0) + [1]
        return mask if token_ids_1 is None else mask + [0] * len(token_ids_1) + [1]


class BertTokenizer(_BertLayout, PreTrainedTokenizer):
    """BERT WordPiece tokenizer in pure Python (transformers v4 `BertTokenizer`; v5's `BertTokenizerLegacy`)."""

    vocab_files_names = VOCAB_FILES_NAMES
    fallback_files_names = {"tokenizer_file": "tokenizer.json"}
    model_input_names = ["input_ids", "token_type_ids", "attention_mask"]

    def __init__(self, vocab_file=None, do_lower_case=True, do_basic_tokenize=True, never_split=None,
                 unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]",
                 tokenize_chinese_chars=True, strip_accents=None, clean_up_tokenization_spaces=True,
                 max_input_chars_per_word=100, **kwargs):  # fmt: skip
        vocab = kwargs.pop("vocab", None)
        tokenizer_file = kwargs.pop("tokenizer_file", None)
        if isinstance(vocab, dict):
            self.vocab = dict(vocab)
        elif vocab_file is None and vocab is None and tokenizer_file is not None:
            self.vocab, added = vocab_from_tokenizer_json(tokenizer_file)
            kwargs.setdefault("added_tokens_decoder", added)
        elif vocab_file is None and vocab is None:
            raise FileNotFoundError("BertTokenizer needs a vocab_file (vocab.txt, one token per line)")
        else:
            self.vocab = load_vocab(vocab_file if vocab_file is not None else vocab)
        if not self.vocab:
            raise ValueError("BertTokenizer got an empty vocabulary")
        _check_unk(self.vocab, unk_token, vocab_file or "dict")
        self.ids_to_tokens = {i: t for t, i in self.vocab.items()}
        self.do_basic_tokenize = do_basic_tokenize
        self.basic_tokenizer = BasicTokenizer(do_lower_case, never_split, tokenize_chinese_chars, strip_accents)
        self.wordpiece_tokenizer = WordpieceTokenizer(self.vocab, str(unk_token), max_input_chars_per_word)
        self._word_cache: dict[str, tuple[list[str], list[int]]] = {}
        self._cache_key = None
        super().__init__(
            vocab_file=vocab_file, do_lower_case=do_lower_case, do_basic_tokenize=do_basic_tokenize,
            never_split=never_split, unk_token=unk_token, sep_token=sep_token, pad_token=pad_token,
            cls_token=cls_token, mask_token=mask_token, tokenize_chinese_chars=tokenize_chinese_chars,
            strip_accents=strip_accents, clean_up_tokenization_spaces=clean_up_tokenization_spaces, **kwargs,
        )  # fmt: skip

    @property
    def do_lower_case(self) -> bool:
        return self.basic_tokenizer.do_lower_case

    def _lowercases_text(self) -> bool:
        # v4's do_lower_case reads the basic tokenizer, which does not exist with do_basic_tokenize=False:
        # then neither the text nor added tokens are lower-cased.
        return self.do_basic_tokenize and self.do_lower_case

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def get_vocab(self) -> dict[str, int]:
        return {**self.vocab, **self._added_tokens_encoder}

    def _convert_token_to_id(self, token: str) -> int:
        index = self.vocab.get(token)
        return self.vocab[self.wordpiece_tokenizer.unk_token] if index is None else index

    def _convert_id_to_token(self, index: int) -> str:
        return self.ids_to_tokens.get(index, str(self.unk_token))

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return " ".join(tokens).replace(" ##", "").strip()

    # -- the cached pipeline -------------------------------------------------------------------------
    def _word_table(self):
        """(cache, never_split) for this call; the cache is dropped when the special tokens change.

        As in transformers, the special tokens are never split by the basic tokenizer (even with
        split_special_tokens=True, which only stops them being matched as added tokens)."""
        if self._cache_key != self.special_tokens_version:
            self._never = frozenset(self.basic_tokenizer.never_split.union(self.all_special_tokens))
            self._word_cache = {}
            self._cache_key = self.special_tokens_version
        return self._word_cache, self._never

    def _word_pieces(self, word: str, never: frozenset) -> tuple[list[str], list[int]]:
        tokens = []
        keep_whole = self.basic_tokenizer.never_split
        for piece in self.basic_tokenizer.split_word(word, never):
            if piece in keep_whole:
                tokens.append(piece)
            else:
                tokens.extend(self.wordpiece_tokenizer.tokenize_word(piece))
        unk = self.vocab[self.wordpiece_tokenizer.unk_token]
        return tokens, [self.vocab.get(t, unk) for t in tokens]

    def _pieces(self, text: str) -> list[tuple[list[str], list[int]]]:
        if not self.do_basic_tokenize:
            tokens = self.wordpiece_tokenizer.tokenize(text)
            return [(tokens, [self._convert_token_to_id(t) for t in tokens])]
        cache, never = self._word_table()
        out = []
        for word in self.basic_tokenizer.split_words(text):
            hit = cache.get(word)
            if hit is None:
                if len(cache) > 200_000:  # bound memory on endless streams of new words
                    cache.clear()
                hit = cache[word] = self._word_pieces(word, never)
            out.append(hit)
        return out

    def _tokenize(self, text: str, **kwargs) -> list[str]:
        return [t for tokens, _ in self._pieces(text) for t in tokens]

    def _tokenize_to_ids(self, text: str) -> list[int]:
        return [i for _, ids in self._pieces(text) for i in ids]

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str]:
        """Write vocab.txt in id order (one token per line); return its path."""
        name = (filename_prefix + "-" if filename_prefix else "") + VOCAB_FILES_NAMES["vocab_file"]
        path = os.path.join(save_directory, name) if os.path.isdir(save_directory) else save_directory
        ordered = sorted(self.vocab.items(), key=lambda kv: kv[1])
        if [i for _, i in ordered] != list(range(len(ordered))):
            raise ValueError("The vocabulary ids are not 0..N-1 without gaps, so it cannot be written as vocab.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write("".join(t + "\n" for t, _ in ordered))
        return (path,)


class BertTokenizerFast(_BertLayout, PreTrainedTokenizerFast):
    """BERT WordPiece tokenizer on the `tokenizers` library (transformers' `BertTokenizerFast`).

    clean_up_tokenization_spaces defaults to False, as in transformers v5 (whose BertTokenizer is this
    class): the backend's WordPiece decoder already joins most punctuation. The pure-Python class
    keeps v4's True, as transformers' Python BERT tokenizer does."""

    vocab_files_names = {"vocab_file": "vocab.txt", "tokenizer_file": "tokenizer.json"}
    model_input_names = ["input_ids", "token_type_ids", "attention_mask"]

    def __init__(self, vocab_file=None, tokenizer_file=None, do_lower_case=True, unk_token="[UNK]", sep_token="[SEP]",
                 pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]", tokenize_chinese_chars=True,
                 strip_accents=None, clean_up_tokenization_spaces=False, **kwargs):  # fmt: skip
        backend = kwargs.pop("tokenizer_object", None)
        vocab = kwargs.pop("vocab", None)
        if backend is None and tokenizer_file is not None:
            backend = load_backend(tokenizer_file)
        if backend is None:
            if isinstance(vocab, dict):
                vocab_dict = dict(vocab)
            elif vocab_file is not None or vocab is not None:
                vocab_dict = load_vocab(vocab_file if vocab_file is not None else vocab)
            else:
                raise FileNotFoundError("BertTokenizerFast needs a vocab_file (vocab.txt) or a tokenizer_file")
            _check_unk(vocab_dict, unk_token, vocab_file or "dict")
            backend = Tokenizer(WordPiece(vocab_dict, unk_token=str(unk_token), max_input_chars_per_word=100))
            backend.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=tokenize_chinese_chars,
                                                            strip_accents=strip_accents, lowercase=do_lower_case)  # fmt: skip
            backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
            backend.decoder = decoders.WordPiece(prefix="##")
            ids = backend.get_vocab()
            cls, sep = str(cls_token), str(sep_token)
            if cls in ids and sep in ids:
                backend.post_processor = processors.TemplateProcessing(
                    single=f"{cls}:0 $A:0 {sep}:0", pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
                    special_tokens=[(cls, ids[cls]), (sep, ids[sep])],
                )  # fmt: skip
        else:
            _sync_normalizer(backend, do_lower_case, strip_accents, tokenize_chinese_chars)
        self.do_lower_case = do_lower_case
        super().__init__(
            tokenizer_object=backend, vocab_file=vocab_file, do_lower_case=do_lower_case, unk_token=unk_token,
            sep_token=sep_token, pad_token=pad_token, cls_token=cls_token, mask_token=mask_token,
            tokenize_chinese_chars=tokenize_chinese_chars, strip_accents=strip_accents,
            clean_up_tokenization_spaces=clean_up_tokenization_spaces, **kwargs,
        )  # fmt: skip


def _sync_normalizer(backend: Tokenizer, lowercase, strip_accents, chinese) -> None:
    """A tokenizer.json whose BertNormalizer disagrees with the given options is updated to them (v4)."""
    norm = backend.normalizer
    if not isinstance(norm, normalizers.BertNormalizer):
        return
    if (norm.lowercase, norm.strip_accents, norm.handle_chinese_chars) != (lowercase, strip_accents, chinese):
        backend.normalizer = normalizers.BertNormalizer(
            clean_text=norm.clean_text, handle_chinese_chars=chinese, strip_accents=strip_accents, lowercase=lowercase
        )
