"""Build the definition-modeling task (word [+ example] -> gloss) from WordNet 3.0, reproducibly.

    python scripts/build_wordnet_task.py            # writes data/wordnet_defs/

Reads Debian's `wordnet-base` (installed with apt-get when missing and we are allowed to), parses the
`data.{noun,verb,adj,adv}` files directly, and writes train/valid/test jsonl, the licence and a README.
The same WordNet files and options always give byte-identical output: nothing depends on the clock,
on dict ordering of the platform, or on Python's salted `hash()` (splits use SHA-256).

One record per (word, sense). The split is decided by the word alone (lowercased), so a word and all
of its senses land in exactly one split: a model is evaluated on words it never saw defined.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

WORDNET_DIR = Path("/usr/share/wordnet")
COPYRIGHT_FILE = Path("/usr/share/doc/wordnet-base/copyright")
APT_COMMAND = "apt-get update && apt-get install -y wordnet-base"
FILES = {"noun": "data.noun", "verb": "data.verb", "adj": "data.adj", "adv": "data.adv"}
# The ss_type letter in a data line; "s" is an adjective satellite, reported as an adjective.
POS_OF_SS_TYPE = {"n": "noun", "v": "verb", "a": "adj", "s": "adj", "r": "adv"}
# data.adj words may carry a syntactic marker: (a) attributive, (p) predicative, (ip) postnominal.
ADJ_MARKER = re.compile(r"\((?:a|p|ip)\)$")
# What is left dangling before an example once the example is cut off ("...; e.g. "frozen prices"").
DANGLING = re.compile(r"(?:[\s;:,]|\b(?:e\.g\.|as in|i\.e\.))+$")
MAX_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class Synset:
    offset: str
    ss_type: str
    pos: str
    words: tuple[str, ...]
    definition: str
    examples: tuple[str, ...]


def parse_gloss(gloss: str) -> tuple[str, tuple[str, ...]]:
    """Split a gloss into its definition (the text before the first quote) and its quoted examples.

    WordNet writes `definition; "example one"; "example two"`; a few glosses leave the last quote
    unclosed, in which case the rest of the gloss is taken as the final example.
    """
    pieces = gloss.split('"')
    definition = DANGLING.sub("", pieces[0].strip())
    examples = tuple(e for e in (p.strip() for p in pieces[1::2]) if e)
    return definition, examples


def parse_data_line(line: str, where: str) -> Synset:
    """One synset from a data file line: offset lex_filenum ss_type w_cnt(hex) [word lex_id]... p_cnt
    [ptr offset pos src/tgt]... [frames, verbs only] | gloss (see WordNet's wndb(5))."""
    head, bar, gloss = line.partition(" | ")
    if not bar:
        raise ValueError(f"{where}: no ' | ' before the gloss in {line[:80]!r}")
    fields = head.split()
    try:
        offset, ss_type, w_cnt = fields[0], fields[2], int(fields[3], 16)
        words = fields[4:4 + 2 * w_cnt:2]
        p_cnt = int(fields[4 + 2 * w_cnt])
    except (IndexError, ValueError) as e:
        raise ValueError(f"{where}: malformed synset header {head[:80]!r} ({e})") from None
    if ss_type not in POS_OF_SS_TYPE or len(words) != w_cnt or 5 + 2 * w_cnt + 4 * p_cnt > len(fields):
        raise ValueError(f"{where}: synset header does not match its counts: {head[:120]!r}")
    words = tuple(ADJ_MARKER.sub("", w).replace("_", " ") for w in words)
    definition, examples = parse_gloss(gloss.strip())
    return Synset(offset, ss_type, POS_OF_SS_TYPE[ss_type], words, definition, examples)


def read_data_file(path: Path) -> list[Synset]:
    """All synsets of one data file. The synset offset is the line's byte offset in the file, which we
    check: a file that fails it is not the WordNet 3.0 database this script was written for."""
    synsets, position = [], 0
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            start, position = position, position + len(raw)
            if raw.startswith(b"  "):  # the licence header
                continue
            line = raw.decode("utf-8").rstrip("\n")
            synset = parse_data_line(line, f"{path}:{number}")
            if int(synset.offset) != start:
                raise ValueError(f"{path}:{number}: synset offset {synset.offset} is not its byte offset {start}")
            synsets.append(synset)
    return synsets


def pick_example(word: str, examples: tuple[str, ...]) -> str:
    """The first example that uses the word (allowing inflection: 'breathe' matches 'breathed'),
    else the synset's first example, else ''. An example using a synonym still pins the sense."""
    stem = word.lower() if len(word) < 5 else word.lower()[:-2]
    pattern = re.compile(r"\b" + re.escape(stem), re.IGNORECASE)
    for example in examples:
        if pattern.search(example):
            return example
    return examples[0] if examples else ""


def records(synsets: list[Synset]) -> list[dict]:
    """One record per (word, sense), deduplicated on (source, target)."""
    out, seen = [], set()
    for s in synsets:
        if not s.definition:
            continue
        for word in s.words:
            example = pick_example(word, s.examples)
            source = f"{word}: {example}" if example else word
            if (source, s.definition) in seen:
                continue
            seen.add((source, s.definition))
            out.append({"source": source, "target": s.definition, "word": word, "pos": s.pos,
                        "example": example, "synset": f"{s.offset}-{s.ss_type}"})
    return out


def digest(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def split_of(word: str, valid_percent: int, test_percent: int) -> str:
    bucket = digest(word.lower()) % 100
    return "test" if bucket < test_percent else "valid" if bucket < test_percent + valid_percent else "train"


def build_splits(recs: list[dict], caps: dict[str, int], valid_percent: int, test_percent: int) -> dict[str, list[dict]]:
    """Assign each record to its word's split, then keep a hash-ordered sample of at most caps[split]
    records (the hash order doubles as a fixed shuffle)."""
    splits: dict[str, list[dict]] = {"train": [], "valid": [], "test": []}
    for r in recs:
        splits[split_of(r["word"], valid_percent, test_percent)].append(r)
    for name, rows in splits.items():
        rows.sort(key=lambda r: (digest(f"{r['word']}|{r['synset']}|{r['source']}"), r["synset"], r["source"]))
        del rows[caps[name]:]
    return splits


def licence_text(copyright_file: Path) -> str:
    """The 'License: WordNet3.0' paragraph of Debian's machine-readable copyright file, unfolded."""
    lines = copyright_file.read_text(encoding="utf-8").splitlines()
    try:
        start = next(i for i, l in enumerate(lines) if l.strip() == "License: WordNet3.0")
    except StopIteration:
        raise ValueError(f"{copyright_file} has no 'License: WordNet3.0' paragraph") from None
    body = []
    for line in lines[start + 1:]:
        if not line.startswith(" "):
            break
        body.append("" if line.strip() == "." else line[1:])
    return "WordNet 3.0 licence (from Debian's wordnet-base copyright file)\n\n" + "\n".join(body).rstrip() + "\n"


def ensure_wordnet(wordnet_dir: Path, install: bool) -> None:
    missing = [f for f in FILES.values() if not (wordnet_dir / f).is_file()]
    if not missing:
        return
    if not install or wordnet_dir != WORDNET_DIR or shutil.which("apt-get") is None:
        raise SystemExit(f"WordNet files {missing} not found in {wordnet_dir}; install them with: {APT_COMMAND}")
    print(f"WordNet not found; running: {APT_COMMAND}", file=sys.stderr)
    subprocess.run(["sh", "-c", APT_COMMAND], check=True)


def readme(counts: dict[str, tuple[int, int]], total_bytes: int, command: str) -> str:
    table = "\n".join(f"| {name} | {n} | {n_ex} |" for name, (n, n_ex) in counts.items())
    return f"""# WordNet definition modeling

Given a word (and, where WordNet has one, an example sentence using that sense), generate its
dictionary definition. Built from Princeton WordNet 3.0 (Debian package `wordnet-base`); see LICENSE.

| split | records | with an example |
|---|---|---|
{table}

Total size: {total_bytes / 1e6:.1f} MB. One JSON object per line:

- `source`: the model input, `word` or `word: example`
- `target`: the gloss's definition, with its quoted examples removed
- `word`: the lemma as WordNet spells it (underscores as spaces, adjective markers dropped)
- `pos`: noun, verb, adj or adv
- `example`: the example sentence in `source` ('' if none)
- `synset`: WordNet offset and synset type (n, v, a, s for adjective satellites, r), e.g. `00001740-n`

One record per (word, sense). A word goes to a split by the SHA-256 of its lowercased spelling, so no
word appears in two splits; each split is then a fixed hash-ordered sample capped to keep the files
small. The example is the first of the synset's examples that uses the word, else its first example.

Rebuild (byte-identical output from the same WordNet files):

    {command}
"""


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "data" / "wordnet_defs")
    p.add_argument("--wordnet-dir", type=Path, default=WORDNET_DIR)
    p.add_argument("--copyright-file", type=Path, default=COPYRIGHT_FILE)
    p.add_argument("--no-install", action="store_true", help="fail instead of running apt-get when WordNet is missing")
    p.add_argument("--train", type=int, default=36000, help="cap on train records")
    p.add_argument("--valid", type=int, default=2000, help="cap on valid records")
    p.add_argument("--test", type=int, default=2000, help="cap on test records")
    p.add_argument("--valid-percent", type=int, default=5, help="share of words sent to valid")
    p.add_argument("--test-percent", type=int, default=5, help="share of words sent to test")
    args = p.parse_args(argv)
    if min(args.valid_percent, args.test_percent) < 0 or args.valid_percent + args.test_percent >= 100:
        p.error(f"--valid-percent {args.valid_percent} and --test-percent {args.test_percent} must leave words for train")

    ensure_wordnet(args.wordnet_dir, install=not args.no_install)
    synsets = [s for name in FILES.values() for s in read_data_file(args.wordnet_dir / name)]
    caps = {"train": args.train, "valid": args.valid, "test": args.test}
    splits = build_splits(records(synsets), caps, args.valid_percent, args.test_percent)

    blobs = {name: "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
             for name, rows in splits.items()}
    total = sum(len(b) for b in blobs.values())
    if total > MAX_BYTES:
        raise SystemExit(f"the splits take {total} bytes, over the {MAX_BYTES}-byte budget; lower --train")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, blob in blobs.items():
        (args.out / f"{name}.jsonl").write_bytes(blob)
    (args.out / "LICENSE").write_text(licence_text(args.copyright_file), encoding="utf-8")
    counts = {name: (len(rows), sum(1 for r in rows if r["example"])) for name, rows in splits.items()}
    command = (f"python scripts/build_wordnet_task.py --train {args.train} --valid {args.valid} --test {args.test} "
               f"--valid-percent {args.valid_percent} --test-percent {args.test_percent}")
    (args.out / "README.md").write_text(readme(counts, total, command), encoding="utf-8")
    print(f"{len(synsets)} synsets -> " + ", ".join(f"{k} {n}" for k, (n, _) in counts.items())
          + f" records ({total / 1e6:.1f} MB) in {os.path.relpath(args.out)}")


if __name__ == "__main__":
    main()
