"""Stopping criteria: ``c(input_ids (N, T), scores) -> (N,) bool``, True for rows that are done.

A finished row is padded from then on; generation ends when every row is finished. Names follow transformers so
custom criteria written for it work here (``generate(stopping_criteria=[...])``).
"""
from __future__ import annotations

import time

import torch

__all__ = ["StoppingCriteria", "StoppingCriteriaList", "MaxLengthCriteria", "MaxTimeCriteria", "EosTokenCriteria",
           "StopStringCriteria"]


class StoppingCriteria:
    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(input_ids, scores)")


class StoppingCriteriaList(list):
    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for c in self:
            done = done | torch.as_tensor(c(input_ids, scores, **kwargs), device=done.device).bool()
        return done

    @property
    def max_length(self) -> int | None:
        return next((c.max_length for c in self if isinstance(c, MaxLengthCriteria)), None)


class MaxLengthCriteria(StoppingCriteria):
    """Every row is done once sequences reach ``max_length`` tokens (prompt included)."""

    def __init__(self, max_length: int):
        self.max_length = max_length

    def __call__(self, input_ids, scores, **kwargs):
        return torch.full((input_ids.shape[0],), input_ids.shape[-1] >= self.max_length, dtype=torch.bool,
                          device=input_ids.device)


class MaxTimeCriteria(StoppingCriteria):
    """Every row is done once ``max_time`` seconds have passed since ``initial_timestamp`` (default: now)."""

    def __init__(self, max_time: float, initial_timestamp: float | None = None):
        self.max_time = max_time
        self.initial_timestamp = time.time() if initial_timestamp is None else initial_timestamp

    def __call__(self, input_ids, scores, **kwargs):
        late = time.time() - self.initial_timestamp > self.max_time
        return torch.full((input_ids.shape[0],), late, dtype=torch.bool, device=input_ids.device)


class EosTokenCriteria(StoppingCriteria):
    """A row is done when its last token is one of the EOS ids."""

    def __init__(self, eos_token_id):
        self.eos_token_id = (eos_token_id if isinstance(eos_token_id, torch.Tensor)
                             else torch.tensor([eos_token_id] if isinstance(eos_token_id, int) else eos_token_id))

    def __call__(self, input_ids, scores, **kwargs):
        eos = self.eos_token_id.to(input_ids.device)
        last = input_ids[:, -1]
        return last == eos[0] if eos.numel() == 1 else torch.isin(last, eos)


class StopStringCriteria(StoppingCriteria):
    """A row is done when its decoded text contains a stop string that ends inside the last token.

    "Ends inside the last token" is transformers' rule: a stop string that was already complete one token earlier
    does not count again, and ["st", "op"] or ["las", "topper"] both complete "stop". The tail of each row is
    decoded with the tokenizer (enough tokens to hold the longest stop string even at one character per token).
    """

    def __init__(self, tokenizer, stop_strings: str | list[str]):
        if tokenizer is None or not hasattr(tokenizer, "decode"):
            raise ValueError("stop_strings need the model's tokenizer to read the generated text: pass "
                             "generate(..., stop_strings=[...], tokenizer=tokenizer)")
        self.tokenizer = tokenizer
        self.stop_strings = (stop_strings,) if isinstance(stop_strings, str) else tuple(stop_strings)
        self.window = max(len(s) for s in self.stop_strings) + 1

    def _text(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def __call__(self, input_ids, scores, **kwargs):
        done = []
        for row in input_ids[:, -self.window:].tolist():
            text = self._text(row)
            before = len(self._text(row[:-1])) if len(row) > 1 else 0
            # An occurrence counts if it ends after the text the earlier tokens already produced.
            hit = False
            for s in self.stop_strings:
                at = text.rfind(s)
                hit = hit or (at >= 0 and at + len(s) > before)
            done.append(hit)
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)
