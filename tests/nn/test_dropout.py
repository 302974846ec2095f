"""Our dropout: the rate and scaling of torch's, gradients through kept elements only, identity in eval."""
import pytest
import torch

from warmstart.nn.dropout import Dropout, dropout


@pytest.mark.parametrize("p", [0.1, 0.25, 0.5])
def test_rate_and_expectation(p):
    torch.manual_seed(0)
    y = dropout(torch.ones(400, 500), p)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - p) < 0.005  # 200k draws: the standard error is ~0.001
    assert abs(y.mean().item() - 1.0) < 0.01


def test_gradient_flows_through_kept_elements_with_the_same_scale():
    x = torch.randn(64, 33, requires_grad=True)
    y = dropout(x, 0.2)
    y.sum().backward()
    kept = y != 0
    assert torch.equal(x.grad != 0, kept)
    assert torch.allclose(x.grad[kept], (y[kept] / x[kept]).detach())


def test_eval_zero_and_one():
    x = torch.randn(5, 7)
    m = Dropout(0.3).eval()
    assert m(x) is x
    assert dropout(x, 0.0) is x
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))
    assert torch.equal(dropout(x, 0.5, training=False), x)
    with pytest.raises(ValueError, match="dropout probability must be in"):
        Dropout(1.5)


def test_odd_sizes_and_bf16():
    for shape in [(1,), (3,), (5, 3, 7)]:
        assert dropout(torch.ones(shape), 0.5).shape == shape
    assert dropout(torch.ones(10, 10, dtype=torch.bfloat16), 0.5).dtype == torch.bfloat16


def test_every_slice_of_a_random_word_is_unbiased():
    # Four elements share one 64-bit draw; a bias in any 16-bit slice shows up at positions i % 4.
    torch.manual_seed(0)
    y = dropout(torch.ones(100_000, 4), 0.5)
    assert ((y == 0).float().mean(0) - 0.5).abs().max() < 0.01
