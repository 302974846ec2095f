"""The loss helpers every head shares: the shifted causal-LM loss and the "does the loss read padding" test."""
import torch
import torch.nn.functional as F

from warmstart.nn import backbone_args
from warmstart.nn.losses import padding_is_scored, shifted_lm_loss, token_cross_entropy


def test_shifted_lm_loss_scores_position_t_against_label_t_plus_1():
    torch.manual_seed(0)
    logits, labels = torch.randn(2, 5, 11), torch.randint(0, 11, (2, 5))
    labels[1, 3:] = -100
    want = F.cross_entropy(logits[:, :-1].reshape(-1, 11), labels[:, 1:].reshape(-1))
    torch.testing.assert_close(shifted_lm_loss(logits, labels), want, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(token_cross_entropy(logits, labels), F.cross_entropy(logits.transpose(1, 2), labels),
                               atol=1e-6, rtol=1e-6)


def test_padding_is_scored_with_and_without_shift():
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    ignored = torch.tensor([[5, 6, 7, -100], [5, 6, -100, -100]])
    assert not padding_is_scored(ignored, mask)
    assert padding_is_scored(torch.tensor([[5, 6, 7, 0], [5, 6, -100, -100]]), mask)
    # Shifted: the logits at t meet label t+1, so label 3 of row 0 is read from position 2 (real).
    assert not padding_is_scored(torch.tensor([[5, 6, 7, 8], [5, 6, 7, -100]]), mask, shift=1)
    assert padding_is_scored(torch.tensor([[5, 6, 7, 8], [5, 6, 7, 8]]), mask, shift=1)
    assert not padding_is_scored(None, mask) and not padding_is_scored(ignored, None)


def test_backbone_args_picks_the_shared_arguments():
    mask = torch.tensor([[1, 1, 0]])
    args = {"self": object(), "input_ids": 1, "attention_mask": mask, "labels": 2, "return_dict": True}
    assert backbone_args(args) == {"input_ids": 1, "attention_mask": mask}
    scored = backbone_args(args, labels=torch.tensor([[4, 5, 6]]))
    assert scored["skip_padding"] is False
    assert "skip_padding" not in backbone_args(args, labels=torch.tensor([[4, 5, -100]]))
