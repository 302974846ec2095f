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


def tiny_gpt2(folder: Path, *, seed: int = 0, positions: int = 64) -> Path:
    """A random 2-layer GPT-2 with a byte-level BPE tokenizer of the 256 bytes, a few merges and <|endoftext|>
    (no [CLS], [SEP] or pad token: the bert2gpt2 case of the training loop)."""
    from warmstart import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast
    from warmstart.tokenizers.bpe_model import bytes_to_unicode

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    chars = list(bytes_to_unicode().values())
    merges = [("Ġ", "r"), ("e", "d"), ("Ġr", "ed"), ("Ġ", "b"), ("l", "u"), ("Ġb", "lu")]
    vocab = {c: i for i, c in enumerate(chars)}
    for a, b in merges:
        vocab[a + b] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    eos = vocab["<|endoftext|>"]
    config = GPT2Config(vocab_size=len(vocab), n_embd=32, n_layer=2, n_head=2, n_positions=positions,
                        bos_token_id=eos, eos_token_id=eos)
    torch.manual_seed(seed)
    GPT2LMHeadModel(config).save_pretrained(folder)
    tok = GPT2TokenizerFast(vocab_file=str(folder / "vocab.json"), merges_file=str(folder / "merges.txt"))
    tok.save_pretrained(folder)
    return folder
