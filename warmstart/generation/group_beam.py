"""Diverse (group) beam search: Vijayakumar et al. 2016, "Diverse Beam Search", as transformers v4 ran it.

The ``num_beams`` beams form ``num_beam_groups`` groups searched one after another at each step; a group's scores are
lowered by ``diversity_penalty`` for every beam of an earlier group that picked the same token at this step
(HammingDiversityLogitsProcessor). Each (input, group) keeps its own list of finished hypotheses (v4's
BeamHypotheses: the best ``group_size`` by ``sum log p / generated_length ** length_penalty``); the returned
sequences are the best hypotheses over all groups. transformers v5 moved this strategy to a Hub repository, so
v4's rules are the reference here (EOS is written after a hypothesis shorter than max_length; a group is done when
early_stopping says no running beam can beat its worst kept hypothesis).
"""
from __future__ import annotations

import torch

from .search import BIG, Run, SearchResult, _Recorder

__all__ = ["group_beam_search"]


class _Hypotheses:
    """The best ``size`` finished sequences of one (input, group), with v4's stopping rule."""

    def __init__(self, size: int, length_penalty: float, early_stopping, max_length: int):
        self.size, self.lp, self.early, self.max_length = size, length_penalty, early_stopping, max_length
        self.beams: list[tuple[float, torch.Tensor, torch.Tensor]] = []
        self.worst = 1e9

    def add(self, tokens: torch.Tensor, sum_logprobs: float, indices: torch.Tensor, generated_len: int) -> None:
        score = sum_logprobs / (generated_len ** self.lp)
        if len(self.beams) < self.size or score > self.worst:
            self.beams.append((score, tokens, indices))
            if len(self.beams) > self.size:
                ranked = sorted((s, i) for i, (s, _, _) in enumerate(self.beams))
                del self.beams[ranked[0][1]]
                self.worst = ranked[1][0]
            else:
                self.worst = min(score, self.worst)

    def is_done(self, best_sum_logprobs: float, cur_len: int, prompt: int) -> bool:
        if len(self.beams) < self.size:
            return False
        if self.early is True:
            return True
        length = self.max_length - prompt if (self.early == "never" and self.lp > 0.0) else cur_len - prompt
        return self.worst >= best_sum_logprobs / length ** self.lp


def group_beam_search(run: Run, groups: int) -> SearchResult:
    dec, rec = run.decoder, _Recorder(run)
    nb = run.num_beams
    size = nb // groups
    batch, prompt = run.input_ids.shape
    rows, max_len = batch * nb, run.max_length
    device = run.input_ids.device
    eos = [] if run.eos is None else run.eos.tolist()
    pad = run.pad_token_id if run.pad_token_id is not None else (eos[0] if eos else 0)
    dec.expand(nb)
    logits = run.first_logits.repeat_interleave(nb, 0)
    seq = run.input_ids.new_empty(rows, max_len)
    seq[:, :prompt] = run.input_ids.repeat_interleave(nb, 0)
    history = torch.full((rows, max_len - prompt), -1, dtype=torch.long, device=device)  # parent row per step
    beam_scores = torch.full((batch, nb), BIG, device=device)
    beam_scores[:, ::size] = 0  # one live beam per group at the start (all beams are identical then)
    beam_scores = beam_scores.view(rows)
    hyps = [_Hypotheses(size, run.length_penalty, run.early_stopping, max_len) for _ in range(batch * groups)]
    done = [False] * (batch * groups)
    k = max(2, 1 + len(eos)) * size
    cur = prompt
    while True:
        logp = torch.log_softmax(logits, dim=-1)  # (rows, V)
        vocab = logp.shape[-1]
        current = torch.zeros(rows, dtype=torch.long, device=device)
        parents = torch.zeros(rows, dtype=torch.long, device=device)
        processed = torch.empty_like(logp)
        for g in range(groups):
            members = torch.tensor([b * nb + g * size + j for b in range(batch) for j in range(size)], device=device)
            group_seq = seq[members, :cur]
            scores = logp[members]
            if run.processors:
                scores = run.processors(group_seq, scores, current_tokens=current, beam_group_idx=g)
            processed[members] = scores
            total = (scores + beam_scores[members][:, None]).view(batch, size * vocab)
            top_scores, top = torch.topk(total, k, dim=1, largest=True, sorted=True)
            new_scores, new_tokens, new_parents = _select(
                hyps, done, g, groups, size, top_scores, top // vocab, top % vocab, group_seq,
                history[members], members, eos, pad, cur + 1, prompt)
            beam_scores[members] = new_scores
            rows_from = members[new_parents]  # absolute rows of the parents
            seq[members, :cur] = seq[rows_from, :cur]
            history[members] = history[rows_from]
            history[members, cur - prompt] = rows_from
            seq[members, cur] = new_tokens
            current[members] = new_tokens
            parents[members] = rows_from
        rec.add(processed, logits, rows)
        dec.reorder(parents)
        cur += 1
        if run.streamer is not None and hasattr(run.streamer, "put_beams"):
            run.streamer.put_beams(seq[0, prompt:cur], 0)
        if all(done) or cur >= max_len:
            break
        if run.stopping and bool(run.stopping(seq[:, :cur], tuple(rec.scores) if rec.scores else None).all()):
            break
        logits = dec.step(current)
    return rec.fill(_finalize(run, hyps, done, groups, size, seq[:, :cur], history[:, :cur - prompt], beam_scores,
                              prompt, pad, eos))


def _select(hyps, done, g, groups, size, top_scores, top_parents, top_tokens, group_seq, group_history, members,
            eos, pad, cur_len, prompt):
    """v4's BeamSearchScorer.process for one group: retire EOS continuations, keep ``size`` running beams."""
    batch = top_scores.shape[0]
    scores = torch.zeros(batch, size, dtype=top_scores.dtype, device=top_scores.device)
    tokens = torch.full((batch, size), pad, dtype=torch.long, device=top_scores.device)
    parents = torch.zeros(batch, size, dtype=torch.long, device=top_scores.device)
    s_list, p_list, t_list = top_scores.tolist(), top_parents.tolist(), top_tokens.tolist()
    for b in range(batch):
        slot = b * groups + g
        if done[slot]:
            continue  # finished groups idle on pad tokens with score 0
        filled = 0
        for rank, (score, parent, token) in enumerate(zip(s_list[b], p_list[b], t_list[b])):
            row = b * size + parent
            if token in eos:
                if rank >= size:
                    continue  # only the top `size` candidates may end here
                path = torch.cat([group_history[row, :cur_len - 1 - prompt], members[row:row + 1]])
                hyps[slot].add(group_seq[row].clone(), score, path, cur_len - prompt)
            else:
                scores[b, filled], tokens[b, filled], parents[b, filled] = score, token, row
                filled += 1
            if filled == size:
                break
        if filled < size:
            raise ValueError(f"diverse beam search found only {filled} of {size} continuations that do not end "
                             f"(eos ids {eos}); use fewer beams per group")
        done[slot] = done[slot] or hyps[slot].is_done(max(s_list[b]), cur_len, prompt)
    return scores.view(-1), tokens.view(-1), parents.view(-1)


def _finalize(run: Run, hyps, done, groups, size, seq, history, beam_scores, prompt, pad, eos) -> SearchResult:
    batch = len(hyps) // groups
    for slot, h in enumerate(hyps):
        if done[slot]:
            continue
        for j in range(size):
            row = slot * size + j
            h.add(seq[row].clone(), float(beam_scores[row]), history[row].clone(), seq.shape[1] - prompt)
    n = run.num_return_sequences
    best = []
    for b in range(batch):
        ranked = sorted((beam for h in hyps[b * groups:(b + 1) * groups] for beam in h.beams), key=lambda x: x[0])
        best.extend(ranked.pop() for _ in range(n))
    lengths = [t.shape[0] for _, t, _ in best]
    width = min(max(lengths) + 1, run.max_length)
    out = seq.new_full((len(best), width), pad)
    steps = width - prompt
    indices = torch.full((len(best), steps), -1, dtype=torch.long, device=seq.device)
    for i, (_, tokens, hist) in enumerate(best):
        out[i, :tokens.shape[0]] = tokens
        indices[i, :min(hist.shape[0], steps)] = hist[:steps]
        if tokens.shape[0] < width and eos:
            out[i, tokens.shape[0]] = eos[0]
    scores = torch.tensor([s for s, _, _ in best], dtype=torch.float, device=seq.device)
    return SearchResult(sequences=out, sequences_scores=scores, beam_indices=indices)
