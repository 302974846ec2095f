"""`PreTrainedTokenizer`: the pure-Python tokenizer base (see `base.py` for the subclass contract).

It owns the added-token table (tokens appended after the vocabulary, split out of the text before
the model's own `_tokenize` runs), and turns ids into model inputs in Python: truncation, special
tokens, masks, padding. Its outputs match transformers' Python tokenizers field for field.
"""

from __future__ import annotations

import json
import os
import re

from tokenizers import AddedToken

from .base_core import EncodeOptions, PreTrainedTokenizerBase, _describe
from .base_encoding import BatchEncoding
from .base_io import ADDED_TOKENS_FILE


class PreTrainedTokenizer(PreTrainedTokenizerBase):
    is_fast = False

    def __init__(self, **kwargs):
        added = kwargs.pop("added_tokens_decoder", None) or {}
        super().__init__(**kwargs)
        self._added_tokens_decoder: dict[int, AddedToken] = {}
        self._added_tokens_encoder: dict[str, int] = {}
        self._added_split_re: re.Pattern | None = None
        for index, token in sorted(added.items()):
            if not isinstance(index, int) or not isinstance(token, (str, AddedToken)):
                raise TypeError(f"added_tokens_decoder must map int -> str/AddedToken, got {index!r}: {token!r}")
            if isinstance(token, str):
                token = AddedToken(token, special=token in self.all_special_tokens, normalized=False)
            self._added_tokens_decoder[index] = token
            self._added_tokens_encoder[token.content] = index
        self._len = None
        # Special tokens missing from the vocabulary are appended to it, as transformers does.
        self._add_tokens(
            [t for t in self.all_special_tokens_extended if str(t) not in self._added_tokens_encoder],
            special_tokens=True,
        )

    # ---------------------------------------------------------------------------------------------
    # Hooks a model tokenizer implements (see base.py)
    # ---------------------------------------------------------------------------------------------
    def _tokenize(self, text: str, **kwargs) -> list[str]:
        raise NotImplementedError(f"{type(self).__name__} must implement _tokenize(text)")

    def _convert_token_to_id(self, token: str) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement _convert_token_to_id(token)")

    def _convert_id_to_token(self, index: int) -> str:
        raise NotImplementedError(f"{type(self).__name__} must implement _convert_id_to_token(index)")

    def get_vocab(self) -> dict[str, int]:
        raise NotImplementedError(f"{type(self).__name__} must implement get_vocab()")

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement vocab_size")

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return " ".join(tokens)

    def prepare_for_tokenization(self, text: str, is_split_into_words: bool = False, **kwargs):
        """Hook: adjust the text before tokenizing; return (text, unused kwargs)."""
        return text, kwargs

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str, ...]:
        raise NotImplementedError(f"{type(self).__name__} must implement save_vocabulary()")

    # ---------------------------------------------------------------------------------------------
    # Added tokens
    # ---------------------------------------------------------------------------------------------
    @property
    def added_tokens_decoder(self) -> dict[int, AddedToken]:
        return dict(sorted(self._added_tokens_decoder.items()))

    @property
    def added_tokens_encoder(self) -> dict[str, int]:
        return {t.content: i for i, t in sorted(self._added_tokens_decoder.items())}

    def get_added_vocab(self) -> dict[str, int]:
        return dict(self._added_tokens_encoder)

    def __len__(self) -> int:
        if self._len is None:
            self._len = len(self.get_vocab())
        return self._len

    def _add_tokens(self, new_tokens: list, special_tokens: bool = False) -> int:
        vocab = self.get_vocab()
        next_index = len(vocab)
        n_new = 0
        specials = set(self.all_special_tokens)
        for token in new_tokens:
            if isinstance(token, str):
                if token == "" or token in self._added_tokens_encoder:
                    continue
                is_special = special_tokens or token in specials
                token = AddedToken(token, rstrip=False, lstrip=False, normalized=not is_special, special=is_special)
            elif special_tokens:
                token = AddedToken(token.content, single_word=token.single_word, lstrip=token.lstrip,
                                   rstrip=token.rstrip, normalized=token.normalized, special=True)  # fmt: skip
            if token.content == "":
                continue
            if not token.special and token.normalized and self._lowercases_text():
                # A normalised token must match lower-cased text, as in transformers.
                token = AddedToken(token.content.lower(), single_word=token.single_word, lstrip=token.lstrip,
                                   rstrip=token.rstrip, normalized=True, special=False)  # fmt: skip
            if token.content in vocab:
                index = vocab[token.content]
            else:
                index = next_index + n_new
                vocab[token.content] = index
                n_new += 1
            if token.special and token.content not in specials:
                self._additional_special_tokens.append(token)
                self._additional_unset = False
                self.special_tokens_version += 1
                specials.add(token.content)
            self._added_tokens_decoder[index] = token
            self._added_tokens_encoder[token.content] = index
        self._len = None
        # Longest first, so that at any position the longest added token wins (transformers' Trie).
        contents = sorted(self._added_tokens_encoder, key=len, reverse=True)
        self._added_split_re = re.compile("|".join(map(re.escape, contents))) if contents else None
        return n_new

    # ---------------------------------------------------------------------------------------------
    # Tokenizing
    # ---------------------------------------------------------------------------------------------
    def tokenize(self, text: str, pair: str | None = None, add_special_tokens: bool = False, **kwargs) -> list[str]:
        """Split text into tokens; added/special tokens in the text are kept whole."""
        if not isinstance(text, str):
            raise TypeError(f"tokenize() expects a str, got {_describe(text)}")
        if pair is not None or add_special_tokens:
            ids = self._text_to_ids(text, kwargs)
            pair_ids = None if pair is None else self._text_to_ids(pair, kwargs)
            if add_special_tokens:
                ids = self.build_inputs_with_special_tokens(ids, pair_ids)
            elif pair_ids is not None:
                ids = ids + pair_ids
            return self.convert_ids_to_tokens(ids)
        tokens = []
        for piece, is_added in self._split_added(text, kwargs):
            if is_added:
                tokens.append(piece)
            else:
                tokens.extend(self._tokenize(piece))
        return tokens

    def _split_added(self, text: str, kwargs: dict) -> list[tuple[str, bool]]:
        """Text -> [(piece, is_added_token)], honouring the tokens' lstrip/rstrip/single_word flags."""
        split_special = kwargs.pop("split_special_tokens", self.split_special_tokens)
        text, rest = self.prepare_for_tokenization(text, **kwargs)
        rest.pop("is_split_into_words", None)
        if rest:
            raise TypeError(f"{type(self).__name__} got unexpected keyword arguments {sorted(rest)}")
        if self._lowercases_text():
            text = self._lower_outside_protected(text)
        if self._added_split_re is None or split_special:
            return [(text, False)] if text else []
        pieces: list[list] = []
        last = 0
        for m in self._added_split_re.finditer(text):
            if m.start() > last:
                pieces.append([text[last : m.start()], False])
            pieces.append([m.group(), True])
            last = m.end()
        if last < len(text):
            pieces.append([text[last:], False])
        for i, (piece, is_added) in enumerate(pieces):
            if not is_added:
                continue
            tok = self._added_tokens_decoder[self._added_tokens_encoder[piece]]
            left = pieces[i - 1] if i > 0 and not pieces[i - 1][1] else None
            right = pieces[i + 1] if i + 1 < len(pieces) and not pieces[i + 1][1] else None
            if tok.rstrip and right:
                right[0] = right[0].lstrip()
            if tok.lstrip and left:
                left[0] = left[0].rstrip()
            if tok.single_word and ((left and left[0] and left[0][-1] != " ") or (right and right[0] and right[0][0] != " ")):
                pieces[i][1] = False  # glued to a word: not a match, tokenized as ordinary text
        return [(p, a) for p, a in pieces if p]

    def _lowercases_text(self) -> bool:
        """Whether the tokenizer lower-cases text (v4 looks for a true `do_lower_case` attribute)."""
        return bool(getattr(self, "do_lower_case", False))

    def _lower_outside_protected(self, text: str) -> str:
        """v4, for a lower-casing tokenizer: lower-case the text before added tokens are matched, except
        where a special token or a normalised (hence stored lower-case) added token occurs verbatim, so
        that "AAAAA BBBBBB" finds the added token "aaaaa bbbbbb" while "[CLS]" stays a special token."""
        key = (self.special_tokens_version, len(self._added_tokens_decoder))
        if getattr(self, "_protected_key", None) != key:
            protected = set(self.all_special_tokens)
            protected.update(t.content for t in self._added_tokens_decoder.values() if not t.special and t.normalized)
            ordered = sorted((t for t in protected if t), key=len, reverse=True)
            self._protected_re = re.compile("(" + "|".join(map(re.escape, ordered)) + ")") if ordered else None
            self._protected_firsts = {t[0] for t in ordered}
            self._protected_key = key
        # Most texts hold no protected token at all; a scan for their first characters is far cheaper
        # than the regex split.
        if self._protected_re is None or not any(c in text for c in self._protected_firsts):
            return text.lower()
        # re.split with one group: even indices are the text between matches, odd ones the matches.
        parts = self._protected_re.split(text)
        return "".join(part if i % 2 else part.lower() for i, part in enumerate(parts))

    def _text_to_ids(self, text: str, kwargs: dict) -> list[int]:
        """Text -> ids. Model tokenizers may override `_tokenize_to_ids` with a faster fused path."""
        ids: list[int] = []
        for piece, is_added in self._split_added(text, dict(kwargs)):
            if is_added:
                ids.append(self._added_tokens_encoder[piece])
            else:
                ids.extend(self._tokenize_to_ids(piece))
        return ids

    def _tokenize_to_ids(self, text: str) -> list[int]:
        return [self._convert_token_to_id_with_added_voc(t) for t in self._tokenize(text)]

    def _convert_token_to_id_with_added_voc(self, token: str) -> int:
        index = self._added_tokens_encoder.get(token)
        return index if index is not None else self._convert_token_to_id(token)

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        """An id -> its token, or a list of ids -> tokens (special ones dropped if asked)."""
        if isinstance(ids, int):
            tok = self._added_tokens_decoder.get(ids)
            return tok.content if tok is not None else self._convert_id_to_token(ids)
        skip = set(self.all_special_ids) if skip_special_tokens else ()
        out = []
        for index in ids:
            index = int(index)
            if index in skip:
                continue
            tok = self._added_tokens_decoder.get(index)
            out.append(tok.content if tok is not None else self._convert_id_to_token(index))
        return out

    def _decode(self, ids: list[int], skip_special_tokens: bool) -> str:
        return self.convert_tokens_to_string(self.convert_ids_to_tokens(ids, skip_special_tokens=skip_special_tokens))

    # ---------------------------------------------------------------------------------------------
    # Encoding
    # ---------------------------------------------------------------------------------------------
    def _get_input_ids(self, seq, opts: EncodeOptions, kwargs: dict) -> list[int]:
        if isinstance(seq, str):
            return self._text_to_ids(seq, kwargs)
        if not seq:
            return []
        if isinstance(seq[0], int):
            if not all(isinstance(i, int) and not isinstance(i, bool) for i in seq):
                raise TypeError(f"A sequence of ids must hold only ints, got {_describe(seq)}")
            return list(seq)
        if not all(isinstance(w, str) for w in seq):
            raise TypeError(f"A pre-split sequence must hold only str, got {_describe(seq)}")
        if opts.is_split_into_words:
            return [i for word in seq for i in self._text_to_ids(word, kwargs)]
        return self.convert_tokens_to_ids(list(seq))

    def _encode_items(self, items: list, is_batched: bool, opts: EncodeOptions, kwargs: dict) -> BatchEncoding:
        if opts.return_offsets_mapping:
            raise NotImplementedError(
                "return_offsets_mapping needs a fast tokenizer (e.g. BertTokenizerFast); "
                f"{type(self).__name__} is pure Python and does not track character offsets"
            )
        rows = []
        for first, second in items:
            ids = self._get_input_ids(first, opts, kwargs)
            pair_ids = None if second is None else self._get_input_ids(second, opts, kwargs)
            rows.append(self._prepare_row(ids, pair_ids, opts))
        if not is_batched:
            row = rows[0]
            self._pad_row(row, opts.padding, opts.max_length, opts.pad_to_multiple_of, opts.padding_side,
                          opts.return_attention_mask)  # fmt: skip
            if opts.return_length:
                row["length"] = len(row["input_ids"])
            return BatchEncoding(row, tensor_type=opts.return_tensors, prepend_batch_axis=opts.return_tensors is not None,
                                 n_sequences=1 if items[0][1] is None else 2)  # fmt: skip
        if any("overflowing_tokens" in row for row in rows):
            for row in rows:
                row.setdefault("overflowing_tokens", [])
                row.setdefault("num_truncated_tokens", 0)
        batch = {key: [row[key] for row in rows] for key in (rows[0] if rows else {"input_ids": []})}
        if opts.return_length:  # measured before padding, as transformers' Python tokenizers do
            batch["length"] = [len(ids) for ids in batch["input_ids"]]
        if rows:
            self._pad_batch(batch, opts.padding, opts.max_length, opts.pad_to_multiple_of, opts.padding_side,
                            opts.return_attention_mask)  # fmt: skip
        elif opts.return_attention_mask:
            batch["attention_mask"] = []
        return BatchEncoding(batch, tensor_type=opts.return_tensors)

    def _save_extra_files(self, save_directory: str, prefix: str) -> tuple[str, ...]:
        beyond = {t.content: i for i, t in self._added_tokens_decoder.items() if i >= self.vocab_size}
        if not beyond:
            return ()
        path = os.path.join(save_directory, prefix + ADDED_TOKENS_FILE)
        with open(path, "w", encoding="utf-8") as f:
            f.write(json.dumps(beyond, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        return (path,)

