"""Constrained beam search: beam search whose outputs must contain given words (``force_words_ids`` /
``constraints``), as transformers v4 ran it (v5 removed the strategy; v4.46 is the reference, token for token).

Each step, per input (Hokamp & Liu 2017, with v4's "banks"):
1. the ``max(2, 1 + #eos) * num_beams`` best continuations of all beams are taken, as in beam search; one that ends
   (an EOS id among the top ``num_beams``) becomes a finished hypothesis only if its sequence meets every
   constraint, the first ``num_beams`` that do not end are the candidates;
2. every beam that has not met all constraints also proposes the tokens that advance them (``advance()``), scored
   by the model like any other continuation; duplicates of a candidate are dropped;
3. candidates are ranked by bank (their progress through the constraints, ``ConstraintListState.get_bank``) and
   score, and taken round-robin over the banks, best bank first: the best of each bank, then the second of each,
   ... until ``num_beams`` are chosen. So hypotheses that made progress survive next to the merely likely ones.

The constraint state of a sequence is replayed from its whole row (the prompt included: a word already in the
prompt counts), exactly as v4 does. At the end, running beams that meet the constraints join the finished
hypotheses; if fewer than ``num_return_sequences`` do, the unconstrained beams fill in (v4's fallback: "we can't
guarantee a successful generation"). Sequences are written as v4's scorer writes them: shorter ones padded with
``pad_token_id``, and an EOS appended after any hypothesis shorter than the longest, even one that stopped
without it; ``beam_indices`` is as wide as the sequences and is left out (None) when the best hypothesis came from
the fallback, as in v4.

Deliberate difference from v4: once an input is done, its beams idle on its own first beam (v4 copied the batch's
row 0 into them, which leaks another input's cache into rows nobody reads). Their later per-step ``scores``
therefore differ from v4's; every returned value is the same.
"""
from __future__ import annotations

import torch

from .constraints import Constraint, ConstraintListState, DisjunctiveConstraint, PhrasalConstraint
from .group_beam import _Hypotheses
from .search import BIG, Run, SearchResult, _Recorder

__all__ = ["constrained_beam_search", "prepare_constraints"]


def prepare_constraints(config, vocab_size: int) -> list[Constraint] | None:
    """The constraints of this call (``constraints`` then ``force_words_ids``), or None when there are none.

    GenerationConfig.validate has checked the shapes; what needs the model or the whole call is checked here,
    before anything runs."""
    if config.constraints is None and config.force_words_ids is None:
        return None
    if config.num_beams < 2:
        raise ValueError(f"constrained beam search (force_words_ids / constraints) needs num_beams > 1, got "
                         f"num_beams={config.num_beams}")
    out = list(config.constraints or [])  # a new list: the caller's is not extended (v4 appended to it)
    for word in config.force_words_ids or []:
        out.append(DisjunctiveConstraint(word) if isinstance(word[0], (list, tuple)) else PhrasalConstraint(word))
    for c in out:
        ids = c.token_ids if isinstance(c, (PhrasalConstraint, DisjunctiveConstraint)) else []
        flat = [t for w in ids for t in w] if isinstance(c, DisjunctiveConstraint) else ids
        bad = [t for t in flat if t >= vocab_size]
        if bad:
            raise ValueError(f"constraint {c!r} names token id {bad[0]}, outside the decoder's vocabulary (size "
                             f"{vocab_size})")
    return out


class _Banks:
    """Constraint states of token sequences, made fresh from the call's constraints (never the caller's objects)."""

    def __init__(self, constraints: list[Constraint]):
        self.constraints = constraints

    def state(self, tokens: list[int] | None = None) -> ConstraintListState:
        s = ConstraintListState([c.copy() for c in self.constraints])
        if tokens is not None:
            s.reset(tokens)
        return s

    def met(self, tokens: list[int]) -> bool:
        return self.state(tokens).completed


def constrained_beam_search(run: Run, constraints: list[Constraint]) -> SearchResult:
    dec, rec, banks = run.decoder, _Recorder(run), _Banks(constraints)
    nb, lp = run.num_beams, run.length_penalty
    batch, prompt = run.input_ids.shape
    rows, max_len = batch * nb, run.max_length
    device = run.input_ids.device
    eos = [] if run.eos is None else run.eos.tolist()
    pad = run.pad_token_id if run.pad_token_id is not None else (eos[0] if eos else 0)
    track = bool(run.want.get("scores"))  # v4 keeps beam indices only when scores are returned
    dec.expand(nb)
    logits = run.first_logits.repeat_interleave(nb, 0)
    seq = run.input_ids.new_empty(rows, max_len)
    seq[:, :prompt] = run.input_ids.repeat_interleave(nb, 0)
    history = torch.full((rows, max_len - prompt), -1, dtype=torch.long, device=device)  # parent row per step
    beam_scores = torch.zeros(batch, nb, device=device)
    beam_scores[:, 1:] = BIG  # all beams start identical: only the first may expand at step one
    beam_scores = beam_scores.view(rows)
    hyps = [_Hypotheses(nb, lp, run.early_stopping, max_len) for _ in range(batch)]
    done = [False] * batch
    keep = max(2, 1 + len(eos)) * nb
    cur = prompt
    while True:
        logp = torch.log_softmax(logits, dim=-1)  # (rows, V)
        if run.processors:
            logp = run.processors(seq[:, :cur], logp)
        total = logp + beam_scores[:, None]  # (rows, V): what v4 returns as this step's scores
        rec.add(total, logits, rows)
        vocab = total.shape[-1]
        top_scores, top = torch.topk(total.view(batch, nb * vocab), keep, dim=1)
        step = _Step(seq[:, :cur].tolist(), total, eos, nb, prompt, banks, history if track else None)
        scores, tokens, parents = [], [], []
        for b in range(batch):
            if done[b]:
                scores += [0.0] * nb
                tokens += [pad] * nb
                parents += [b * nb] * nb  # idle on the input's own first beam (module docstring)
                continue
            s, t, p = step.select(b, hyps[b], top_scores[b].tolist(), (top[b] // vocab).tolist(),
                                  (top[b] % vocab).tolist())
            scores += s
            tokens += t
            parents += p
            done[b] = hyps[b].is_done(float(top_scores[b, 0]), cur + 1, prompt)
        beam_scores = torch.tensor(scores, dtype=torch.float32, device=device)
        new_tokens = torch.tensor(tokens, dtype=seq.dtype, device=device)
        parent_rows = torch.tensor(parents, dtype=torch.long, device=device)
        seq[:, :cur] = seq[parent_rows, :cur]
        seq[:, cur] = new_tokens
        history = history[parent_rows]
        history[:, cur - prompt] = parent_rows
        dec.reorder(parent_rows)
        cur += 1
        if all(done) or cur >= max_len:
            break
        if run.stopping and bool(run.stopping(seq[:, :cur], tuple(rec.scores) if rec.scores else None).all()):
            break
        logits = dec.step(new_tokens)
    return rec.fill(_finalize(run, banks, hyps, done, seq[:, :cur], history[:, :cur - prompt], beam_scores,
                              prompt, pad, eos, track))


class _Step:
    """One step's selection for every input: v4's ConstrainedBeamSearchScorer.process and
    step_sentence_constraint, over plain lists."""

    def __init__(self, rows: list[list[int]], total: torch.Tensor, eos: list[int], nb: int, prompt: int,
                 banks: _Banks, history: torch.Tensor | None):
        self.rows, self.total, self.eos, self.nb, self.prompt = rows, total, eos, nb, prompt
        self.banks, self.history = banks, history
        self.cur = len(rows[0])

    def select(self, b: int, hyps: _Hypotheses, top_scores: list[float], top_parents: list[int],
               top_tokens: list[int]) -> tuple[list[float], list[int], list[int]]:
        nb = self.nb
        scores: list[float] = []
        tokens: list[int] = []
        parents: list[int] = []
        for rank, (score, parent, token) in enumerate(zip(top_scores, top_parents, top_tokens)):
            row = b * nb + parent
            if token in self.eos:
                # Only the top num_beams may end, and only a sequence that meets the constraints is kept.
                if rank < nb and self.banks.met(self.rows[row]):
                    path = None
                    if self.history is not None:
                        path = torch.cat([self.history[row, :self.cur - self.prompt],
                                          torch.tensor([row], device=self.history.device)])
                    hyps.add(torch.tensor(self.rows[row], device=self.total.device), score, path,
                             self.cur + 1 - self.prompt)
            else:
                scores.append(score)
                tokens.append(token)
                parents.append(row)
                if len(scores) == nb:
                    break
        if len(scores) < nb:
            raise ValueError(f"constrained beam search found only {len(scores)} of {nb} continuations that do not "
                             f"end (eos ids {self.eos}); use fewer beams")
        return self._rank_by_bank(b, scores, tokens, parents)

    def _rank_by_bank(self, b, scores, tokens, parents):
        nb, first = self.nb, b * self.nb
        candidates = [self.rows[r] + [t] for r, t in zip(parents, tokens)]
        states = [self.banks.state(c) for c in candidates]
        seen = list(candidates)  # a forced continuation that is already a candidate is not added twice
        extra_scores = []
        for j in range(nb):
            pre = self.rows[first + j]
            state = self.banks.state(pre)
            if state.completed:
                continue
            for token in state.advance():
                # One stateful copy per forced token, fed in turn (DisjunctiveConstraint shares its progress
                # between such copies: see constraints.py).
                forced = state.copy(stateful=True)
                forced.add(token)
                if pre + [token] in seen:
                    continue
                seen.append(pre + [token])
                states.append(forced)
                tokens.append(token)
                parents.append(first + j)
                extra_scores.append(self.total[first + j, token])
        if not extra_scores:
            return scores, tokens, parents
        all_scores = torch.cat([torch.tensor(scores, dtype=self.total.dtype, device=self.total.device),
                                torch.stack(extra_scores)])
        bank = torch.tensor([s.get_bank() for s in states], device=self.total.device)
        # The same float32 key and sort as v4, so that ties (scores near -1e9 lose their low digits) break alike.
        order = (bank * 100 + all_scores).sort(descending=True).indices.tolist()
        ranked_banks = [int(bank[i]) for i in order]
        place, previous, count = [], None, -1
        for k in ranked_banks:  # rank of each candidate inside its bank
            count = count + 1 if k == previous else 0
            previous = k
            place.append(count)
        chosen = [order[i] for i in sorted(range(len(order)), key=place.__getitem__)][:nb]  # round-robin
        values = all_scores.tolist()
        return [values[i] for i in chosen], [tokens[i] for i in chosen], [parents[i] for i in chosen]


def _finalize(run: Run, banks: _Banks, hyps, done, seq, history, beam_scores, prompt, pad, eos,
              track: bool) -> SearchResult:
    nb, n = run.num_beams, run.num_return_sequences
    steps = seq.shape[1] - prompt
    final = beam_scores.tolist()
    for b, h in enumerate(hyps):
        if done[b]:
            continue
        met = []
        for j in range(nb):
            row = b * nb + j
            if banks.met(seq[row].tolist()):
                h.add(seq[row].clone(), final[row], history[row].clone() if track else None, steps)
                met.append(j)
        if len(met) < n:
            # Too few beams meet the constraints: the best of the others fill in, without beam indices (as v4).
            for j in range(nb):
                if j not in met:
                    h.add(seq[b * nb + j].clone(), final[b * nb + j], None, steps)
    best = []
    for h in hyps:
        ranked = sorted(h.beams, key=lambda x: x[0])
        best.extend(ranked.pop() for _ in range(n))
    lengths = [t.shape[0] for _, t, _ in best]
    width = min(max(lengths) + 1, run.max_length)
    if min(lengths) != max(lengths) and run.pad_token_id is None and not eos:
        raise ValueError("pad_token_id is not set, but the returned sequences have different lengths; set it")
    out = seq.new_full((len(best), width), pad)
    indices = None
    if best[0][2] is not None:
        # As wide as the sequences (v4's layout): one column per generated token, then -1.
        indices = torch.full((len(best), width), -1, dtype=torch.long, device=seq.device)
    for i, (_, tokens, path) in enumerate(best):
        out[i, :tokens.shape[0]] = tokens
        if indices is not None and path is not None:
            indices[i, :path.shape[0]] = path
        if tokens.shape[0] < width and eos:
            out[i, tokens.shape[0]] = eos[0]
    scores = torch.tensor([s for s, _, _ in best], dtype=torch.float, device=seq.device)
    return SearchResult(sequences=out, sequences_scores=scores, beam_indices=indices)
