"""Streaming generated text while ``generate()`` runs.

``generate(streamer=s)`` calls ``s.put(ids)`` with the prompt (or the decoder start token), then with each new token,
and ``s.end()`` at the end — transformers' protocol, so its streamers work here and ours work there. Text is released
word by word: up to the last space, a whole line at a newline, or at once after a CJK character (which needs no
spaces); ``end()`` flushes the rest.

Beam search (which transformers refuses to stream) reports through ``put_beams(best, stable)``: ``best`` is the
current best hypothesis (it may still change), ``stable`` how many of its leading tokens every surviving candidate
shares — those can never change, so they are streamed like greedy tokens. Text is therefore never retracted, and
what is streamed adds up to the final output. The current best guess is kept in ``best_hypothesis`` (token ids)
and handed to ``on_best_hypothesis`` for interfaces that want to show it provisionally.
"""
from __future__ import annotations

from queue import Queue
from typing import Any

import torch

__all__ = ["BaseStreamer", "TextStreamer", "TextIteratorStreamer"]


class BaseStreamer:
    def put(self, value: torch.Tensor) -> None:
        raise NotImplementedError

    def end(self) -> None:
        raise NotImplementedError


class TextStreamer(BaseStreamer):
    """Print text to stdout as it is generated (batch size 1)."""

    def __init__(self, tokenizer, skip_prompt: bool = False, **decode_kwargs: Any):
        self.tokenizer, self.skip_prompt, self.decode_kwargs = tokenizer, skip_prompt, decode_kwargs
        self.token_cache: list[int] = []
        self.print_len = 0
        self.next_tokens_are_prompt = True
        self.best_hypothesis: list[int] = []
        self._streamed_beam_tokens = 0

    def put(self, value: torch.Tensor) -> None:
        if value.dim() > 1 and value.shape[0] > 1:
            raise ValueError(f"{type(self).__name__} streams one sequence; got a batch of {value.shape[0]} (use "
                             "batch size 1, or collect the outputs of generate() instead)")
        value = value.reshape(-1)
        if self.skip_prompt and self.next_tokens_are_prompt:
            self.next_tokens_are_prompt = False
            return
        self.next_tokens_are_prompt = False
        self.token_cache.extend(value.tolist())
        text = self.tokenizer.decode(self.token_cache, **self.decode_kwargs)
        if text.endswith("\n"):
            printable = text[self.print_len:]
            self.token_cache, self.print_len = [], 0
        elif text and _is_cjk(ord(text[-1])):
            printable = text[self.print_len:]
            self.print_len += len(printable)
        else:
            # Hold back the last (possibly incomplete) word: the next token may extend it.
            printable = text[self.print_len:text.rfind(" ") + 1]
            self.print_len += len(printable)
        self.on_finalized_text(printable)

    def put_beams(self, best: torch.Tensor, stable: int) -> None:
        """Beam search progress: ``best`` generated ids of the current best hypothesis, ``stable`` of them final."""
        self.best_hypothesis = best.reshape(-1).tolist()
        if stable > self._streamed_beam_tokens:
            self.put(best.reshape(-1)[self._streamed_beam_tokens:stable])
            self._streamed_beam_tokens = stable
        self.on_best_hypothesis(self.best_hypothesis)

    def finish_beams(self, final: torch.Tensor) -> None:
        """The search is over: stream what remains of the returned sequence."""
        final = final.reshape(-1)
        self.best_hypothesis = final.tolist()
        if final.numel() > self._streamed_beam_tokens:
            self.put(final[self._streamed_beam_tokens:])
        self._streamed_beam_tokens = final.numel()

    def on_best_hypothesis(self, token_ids: list[int]) -> None:
        """Called with the current best beam hypothesis after every step; override to display it."""

    def end(self) -> None:
        if self.token_cache:
            text = self.tokenizer.decode(self.token_cache, **self.decode_kwargs)
            printable = text[self.print_len:]
        else:
            printable = ""
        self.token_cache, self.print_len = [], 0
        self.next_tokens_are_prompt = True
        self._streamed_beam_tokens = 0
        self.on_finalized_text(printable, stream_end=True)

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        print(text, flush=True, end="" if not stream_end else None)


class TextIteratorStreamer(TextStreamer):
    """Queue the text for another thread: run generate() in a thread and iterate over this object."""

    def __init__(self, tokenizer, skip_prompt: bool = False, timeout: float | None = None, **decode_kwargs: Any):
        super().__init__(tokenizer, skip_prompt, **decode_kwargs)
        self.text_queue: Queue = Queue()
        self.stop_signal = None
        self.timeout = timeout

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        self.text_queue.put(text, timeout=self.timeout)
        if stream_end:
            self.text_queue.put(self.stop_signal, timeout=self.timeout)

    def __iter__(self):
        return self

    def __next__(self) -> str:
        value = self.text_queue.get(timeout=self.timeout)
        if value is self.stop_signal:
            raise StopIteration()
        return value


def _is_cjk(cp: int) -> bool:
    """CJK Unified Ideographs blocks (written without spaces, so safe to release one character at a time)."""
    return any(lo <= cp <= hi for lo, hi in (
        (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
        (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)))
