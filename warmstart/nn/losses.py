"""Token-level cross-entropy over a large vocabulary, with a lean backward.

``F.cross_entropy(logits.float(), labels)`` keeps a float32 copy of the logits (under bf16 autocast), writes the full
(N, V) log-softmax, and in backward zero-fills an (N, V) buffer for the NLL gradient before the log-softmax backward
reads both again. For a language-model head (V = 30k and more) those passes over N x V memory cost as much as the
head's matmul. Here forward keeps only one float per row (the log-sum-exp) and backward writes the gradient once:
softmax minus one-hot, scaled, computed in row chunks small enough to stay in cache. The value is the same loss
(mean over the rows whose label is not ``ignore_index``; NaN when there are none, as torch gives).
"""
from __future__ import annotations

import torch

__all__ = ["cross_entropy", "check_label_range", "token_cross_entropy", "shifted_lm_loss", "padding_is_scored"]

_CHUNK_ELEMENTS = 1 << 19  # rows per chunk * V: 2 MiB of float32 temporaries, about one core's L2


def check_label_range(labels: torch.Tensor, vocab: int, ignore_index: int = -100,
                      what: str = "the vocabulary size") -> None:
    """A clear error for a label outside [0, vocab) that is not ``ignore_index`` (torch raises a bare IndexError)."""
    if torch.compiler.is_compiling():
        return  # a compiled caller checks before it calls (reading the values would split its graph)
    bad = labels[(labels != ignore_index) & ((labels < 0) | (labels >= vocab))]
    if bad.numel():
        raise ValueError(f"labels contain {int(bad[0])}, outside [0, {vocab}) ({what}); use {ignore_index} for "
                         "positions the loss should ignore")


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100,
                  labels_checked: bool = False) -> torch.Tensor:
    """Mean cross-entropy of (N, V) logits (any float dtype, computed in float32) against (N,) integer labels.

    ``labels_checked``: the caller already ran ``check_label_range`` (before its forward pass).
    """
    if logits.dim() != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"cross_entropy needs (N, V) logits and (N,) labels, got {tuple(logits.shape)} and "
                         f"{tuple(labels.shape)}")
    labels = labels.to(logits.device)
    if not labels_checked:
        check_label_range(labels, logits.shape[1], ignore_index)
    valid = labels != ignore_index
    if torch.compiler.is_compiling():
        # The same value as one expression inductor fuses and differentiates itself: the hand-written backward's
        # loop over row chunks would pin the number of rows (the batch shape) into the graph.
        weight = valid.float()
        picked = logits.gather(1, labels.masked_fill(~valid, 0)[:, None]).squeeze(1).float()
        return ((torch.logsumexp(logits.float(), dim=-1) - picked) * weight).sum() / weight.sum()
    return _CrossEntropy.apply(logits, labels.masked_fill(~valid, 0), valid)


def token_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """``cross_entropy`` over any leading shape: (..., V) logits against (...) labels."""
    return cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=ignore_index)


def shifted_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Causal LM loss of (B, T, V) logits against (B, T) labels given unshifted, as transformers' LM heads take them:
    position t is scored against label t+1, so the last logits and the first label are not used."""
    return token_cross_entropy(logits[:, :-1], labels[:, 1:])


def padding_is_scored(labels: torch.Tensor | None, mask: torch.Tensor | None, shift: int = 0) -> bool:
    """True when a loss reads logits at positions ``mask`` hides (their labels are not -100), so a backbone must
    compute those positions instead of skipping them as padding. ``shift`` = 1 for ``shifted_lm_loss``, where the
    logits at position t meet label t+1."""
    if labels is None or mask is None or labels.shape != mask.shape:
        return False
    if torch.compiler.is_compiling():
        return True  # not read from the values (that would split the graph): computing every position is always right
    if shift:
        labels, mask = labels[:, shift:], mask[:, :-shift]
    return bool((labels[mask == 0] != -100).any())


def _chunks(rows: int, vocab: int):
    step = max(1, _CHUNK_ELEMENTS // max(vocab, 1))
    return ((s, min(s + step, rows)) for s in range(0, rows, step))


class _CrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        rows, vocab = logits.shape
        lse = torch.empty(rows, dtype=torch.float32, device=logits.device)
        for s, e in _chunks(rows, vocab):
            lse[s:e] = torch.logsumexp(logits[s:e].float(), dim=-1)
        picked = logits.gather(1, labels[:, None]).squeeze(1).float()
        weight = valid.float()
        count = weight.sum()
        loss = ((lse - picked) * weight).sum() / count
        ctx.save_for_backward(logits, labels, lse, weight / count.clamp_min(1))  # no rows: zero gradient
        return loss

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):
        logits, labels, lse, row_weight = ctx.saved_tensors
        rows, vocab = logits.shape
        scale = row_weight * grad_loss  # (N,): d loss / d (-log p[label]) per row, 0 for ignored rows
        grad = torch.empty_like(logits, memory_format=torch.contiguous_format)
        for s, e in _chunks(rows, vocab):
            # d/dz of (lse(z) - z[label]) is softmax(z) - onehot(label).
            z = logits[s:e]
            direct = z.dtype == torch.float32  # else work in float32 and round once into the gradient
            out = grad[s:e] if direct else torch.empty(z.shape, device=z.device)
            torch.sub(z, lse[s:e, None], out=out).exp_().mul_(scale[s:e, None])
            out[torch.arange(e - s, device=out.device), labels[s:e]] -= scale[s:e]
            if not direct:
                grad[s:e] = out
        return grad, None, None
