"""Loading a google-research TF1 checkpoint into PyTorch: warmstart (numpy reader, no TensorFlow) vs transformers
v4's ``load_tf_weights_in_bert`` (TensorFlow's reader), on the same BERT-base pretraining checkpoint with Adam slots.

transformers 5 deleted its TF1 loader, so the peer is v4: run this with the interpreter of a venv holding
transformers 4.57.1 and TensorFlow (see tests/assets/tf_v4/README.md for one), with warmstart put on sys.path from
this checkout. The checkpoint is written once by warmstart's own writer (``save_tf1_checkpoint`` plus the
``adam_m`` / ``adam_v`` slots and ``global_step`` google's optimizer saves: 3x the weights on disk). Each side
builds BertForPreTraining and fills it from the checkpoint; the two models' outputs are compared, then the loads
are timed interleaved. Prints the CPU and the ratio v4_time / warmstart_time (> 1: warmstart is faster).

    /tmp/tf457/bin/pip install google-crc32c             # as warmstart[convert] brings (else numpy checksums)
    /tmp/tf457/bin/python bench/tf1_load.py            # BERT-base (1.3 GB with the Adam slots)
    /tmp/tf457/bin/python bench/tf1_load.py --quick    # a tiny model: a smoke run
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # warmstart from this checkout

import numpy as np  # noqa: E402
import torch  # noqa: E402

from common import interleaved, table  # noqa: E402  (bench/ is sys.path[0])
from generate import _cpu  # noqa: E402

BASE = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072, vocab_size=30522)
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, vocab_size=99)


def write_checkpoint(folder: Path, sizes: dict) -> Path:
    import warmstart as W
    from warmstart.checkpoint.pretrained import export_state_dict
    from warmstart.checkpoint.tf1_save import pt_to_tf1, save_tf1_checkpoint, write_tf1_checkpoint

    torch.manual_seed(0)
    model = W.BertForPreTraining(W.BertConfig(**sizes))
    save_tf1_checkpoint(model, folder / "bert_model.ckpt")  # bert_config.json (the weights are rewritten below)
    arrays = pt_to_tf1({k: v.detach().numpy() for k, v in export_state_dict(model).items()})
    slots = {f"{n}/{s}": np.full_like(a, 0.5) for n, a in arrays.items() for s in ("adam_m", "adam_v")}
    write_tf1_checkpoint(folder / "bert_model.ckpt", {**arrays, **slots, "global_step": np.array(1000, np.int64)})
    return folder / "bert_model.ckpt"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="a tiny model (a smoke run)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.repeats < 1:
        ap.error(f"--repeats must be >= 1, got {args.repeats}")
    import transformers
    from transformers.models.bert.modeling_bert import load_tf_weights_in_bert

    import warmstart as W

    if not transformers.__version__.startswith("4."):
        sys.exit(f"the peer is transformers v4's TF1 loader; this interpreter has transformers "
                 f"{transformers.__version__}")
    sizes = TINY if args.quick else BASE
    import logging

    logging.getLogger("transformers").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        prefix = write_checkpoint(Path(tmp), sizes)
        size = sum(f.stat().st_size for f in Path(tmp).glob("bert_model.ckpt.*"))
        print(f"checkpoint: {size / 1e6:.0f} MB written in {time.perf_counter() - t0:.1f} s")
        config = transformers.BertConfig.from_json_file(str(Path(tmp) / "bert_config.json"))

        def ours():
            return W.BertForPreTraining.from_pretrained(str(prefix) + ".index", from_tf=True)

        def v4():
            model = transformers.BertForPreTraining(config)
            return load_tf_weights_in_bert(model, config, str(prefix)).eval()

        ids = torch.randint(0, sizes["vocab_size"], (2, 16), generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            a, b = ours()(ids), v4()(ids)
        diff = max(float((a.prediction_logits - b.prediction_logits).abs().max()),
                   float((a.seq_relationship_logits - b.seq_relationship_logits).abs().max()))
        times = interleaved({"warmstart": ours, "v4": v4}, reps=args.repeats, warmup=0)
    print(f"CPU: {_cpu()}; torch {torch.__version__}, transformers {transformers.__version__}")
    print(f"outputs: max abs diff {diff:.3g}")
    rows = [("BertForPreTraining from a TF1 checkpoint" + (" (tiny)" if args.quick else " (BERT-base + Adam)"),
             f"{times['v4'] / times['warmstart']:.2f}x")]
    print(table(rows, ("work", "v4 / warmstart")))


if __name__ == "__main__":
    main()
