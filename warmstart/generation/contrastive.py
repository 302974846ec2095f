"""Contrastive search: Su et al. 2022, "A Contrastive Framework for Neural Text Generation", as transformers v4 ran
it (``penalty_alpha`` > 0 with ``top_k`` > 1, no sampling, one beam).

Each step looks one token ahead. The ``top_k`` most probable next tokens (after the logits processors) are fed to
the model as candidates, and each is scored

    (1 - penalty_alpha) * p(candidate) - penalty_alpha * max_j cos(h_candidate, h_j)

where ``h`` are last-layer hidden states and ``j`` runs over every earlier position of the row (prompt padding
excluded): the degeneration penalty, which keeps the text from looping back onto what it already said. The best
candidate is appended, and the logits its forward pass produced are the next step's.

Over the step protocol: after the prefill the decoder is expanded to ``top_k`` rows per input, so one ``step`` feeds
all candidates of all inputs at once (rows i*k ... i*k+k-1 are input i's). After the choice the k rows of an input
copy the chosen row's cache (``reorder``), and the next step's candidates continue from it. transformers v5 moved
this strategy to a Hub repository, so v4.46.3 is the reference (tests/assets/strategies); what it reports with
``return_dict_in_generate`` follows v4 too: per-step scores / logits of the chosen rows, their attentions and hidden
states (the prefill's at the first step), and a cache without the final look-ahead position.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .contract import ModelContract
from .search import Run, SearchResult, _Recorder, append_tokens

__all__ = ["contrastive_settings", "contrastive_search"]


def contrastive_settings(config, contract: ModelContract, cached: bool) -> tuple[float, int] | None:
    """(penalty_alpha, top_k) when this call runs contrastive search, else None; raises, before anything runs, for a
    model or a setting it cannot run with (the combinations of settings were checked by GenerationConfig)."""
    alpha = getattr(config, "penalty_alpha", None)
    if not alpha:
        return None
    if not cached:
        why = ("use_cache=False was passed" if contract.causal else
               f"{contract.name} was built with is_decoder=False and attends in both directions")
        raise ValueError(f"contrastive search (penalty_alpha={alpha}) requires the cache, but {why}: its candidates "
                         "continue from the cached prefix (v4: 'Contrastive search requires `use_cache=True`')")
    if config.top_k > contract.vocab_size:
        raise ValueError(f"top_k={config.top_k} candidates requested, but the decoder's vocabulary has only "
                         f"{contract.vocab_size} tokens")
    return float(alpha), int(config.top_k)


@dataclass
class _Chosen:
    """What _Recorder reads of a decoder: the latest output, here narrowed to the candidates that were kept."""
    last_output: Any


@dataclass
class _Picked:
    attentions: tuple | None
    cross_attentions: tuple | None
    hidden_states: tuple | None


def _rows_of(out, rows: torch.Tensor) -> _Picked:
    """The attentions / hidden states of ``rows`` of a backbone output (what return_dict_in_generate records)."""
    def pick(ts):
        return None if ts is None else tuple(t.index_select(0, rows) for t in ts)

    return _Picked(attentions=pick(out.attentions), cross_attentions=pick(getattr(out, "cross_attentions", None)),
                   hidden_states=pick(out.hidden_states))


def contrastive_search(run: Run, penalty_alpha: float, top_k: int) -> SearchResult:
    dec, rec = run.decoder, _Recorder(run)
    batch, start = run.input_ids.shape
    k = top_k
    usable, needed = dec.contract.usable_positions, dec.length + run.max_length - start
    if needed > usable:
        # Every chosen token is also fed (its hidden state is the candidate's), so the last one needs a position too.
        raise ValueError(f"contrastive search feeds every generated token, so max_length={run.max_length} needs "
                         f"{needed} decoder positions, but the decoder has {usable}; lower max_length / "
                         "max_new_tokens by one")
    device = run.input_ids.device
    prefill = dec.last_output
    context_len = prefill.last_hidden_state.shape[1]  # positions fed so far (an embedded prompt has no ids)
    width = context_len + run.max_length - start

    # The context the penalty compares with: normalised last-layer states of every position, and which are real.
    context = prefill.last_hidden_state.new_empty(batch, width, prefill.last_hidden_state.shape[-1])
    context[:, :context_len] = _unit(prefill.last_hidden_state)
    real = torch.ones(batch, width, dtype=torch.bool, device=device)
    if dec.mask is not None:  # a padded prompt (or a decoder_attention_mask with zeros)
        real[:, :context_len] = dec.mask[:, :context_len].bool()

    want_internals = run.want.get("attentions") or run.want.get("hidden_states")
    if want_internals:
        rec.decoder = _Chosen(prefill)
    logits = run.first_logits  # (B, V)
    dec.expand(k)
    seq = run.input_ids.new_empty(batch, run.max_length)
    seq[:, :start] = run.input_ids
    unfinished = torch.ones(batch, dtype=torch.bool, device=device)
    pad = torch.tensor(run.pad_token_id if run.pad_token_id is not None else 0, device=device)
    first_of_input = torch.arange(batch, device=device) * k
    cur, filled = start, context_len
    while True:
        scores = run.processors(seq[:, :cur], logits) if run.processors else logits
        rec.add(scores, logits, batch)
        probs, cand = torch.topk(torch.softmax(scores, dim=-1), k=k, dim=-1)  # (B, K) each

        # Look ahead: feed every candidate, compare its hidden state with the row's context.
        cand_logits = dec.step(cand.reshape(batch * k))  # (B*K, V)
        out = dec.last_output
        hidden = out.last_hidden_state[:, -1].view(batch, k, -1)  # (B, K, C)
        cos = torch.matmul(_unit(hidden), context[:, :filled].transpose(1, 2))  # (B, K, S)
        cos = cos.masked_fill(~real[:, None, :filled], torch.finfo(cos.dtype).min)
        penalty = cos.max(dim=-1).values  # (B, K)
        pick = ((1.0 - penalty_alpha) * probs - penalty_alpha * penalty).max(dim=-1).indices  # (B,)

        rows = first_of_input + pick  # the chosen candidates' rows
        tokens = cand.gather(1, pick[:, None]).squeeze(1)
        context[:, filled] = _unit(hidden[torch.arange(batch, device=device), pick])
        filled += 1
        logits = cand_logits.index_select(0, rows)
        if want_internals:
            rec.decoder = _Chosen(_rows_of(out, rows))
        dec.reorder(rows.repeat_interleave(k))  # every candidate row of an input continues from the chosen one

        tokens, cur, done = append_tokens(run, rec, seq, cur, tokens, unfinished, pad)
        if done:
            break

    # The cache handed back holds one row per input and, as v4 returns it, not the look-ahead position of the last
    # token (the other searches never feed their last token).
    dec.cache.reorder_cache(first_of_input, cross=True)
    dec.cache.crop(dec.length - 1)
    return rec.fill(SearchResult(sequences=seq[:, :cur]))


def _unit(h: torch.Tensor) -> torch.Tensor:
    return h / h.norm(dim=-1, keepdim=True)
