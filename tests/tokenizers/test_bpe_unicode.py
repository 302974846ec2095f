"""The frozen GPT-2 character classes (bpe_unicode.py) against the installed `tokenizers`.

The pure-Python BPE splits text with letter / number / space classes copied from the regex engine
inside `tokenizers` (Oniguruma). Here the classes are measured again from the installed library, over
every code point, so a `tokenizers` release with a new Unicode version is caught (with the table to
paste printed in the failure)."""

from __future__ import annotations

import pytest
from tokenizers import Regex, pre_tokenizers

from warmstart.tokenizers import bpe_unicode
from warmstart.tokenizers.bpe_model import gpt2_split, to_byte_chars

CODE_POINTS = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]


def _measured_ranges(pattern: str) -> list[tuple[int, int]]:
    """Code point ranges the backend's regex engine matches with `pattern` (one pass over all of them)."""
    everything = "".join(map(chr, CODE_POINTS))
    kept = pre_tokenizers.Split(Regex(pattern), behavior="removed").pre_tokenize_str(everything)
    out, pos = [], 0
    for _, (start, end) in kept:  # what is left between two removed stretches is a matched range
        if start > pos:
            out.append((CODE_POINTS[pos], CODE_POINTS[start - 1]))
        pos = end
    if pos < len(CODE_POINTS):
        out.append((CODE_POINTS[pos], CODE_POINTS[-1]))
    return out


def _as_table(ranges: list[tuple[int, int]]) -> str:
    return " ".join(f"{a:x}" if a == b else f"{a:x}-{b:x}" for a, b in ranges)


@pytest.mark.parametrize("name, pattern", [("LETTERS", r"\p{L}+"), ("NUMBERS", r"\p{N}+"), ("SPACES", r"\s+")])
def test_tables_match_the_installed_tokenizers(name, pattern):
    measured = _measured_ranges(pattern)
    frozen = bpe_unicode.ranges(getattr(bpe_unicode, name))
    assert frozen == measured, f"{name} drifted; new table:\n{_as_table(measured)}"


def test_split_agrees_with_bytelevel_on_every_character_class_boundary():
    """One string per class boundary: each range's first and last code point between ASCII context."""
    backend = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    edges = {c for table in (bpe_unicode.LETTERS, bpe_unicode.NUMBERS, bpe_unicode.SPACES)
             for a, b in bpe_unicode.ranges(table) for c in (a - 1, a, b, b + 1)}  # fmt: skip
    edges = sorted(c for c in edges if 0 <= c < 0x110000 and not 0xD800 <= c <= 0xDFFF)
    for template in ("a{}a", "1{}1", " {}x", "{}  y", ".{}."):
        text = "|".join(template.format(chr(c)) for c in edges)
        assert [to_byte_chars(p) for p in gpt2_split(text)] == [p for p, _ in backend.pre_tokenize_str(text)], template
