"""Greedy decoding, multinomial sampling, beam search and beam sampling over the step protocol (step.py).

Each search receives a ``Run`` (the decoder after its prefill, the first logits, processors, stopping criteria and
settings) and returns the sequences plus what ``return_dict_in_generate`` reports. The token-level rules are
transformers' (v5), so that outputs are token-identical:

- greedy / sampling: pick argmax / a multinomial draw from the processed scores; rows that finished keep
  receiving the pad token until every row is done;
- beam search (vectorised): each step keeps the ``max(2, 1 + #eos) * num_beams`` best continuations of all beams
  (so at least ``num_beams`` survive even if the best ones end), retires the finished ones among the top
  ``num_beams`` into a per-input list of hypotheses scored ``sum log p / generated_length ** length_penalty``,
  and stops per ``early_stopping`` (True: once num_beams hypotheses are done; False: once no running beam can
  beat the worst kept hypothesis at its current length; "never": the canonical bound, at max_length when
  length_penalty > 0). Beam sampling draws the continuations instead of taking the top ones.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from .step import Decoder

__all__ = ["Run", "SearchResult", "greedy_or_sample", "beam_search", "append_tokens"]

BIG = -1.0e9  # transformers' "impossible" score: finite, so sums of several stay ordered


@dataclass
class Run:
    decoder: Decoder
    first_logits: torch.Tensor  # (batch, V): logits after the prefill, before any expansion
    input_ids: torch.Tensor  # (batch, T0): prompt (decoder-only) or decoder start tokens
    processors: Any  # LogitsProcessorList (possibly empty)
    stopping: Any  # StoppingCriteriaList without the max-length rule (the loops bound the length)
    max_length: int
    do_sample: bool
    num_beams: int
    num_return_sequences: int
    length_penalty: float
    early_stopping: bool | str
    pad_token_id: int | None
    eos: torch.Tensor | None  # (E,) ids
    pad_finished: bool  # rows can finish individually: fill them with pad_token_id afterwards
    streamer: Any = None
    want: dict[str, bool] = field(default_factory=dict)  # scores / logits / attentions / hidden_states


@dataclass
class SearchResult:
    sequences: torch.Tensor
    scores: tuple | None = None
    logits: tuple | None = None
    attentions: tuple | None = None
    cross_attentions: tuple | None = None
    hidden_states: tuple | None = None
    sequences_scores: torch.Tensor | None = None
    beam_indices: torch.Tensor | None = None


class _Recorder:
    """Collects per-step scores / logits / model internals when return_dict_in_generate asks for them."""

    def __init__(self, run: Run):
        self.want, self.decoder = run.want, run.decoder
        self.scores, self.logits, self.attentions, self.cross, self.hidden = [], [], [], [], []

    def add(self, scores: torch.Tensor, logits: torch.Tensor, rows: int) -> None:
        if self.want.get("scores"):
            self.scores.append(scores)
        if self.want.get("logits"):
            self.logits.append(logits)
        out = self.decoder.last_output
        grow = (lambda t: t.repeat_interleave(rows // t.shape[0], 0) if t.shape[0] != rows else t)
        if self.want.get("attentions"):
            self.attentions.append(tuple(grow(a) for a in out.attentions))
            if out.cross_attentions is not None:
                self.cross.append(tuple(grow(a) for a in out.cross_attentions))
        if self.want.get("hidden_states"):
            self.hidden.append(tuple(grow(h) for h in out.hidden_states))

    def fill(self, result: SearchResult) -> SearchResult:
        w = self.want
        result.scores = tuple(self.scores) if w.get("scores") else None
        result.logits = tuple(self.logits) if w.get("logits") else None
        result.attentions = tuple(self.attentions) if w.get("attentions") else None
        result.cross_attentions = tuple(self.cross) if w.get("attentions") and self.cross else None
        result.hidden_states = tuple(self.hidden) if w.get("hidden_states") else None
        return result


# ---- greedy and sampling -----------------------------------------------------------------------------------------
def greedy_or_sample(run: Run) -> SearchResult:
    dec, rec = run.decoder, _Recorder(run)
    copies = run.num_return_sequences if run.do_sample else 1
    batch, start = run.input_ids.shape
    logits = run.first_logits
    if copies > 1:
        dec.expand(copies)
        logits = logits.repeat_interleave(copies, 0)
    rows = batch * copies
    # Sequences live in one preallocated buffer; processors see a view of its filled part.
    seq = run.input_ids.new_empty(rows, run.max_length)
    seq[:, :start] = run.input_ids.repeat_interleave(copies, 0) if copies > 1 else run.input_ids
    unfinished = torch.ones(rows, dtype=torch.bool, device=seq.device)
    pad = torch.tensor(run.pad_token_id if run.pad_token_id is not None else 0, device=seq.device)
    cur = start
    while True:
        scores = run.processors(seq[:, :cur], logits) if run.processors else logits
        rec.add(scores, logits, rows)
        if run.do_sample:
            tokens = torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1).squeeze(1)
        else:
            tokens = scores.max(dim=-1).indices  # the first maximum, as argmax, in a third of its time
        tokens, cur, done = append_tokens(run, rec, seq, cur, tokens, unfinished, pad)
        if done:
            break
        logits = dec.step(tokens)
    return rec.fill(SearchResult(sequences=seq[:, :cur]))


def append_tokens(run: Run, rec: "_Recorder", seq: torch.Tensor, cur: int, tokens: torch.Tensor,
                  unfinished: torch.Tensor, pad: torch.Tensor) -> tuple[torch.Tensor, int, bool]:
    """Write one token per row at ``cur`` (finished rows get ``pad``), stream it, and apply the stopping rules
    (``unfinished`` is updated in place). Returns the tokens written (what the next step is fed), the new length
    and whether every row is done. Shared by the
    one-token-per-step searches (greedy / sampling, contrastive, DoLa)."""
    if run.pad_finished:
        tokens = torch.where(unfinished, tokens, pad)
    seq[:, cur] = tokens
    cur += 1
    if run.streamer is not None:
        run.streamer.put(tokens.cpu())
    if cur >= run.max_length:
        return tokens, cur, True
    if run.stopping:
        unfinished &= ~run.stopping(seq[:, :cur], tuple(rec.scores) if rec.scores else None)
        if not bool(unfinished.any()):
            return tokens, cur, True
    return tokens, cur, False


# ---- beam search and beam sampling -------------------------------------------------------------------------------
def _gather(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """t[b, idx[b, j], ...] for (B, K, ...) tensors and (B, J) indices."""
    while idx.dim() < t.dim():
        idx = idx.unsqueeze(-1)
    return torch.take_along_dim(t, idx, dim=1)


def beam_search(run: Run) -> SearchResult:
    dec, rec = run.decoder, _Recorder(run)
    nb, lp, early = run.num_beams, run.length_penalty, run.early_stopping
    batch, prompt = run.input_ids.shape
    rows, max_len = batch * nb, run.max_length
    dec.expand(nb)
    logits = run.first_logits.repeat_interleave(nb, 0)
    device = run.input_ids.device
    n_eos = 0 if run.eos is None else run.eos.numel()
    keep = max(2, 1 + n_eos) * nb  # candidates per input, so num_beams survive even if the best ones end
    top_nb = torch.cat([torch.ones(nb, dtype=torch.bool), torch.zeros(keep - nb, dtype=torch.bool)]).to(device)
    fill = run.pad_token_id if run.pad_token_id is not None else (int(run.eos[0]) if n_eos else -1)

    running = torch.full((batch, nb, max_len), fill, dtype=torch.long, device=device)
    running[:, :, :prompt] = run.input_ids[:, None, :]
    done_seq = running.clone()
    running_scores = torch.zeros(batch, nb, dtype=torch.float, device=device)
    running_scores[:, 1:] = BIG  # all beams start identical: only the first may expand at step one
    done_scores = torch.full((batch, nb), BIG, dtype=torch.float, device=device)
    done_flag = torch.zeros(batch, nb, dtype=torch.bool, device=device)
    improvable = torch.ones(batch, 1, dtype=torch.bool, device=device)
    running_idx = torch.full((batch, nb, max_len - prompt), -1, dtype=torch.int32, device=device)
    done_idx = running_idx.clone()
    offset = torch.arange(batch, device=device).view(-1, 1) * nb
    cur = prompt
    while True:
        logp = torch.log_softmax(logits, dim=-1)
        flat = running[:, :, :cur].reshape(rows, cur)
        if run.processors:
            logp = run.processors(flat, logp)
        rec.add(logp, logits, rows)
        vocab = logp.shape[-1]
        total = (logp.view(batch, nb, vocab) + running_scores[:, :, None]).view(batch, nb * vocab)

        # a. the best (or sampled) continuations of all beams
        if run.do_sample:
            cand = torch.multinomial(torch.softmax(total, dim=-1), num_samples=keep)
            cand_scores = torch.gather(total, 1, cand)
        else:
            cand_scores, cand = torch.topk(total, k=keep)
        parent = cand // vocab
        cand_seq = _gather(running, parent)
        cand_seq[:, :, cur] = cand % vocab
        cand_idx = _gather(running_idx, parent)
        cand_idx[:, :, cur - prompt] = (parent + offset).to(cand_idx.dtype)

        # b. which continuations end here
        ended = torch.full((batch, keep), cur + 1 >= max_len, dtype=torch.bool, device=device)
        if run.stopping:
            hits = run.stopping(cand_seq[:, :, :cur + 1].reshape(batch * keep, cur + 1),
                                tuple(rec.scores) if rec.scores else None)
            ended = ended | hits.view(batch, keep)

        # c. the num_beams best unfinished continuations run on
        live_scores = cand_scores + ended.to(torch.float32) * BIG
        nxt = torch.topk(live_scores, k=nb)[1]
        running = _gather(cand_seq, nxt)
        running_scores = _gather(live_scores, nxt)
        running_idx = _gather(cand_idx, nxt)

        # d. finished continuations among the top num_beams compete for the hypothesis list
        just_done = ended & top_nb[None, :]
        scored = cand_scores / ((cur + 1 - prompt) ** lp)
        full = torch.all(done_flag, dim=-1, keepdim=True) & (early is True)
        scored += full.to(torch.float32) * BIG
        scored += (~improvable).to(torch.float32) * BIG
        scored += (~just_done) * BIG
        best = torch.topk(torch.cat((done_scores, scored), dim=1), k=nb)[1]
        done_seq = _gather(torch.cat((done_seq, cand_seq), dim=1), best)
        done_scores = _gather(torch.cat((done_scores, scored), dim=1), best)
        done_idx = _gather(torch.cat((done_idx, cand_idx), dim=1), best)
        done_flag = _gather(torch.cat((done_flag, just_done), dim=1), best)

        # e. the cache follows the surviving beams' parents
        dec.reorder(running_idx[..., cur - prompt].reshape(rows).long())
        cur += 1
        improvable = _still_improvable(improvable, running_scores, done_scores, done_flag, cur, max_len, prompt,
                                       early, lp)
        if run.streamer is not None and hasattr(run.streamer, "put_beams"):
            _stream_beams(run.streamer, running, running_scores, done_seq, done_scores, done_idx, done_flag, cur,
                          prompt, lp)
        go_on = bool(improvable.any()) and not (bool(done_flag.all()) and early is True) and not bool(ended.all())
        if not go_on:
            break
        logits = dec.step(running[:, :, cur - 1].reshape(rows))

    n = run.num_return_sequences
    sequences = done_seq[:, :n].reshape(batch * n, max_len)
    scores = done_scores[:, :n].reshape(batch * n)
    indices = done_idx[:, :n].reshape(batch * n, max_len - prompt)
    generated = int((indices + 1).bool().sum(dim=1).max())
    result = SearchResult(sequences=sequences[:, :prompt + generated], sequences_scores=scores,
                          beam_indices=indices[:, :generated])
    return rec.fill(result)


def _still_improvable(improvable, running_scores, done_scores, done_flag, cur, max_len, prompt, early, lp):
    """Can the best running beam still beat the worst kept hypothesis? (the early_stopping rule, see module doc)"""
    if early == "never" and lp > 0.0:
        best_length = max_len - prompt  # a longer sequence scores higher: assume it reaches max_length
    else:
        best_length = cur - prompt
    best_possible = running_scores[:, :1] / (best_length ** lp)
    worst_kept = torch.where(done_flag, torch.min(done_scores, dim=1, keepdim=True)[0], BIG)
    return improvable & torch.any(best_possible > worst_kept, dim=-1, keepdim=True)


def _stream_beams(streamer, running, running_scores, done_seq, done_scores, done_idx, done_flag, cur, prompt,
                  lp) -> None:
    """Report input 0's current best hypothesis and how many of its tokens every candidate already shares (those
    can no longer change: the result is one of the kept hypotheses or an extension of a running beam)."""
    kept = done_flag[0]
    run_best = float(running_scores[0, 0]) / ((cur - prompt) ** lp)
    if bool(kept[0]) and float(done_scores[0, 0]) >= run_best:
        length = int((done_idx[0, 0] != -1).sum())
        best = done_seq[0, 0, prompt:prompt + length]
    else:
        best = running[0, 0, prompt:cur]
    cand = running[0, :, prompt:cur]
    if bool(kept.any()):
        cand = torch.cat([cand, done_seq[0, kept, prompt:cur]])
    stable = int((cand == cand[:1]).all(dim=0).long().cumprod(0).sum())
    streamer.put_beams(best, min(stable, best.shape[0]))
