"""The README's ```python blocks and the one way the tests run them (offline, in a scratch folder, in a fresh
interpreter). Blocks share nothing: each must be complete on its own, as a reader would paste it.

The blocks are split by the wing they import (``wing``), so each wing's test folder runs its own: pytest-xdist
hands whole files to workers, and one file of every block kept one worker busy for minutes at the end of the run.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def wing(block: str) -> str:
    """"tf" for blocks that use TensorFlow classes, "flax" for Flax ones, else "pt"."""
    if re.search(r"\bTF[A-Z]\w+|warmstart\.tf\b|import tensorflow|import keras", block):
        return "tf"
    if re.search(r"\bFlax[A-Z]\w+|warmstart\.flax\b|import jax", block):
        return "flax"
    return "pt"


def blocks_of(name: str) -> list[int]:
    return [i for i, block in enumerate(BLOCKS) if wing(block) == name]


def run_block(index: int, tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "OMP_NUM_THREADS": "2",
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = subprocess.run([sys.executable, "-c", BLOCKS[index]], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, f"README block {index} failed:\n{BLOCKS[index]}\n--- stderr ---\n{run.stderr[-3000:]}"
