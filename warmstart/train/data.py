"""Seq2seq data: read (source, target) pairs from jsonl / csv / tsv, tokenize them, and check they fit.

Everything here fails before training starts, naming the file, the line and the offending value:
a missing column (with the columns the file does have), an empty file, bytes that are not UTF-8,
a value that is not text, and a target longer than the decoder's position table.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

def _short(value: Any, width: int) -> str:
    """repr(value), cut to about `width` characters with a visible ellipsis."""
    text = repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."


FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".tsv": "tsv"}


@dataclass(frozen=True)
class Seq2SeqExample:
    source: str
    target: str
    origin: str = ""  # "file:line", so errors about this example can point at it


# -- reading ---------------------------------------------------------------------------------------
def read_seq2seq(path: str | Path, source_column: str = "source", target_column: str = "target",
                 format: str | None = None) -> list[Seq2SeqExample]:
    """The (source, target) pairs of a data file, in file order.

    `format` is "jsonl" (one JSON object per line; a `.json` file may also be one JSON array of
    objects), "csv" (header row, standard quoting) or "tsv" (header row, tab-separated, no quoting, as
    the IANA format has it); by default it follows the file's suffix. Blank lines are skipped.
    """
    path = Path(path)
    fmt = format if format is not None else FORMATS.get(path.suffix.lower())
    if fmt not in ("jsonl", "csv", "tsv"):
        what = f"format={format!r}" if format is not None else f"the suffix {path.suffix!r}"
        raise ValueError(f"cannot tell how to read {path} from {what}; use a .jsonl/.json, .csv or .tsv file "
                         f"or pass format='jsonl', 'csv' or 'tsv'")
    text = _read_text(path)
    if not text.strip():
        raise ValueError(f"{path} is empty: it holds no examples")
    rows = _json_rows(text, path) if fmt == "jsonl" else _delimited_rows(text, path, fmt, (source_column, target_column))
    examples = []
    for where, row in rows:
        values = []
        for column in (source_column, target_column):
            if column not in row:
                raise ValueError(f"{where} has no {column!r} column; the columns found are {sorted(row)}. "
                                 f"Name the right ones with source_column= / target_column=")
            value = row[column]
            if not isinstance(value, str):
                raise ValueError(f"{where}: {column!r} must be text, got {type(value).__name__} {_short(value, 60)}")
            values.append(value)
        examples.append(Seq2SeqExample(values[0], values[1], where))
    if not examples:
        raise ValueError(f"{path} holds no examples" + (", only a header row" if fmt != "jsonl" else ""))
    return examples


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"data file {path} does not exist") from None
    except IsADirectoryError:
        raise ValueError(f"{path} is a directory, not a data file") from None
    try:
        return data.decode("utf-8-sig")  # a leading byte-order mark is tolerated and dropped
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise ValueError(f"{path} is not UTF-8: byte 0x{data[e.start]:02x} at line {line} (byte offset {e.start}) "
                         f"cannot be decoded; re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)") from None


def _json_rows(text: str, path: Path):
    if text.lstrip().startswith("["):  # one JSON array of objects
        try:
            items = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON: {e}") from None
        rows = ((f"{path} item {i}", item) for i, item in enumerate(items))
    else:
        rows = _json_lines(text, path)
    for where, item in rows:
        if not isinstance(item, dict):
            raise ValueError(f"{where} must be a JSON object with the source and target fields, "
                             f"got {type(item).__name__} {_short(item, 60)}")
        yield where, item


def _json_lines(text: str, path: Path):
    # split("\n"), not splitlines(): JSON strings may hold U+2028 and friends unescaped.
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            yield f"{path}:{number}", json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{number} is not a JSON object ({e.msg} at column {e.colno}): "
                             f"{_short(line, 80)}") from None


def _delimited_rows(text: str, path: Path, fmt: str, wanted: tuple[str, str]):
    options = {"delimiter": ","} if fmt == "csv" else {"delimiter": "\t", "quoting": csv.QUOTE_NONE}
    reader = csv.reader(io.StringIO(text, newline=""), **options)
    try:
        header = next((h for h in reader if h), None)
        if header is None:
            raise ValueError(f"{path} is empty: it has no header row")
        missing = [c for c in wanted if c not in header]
        if missing:
            raise ValueError(f"{path} has no column {missing[0]!r}; its header has {header}. "
                             f"Name the right ones with source_column= / target_column=")
        duplicated = sorted({c for c in header if header.count(c) > 1})
        if duplicated:
            raise ValueError(f"{path}: the header names {duplicated} more than once: {header}")
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise ValueError(f"{path}:{reader.line_num} has {len(row)} fields but the header has {len(header)} "
                                 f"({header}): {_short(row, 100)}")
            yield f"{path}:{reader.line_num}", dict(zip(header, row))
    except csv.Error as e:
        raise ValueError(f"{path}:{reader.line_num} is not valid {fmt.upper()}: {e}") from None


# -- tokenizing ------------------------------------------------------------------------------------
def tokenize_seq2seq(examples: Sequence[Seq2SeqExample], tokenizer, target_tokenizer=None,
                     max_source_length: int | None = None, max_target_length: int | None = None) -> list[dict]:
    """`[{"input_ids": [...], "labels": [...]}]` for `DataCollatorForSeq2Seq`, one per example.

    Sources go through `tokenizer`, targets through `target_tokenizer` (default: the same one), each
    with the tokenizer's special tokens (for BERT, `[CLS] ... [SEP]`) and truncated to the given
    maximum when one is given. Run `check_target_lengths` afterwards to learn whether they fit the model.
    """
    if not examples:
        raise ValueError("tokenize_seq2seq got no examples")
    target_tokenizer = tokenizer if target_tokenizer is None else target_tokenizer
    for name, value in (("max_source_length", max_source_length), ("max_target_length", max_target_length)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a positive int or None, got {value!r}")
    sources = tokenizer([e.source for e in examples], truncation=max_source_length is not None,
                        max_length=max_source_length)["input_ids"]
    targets = target_tokenizer([e.target for e in examples], truncation=max_target_length is not None,
                               max_length=max_target_length)["input_ids"]
    return [{"input_ids": s, "labels": t} for s, t in zip(sources, targets)]


# -- fitting the model -----------------------------------------------------------------------------
def position_limit(config: Any, side: str = "decoder") -> int:
    """How many tokens a model's position table holds. For an encoder-decoder config, `side` picks
    the encoder or the decoder; RoBERTa's table starts after its padding index (514 rows -> 512)."""
    if side not in ("encoder", "decoder"):
        raise ValueError(f"side must be 'encoder' or 'decoder', got {side!r}")
    if getattr(config, "model_type", None) == "encoder-decoder":
        config = getattr(config, side)
    model_type = getattr(config, "model_type", None)
    if model_type == "gpt2":
        return config.n_positions
    if not hasattr(config, "max_position_embeddings"):
        raise ValueError(f"{type(config).__name__} (model_type {model_type!r}) has no max_position_embeddings")
    if model_type == "roberta":
        return config.max_position_embeddings - config.pad_token_id - 1
    return config.max_position_embeddings


def check_target_lengths(features: Sequence[dict], limit: int, examples: Sequence[Seq2SeqExample] | None = None) -> None:
    """Raise if any tokenized target (`labels`) is longer than the decoder's `limit` positions
    (see `position_limit`), naming the longest one."""
    _check_lengths(features, "labels", limit, examples, "target", "decoder", "max_target_length")


def check_source_lengths(features: Sequence[dict], limit: int, examples: Sequence[Seq2SeqExample] | None = None) -> None:
    """Raise if any tokenized source (`input_ids`) is longer than the encoder's `limit` positions."""
    _check_lengths(features, "input_ids", limit, examples, "source", "encoder", "max_source_length")


def _check_lengths(features, key, limit, examples, what, side, option) -> None:
    if not isinstance(limit, int) or limit < 1:
        raise ValueError(f"the {side}'s position limit must be a positive int, got {limit!r}")
    if examples is not None and len(examples) != len(features):
        raise ValueError(f"got {len(features)} tokenized examples but {len(examples)} examples to name them by")
    lengths = [len(f[key]) for f in features]
    if not lengths:
        return
    longest = max(range(len(lengths)), key=lengths.__getitem__)
    if lengths[longest] <= limit:
        return
    too_long = sum(n > limit for n in lengths)
    if examples is not None:
        e = examples[longest]
        name = f"{e.origin or f'example {longest}'} ({_short(getattr(e, what), 80)})"
    else:
        name = f"example {longest}"
    raise ValueError(f"{too_long} {what}(s) do not fit the {side}'s {limit} positions; the longest, {name}, has "
                     f"{lengths[longest]} tokens. Truncate with {option}<={limit} or shorten them")
