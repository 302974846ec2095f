"""Our training loss against transformers' Seq2SeqTrainer: same weights, same batches, same hyper-parameters.

Both start from one warm-started MiniLM bert2bert (random cross-attention drawn once, saved, loaded by both), see
the same length-grouped batches of the WordNet definition task in the same order (warmstart's sampler decides;
the Trainer is handed the examples in that order with a sequential sampler), and use the same AdamW (torch's fused
kernel), linear warm-up and decay, clipping at 1.0 and batch size. Dropout masks differ (two libraries, two
random streams), so the curves agree within noise; `--dropout 0` removes that noise.

    .venv/bin/python scripts/compare_trainer.py                    # 200 steps, batch 32 (about 10 minutes on 2 cores)
    .venv/bin/python scripts/compare_trainer.py --steps 50 --dropout 0

transformers' Trainer needs the `accelerate` package (pip install accelerate); warmstart does not. Writes
OUT/losses.csv (step, warmstart, transformers) and OUT/summary.md (the table in the README).
"""
from __future__ import annotations

import argparse
import csv
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def build_init(folder: Path, seed: int, dropout: float | None) -> None:
    from warmstart import BertTokenizerFast, EncoderDecoderModel
    from warmstart.cli import default_checkpoint
    from warmstart.train.loop import special_ids

    minilm = default_checkpoint()
    tok = BertTokenizerFast.from_pretrained(minilm)
    extra = {} if dropout is None else {"encoder_hidden_dropout_prob": dropout,
                                        "encoder_attention_probs_dropout_prob": dropout,
                                        "decoder_hidden_dropout_prob": dropout,
                                        "decoder_attention_probs_dropout_prob": dropout}
    torch.manual_seed(seed)
    model = EncoderDecoderModel.from_encoder_decoder_pretrained(minilm, minilm, **special_ids(tok), **extra)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)


def run_warmstart(init: Path, out: Path, args) -> list[float]:
    from warmstart.train.config import TrainingConfig
    from warmstart.train.loop import train

    config = TrainingConfig(output_dir=str(out), train_file=args.train_file, model=str(init),
                            batch_size=args.batch_size, max_steps=args.steps, learning_rate=args.learning_rate,
                            warmup_steps=args.warmup_steps, weight_decay=args.weight_decay, lr_scheduler="linear",
                            seed=args.seed, logging_steps=1, overwrite_output_dir=True,
                            max_source_length=args.max_length, max_target_length=args.max_length)
    result = train(config)
    return [e["loss"] for e in result.log_history if "loss" in e]


def ordered_features(init: Path, args) -> list[dict]:
    """The training examples in the order warmstart's loop consumes them in epoch 0 (all batches full)."""
    from warmstart import BertTokenizerFast
    from warmstart.train import LengthGroupedBatchSampler, read_seq2seq
    from warmstart.train.loop import prepare_features, special_ids

    tok = BertTokenizerFast.from_pretrained(init)
    features = prepare_features(read_seq2seq(args.train_file), tok, tok, special_ids(tok), args.max_length,
                                args.max_length)
    # The same sampler, lengths and seed as warmstart/train/loop.py uses.
    sampler = LengthGroupedBatchSampler([len(f["input_ids"]) + len(f["labels"]) for f in features],
                                        args.batch_size, seed=args.seed)
    batches = list(sampler)[:args.steps]
    if len(batches) < args.steps or any(len(b) != args.batch_size for b in batches):
        sys.exit(f"the first {args.steps} batches are not all full batches of {args.batch_size}: the sequential "
                 "order would not line up; use fewer steps or another batch size")
    return [{"input_ids": features[i]["input_ids"], "labels": features[i]["labels"]} for b in batches for i in b]


def run_transformers(init: Path, out: Path, args) -> list[float]:
    import transformers
    from torch.utils.data import SequentialSampler

    class InOrder(transformers.Seq2SeqTrainer):
        def _get_train_sampler(self, *a, **k):
            return SequentialSampler(self.train_dataset)

    transformers.logging.set_verbosity_error()
    model = transformers.EncoderDecoderModel.from_pretrained(init)
    tok = transformers.AutoTokenizer.from_pretrained(init)
    training_args = transformers.Seq2SeqTrainingArguments(
        output_dir=str(out), per_device_train_batch_size=args.batch_size, max_steps=args.steps,
        learning_rate=args.learning_rate, warmup_steps=args.warmup_steps, weight_decay=args.weight_decay,
        lr_scheduler_type="linear", max_grad_norm=1.0, optim="adamw_torch_fused", logging_steps=1,
        save_strategy="no", report_to="none", seed=args.seed, use_cpu=True, dataloader_drop_last=False)
    trainer = InOrder(model=model, args=training_args, train_dataset=ordered_features(init, args),
                      data_collator=transformers.DataCollatorForSeq2Seq(tok, label_pad_token_id=-100))
    trainer.train()
    return [e["loss"] for e in trainer.state.log_history if "loss" in e]


def summarize(ours: list[float], theirs: list[float], args, seconds: dict[str, float]) -> str:
    n = min(len(ours), len(theirs))
    spans = [(a, b) for a, b in ((1, 10), (11, 50), (51, 100), (101, 150), (151, 200)) if a <= n]
    lines = [f"Loss per optimizer step, mean over each span (batch {args.batch_size}, lr {args.learning_rate}, "
             f"{args.warmup_steps} warm-up steps then linear decay over {args.steps}, weight decay "
             f"{args.weight_decay}, dropout {'as in the checkpoint (0.1)' if args.dropout is None else args.dropout}):",
             "", "| steps | warmstart | transformers Seq2SeqTrainer | difference |", "|---|---|---|---|"]
    for a, b in spans:
        b = min(b, n)
        x, y = statistics.mean(ours[a - 1:b]), statistics.mean(theirs[a - 1:b])
        lines.append(f"| {a}-{b} | {x:.3f} | {y:.3f} | {x - y:+.3f} |")
    diffs = [abs(x - y) for x, y in zip(ours[:n], theirs[:n])]
    lines += ["", f"Per-step |difference|: mean {statistics.mean(diffs):.3f}, max {max(diffs):.3f} over {n} steps. "
              f"Wall time: warmstart {seconds['warmstart']:.0f} s, transformers {seconds['transformers']:.0f} s "
              f"({torch.get_num_threads()} threads)."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train-file", default=str(ROOT / "data" / "wordnet_defs" / "train.jsonl"))
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--learning-rate", type=float, default=3e-4)
    ap.add_argument("--warmup-steps", type=int, default=40)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--dropout", type=float, default=None, help="override both sides' dropout (0: no noise)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "compare_trainer")
    args = ap.parse_args()
    logging.getLogger("warmstart").setLevel(logging.ERROR)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="compare_trainer-"))  # ~600 MB of models and checkpoints, deleted at the end
    init = work / "init"
    build_init(init, args.seed, args.dropout)
    seconds = {}
    t = time.perf_counter()
    ours = run_warmstart(init, work / "warmstart", args)
    seconds["warmstart"] = time.perf_counter() - t
    t = time.perf_counter()
    theirs = run_transformers(init, work / "transformers", args)
    seconds["transformers"] = time.perf_counter() - t
    with open(args.out / "losses.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "warmstart", "transformers"])
        for i, (x, y) in enumerate(zip(ours, theirs), 1):
            w.writerow([i, f"{x:.5f}", f"{y:.5f}"])
    summary = summarize(ours, theirs, args, seconds)
    (args.out / "summary.md").write_text(summary + "\n")
    print(summary)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
