"""Tokenizer speed for the byte-level BPE and SentencePiece classes: warmstart vs transformers.

Same lines and modes as bench/tokenization.py (which adds these rows to its table through `bench_rows`):
"single" calls the tokenizer once per line, "batched" tokenizes all lines in one call (padding,
truncation to 128, torch tensors). Ratios are transformers_time / warmstart_time (> 1: we are faster).

  GPT2Tokenizer, RobertaTokenizer          our pure-Python BPE vs transformers' class of the same
                                           name, which in v5 runs on `tokenizers` (Rust): v5 has no
                                           pure-Python GPT-2 tokenizer left to compare with
  GPT2TokenizerFast, RobertaTokenizerFast  both on `tokenizers`
  BertGenerationTokenizer                  both Python around `sentencepiece`

No real GPT-2 / BertGeneration vocabulary is available offline, so a byte-level BPE (16k tokens) and
a unigram SentencePiece model (8k pieces) are trained on the lines first; every row uses the same
files on both sides. The pure-Python BPE caches each distinct word, so its "cold" rows clear that
cache before every run.

    .venv/bin/python bench/tokenize_bpe.py            # full table
    .venv/bin/python bench/tokenize_bpe.py --quick    # fewer repetitions
"""

from __future__ import annotations

import argparse
import os
import tempfile

import common  # bench/ is sys.path[0] for a script here




def train_assets(lines: list[str], folder: str) -> dict[str, str]:
    """Train the BPE (GPT-2 and RoBERTa special tokens) and SentencePiece models; return their folders."""
    import sentencepiece as spm
    from tokenizers import ByteLevelBPETokenizer

    out = {}
    for kind, specials in (("gpt2", ["<|endoftext|>"]), ("roberta", ["<s>", "<pad>", "</s>", "<unk>", "<mask>"])):
        path = os.path.join(folder, kind)
        os.makedirs(path)
        trainer = ByteLevelBPETokenizer()
        trainer.train_from_iterator(lines, vocab_size=16_000, min_frequency=2, special_tokens=specials, show_progress=False)
        trainer.save_model(path)
        out[kind] = path
    path = os.path.join(folder, "bert_generation")
    os.makedirs(path)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_prefix=os.path.join(path, "spiece"), vocab_size=8_000,
        character_coverage=0.9995, pad_id=0, eos_id=1, bos_id=2, unk_id=3, user_defined_symbols=["<::::>"],
        minloglevel=2,
    )  # fmt: skip
    out["bert_generation"] = path
    return out


def _pairs(assets: dict[str, str]) -> dict[str, tuple]:
    import transformers

    from warmstart.tokenizers import (
        BertGenerationTokenizer, GPT2Tokenizer, GPT2TokenizerFast, RobertaTokenizer, RobertaTokenizerFast,
    )  # fmt: skip

    pairs = {
        "GPT2Tokenizer": (GPT2Tokenizer, transformers.GPT2Tokenizer, "gpt2"),
        "GPT2TokenizerFast": (GPT2TokenizerFast, transformers.GPT2Tokenizer, "gpt2"),
        "RobertaTokenizer": (RobertaTokenizer, transformers.RobertaTokenizer, "roberta"),
        "RobertaTokenizerFast": (RobertaTokenizerFast, transformers.RobertaTokenizer, "roberta"),
        "BertGenerationTokenizer": (BertGenerationTokenizer, transformers.BertGenerationTokenizer, "bert_generation"),
    }
    out = {}
    for name, (ours_cls, ref_cls, kind) in pairs.items():
        ours, theirs = ours_cls.from_pretrained(assets[kind]), ref_cls.from_pretrained(assets[kind])
        for tok in (ours, theirs):
            if tok.pad_token is None:  # GPT-2 has no padding token; batching needs one
                tok.pad_token = tok.eos_token
        out[name] = (ours, theirs)
    return out


def bench_rows(lines: list[str], reps: int, interleaved, assets: dict[str, str] | None = None) -> list[tuple]:
    """[(class, mode, transformers_s, warmstart_s), ...] for the five classes in single and batched mode."""
    with tempfile.TemporaryDirectory() as tmp:
        assets = assets or train_assets(lines, tmp)
        pairs = _pairs(assets)
    batch_kw = dict(padding=True, truncation=True, max_length=128, return_tensors="pt")
    for ours, theirs in pairs.values():  # the same ids on both sides, or the timing means nothing
        assert ours(lines[:200], **batch_kw)["input_ids"].tolist() == theirs(lines[:200], **batch_kw)["input_ids"].tolist()
    modes = {"single": lambda tok: [tok(line) for line in lines], "batched": lambda tok: tok(lines, **batch_kw)}
    rows = []
    for name, (ours, theirs) in pairs.items():
        for mode, run in modes.items():
            times = interleaved({"theirs": lambda r=run, t=theirs: r(t), "ours": lambda r=run, o=ours: r(o)}, reps=reps)
            rows.append((name, mode, times["theirs"], times["ours"]))
            if hasattr(ours, "_bpe"):  # the pure-Python BPE: again with its word caches emptied first
                def cold(r=run, o=ours):
                    o._bpe._tokens.clear()
                    o._bpe._ids.clear()
                    return r(o)

                times = interleaved({"theirs": lambda r=run, t=theirs: r(t), "ours": cold}, reps=reps)
                rows.append((name, mode + " (cold cache)", times["theirs"], times["ours"]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--lines", type=int, default=10_000)
    args = parser.parse_args()
    from tokenization import real_lines  # it imports this module: import it only when run as a script

    lines = real_lines(args.lines)
    reps = 2 if args.quick else 5
    cjk = sum(any("\u3040" <= ch <= "\u9fff" for ch in line) for line in lines)
    print(f"{len(lines)} lines ({cjk} with Japanese/Chinese), {sum(map(len, lines))} characters; median of {reps} runs")
    rows = bench_rows(lines, reps, common.interleaved)
    header = ("class", "mode", "transformers s", "warmstart s", "ratio (transformers/warmstart)")
    print(common.table([(c, m, f"{t:.3f}", f"{o:.3f}", f"{t / o:.2f}x") for c, m, t, o in rows], header))


if __name__ == "__main__":
    main()
