"""Does a fast mode keep the quality? ROUGE-L of the demo model in float32, int8 and bfloat16 on the WordNet test split.

    .venv/bin/python scripts/fast_modes_quality.py [--model tmp/demo/model] [--examples 2000]

Each mode generates for the same held-out pairs with the demo's evaluation settings (greedy, 32 new tokens,
no_repeat_ngram_size 3, sources truncated to 64 tokens) and is scored with the training loop's ROUGE
(warmstart.train.evaluate.rouge); ``identical`` is the share of outputs equal to float32's. Modes:

- ``float32``: the model as saved;
- ``int8``: ``quantize("int8")`` on the float32 model (int8 decoder linears, the rest float32);
- ``int8+bf16``: loaded with ``dtype=torch.bfloat16``, then quantized (int8 decoder linears, bfloat16 elsewhere);
- ``bfloat16``: loaded with ``dtype=torch.bfloat16``.

The int8 modes run torch's int8 kernel for every product (``--kernel-rows``, default the batch size), as decoding
with batch x beams <= 8 does, so a large batch here only makes the run shorter, not the numbers different. One
torch thread by default. Writes results/fast_modes/quality.json; run it under ``flock /tmp/bench.lock`` on a
shared machine.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from warmstart.hardware import cpu  # noqa: E402
from warmstart.models.encoder_decoder import EncoderDecoderModel  # noqa: E402
from warmstart.nn import quantize  # noqa: E402
from warmstart.tokenizers import AutoTokenizer  # noqa: E402
from warmstart.train.data import read_seq2seq  # noqa: E402
from warmstart.train.evaluate import generate_texts, rouge  # noqa: E402
from warmstart.train.loop import DECODER_TOKENIZER_DIR  # noqa: E402

MODES = {"float32": (torch.float32, False), "int8": (torch.float32, True), "int8+bf16": (torch.bfloat16, True),
         "bfloat16": (torch.bfloat16, False)}
SETTINGS = dict(max_new_tokens=32, no_repeat_ngram_size=3, num_beams=1, do_sample=False)
MAX_SOURCE_LENGTH = 64


def load(folder: Path, dtype: torch.dtype, int8: bool) -> EncoderDecoderModel:
    model = EncoderDecoderModel.from_pretrained(folder, dtype=dtype)
    return model.quantize("int8") if int8 else model


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, default=ROOT / "tmp" / "demo" / "model")
    p.add_argument("--data", type=Path, default=ROOT / "data" / "wordnet_defs" / "test.jsonl")
    p.add_argument("--examples", type=int, default=None, help="the first N pairs (default: all)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: a shared machine's cores "
                   "are often busy, and then a second thread waits more than it works)")
    p.add_argument("--kernel-rows", type=int, default=None, help="run the int8 kernel for products of up to this "
                   "many rows (default: the batch size, so int8 is scored with the kernel that decoding with "
                   f"batch x beams <= {quantize.KERNEL_MAX_ROWS} uses, whatever the batch size here)")
    p.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    p.add_argument("--out", type=Path, default=ROOT / "results" / "fast_modes" / "quality.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    quantize.KERNEL_MAX_ROWS = args.kernel_rows or args.batch_size

    examples = read_seq2seq(args.data, "source", "target")[:args.examples]
    sources, references = [e.source for e in examples], [e.target for e in examples]
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    dec_dir = args.model / DECODER_TOKENIZER_DIR
    decoder_tokenizer = AutoTokenizer.from_pretrained(dec_dir) if dec_dir.is_dir() else tokenizer
    print(f"{len(examples)} pairs of {args.data}; {cpu().describe()}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads", flush=True)
    results, outputs = {}, {}
    for mode in args.modes:
        model = load(args.model, *MODES[mode])
        start = time.perf_counter()
        batches = generate_texts(model, tokenizer, sources, decoder_tokenizer=decoder_tokenizer,
                                 batch_size=args.batch_size, max_source_length=MAX_SOURCE_LENGTH, **SETTINGS)
        outputs[mode] = [t for batch in batches for t in batch]
        seconds = time.perf_counter() - start
        scores = rouge(outputs[mode], references)
        same = None
        if "float32" in outputs:
            same = sum(a == b for a, b in zip(outputs[mode], outputs["float32"])) / len(examples)
        results[mode] = {"rougeL": round(scores["rougeL"], 3), "rouge1": round(scores["rouge1"], 3),
                         "rouge2": round(scores["rouge2"], 3), "identical_to_float32": same,
                         "seconds": round(seconds, 1)}
        print(f"{mode:>10}: ROUGE-L {scores['rougeL']:.2f}  identical to float32 "
              f"{'-' if same is None else f'{100 * same:.1f}%'}  ({seconds:.0f} s)", flush=True)
        del model
    if "float32" in results:
        for mode, r in results.items():
            r["rougeL_delta"] = round(r["rougeL"] - results["float32"]["rougeL"], 3)
    report = {"model": str(args.model.relative_to(ROOT) if args.model.is_relative_to(ROOT) else args.model),
              "data": str(args.data.relative_to(ROOT) if args.data.is_relative_to(ROOT) else args.data),
              "examples": len(examples), "settings": {**SETTINGS, "max_source_length": MAX_SOURCE_LENGTH,
                                                      "batch_size": args.batch_size,
                                                      "int8_kernel_max_rows": quantize.KERNEL_MAX_ROWS},
              "cpu": cpu().describe(), "torch": torch.__version__, "threads": torch.get_num_threads(),
              "python": platform.python_version(), "modes": results,
              "samples": [{"source": sources[i], "reference": references[i],
                           **{m: outputs[m][i] for m in outputs}} for i in range(min(5, len(examples)))]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
