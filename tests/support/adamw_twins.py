"""One AdamW update on both sides, checked: a PyTorch loss through torch.optim, a batch through the Flax step."""
import pytest
import torch


def step_both(loss, torch_params, opt, sched, max_grad_norm, model, state, batch):
    """Backward + clip + step on the PyTorch side, ``train_step`` on the Flax side; the losses and the clipping
    norms must agree (and clipping must really happen). Returns the new Flax state."""
    from warmstart.flax.training import train_step

    loss.backward()
    norm = float(torch.nn.utils.clip_grad_norm_(torch_params, max_grad_norm))
    opt.step()
    sched.step()
    opt.zero_grad()
    state, metrics = train_step(model, state, batch)
    assert norm > max_grad_norm  # clipping really happened
    assert abs(float(metrics["loss"]) - loss.item()) <= 1e-5
    assert float(metrics["grad_norm"]) == pytest.approx(norm, rel=1e-5)
    return state
