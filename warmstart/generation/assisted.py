"""Assisted decoding: a cheap drafter proposes several tokens, the large model checks them all in one pass.

``generate(..., assistant_model=small)`` drafts with a small model of the same vocabulary (Leviathan et al. 2023,
"Fast Inference from Transformers via Speculative Decoding"; transformers' "assisted generation");
``generate(..., prompt_lookup_num_tokens=k)`` drafts by copying what followed an earlier occurrence of the last few
tokens (drafts.py). Each round the large model is fed the last accepted token and the ``k`` draft tokens at once
(``Decoder.verify``) and so gets the logits after each of them; the logits processors run per position, as they
would have in a token-by-token search. Then:

- greedy: draft tokens are kept while they equal the large model's argmax; the argmax after the last kept one is
  appended as well. The output is exactly greedy decoding's, only fewer passes of the large model;
- sampling with prompt lookup: every position is sampled from the large model and compared with the draft
  (transformers' rule): the same distribution as plain sampling;
- sampling with an assistant: the speculative-sampling acceptance rule (Leviathan et al., algorithm 1): draft token
  x is kept with probability min(1, p(x) / q(x)) (p the large model's, q the assistant's processed probabilities);
  at the first rejection the next token is drawn from norm(max(p - q, 0)), and after a fully kept draft from p.
  The tokens are distributed exactly as sampling from the large model. RNG draws differ from transformers' (its
  first round drafts before the large model's first pass), so seeded samples are not token-identical to it.

Rejected positions are dropped from the cache (``Decoder.crop``). Stopping criteria are checked after every accepted
token, so EOS, stop strings and custom criteria end the text where a token-by-token search would (transformers checks
once per round, so a custom criterion can let a few extra tokens through there). Batch size 1 only, greedy search or
sampling only, as in transformers.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .contract import ModelContract
from .drafts import AssistantDrafter, PromptLookupDrafter
from .fast_linear import packed_linears
from .search import Run, SearchResult, _Recorder

__all__ = ["Assisted", "plan_assisted", "assisted_search"]

# Strategies assisted decoding cannot extend (it verifies one greedy or sampled sequence): setting -> "off" values.
_OTHER_STRATEGIES = {"penalty_alpha": (None, 0, 0.0), "constraints": (None,), "force_words_ids": (None,),
                     "dola_layers": (None,)}


@dataclass
class Assisted:
    drafter: Any  # AssistantDrafter | PromptLookupDrafter
    prompt: Any  # the Prompt the assistant is prefilled with
    assistant: nn.Module | None = None
    persist: bool = False  # "heuristic" schedule: the final draft length is kept on the assistant's generation config
    pack: bool = False  # run the assistant's large linears with packed weights (fast_linear.py)


def plan_assisted(contract: ModelContract, config, prompt, plan, assistant_model) -> Assisted | None:
    """Check an assisted / prompt-lookup call and build its drafter; None for every other call. Runs nothing."""
    lookup = config.prompt_lookup_num_tokens
    if assistant_model is None and lookup is None:
        return None
    what = "assistant_model" if assistant_model is not None else f"prompt_lookup_num_tokens={lookup}"
    if assistant_model is not None and lookup is not None:
        raise ValueError(f"pass either assistant_model or prompt_lookup_num_tokens (={lookup}), not both: they are "
                         "two ways of drafting tokens")
    if config.num_beams > 1:
        raise ValueError(f"assisted generate ({what}) is only supported with greedy search and sampling, but "
                         f"num_beams={config.num_beams}; set num_beams=1")
    for name, off in _OTHER_STRATEGIES.items():
        if getattr(config, name, None) not in off:
            raise ValueError(f"assisted generate ({what}) is only supported with greedy search and sampling; it "
                             f"cannot be combined with {name}={getattr(config, name)!r}")
    if config.num_return_sequences > 1:
        raise ValueError(f"num_return_sequences has to be 1 when doing assisted generate, but is "
                         f"{config.num_return_sequences}.")
    if not getattr(plan, "cached", True):
        # Drafts are checked against cached positions and rejected ones cropped away: there is nothing to crop
        # without a cache (use_cache=False, or an LM head built with is_decoder=False, which re-reads everything).
        raise ValueError(f"assisted generate ({what}) requires `use_cache=True` and a model built with "
                         "is_decoder=True")
    if getattr(prompt, "embeds", None) is not None:
        raise ValueError(f"assisted generate ({what}) needs the prompt as input_ids, not inputs_embeds (drafts are "
                         "looked up / proposed by token id)")
    if prompt.batch > 1:
        raise ValueError(f"assisted generate is only supported for batch_size = 1, got a batch of {prompt.batch}: "
                         "generate row by row")
    eos = torch.tensor(plan.eos_ids, device=contract.device) if plan.eos_ids else None
    if assistant_model is None:
        return Assisted(drafter=PromptLookupDrafter(lookup, config.max_matching_ngram_size or 2, eos), prompt=prompt)

    if not isinstance(assistant_model, nn.Module) or not hasattr(assistant_model, "generation_config"):
        raise TypeError(f"assistant_model must be a warmstart model that can generate (e.g. a small "
                        f"GPT2LMHeadModel), got {type(assistant_model).__name__}")
    helper = ModelContract.of(assistant_model)
    if not helper.causal:
        raise ValueError(f"the assistant {helper.name} was built with is_decoder=False; an assistant drafts left to "
                         "right from a cache: load it with is_decoder=True")
    if helper.seq2seq != contract.seq2seq:
        kinds = {True: "an encoder-decoder", False: "a decoder-only model"}
        raise ValueError(f"{contract.name} is {kinds[contract.seq2seq]} but the assistant {helper.name} is "
                         f"{kinds[helper.seq2seq]}; the assistant must be of the same kind")
    if helper.vocab_size != contract.vocab_size:
        raise ValueError(f"the assistant's vocabulary (size {helper.vocab_size}) differs from the model's (size "
                         f"{contract.vocab_size}): drafts are checked token id by token id, so both must share one "
                         "tokenizer (assistants with another tokenizer are not supported)")
    if helper.device != contract.device:
        raise ValueError(f"the assistant is on {helper.device} but the model on {contract.device}; move it with "
                         f"assistant_model.to({str(contract.device)!r})")
    if plan.max_length - 1 > helper.usable_positions:
        raise ValueError(f"this call decodes up to {plan.max_length} tokens but the assistant's decoder has "
                         f"{helper.usable_positions} positions; lower max_length / max_new_tokens")
    if contract.seq2seq and prompt.source_ids is None and "inputs_embeds" not in prompt.encoder_args:
        raise ValueError("an encoder-decoder assistant runs its own encoder, so it needs the encoder input: pass "
                         "input_ids (encoder_outputs are the model's own)")
    own = assistant_model.generation_config

    def setting(name: str):
        # The call's explicit value, else the assistant's generation config (where v4 reads these settings).
        return getattr(config, name) if config.is_set(name) else getattr(own, name)

    schedule = setting("num_assistant_tokens_schedule")
    drafter = AssistantDrafter(helper, max_length=plan.max_length, processors=plan.processors,
                               do_sample=config.do_sample, eos=eos, num_tokens=setting("num_assistant_tokens"),
                               schedule=schedule, threshold=setting("assistant_confidence_threshold"))
    shared = {id(p) for p in assistant_model.parameters()} & {id(p) for p in contract.model.parameters()}
    return Assisted(drafter=drafter, prompt=prompt, assistant=assistant_model, persist=schedule == "heuristic",
                    pack=not shared)


# ---- the search --------------------------------------------------------------------------------------------------
def assisted_search(run: Run, assisted: Assisted) -> SearchResult:
    """Greedy search or sampling for one sequence (batch 1), verifying drafts; same output as greedy_or_sample."""
    dec, rec, drafter = run.decoder, _Recorder(run), assisted.drafter
    start = run.input_ids.shape[1]
    seq = run.input_ids.new_empty(1, run.max_length)  # the drafters write their drafts after the accepted part
    seq[:, :start] = run.input_ids

    # The first token comes from the prefill's logits, as in a plain search; drafting starts after it.
    scores = run.processors(seq[:, :start], run.first_logits) if run.processors else run.first_logits
    rec.add(scores, run.first_logits, 1)
    seq[:, start] = _pick(scores, run.do_sample)
    cur = start + 1
    if run.streamer is not None:
        run.streamer.put(seq[0, start:cur].cpu())
    if cur >= run.max_length or _stops(run, rec, seq, cur):
        return rec.fill(SearchResult(sequences=seq[:, :cur]))

    with contextlib.ExitStack() as stack:
        if assisted.pack:
            helper = drafter.contract
            stack.enter_context(packed_linears(helper.model, helper.lm, 1))
        if isinstance(drafter, AssistantDrafter):
            drafter.start(assisted.prompt)
        while True:
            draft, q = drafter.draft(seq, cur, run.max_length - cur - 1)  # room for the large model's own token
            k = draft.numel()
            past = dec.length  # == cur - 1: the last accepted token is fed with the draft
            logits = dec.verify(seq[:, cur - 1:cur + k])[0]  # (k + 1, V)
            if run.processors:
                scores = torch.cat([run.processors(seq[:, :cur + i], logits[i:i + 1]) for i in range(k + 1)])
            else:
                scores = logits
            if q is not None:
                new, matches = _speculative(scores, draft, q)
            else:
                picked = _pick(scores, run.do_sample)  # (k + 1,)
                matches = int((picked[:k] == draft).long().cumprod(0).sum())
                new = picked[:matches + 1]  # the kept draft, then the large model's own next token
            seq[0, cur:cur + new.numel()] = new
            kept, done = new.numel(), False
            for j in range(new.numel()):
                _record(rec, scores, logits, j, past)
                if _stops(run, rec, seq, cur + j + 1):
                    kept, done = j + 1, True
                    break
            if run.streamer is not None:
                run.streamer.put(new[:kept].cpu())
            cur += kept
            dec.crop(cur - 1)  # the newest token is fed next round, with the next draft
            drafter.accepted(k, matches)
            if done or cur >= run.max_length:
                break
    if assisted.persist:
        # v4's "heuristic" schedule carries the learned draft length over to the next call with this assistant.
        assisted.assistant.generation_config.num_assistant_tokens = drafter.num_tokens
    return rec.fill(SearchResult(sequences=seq[:, :cur]))


def _pick(scores: torch.Tensor, do_sample: bool) -> torch.Tensor:
    """(n, V) processed scores -> (n,) tokens: the first maximum, or a multinomial draw per row."""
    if do_sample:
        return torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1)[:, 0]
    return scores.max(dim=-1).indices


def _speculative(scores: torch.Tensor, draft: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Leviathan et al. 2023, algorithm 1: keep draft token i with probability min(1, p_i / q_i) until the first
    rejection, then draw one token from the corrected distribution. Returns the tokens to append and the number kept
    from the draft. ``scores``: (k + 1, V) processed target scores; ``q``: (k, V) the assistant's probabilities."""
    k = draft.numel()
    p = torch.softmax(scores, dim=-1)  # (k + 1, V)
    rows = torch.arange(k, device=draft.device)
    ratio = p[rows, draft] / q[rows, draft]
    kept = int((torch.rand_like(ratio) <= ratio).long().cumprod(0).sum())
    nxt = p[kept]
    if kept < k:
        # A rejection means p < q at the drafted token, so some mass lies where p > q: sample from that excess.
        excess = (p[kept] - q[kept]).clamp(min=0)
        total = excess.sum()
        nxt = excess / total if float(total) > 0 else nxt  # (0 only through rounding: fall back to p)
    token = torch.multinomial(nxt, num_samples=1)
    return torch.cat([draft[:kept], token]), kept


def _stops(run: Run, rec: _Recorder, seq: torch.Tensor, length: int) -> bool:
    if not run.stopping:
        return False
    return bool(run.stopping(seq[:, :length], tuple(rec.scores) if rec.scores else None).any())


def _record(rec: _Recorder, scores: torch.Tensor, logits: torch.Tensor, j: int, past: int) -> None:
    """What return_dict_in_generate keeps for token j of a verified block, shaped as a token-by-token search keeps
    it: that position's scores and logits (1, V), its attentions over the keys it saw (1, H, 1, past + j + 1), its
    hidden states (1, 1, C)."""
    want = rec.want
    if want.get("scores"):
        rec.scores.append(scores[j:j + 1])
    if want.get("logits"):
        rec.logits.append(logits[j:j + 1])
    out = rec.decoder.last_output
    if want.get("attentions"):
        rec.attentions.append(tuple(a[..., j:j + 1, :past + j + 1] for a in out.attentions))
        if out.cross_attentions is not None:
            rec.cross.append(tuple(a[..., j:j + 1, :] for a in out.cross_attentions))
    if want.get("hidden_states"):
        rec.hidden.append(tuple(h[:, j:j + 1] for h in out.hidden_states))
