"""Logits processors: pure functions of (token ids so far, next-token scores) -> new scores.

Each one is a small callable ``p(input_ids (N, T), scores (N, V)) -> scores (N, V)`` that returns a new tensor and
never edits its input, under the class names transformers uses so custom processors written for it plug in (pass
them as ``generate(logits_processor=[...])``). ``build_processors`` assembles the list a GenerationConfig asks for,
in transformers' order (the order changes results: top-k after temperature is not top-k before it); when no
setting needs one, the list is empty and greedy decoding runs on the raw logits with no Python in between.

Sampling filters ("warpers") follow the published definitions: top-k (Fan et al. 2018), nucleus / top-p
(Holtzman et al. 2020), typical sampling (Meister et al. 2022), epsilon and eta cutoffs (Hewitt et al. 2022),
min-p (Nguyen et al. 2024). Filtered tokens get -inf, so they can never be drawn.
"""
from __future__ import annotations

import inspect
import math
from typing import Callable

import torch

# The public names are listed once, in warmstart/generation/__init__.py (the package resolves them lazily).

NEG_INF = -math.inf


class LogitsProcessor:
    """Base class: subclasses implement ``__call__(input_ids, scores) -> scores``."""

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(input_ids, scores)")


class LogitsProcessorList(list):
    """Applies its processors in order; extra keyword arguments reach the processors that declare them."""

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        for p in self:
            wanted = _extra_args(p)
            if wanted:
                missing = [a for a in wanted if a not in kwargs]
                if missing:
                    raise ValueError(f"{type(p).__name__} needs the arguments {missing}, which this decoding "
                                     "strategy does not provide")
                scores = p(input_ids, scores, **{a: kwargs[a] for a in wanted})
            else:
                scores = p(input_ids, scores)
        return scores


_EXTRA_ARGS: dict = {}


def _extra_args(p: Callable) -> tuple[str, ...]:
    """Required parameters beyond (input_ids, scores), looked up once per processor class (or function)."""
    key = p if inspect.isfunction(p) else type(p)
    found = _EXTRA_ARGS.get(key)
    if found is None:
        params = list(inspect.signature(p if inspect.isfunction(p) else p.__call__).parameters.values())
        found = tuple(q.name for q in params[2:] if q.kind in (q.POSITIONAL_OR_KEYWORD, q.KEYWORD_ONLY)
                      and q.default is q.empty)
        _EXTRA_ARGS[key] = found
    return found


def _as_id_tensor(ids, device=None) -> torch.Tensor:
    if isinstance(ids, torch.Tensor):
        return ids.to(device).reshape(-1)
    return torch.tensor([ids] if isinstance(ids, int) else list(ids), dtype=torch.long, device=device)


class _VocabMask:
    """A (V,) boolean mask of some token ids, built once per vocabulary size and device."""

    def __init__(self, ids):
        self.ids = _as_id_tensor(ids)
        self._mask: torch.Tensor | None = None

    def __call__(self, scores: torch.Tensor) -> torch.Tensor:
        m = self._mask
        if m is None or m.shape[0] != scores.shape[-1] or m.device != scores.device:
            ids = self.ids.to(scores.device)
            m = torch.zeros(scores.shape[-1], dtype=torch.bool, device=scores.device)
            m[ids[ids < scores.shape[-1]]] = True
            self._mask = m
        return m


# ---- length ------------------------------------------------------------------------------------------------------
class MinLengthLogitsProcessor(LogitsProcessor):
    """EOS is impossible while the sequence (prompt included) is shorter than ``min_length``."""

    def __init__(self, min_length: int, eos_token_id):
        self.min_length, self.eos = min_length, _VocabMask(eos_token_id)

    def __call__(self, input_ids, scores):
        if input_ids.shape[-1] < self.min_length:
            return torch.where(self.eos(scores), NEG_INF, scores)
        return scores


class MinNewTokensLengthLogitsProcessor(LogitsProcessor):
    """EOS is impossible until ``min_new_tokens`` tokens follow the ``prompt_length_to_skip`` prompt tokens."""

    def __init__(self, prompt_length_to_skip: int, min_new_tokens: int, eos_token_id):
        self.prompt_length_to_skip, self.min_new_tokens = prompt_length_to_skip, min_new_tokens
        self.eos = _VocabMask(eos_token_id)

    def __call__(self, input_ids, scores):
        if input_ids.shape[-1] - self.prompt_length_to_skip < self.min_new_tokens:
            return torch.where(self.eos(scores), NEG_INF, scores)
        return scores


class ForcedBOSTokenLogitsProcessor(LogitsProcessor):
    """The first generated token (after a one-token decoder prompt) is ``bos_token_id``."""

    def __init__(self, bos_token_id: int):
        self.bos_token_id = bos_token_id

    def __call__(self, input_ids, scores):
        if input_ids.shape[-1] == 1:
            out = torch.full_like(scores, NEG_INF)
            out[:, self.bos_token_id] = 0
            return out
        return scores


class ForcedEOSTokenLogitsProcessor(LogitsProcessor):
    """The token that reaches ``max_length`` is an EOS."""

    def __init__(self, max_length: int, eos_token_id):
        self.max_length, self.eos_token_id = max_length, _as_id_tensor(eos_token_id)

    def __call__(self, input_ids, scores):
        if input_ids.shape[-1] == self.max_length - 1:
            out = torch.full_like(scores, NEG_INF)
            out[:, self.eos_token_id.to(scores.device)] = 0
            return out
        return scores


class ExponentialDecayLengthPenalty(LogitsProcessor):
    """After ``start`` new tokens, EOS scores grow by |score| * (factor ** steps - 1)."""

    def __init__(self, exponential_decay_length_penalty: tuple[int, float], eos_token_id, input_ids_seq_length: int):
        self.regulation_start = exponential_decay_length_penalty[0] + input_ids_seq_length
        self.regulation_factor = exponential_decay_length_penalty[1]
        self.eos_token_id = _as_id_tensor(eos_token_id)

    def __call__(self, input_ids, scores):
        cur_len = input_ids.shape[-1]
        if cur_len <= self.regulation_start:
            return scores
        eos = self.eos_token_id.to(scores.device)
        at_eos = scores[:, eos]
        penalty = torch.abs(at_eos) * (pow(self.regulation_factor, cur_len - self.regulation_start) - 1)
        penalties = torch.zeros_like(scores)
        penalties[:, eos] = penalty.masked_fill(~torch.isfinite(at_eos), 0.0)
        return scores + penalties


# ---- repetition --------------------------------------------------------------------------------------------------
def _penalise(score: torch.Tensor, penalty: float) -> torch.Tensor:
    # CTRL (Keskar et al. 2019): divide positive scores, multiply negative ones, so both move towards "less likely".
    return torch.where(score < 0, score * penalty, score / penalty)


class RepetitionPenaltyLogitsProcessor(LogitsProcessor):
    """Penalise every token already present. ``prompt_ignore_length`` (int, or (N,) per row) skips leading
    positions, e.g. left padding."""

    def __init__(self, penalty: float, prompt_ignore_length: int | torch.Tensor | None = None):
        if not isinstance(penalty, (int, float)) or isinstance(penalty, bool) or penalty <= 0:
            raise ValueError(f"repetition_penalty must be a number > 0, got {penalty!r}")
        self.penalty, self.prompt_ignore_length = float(penalty), prompt_ignore_length

    def __call__(self, input_ids, scores):
        vocab = scores.shape[-1]
        if isinstance(self.prompt_ignore_length, int):
            input_ids = input_ids[:, self.prompt_ignore_length:]
        elif isinstance(self.prompt_ignore_length, torch.Tensor):
            skip = self.prompt_ignore_length.to(input_ids.device)
            pos = torch.arange(input_ids.shape[1], device=input_ids.device)
            input_ids = input_ids.masked_fill(pos[None, :] < skip[:, None], vocab)  # -> the spare column below
        # One spare column absorbs ignored (and out-of-vocabulary) ids.
        padded = torch.nn.functional.pad(scores, (0, 1))
        ids = input_ids.clamp(max=vocab)
        out = padded.scatter(1, ids, _penalise(padded.gather(1, ids), self.penalty))
        return out[:, :vocab]


class EncoderRepetitionPenaltyLogitsProcessor(LogitsProcessor):
    """The inverse: favour (penalty > 1) tokens of the encoder input, as hallucination control."""

    def __init__(self, penalty: float, encoder_input_ids: torch.Tensor):
        self.penalty, self.encoder_input_ids = 1 / float(penalty), encoder_input_ids

    def __call__(self, input_ids, scores):
        enc = self.encoder_input_ids.to(scores.device)
        if scores.shape[0] > enc.shape[0]:
            enc = enc.repeat_interleave(scores.shape[0] // enc.shape[0], dim=0)
        return scores.scatter(1, enc, _penalise(scores.gather(1, enc), self.penalty))


def _ngram_bans(history: torch.Tensor, prefix: torch.Tensor, n: int, vocab: int) -> torch.Tensor:
    """(N, V) True where token t would complete an n-gram (prefix, t) that occurs in history.

    history: (N, L) token rows to collect n-grams from; prefix: (N, n-1) the last n-1 generated tokens.
    """
    windows = history.unfold(1, n, 1)  # (N, W, n)
    hit = (windows[..., :-1] == prefix[:, None, :]).all(-1)  # (N, W)
    banned = torch.where(hit, windows[..., -1].clamp(max=vocab), vocab)  # non-matches -> the spare column
    mask = torch.zeros(history.shape[0], vocab + 1, dtype=torch.bool, device=history.device)
    return mask.scatter_(1, banned, True)[:, :vocab]


class NoRepeatNGramLogitsProcessor(LogitsProcessor):
    """No n-gram of size ``ngram_size`` occurs twice (fairseq's --no-repeat-ngram-size); the prompt counts."""

    def __init__(self, ngram_size: int):
        if not isinstance(ngram_size, int) or ngram_size <= 0:
            raise ValueError(f"no_repeat_ngram_size must be a positive integer, got {ngram_size!r}")
        self.ngram_size = ngram_size

    def __call__(self, input_ids, scores):
        n, cur_len = self.ngram_size, input_ids.shape[-1]
        if cur_len < n:
            return scores
        prefix = input_ids[:, cur_len - n + 1:]
        return scores.masked_fill(_ngram_bans(input_ids, prefix, n, scores.shape[-1]), NEG_INF)


class EncoderNoRepeatNGramLogitsProcessor(LogitsProcessor):
    """No n-gram of the encoder input is copied into the output."""

    def __init__(self, encoder_ngram_size: int, encoder_input_ids: torch.Tensor):
        if not isinstance(encoder_ngram_size, int) or encoder_ngram_size <= 0:
            raise ValueError(f"encoder_no_repeat_ngram_size must be a positive integer, got {encoder_ngram_size!r}")
        self.ngram_size = encoder_ngram_size
        self.encoder_input_ids = encoder_input_ids if encoder_input_ids.dim() == 2 else encoder_input_ids[None]

    def __call__(self, input_ids, scores):
        n, cur_len = self.ngram_size, input_ids.shape[-1]
        enc = self.encoder_input_ids.to(input_ids.device)
        if cur_len < n - 1 or enc.shape[1] < n:
            return scores
        per_row = input_ids.shape[0] // enc.shape[0]
        history = enc.repeat_interleave(per_row, dim=0) if per_row > 1 else enc
        prefix = input_ids[:, cur_len - n + 1:] if n > 1 else input_ids[:, :0]
        return scores.masked_fill(_ngram_bans(history, prefix, n, scores.shape[-1]), NEG_INF)


class SequenceBiasLogitsProcessor(LogitsProcessor):
    """Add a bias to the last token of each listed sequence when the tokens before it are the current suffix."""

    def __init__(self, sequence_bias):
        items = sequence_bias.items() if isinstance(sequence_bias, dict) else [(tuple(s), b) for s, b in sequence_bias]
        self.sequence_bias = {tuple(int(t) for t in seq): float(b) for seq, b in items}
        if not self.sequence_bias or any(len(s) == 0 for s in self.sequence_bias):
            raise ValueError(f"sequence_bias must map non-empty token sequences to biases, got {sequence_bias!r}")
        self._prepared_for: tuple | None = None

    def _prepare(self, scores: torch.Tensor) -> None:
        vocab, device = scores.shape[-1], scores.device
        too_big = sorted({t for seq in self.sequence_bias for t in seq if t >= vocab})
        if too_big:
            raise ValueError(f"sequence_bias / bad_words_ids use token ids {too_big}, outside the vocabulary "
                             f"(size {vocab})")
        self.single = torch.zeros(vocab, dtype=torch.float, device=device)
        groups: dict[int, list] = {}
        for seq, bias in self.sequence_bias.items():
            if len(seq) == 1:
                self.single[seq[0]] = bias
            else:
                groups.setdefault(len(seq) - 1, []).append((seq, bias))
        self.multi = [(torch.tensor([s[:-1] for s, _ in g], device=device),
                       torch.tensor([s[-1] for s, _ in g], device=device),
                       torch.tensor([b for _, b in g], dtype=torch.float, device=device)) for g in groups.values()]
        self._prepared_for = (vocab, device)

    def __call__(self, input_ids, scores):
        if self._prepared_for != (scores.shape[-1], scores.device):
            self._prepare(scores)
        bias = torch.zeros_like(scores) + self.single
        for prefixes, last, values in self.multi:  # prefixes (G, P), last (G,), values (G,)
            p = prefixes.shape[1]
            if p > input_ids.shape[1]:
                continue
            match = (input_ids[:, None, -p:] == prefixes).all(-1)  # (N, G)
            bias.index_add_(1, last, torch.where(match, values, 0.0).to(bias.dtype))
        return scores + bias


class NoBadWordsLogitsProcessor(SequenceBiasLogitsProcessor):
    """Never complete a listed token sequence (a single EOS is exempt: it must stay reachable)."""

    def __init__(self, bad_words_ids, eos_token_id=None):
        eos = [] if eos_token_id is None else _as_id_tensor(eos_token_id).tolist()
        kept = [list(s) for s in bad_words_ids if not (len(s) == 1 and s[0] in eos)]
        self.bad_words_ids = kept
        if kept:
            super().__init__({tuple(s): NEG_INF for s in kept})
        else:
            self.sequence_bias, self._prepared_for = {}, None

    def __call__(self, input_ids, scores):
        return super().__call__(input_ids, scores) if self.bad_words_ids else scores


class PrefixConstrainedLogitsProcessor(LogitsProcessor):
    """Only the tokens ``fn(batch_id, ids_so_far)`` allows (De Cao et al. 2021, constrained entity retrieval)."""

    def __init__(self, prefix_allowed_tokens_fn: Callable[[int, torch.Tensor], list[int]], num_beams: int):
        self.fn, self.num_beams = prefix_allowed_tokens_fn, num_beams

    def __call__(self, input_ids, scores):
        mask = torch.full_like(scores, NEG_INF)
        rows = input_ids.view(-1, self.num_beams, input_ids.shape[-1])
        for b, beams in enumerate(rows):
            for j, sent in enumerate(beams):
                allowed = self.fn(b, sent)
                if len(allowed) == 0:
                    raise ValueError(f"prefix_allowed_tokens_fn returned no allowed token for batch item {b}, "
                                     f"beam {j}; it must allow at least one")
                mask[b * self.num_beams + j, allowed] = 0
        return scores + mask


class SuppressTokensLogitsProcessor(LogitsProcessor):
    def __init__(self, suppress_tokens):
        self.mask = _VocabMask(suppress_tokens)

    def __call__(self, input_ids, scores):
        return torch.where(self.mask(scores), NEG_INF, scores)


class SuppressTokensAtBeginLogitsProcessor(LogitsProcessor):
    """Suppress tokens only at the first generation step (``begin_index`` = the prompt length)."""

    def __init__(self, begin_suppress_tokens, begin_index: int):
        self.mask, self.begin_index = _VocabMask(begin_suppress_tokens), begin_index

    def __call__(self, input_ids, scores):
        if input_ids.shape[-1] == self.begin_index:
            return torch.where(self.mask(scores), NEG_INF, scores)
        return scores


class InfNanRemoveLogitsProcessor(LogitsProcessor):
    """nan -> 0 and +-inf -> the dtype's extremes, so sampling never sees invalid values."""

    def __call__(self, input_ids, scores):
        out = torch.where(scores != scores, 0.0, scores)
        out = torch.where(scores == math.inf, torch.finfo(scores.dtype).max, out)
        return torch.where(scores == -math.inf, torch.finfo(scores.dtype).min, out)


class LogitNormalization(LogitsProcessor):
    """Log-softmax after the other processors, so beam scores stay log-probabilities."""

    def __call__(self, input_ids, scores):
        return scores.log_softmax(dim=-1)


class HammingDiversityLogitsProcessor(LogitsProcessor):
    """Diverse beam search (Vijayakumar et al. 2016): a group's scores drop by ``diversity_penalty`` times the number
    of earlier groups' beams that chose the same token at this step."""

    def __init__(self, diversity_penalty: float, num_beams: int, num_beam_groups: int):
        self.penalty, self.num_beams = float(diversity_penalty), num_beams
        self.group_size = num_beams // num_beam_groups

    def __call__(self, input_ids, scores, current_tokens: torch.Tensor, beam_group_idx: int):
        start = beam_group_idx * self.group_size
        if start == 0:
            return scores
        batch = current_tokens.shape[0] // self.num_beams
        earlier = current_tokens.view(batch, self.num_beams)[:, :start]  # (B, tokens chosen by earlier groups)
        counts = torch.zeros(batch, scores.shape[-1], dtype=scores.dtype, device=scores.device)
        counts.scatter_add_(1, earlier, torch.ones_like(earlier, dtype=scores.dtype))
        return scores - self.penalty * counts.repeat_interleave(self.group_size, dim=0)


# ---- sampling filters ("warpers") --------------------------------------------------------------------------------
class TemperatureLogitsWarper(LogitsProcessor):
    def __init__(self, temperature: float):
        if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or temperature <= 0:
            raise ValueError(f"temperature must be a number > 0, got {temperature!r}")
        self.temperature = temperature

    def __call__(self, input_ids, scores):
        return scores / self.temperature


class TopKLogitsWarper(LogitsProcessor):
    def __init__(self, top_k: int, filter_value: float = NEG_INF, min_tokens_to_keep: int = 1):
        if not isinstance(top_k, int) or top_k <= 0:
            raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
        self.top_k, self.filter_value = max(top_k, min_tokens_to_keep), filter_value

    def __call__(self, input_ids, scores):
        k = min(self.top_k, scores.shape[-1])
        kth = torch.topk(scores, k)[0][..., -1, None]
        return scores.masked_fill(scores < kth, self.filter_value)


class TopPLogitsWarper(LogitsProcessor):
    """Keep the smallest set of most likely tokens whose probabilities sum to at least ``top_p``."""

    def __init__(self, top_p: float, filter_value: float = NEG_INF, min_tokens_to_keep: int = 1):
        top_p = float(top_p)
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
        self.top_p, self.filter_value, self.min_tokens_to_keep = top_p, filter_value, min_tokens_to_keep

    def __call__(self, input_ids, scores):
        sorted_scores, order = torch.sort(scores, descending=False)
        cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
        drop = cumulative <= (1 - self.top_p)  # the least likely tail holding at most 1 - top_p of the mass
        drop[..., -self.min_tokens_to_keep:] = False
        return scores.masked_fill(drop.scatter(1, order, drop), self.filter_value)


class MinPLogitsWarper(LogitsProcessor):
    """Drop tokens less likely than ``min_p`` times the most likely one."""

    def __init__(self, min_p: float, filter_value: float = NEG_INF, min_tokens_to_keep: int = 1):
        if not 0 <= min_p <= 1:
            raise ValueError(f"min_p must be in [0, 1], got {min_p!r}")
        self.min_p, self.filter_value, self.min_tokens_to_keep = min_p, filter_value, min_tokens_to_keep

    def __call__(self, input_ids, scores):
        probs = torch.softmax(scores, dim=-1)
        drop = probs < self.min_p * probs.amax(dim=-1, keepdim=True)
        keep = torch.topk(probs, min(self.min_tokens_to_keep, probs.shape[-1]), dim=-1).indices
        drop.scatter_(-1, keep, False)
        return scores.masked_fill(drop, self.filter_value)


class TypicalLogitsWarper(LogitsProcessor):
    """Keep the tokens whose surprisal is closest to the distribution's entropy, up to ``mass`` probability."""

    def __init__(self, mass: float = 0.9, filter_value: float = NEG_INF, min_tokens_to_keep: int = 1):
        mass = float(mass)
        if not 0 < mass < 1:
            raise ValueError(f"typical_p must be in (0, 1), got {mass!r}")
        self.mass, self.filter_value, self.min_tokens_to_keep = mass, filter_value, min_tokens_to_keep

    def __call__(self, input_ids, scores):
        logp = torch.nn.functional.log_softmax(scores, dim=-1)
        entropy = -(logp * torch.exp(logp)).nansum(-1, keepdim=True)
        distance = torch.abs(-logp - entropy)
        sorted_distance, order = torch.sort(distance, descending=False)
        cumulative = scores.gather(-1, order).softmax(dim=-1).cumsum(dim=-1)
        last = (cumulative < self.mass).sum(dim=1).clamp_(max=sorted_distance.shape[-1] - 1)
        drop = sorted_distance > sorted_distance.gather(1, last.view(-1, 1))
        drop[..., :self.min_tokens_to_keep] = False
        return scores.masked_fill(drop.scatter(1, order, drop), self.filter_value)


class EpsilonLogitsWarper(LogitsProcessor):
    """Drop tokens with probability below ``epsilon``."""

    def __init__(self, epsilon: float, filter_value: float = NEG_INF, min_tokens_to_keep: int = 1):
        if not 0 < epsilon < 1:
            raise ValueError(f"epsilon_cutoff must be in (0, 1), got {epsilon!r}")
        self.epsilon, self.filter_value, self.min_tokens_to_keep = epsilon, filter_value, min_tokens_to_keep

    def __call__(self, input_ids, scores):
        drop = scores.softmax(dim=-1) < self.epsilon
        kth = torch.topk(scores, min(self.min_tokens_to_keep, scores.shape[-1]))[0][..., -1, None]
        return scores.masked_fill(drop & (scores < kth), self.filter_value)


class EtaLogitsWarper(LogitsProcessor):
    """Drop tokens below min(eta, sqrt(eta) * exp(-entropy))."""

    def __init__(self, epsilon: float, filter_value: float = NEG_INF, min_tokens_to_keep: int = 1):
        if not 0 < epsilon < 1:
            raise ValueError(f"eta_cutoff must be in (0, 1), got {epsilon!r}")
        self.epsilon, self.filter_value, self.min_tokens_to_keep = torch.tensor(epsilon), filter_value, \
            min_tokens_to_keep

    def __call__(self, input_ids, scores):
        eps = self.epsilon.to(scores.device)
        entropy = torch.distributions.Categorical(logits=scores).entropy()
        eta = torch.min(eps, torch.sqrt(eps) * torch.exp(-entropy))[..., None]
        drop = scores.softmax(dim=-1) < eta
        kth = torch.topk(scores, min(self.min_tokens_to_keep, scores.shape[-1]))[0][..., -1, None]
        return scores.masked_fill(drop & (scores < kth), self.filter_value)
