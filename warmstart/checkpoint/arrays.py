"""The few array operations a key map needs (transpose, join, split), per framework.

Key maps (``keymaps.py``) are names and operations as data; applying them to real tensors needs only these three
verbs, so every wing reuses the same maps with its own arrays. The adapter is chosen from the arrays themselves:
a torch tensor can only exist once torch is imported, so picking the torch verbs imports nothing new.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ArrayOps", "NUMPY", "ops_for"]


@dataclass(frozen=True)
class ArrayOps:
    transpose: Callable[[Any], Any]          # a 2-D weight, (out, in) <-> (in, out)
    concat: Callable[[list], Any]            # fuse along dim 0 (q, k, v -> qkv)
    split: Callable[[Any, int], tuple]       # n equal pieces along dim 0 (qkv -> q, k, v)
    finish: Callable[[Any], Any] = lambda x: x  # made ready to be written (contiguous)


NUMPY = ArrayOps(transpose=lambda a: a.T, concat=lambda xs: np.concatenate(xs, axis=0),
                 split=lambda a, n: tuple(np.split(a, n, axis=0)), finish=np.ascontiguousarray)


def _torch() -> ArrayOps:
    import torch  # already imported: the arrays are torch tensors

    return ArrayOps(transpose=lambda t: t.t(), concat=lambda ts: torch.cat(ts, dim=0),
                    split=lambda t, n: t.chunk(n, dim=0), finish=lambda t: t.contiguous())


_BY_MODULE: dict[str, Callable[[], ArrayOps]] = {"torch": _torch, "numpy": lambda: NUMPY}


def ops_for(arrays: Any) -> ArrayOps:
    """The verbs for the framework of the first array in ``arrays`` (a dict of arrays, or one array)."""
    sample = next(iter(arrays.values()), None) if isinstance(arrays, dict) else arrays
    if sample is None:
        return NUMPY
    root = type(sample).__module__.partition(".")[0]
    if root not in _BY_MODULE:
        raise TypeError(f"no array operations for {type(sample).__module__}.{type(sample).__name__}; key maps apply "
                        f"to {sorted(_BY_MODULE)} arrays")
    return _BY_MODULE[root]()
