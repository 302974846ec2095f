"""Our cross-entropy: the value and gradient of F.cross_entropy(logits.float(), labels), clear errors."""
import pytest
import torch
import torch.nn.functional as F

from warmstart.nn.losses import cross_entropy


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("rows,vocab", [(7, 11), (70, 3001), (300, 5)])
def test_matches_torch(dtype, rows, vocab):
    torch.manual_seed(0)
    x = (torch.randn(rows, vocab) * 3).to(dtype).requires_grad_()
    labels = torch.randint(0, vocab, (rows,))
    labels[::3] = -100
    want = F.cross_entropy(x.float(), labels, ignore_index=-100)
    (want_grad,) = torch.autograd.grad(want * 1.7, x)
    got = cross_entropy(x, labels)
    (got_grad,) = torch.autograd.grad(got * 1.7, x)
    assert got.dtype == torch.float32 and got_grad.dtype == dtype
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got_grad.float(), want_grad.float(), atol=1e-6, rtol=1e-5)


def test_other_ignore_index_and_all_ignored():
    x = torch.randn(4, 6, requires_grad=True)
    labels = torch.tensor([6, 2, 6, 0])
    torch.testing.assert_close(cross_entropy(x, labels, ignore_index=6), F.cross_entropy(x, labels, ignore_index=6))
    loss = cross_entropy(x, torch.full((4,), -100))
    loss.backward()
    assert torch.isnan(loss) and torch.equal(x.grad, torch.zeros_like(x))  # as torch: NaN, no gradient


def test_bad_labels_and_shapes():
    x = torch.randn(3, 5)
    with pytest.raises(ValueError, match="labels contain 5, outside"):
        cross_entropy(x, torch.tensor([0, 5, 1]))
    with pytest.raises(ValueError, match="labels contain -3"):
        cross_entropy(x, torch.tensor([0, -3, 1]))
    with pytest.raises(ValueError, match=r"needs \(N, V\) logits"):
        cross_entropy(x, torch.tensor([0, 1]))
