"""Tiny BERT checkpoints and a toy seq2seq task, written to a folder in well under a second (training tests).

The task: the source is a few words, the target the same words reversed; a 2-layer, 32-wide bert2bert learns
it a little within tens of steps, which is all the loop tests need.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import torch

WORDS = ["red", "green", "blue", "cat", "dog", "bird", "runs", "sits", "flies", "big", "small", "old", "new",
         "the", "one", "on", "under", "tree", "house", "river"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *"bcdefghijklmnopqrstuvwxyz", "##s", "##ed"]


def tiny_bert(folder: Path, *, seed: int = 0, dropout: float = 0.1, positions: int = 32, **overrides) -> Path:
    """A random 2-layer BERT (warmstart's BertModel, saved in transformers' layout) with its WordPiece tokenizer."""
    from warmstart import BertConfig, BertModel, BertTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=48, max_position_embeddings=positions, hidden_dropout_prob=dropout,
                        attention_probs_dropout_prob=dropout, **overrides)
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(folder)
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    return folder


def pairs(n: int, seed: int = 0, min_words: int = 1, max_words: int = 6) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(min_words, max_words))]
        out.append({"source": " ".join(words), "target": " ".join(reversed(words))})
    return out


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path = Path(path)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def one_thread():
    """Generator for an autouse fixture: tiny models run faster on one thread (a second one only adds
    synchronisation), and on a shared machine they then leave the other core alone."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
