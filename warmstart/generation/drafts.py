"""Where assisted decoding's draft tokens come from: a small assistant model, or n-gram matches in the sequence.

A drafter proposes up to ``budget`` tokens that continue ``seq[:, :cur]`` and writes them into ``seq[:, cur:]`` (the
search's own buffer, so the logits processors see draft and sequence as one); it returns the draft and, when it
sampled the draft, the probabilities each token was drawn from (speculative sampling needs them). After the large
model has checked the draft, ``accepted`` reports how many draft tokens survived.

- ``AssistantDrafter``: the assistant runs greedy or sampled decoding over its own ``Decoder`` (step.py) with the same
  logits processors as the large model, at most ``num_assistant_tokens`` tokens, stopping early at an EOS token or
  when its confidence in a token (the processed probability) falls below ``assistant_confidence_threshold``
  (transformers v4's ConfidenceCriteria). Its cache keeps every position that still agrees with the sequence; only
  the tokens it has not seen are fed next round. The ``heuristic`` schedules grow the draft by 2 after a fully
  accepted draft and shrink it by 1 otherwise (v4's rule).
- ``PromptLookupDrafter``: prompt-lookup decoding (Saxena 2023, github.com/apoorvumang/prompt-lookup-decoding). The
  last ``n`` tokens (n = max_matching_ngram_size, default 2, down to 1) are looked up in the sequence so far, the
  leftmost earlier occurrence wins, and the up to ``prompt_lookup_num_tokens`` tokens that followed it are the draft,
  cut before an EOS token. As in transformers, the sequence searched is the decoder's: the prompt and the generated
  text of a decoder-only model, the generated text of an encoder-decoder.
"""
from __future__ import annotations

import torch

from .contract import ModelContract
from .step import Decoder

__all__ = ["AssistantDrafter", "PromptLookupDrafter"]


class PromptLookupDrafter:
    def __init__(self, num_tokens: int, max_ngram: int, eos: torch.Tensor | None):
        self.num_tokens, self.max_ngram, self.eos = num_tokens, max_ngram, eos

    def draft(self, seq: torch.Tensor, cur: int, budget: int) -> tuple[torch.Tensor, None]:
        """Draft ids (k,) written to seq[0, cur:cur + k]; no probabilities (the draft is copied, not sampled)."""
        limit = min(self.num_tokens, budget)
        row = seq[0, :cur]
        empty = row[:0]
        if limit <= 0:
            return empty, None
        for n in range(min(self.max_ngram, cur - 1), 0, -1):
            windows = row.unfold(0, n, 1)  # (cur - n + 1, n): every n-gram of the sequence
            hits = (windows == row[cur - n:]).all(dim=1).nonzero().flatten()
            # The last window is the tail itself, with nothing after it: only earlier occurrences can be copied.
            hits = hits[hits + n < cur]
            if hits.numel() == 0:
                continue
            start = int(hits[0]) + n
            draft = row[start:min(start + limit, cur)]
            if self.eos is not None:
                # The copy stops before an EOS token: accepting EOS and then the copied text after it would not stop.
                ends = torch.isin(draft, self.eos).nonzero()
                if ends.numel():
                    draft = draft[:int(ends[0])]
            draft = draft.clone()
            seq[0, cur:cur + draft.numel()] = draft
            return draft, None
        return empty, None

    def accepted(self, drafted: int, matches: int) -> None:
        pass


class AssistantDrafter:
    def __init__(self, contract: ModelContract, *, max_length: int, processors, do_sample: bool,
                 eos: torch.Tensor | None, num_tokens: float, schedule: str, threshold: float | None):
        self.contract = contract
        self.decoder = Decoder(contract, max_length=max_length)
        self.processors, self.do_sample = processors, do_sample
        self.eos = eos
        self.num_tokens, self.schedule = num_tokens, schedule
        self.threshold = threshold if threshold else None  # 0 or None: draft the full num_assistant_tokens

    def start(self, prompt) -> None:
        """Encode (encoder-decoder) and prefill the assistant with the prompt, as generate() did for the large model.
        The logits of the prefill are not needed: the large model picks the first token itself."""
        dec = self.decoder
        if self.contract.seq2seq:
            args = {k: v for k, v in prompt.encoder_args.items() if k in self.contract.encoder_inputs}
            dec.encode(prompt.source_ids, prompt.encoder_mask, None, **args)
        # Positions are the assistant's own (RoBERTa counts from its padding index), from the same mask.
        positions = None if self.contract.seq2seq else self.contract.prompt_positions(prompt.mask)
        dec.prefill(prompt.ids, prompt.mask, positions, prompt.token_types)

    def draft(self, seq: torch.Tensor, cur: int, budget: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Draft ids (k,) written to seq[0, cur:cur + k], and when sampling the (k, V) probabilities they were drawn
        from (after the logits processors, as the large model's are judged)."""
        limit = min(int(self.num_tokens), budget)
        if limit <= 0:
            return seq[0, :0], None
        dec = self.decoder
        # Keep the cached positions that still agree with the sequence; feed the tokens it has not seen.
        dec.crop(min(dec.length, cur - 1))
        logits = dec.verify(seq[:, dec.length:cur])[:, -1]  # (1, V)
        probs = []
        pos = cur
        for i in range(limit):
            scores = self.processors(seq[:, :pos], logits) if self.processors else logits
            p = torch.softmax(scores, dim=-1) if self.do_sample or self.threshold else None
            token = torch.multinomial(p, num_samples=1)[:, 0] if self.do_sample else scores.max(dim=-1).indices
            if self.do_sample:
                probs.append(p[0])
            seq[:, pos] = token
            pos += 1
            if self.eos is not None and bool(torch.isin(token, self.eos).any()):
                break
            if self.threshold is not None and float(p[0, token]) < self.threshold:
                break  # the assistant doubts this token: later ones are likely wasted work for the large model
            if i + 1 < limit:
                logits = dec.step(token)
        return seq[0, cur:pos].clone(), (torch.stack(probs) if probs else None)

    def accepted(self, drafted: int, matches: int) -> None:
        if self.schedule in ("heuristic", "heuristic_transient") and drafted:
            self.num_tokens = self.num_tokens + 2 if matches == drafted else max(1, self.num_tokens - 1)
