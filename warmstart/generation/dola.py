"""DoLa decoding: Chuang et al. 2024, "DoLa: Decoding by Contrasting Layers Improves Factuality in Large Language
Models" (ICLR), as transformers v4 ran it (``dola_layers`` set, greedy search or sampling, decoder-only models).

Each step reads the hidden state of the last position after every layer. The final ("mature") layer's logits are
contrasted with those of one earlier ("premature") layer, whose hidden state goes straight through the output
embedding matrix (``get_output_embeddings()``: for BERT the vocabulary projection without the head's transform,
for GPT-2 the projection without the final LayerNorm, exactly as v4 applies it):

- the premature layer is the candidate whose next-token distribution is farthest from the mature one by
  Jensen-Shannon divergence, averaged over the vocabulary and over the rows of the batch (one layer per step for
  the whole batch, as v4 picks it); with a single candidate there is nothing to pick;
- both are log-softmaxed, tokens below a tenth of the mature maximum probability are ruled out (the "adaptive
  plausibility constraint"), and the step's logits are the difference ``log p_mature - log p_premature``;
- the usual logits processors, then argmax or a multinomial draw, as in greedy search / sampling.

Which layers are candidates (v4's rule; layer 0 is the embedding output, N the number of layers): "low" takes
``range(start, N // 2, 2)`` and "high" ``range(N // 2, N, 2)`` (for N > 40: ``range(start, 20, 2)`` and
``range(N - 20, N, 2)``), where ``start`` skips the embedding layer of a model with tied embeddings (whose early exit
would be the identity): 2, or 1 for a 2-layer model; a list names the layers itself. transformers v5 moved this
strategy to a Hub repository, so v4.46.3 is the reference (tests/assets/strategies). The paper recommends
``repetition_penalty`` >= 1.2 with it (GenerationConfig warns otherwise).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .contract import ModelContract
from .search import Run, SearchResult, _Recorder, append_tokens

__all__ = ["candidate_layers", "dola_settings", "dola_decoding"]

RELATIVE_TOP = 0.1  # the plausibility constraint: keep tokens with p >= 0.1 * max p (the paper's alpha)
RULED_OUT_BASE = -1e-3  # what the premature log-probability of a ruled-out token is set to (its mature one: -inf)


def candidate_layers(dola_layers, num_layers: int, tied_embeddings: bool) -> list[int]:
    """The premature layers to contrast with the final one (see the module docstring for the rule)."""
    n = num_layers
    if isinstance(dola_layers, str):
        start = 0 if not tied_embeddings else (2 if n > 2 else (1 if n == 2 else 0))
        if dola_layers == "low":
            if start == n // 2:
                return [start]
            return list(range(start, n // 2, 2) if n <= 40 else range(start, 20, 2))
        if dola_layers == "high":
            return list(range(n // 2, n, 2) if n <= 40 else range(n - 20, n, 2))
        raise ValueError(f"dola_layers must be 'low', 'high' or a list of layer indices, got {dola_layers!r}")
    missing = [i for i in dola_layers if i > n]
    if missing:
        raise ValueError(f"dola_layers {list(dola_layers)} names layers {missing} the model does not have: layer "
                         f"indices run from 0 (the embeddings) to {n} (the final layer, which is the mature one)")
    layers = [int(i) for i in dola_layers if i < n]  # the final layer itself is dropped, as v4 does
    if not layers:
        raise ValueError(f"dola_layers {list(dola_layers)} leaves no layer to contrast with the final one (layer "
                         f"{n}); name layers 0 ... {n - 1}")
    return layers


def dola_settings(config, contract: ModelContract) -> list[int] | None:
    """The candidate layers when this call runs DoLa, else None; raises, before anything runs, for a model it cannot
    run on (the settings alone were checked by GenerationConfig)."""
    layers = getattr(config, "dola_layers", None)
    if layers is None:
        return None
    if contract.seq2seq:
        raise ValueError("DoLa decoding is only available for decoder-only models: "
                         f"{contract.name} is an encoder-decoder (dola_layers={layers!r})")
    lm_config = contract.lm.config
    return candidate_layers(layers, lm_config.num_hidden_layers, bool(lm_config.tie_word_embeddings))


def dola_decoding(run: Run, layers: list[int]) -> SearchResult:
    """Greedy search or sampling over the contrasted logits; needs a decoder built with output_hidden_states."""
    dec, rec = run.decoder, _Recorder(run)
    exit_head = dec.contract.lm.get_output_embeddings()
    batch, start = run.input_ids.shape
    seq = run.input_ids.new_empty(batch, run.max_length)
    seq[:, :start] = run.input_ids
    unfinished = torch.ones(batch, dtype=torch.bool, device=seq.device)
    pad = torch.tensor(run.pad_token_id if run.pad_token_id is not None else 0, device=seq.device)
    logits, cur = run.first_logits, start
    while True:
        states = dec.last_output.hidden_states  # (B, T, C) after every layer, the embeddings first
        premature = [exit_head(states[i][:, -1]).float() for i in layers]  # (B, V) each
        contrasted = _contrast(logits, premature)
        scores = run.processors(seq[:, :cur], contrasted) if run.processors else contrasted
        rec.add(scores, logits, batch)  # v4 reports the final layer's own logits as `logits`
        if run.do_sample:
            tokens = torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1).squeeze(1)
        else:
            tokens = torch.argmax(scores, dim=-1)
        tokens, cur, done = append_tokens(run, rec, seq, cur, tokens, unfinished, pad)
        if done:
            break
        logits = dec.step(tokens)
    return rec.fill(SearchResult(sequences=seq[:, :cur]))


def _contrast(mature: torch.Tensor, premature: list[torch.Tensor]) -> torch.Tensor:
    """log p_mature - log p_premature over the plausible tokens, against the most distant premature layer."""
    if len(premature) == 1:
        base = premature[0]
    else:
        stacked = torch.stack(premature)  # (L, B, V)
        p_mature, p_early = torch.softmax(mature, dim=-1), torch.softmax(stacked, dim=-1)
        middle = 0.5 * (p_mature[None] + p_early)  # (L, B, V)
        # kl_div(log q, p) is p * (log p - log q) per element: KL(middle || mature) and KL(middle || premature).
        kl_mature = F.kl_div(torch.log_softmax(mature, dim=-1)[None], middle, reduction="none").mean(-1)
        kl_early = F.kl_div(torch.log_softmax(stacked, dim=-1), middle, reduction="none").mean(-1)
        js = (0.5 * (kl_mature + kl_early)).mean(-1)  # (L,): one choice for the whole batch
        base = premature[int(js.argmax())]
    mature_lp, base_lp = torch.log_softmax(mature, dim=-1), torch.log_softmax(base, dim=-1)
    threshold = mature_lp.max(dim=-1, keepdim=True).values + math.log(RELATIVE_TOP)
    implausible = mature_lp < threshold
    return mature_lp.masked_fill(implausible, -float("inf")) - base_lp.masked_fill(implausible, RULED_OUT_BASE)
