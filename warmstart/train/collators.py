"""Batching for training: the seq2seq collator, length-grouped batches, and BERT's pretraining inputs.

- `DataCollatorForSeq2Seq`: tokenized (source, target) pairs -> padded `input_ids` / `attention_mask`,
  `labels` padded with -100 and a `decoder_attention_mask`, as `EncoderDecoderModel` takes them.
- `LengthGroupedBatchSampler`: batches of similar lengths (less padding), in a seeded random order.
- `DataCollatorForLanguageModeling`: masked-LM inputs with BERT's 15% and 80/10/10 recipe, optionally
  masking whole words; it also carries `next_sentence_label` through for `BertForPreTraining`.
- `build_nsp_examples`: sentence pairs for next-sentence prediction (label 0 = the true next sentence).

The names and fields follow transformers' data collators where they exist, so code written for those
keeps working; where we differ (exact mask counts, 80/10/10 under whole-word masking) it is said below.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

import torch

from ..tokenizers import BatchEncoding
from .data import _short

IGNORE_INDEX = -100  # the label value torch's cross-entropy skips


# -- padding ---------------------------------------------------------------------------------------
def _as_ids(value: Any, what: str) -> list[int]:
    """A token-id sequence as a list of ints; anything else is reported with its position in the batch."""
    if isinstance(value, torch.Tensor) or type(value).__module__ == "numpy":
        if getattr(value, "ndim", None) != 1:
            raise ValueError(f"{what} must be a 1-D sequence of token ids, got shape {tuple(getattr(value, 'shape', ()))}")
        value = value.tolist()
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{what} must be a sequence of token ids (list of int), got {type(value).__name__}")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        bad = next(v for v in value if not isinstance(v, int) or isinstance(v, bool))
        raise TypeError(f"{what} must hold ints (token ids), found {bad!r} of type {type(bad).__name__}")
    return list(value)


def _padded_length(longest: int, pad_to_multiple_of: int | None) -> int:
    if pad_to_multiple_of:
        return -(-longest // pad_to_multiple_of) * pad_to_multiple_of
    return longest


def pad_ids(rows: list[list[int]], value: int, length: int, side: str = "right") -> torch.Tensor:
    """(B, length) int64 tensor of `rows` padded with `value` on `side`."""
    out = torch.full((len(rows), length), value, dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            if side == "right":
                out[i, :len(row)] = torch.tensor(row, dtype=torch.long)
            else:
                out[i, length - len(row):] = torch.tensor(row, dtype=torch.long)
    return out


def _side_rows(features: Sequence[Mapping], key: str, lengths: list[int], default: int | None) -> list[list[int]]:
    """`key` of every example, checked to be as long as its input_ids. A missing value becomes
    `default` repeated, or, with no default, an error (one example without it while others have it)."""
    rows = []
    for i, (f, n) in enumerate(zip(features, lengths)):
        if f.get(key) is None:
            if default is None:
                raise ValueError(f"example {i} of the batch has no {key!r} while others do")
            rows.append([default] * n)
            continue
        row = _as_ids(f[key], f"example {i}'s {key}")
        if len(row) != n:
            raise ValueError(f"example {i}'s {key} has {len(row)} entries but its input_ids have {n}")
        rows.append(row)
    return rows


def _check_features(features, what: str) -> None:
    if isinstance(features, (str, bytes)) or not isinstance(features, Sequence) or len(features) == 0:
        raise ValueError(f"{what} needs a non-empty list of examples, got {_short(features, 80)}")


def _check_multiple(pad_to_multiple_of) -> None:
    if pad_to_multiple_of is not None and (not isinstance(pad_to_multiple_of, int) or pad_to_multiple_of < 1):
        raise ValueError(f"pad_to_multiple_of must be a positive int or None, got {pad_to_multiple_of!r}")


def _check_tensors(return_tensors: str) -> None:
    if return_tensors not in ("pt", "np"):
        raise ValueError(f"warmstart's collators return torch tensors (return_tensors='pt') or numpy arrays ('np', "
                         f"for the Flax wing), got {return_tensors!r}")


def _batch(batch: dict, return_tensors: str) -> BatchEncoding:
    """The batch as built (torch: the masking draws from torch generators), as numpy when asked."""
    if return_tensors == "np":
        batch = {k: v.numpy() for k, v in batch.items()}
    return BatchEncoding(batch)


# -- seq2seq ---------------------------------------------------------------------------------------
@dataclass
class DataCollatorForSeq2Seq:
    """Pads a list of `{"input_ids": [...], "labels": [...]}` (extra source keys such as `attention_mask`
    or `token_type_ids` are padded along) to the longest example of the batch.

    Returns `input_ids` and `attention_mask` (B, S) padded on the tokenizer's side, `labels` (B, T) padded
    with `label_pad_token_id` on the right, and `decoder_attention_mask` (B, T). Labels are always padded
    on the right: the model builds its decoder inputs by shifting labels right behind a start token,
    which only makes sense when the target starts at position 0. `decoder_attention_mask` marks the real
    decoder *inputs*, which are [start, y_0, .., y_{n-1}] for n real labels: positions 0..n (within the
    padded width). Marking the n real labels instead would leave an empty target's one decoder position
    attending to nothing. With `model`, `decoder_input_ids` are added from its
    `prepare_decoder_input_ids_from_labels`.
    """

    tokenizer: Any
    model: Any | None = None
    padding: bool | str = True
    max_length: int | None = None
    pad_to_multiple_of: int | None = None
    label_pad_token_id: int = IGNORE_INDEX
    return_tensors: str = "pt"

    def __post_init__(self):
        _check_multiple(self.pad_to_multiple_of)
        _check_tensors(self.return_tensors)
        if self.padding not in (True, "longest", "max_length"):
            raise ValueError(f"padding must be True, 'longest' or 'max_length' (batches are tensors), got {self.padding!r}")
        if self.padding == "max_length" and not self.max_length:
            raise ValueError("padding='max_length' needs max_length")
        if self.tokenizer.pad_token_id is None:
            raise ValueError(f"{type(self.tokenizer).__name__} has no pad token, so sources cannot be padded; set one")

    def _length(self, longest: int, what: str) -> int:
        if self.padding == "max_length":
            if longest > self.max_length:
                raise ValueError(f"a {what} has {longest} tokens, more than padding='max_length' allows "
                                 f"(max_length={self.max_length}); truncate when tokenizing")
            longest = self.max_length
        return _padded_length(longest, self.pad_to_multiple_of)

    def __call__(self, features: list[dict]) -> BatchEncoding:
        _check_features(features, "DataCollatorForSeq2Seq")
        for i, f in enumerate(features):
            if not isinstance(f, Mapping) or "input_ids" not in f:
                raise ValueError(f"example {i} of the batch must be a dict with 'input_ids' (and 'labels'), "
                                 f"got {type(f).__name__} with keys {sorted(f) if isinstance(f, Mapping) else None}")
        has_labels = [f.get("labels") is not None for f in features]
        if any(has_labels) and not all(has_labels):
            raise ValueError(f"examples {[i for i, h in enumerate(has_labels) if not h]} of the batch have no "
                             "labels while others do")
        side = self.tokenizer.padding_side
        sources = [_as_ids(f["input_ids"], f"example {i}'s input_ids") for i, f in enumerate(features)]
        lengths = [len(s) for s in sources]
        width = self._length(max(lengths), "source")
        batch = {"input_ids": pad_ids(sources, self.tokenizer.pad_token_id, width, side),
                 "attention_mask": pad_ids(_side_rows(features, "attention_mask", lengths, 1), 0, width, side)}
        if any("token_type_ids" in f for f in features):
            batch["token_type_ids"] = pad_ids(_side_rows(features, "token_type_ids", lengths, None),
                                              self.tokenizer.pad_token_type_id, width, side)

        if all(has_labels):
            labels = [_as_ids(f["labels"], f"example {i}'s labels") for i, f in enumerate(features)]
            t = self._length(max(map(len, labels)), "target")
            batch["labels"] = pad_ids(labels, self.label_pad_token_id, t, "right")
            real = torch.tensor([len(y) for y in labels])  # (B,)
            batch["decoder_attention_mask"] = (torch.arange(t)[None, :] <= real[:, None]).long()  # (B, T)
            if self.model is not None and hasattr(self.model, "prepare_decoder_input_ids_from_labels"):
                batch["decoder_input_ids"] = self.model.prepare_decoder_input_ids_from_labels(labels=batch["labels"])
        return _batch(batch, self.return_tensors)


# -- length-grouped batches ------------------------------------------------------------------------
class LengthGroupedBatchSampler(torch.utils.data.Sampler):
    """Yields lists of dataset indices, `batch_size` at a time, grouping examples of similar length.

    Each epoch: shuffle all indices (seeded by `seed` and the epoch), cut them into mega-batches of
    `mega_batch_mult * batch_size`, sort each mega-batch by length (longest first), cut it into batches,
    and shuffle the batches. Sorting only within a mega-batch keeps batches random while padding less;
    the batch holding the longest example goes first so an out-of-memory shows at step 1, not hours in.

    With `num_replicas` > 1 (DDP), rank `rank` takes every `num_replicas`-th batch; the batch list is
    padded by repeating its start so every rank gets the same number of steps. Call `set_epoch` before
    each epoch; the order is a pure function of (seed, epoch), so a resumed run can skip the batches it
    has already seen.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, mega_batch_mult: int | None = None, seed: int = 0,
                 drop_last: bool = False, num_replicas: int = 1, rank: int = 0):
        lengths = list(lengths)
        if not lengths:
            raise ValueError("LengthGroupedBatchSampler needs at least one length, got none")
        bad = next((x for x in lengths if not isinstance(x, int) or isinstance(x, bool) or x < 0), None)
        if bad is not None:
            raise ValueError(f"lengths must be non-negative ints, found {bad!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if mega_batch_mult is None:
            # transformers' default: up to 50 batches per mega-batch, fewer on small datasets so there
            # are still several mega-batches to shuffle between.
            mega_batch_mult = max(1, min(len(lengths) // (batch_size * 4), 50))
        if not isinstance(mega_batch_mult, int) or mega_batch_mult < 1:
            raise ValueError(f"mega_batch_mult must be a positive int, got {mega_batch_mult!r}")
        if not (isinstance(num_replicas, int) and isinstance(rank, int) and 0 <= rank < num_replicas):
            raise ValueError(f"rank must be in [0, num_replicas), got rank={rank!r}, num_replicas={num_replicas!r}")
        if drop_last and len(lengths) < batch_size:
            raise ValueError(f"drop_last with {len(lengths)} examples and batch_size {batch_size} leaves no batch")
        self.lengths, self.batch_size, self.mega_batch_mult = lengths, batch_size, mega_batch_mult
        self.seed, self.drop_last, self.num_replicas, self.rank = seed, drop_last, num_replicas, rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _all_batches(self) -> list[list[int]]:
        rng = random.Random(f"{self.seed}:{self.epoch}")  # str seeds hash the same on every platform
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        mega = self.mega_batch_mult * self.batch_size
        batches = []
        for start in range(0, len(order), mega):
            group = sorted(order[start:start + mega], key=lambda i: (-self.lengths[i], i))
            batches += [group[j:j + self.batch_size] for j in range(0, len(group), self.batch_size)]
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        rng.shuffle(batches)
        longest = max(range(len(batches)), key=lambda k: (self.lengths[batches[k][0]], -k))
        batches[0], batches[longest] = batches[longest], batches[0]
        if len(batches) % self.num_replicas:
            extra = self.num_replicas - len(batches) % self.num_replicas
            batches += (batches * (extra // len(batches) + 1))[:extra]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._all_batches()[self.rank::self.num_replicas])

    def __len__(self) -> int:
        n, mega = len(self.lengths), self.mega_batch_mult * self.batch_size
        sizes = [min(mega, n - start) for start in range(0, n, mega)]  # only the last can be short
        batches = sum(s // self.batch_size if self.drop_last else -(-s // self.batch_size) for s in sizes)
        return -(-batches // self.num_replicas)


# -- masked language modeling ----------------------------------------------------------------------
@dataclass
class DataCollatorForLanguageModeling:
    """Pads token-id lists (or dicts with `input_ids`, and optionally `token_type_ids`, `attention_mask`,
    `special_tokens_mask`, `next_sentence_label`) and masks them as BERT's pretraining did.

    Selection follows BERT's `create_pretraining_data.py`: each sequence gets exactly
    `max(1, round(mlm_probability * n))` predictions among its n maskable tokens (capped by
    `max_predictions_per_seq`), not a coin flip per token as in transformers' collator; a sequence
    never ends up with zero predictions, which would make the masked-LM loss of a one-row batch NaN.
    Special tokens (the tokenizer's, including [PAD] and [UNK]) and padding are never selected.
    Each selected token becomes [MASK] with probability `mask_replace_prob`, a random non-special
    token with `random_replace_prob`, and stays as it is otherwise (80/10/10 by default); `labels` hold
    the original id there and -100 everywhere else.

    `whole_word_mask=True` selects whole words: a WordPiece "##" piece is masked with the word it
    continues, words are drawn in random order while they fit the sequence's budget (as BERT's
    whole-word release does), and 80/10/10 still applies per token (transformers forces 100% [MASK]).

    `seed` makes masking reproducible (in a DataLoader worker, `seed + worker id`); without it the
    global torch RNG is used. `mlm=False` gives causal-LM labels (the inputs, padding -> -100).
    """

    tokenizer: Any
    mlm: bool = True
    whole_word_mask: bool = False
    mlm_probability: float = 0.15
    mask_replace_prob: float = 0.8
    random_replace_prob: float = 0.1
    pad_to_multiple_of: int | None = None
    return_tensors: str = "pt"
    seed: int | None = None
    max_predictions_per_seq: int | None = None

    def __post_init__(self):
        _check_multiple(self.pad_to_multiple_of)
        _check_tensors(self.return_tensors)
        tok = self.tokenizer
        if tok.pad_token_id is None:
            raise ValueError(f"{type(tok).__name__} has no pad token, so batches cannot be padded; set one")
        for name in ("mlm_probability", "mask_replace_prob", "random_replace_prob"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
        if self.mask_replace_prob + self.random_replace_prob > 1:
            raise ValueError(f"mask_replace_prob ({self.mask_replace_prob}) + random_replace_prob "
                             f"({self.random_replace_prob}) must not exceed 1")
        if self.max_predictions_per_seq is not None and (
                not isinstance(self.max_predictions_per_seq, int) or self.max_predictions_per_seq < 1):
            raise ValueError(f"max_predictions_per_seq must be a positive int or None, "
                             f"got {self.max_predictions_per_seq!r}")
        if self.whole_word_mask and not self.mlm:
            raise ValueError("whole_word_mask only applies to masked LM; it cannot be combined with mlm=False")
        if self.mlm and tok.mask_token_id is None:
            raise ValueError(f"{type(tok).__name__} has no mask token, which masked LM needs; use mlm=False for causal LM")
        size = len(tok)
        self._special = torch.tensor(sorted(set(tok.all_special_ids) | {tok.pad_token_id}), dtype=torch.long)
        # Random replacements avoid special tokens: a stray [SEP] or [CLS] would fake segment structure.
        keep = torch.ones(size, dtype=torch.bool)
        keep[self._special[self._special < size]] = False
        self._replacements = keep.nonzero().squeeze(1)
        if self.whole_word_mask:
            self._continues = torch.zeros(size, dtype=torch.bool)
            pieces = [i for t, i in tok.get_vocab().items() if t.startswith("##") and i < size]
            if not pieces:
                raise ValueError(f"whole_word_mask needs a WordPiece vocabulary (pieces written '##...'); "
                                 f"{type(tok).__name__}'s vocabulary of {size} tokens has none")
            self._continues[pieces] = True
        self._generator, self._owner = None, None

    # RNG ------------------------------------------------------------------------------------------
    def _rng(self) -> torch.Generator | None:
        if self.seed is None:
            return None
        info = torch.utils.data.get_worker_info()
        owner = None if info is None else info.id
        # A DataLoader worker gets a copy of this collator, generator included: each worker re-seeds its
        # copy with seed + worker id, or all workers would draw the same masks.
        if self._generator is None or owner != self._owner:
            self._generator = torch.Generator().manual_seed(self.seed + (owner or 0))
            self._owner = owner
        return self._generator

    def state_dict(self) -> dict:
        """The masking RNG's state (empty without `seed`: then the global torch RNG is the state)."""
        g = self._rng()
        return {} if g is None else {"generator": g.get_state()}

    def load_state_dict(self, state: dict) -> None:
        g = self._rng()
        if "generator" in state:
            if g is None:
                raise ValueError("this collator has no seed, so it has no RNG state to restore; construct it with seed=")
            g.set_state(state["generator"])

    # batching -------------------------------------------------------------------------------------
    def __call__(self, examples: list) -> BatchEncoding:
        _check_features(examples, "DataCollatorForLanguageModeling")
        if isinstance(examples[0], Mapping):
            missing = [i for i, e in enumerate(examples) if not isinstance(e, Mapping) or "input_ids" not in e]
            if missing:
                raise ValueError(f"examples {missing} of the batch are not dicts with 'input_ids'")
            rows = [_as_ids(e["input_ids"], f"example {i}'s input_ids") for i, e in enumerate(examples)]
        else:
            rows, examples = [_as_ids(e, f"example {i}") for i, e in enumerate(examples)], [{}] * len(examples)
        lengths = [len(r) for r in rows]
        side, width = self.tokenizer.padding_side, _padded_length(max(lengths), self.pad_to_multiple_of)
        present = {k for e in examples for k in e}
        batch = {"input_ids": pad_ids(rows, self.tokenizer.pad_token_id, width, side),
                 "attention_mask": pad_ids(_side_rows(examples, "attention_mask", lengths, 1), 0, width, side)}
        if "token_type_ids" in present:
            batch["token_type_ids"] = pad_ids(_side_rows(examples, "token_type_ids", lengths, None),
                                              self.tokenizer.pad_token_type_id, width, side)
        never = torch.isin(batch["input_ids"], self._special) | (batch["attention_mask"] == 0)
        if "special_tokens_mask" in present:
            never |= pad_ids(_side_rows(examples, "special_tokens_mask", lengths, 0), 1, width, side).bool()
        if "next_sentence_label" in present:
            batch["next_sentence_label"] = _nsp_labels(examples)
        if self.mlm:
            batch["input_ids"], batch["labels"] = self.mask_tokens(batch["input_ids"], ~never)
        else:
            batch["labels"] = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, IGNORE_INDEX)
        return _batch(batch, self.return_tensors)

    # masking --------------------------------------------------------------------------------------
    def mask_tokens(self, input_ids: torch.Tensor, maskable: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, labels) for masked LM from (B, T) ids and a (B, T) bool mask of the tokens that may be
        selected. `input_ids` is not modified."""
        g = self._rng()
        budget = self._budget(maskable.sum(1))  # (B,)
        if self.whole_word_mask:
            selected = self._select_words(input_ids, maskable, budget, g)
        else:
            keys = torch.rand(input_ids.shape, generator=g).masked_fill(~maskable, 2.0)  # non-maskable sort last
            rank = keys.argsort(1).argsort(1)  # (B, T): each token's place in a random order of its row
            selected = (rank < budget[:, None]) & maskable
        labels = input_ids.masked_fill(~selected, IGNORE_INDEX)
        inputs = input_ids.clone()
        u = torch.rand(input_ids.shape, generator=g)  # one draw decides [MASK] / random / keep
        inputs[selected & (u < self.mask_replace_prob)] = self.tokenizer.mask_token_id
        swap = selected & (u >= self.mask_replace_prob) & (u < self.mask_replace_prob + self.random_replace_prob)
        n_swap = int(swap.sum())
        if n_swap:
            pick = torch.randint(len(self._replacements), (n_swap,), generator=g)
            inputs[swap] = self._replacements[pick]
        return inputs, labels

    def _budget(self, maskable_count: torch.Tensor) -> torch.Tensor:
        budget = torch.round(maskable_count.double() * self.mlm_probability).long()
        if self.mlm_probability > 0:
            budget = torch.maximum(budget, (maskable_count > 0).long())
        if self.max_predictions_per_seq is not None:
            budget = budget.clamp(max=self.max_predictions_per_seq)
        return budget

    def _select_words(self, input_ids, maskable, budget, g) -> torch.Tensor:
        # A "##" piece continues the word before it only when that token is maskable too (a "##" piece
        # right after [CLS] starts a word of its own).
        prev_maskable = torch.zeros_like(maskable)
        prev_maskable[:, 1:] = maskable[:, :-1]
        starts = maskable & ~(self._continues[input_ids] & prev_maskable)
        word = starts.long().cumsum(1) - 1  # (B, T): word index of each token (valid where maskable)
        selected = torch.zeros_like(maskable)
        for b in range(input_ids.shape[0]):
            n_words = int(starts[b].sum())
            if n_words == 0 or budget[b] == 0:
                continue
            sizes = torch.bincount(word[b][maskable[b]], minlength=n_words).tolist()
            chosen, used = [], 0
            for w in torch.randperm(n_words, generator=g).tolist():
                if used >= budget[b]:
                    break
                if used + sizes[w] <= budget[b]:
                    chosen.append(w)
                    used += sizes[w]
            if not chosen:  # every word is longer than the budget: take one rather than none
                chosen = [int(torch.randint(n_words, (1,), generator=g))]
            selected[b] = maskable[b] & torch.isin(word[b], torch.tensor(chosen))
        return selected


def _nsp_labels(examples: list[dict]) -> torch.Tensor:
    labels = [e.get("next_sentence_label") for e in examples]
    bad = [(i, v) for i, v in enumerate(labels) if v not in (0, 1) or isinstance(v, bool)]
    if bad:
        raise ValueError(f"next_sentence_label must be 0 (continuation) or 1 (random) in every example; "
                         f"got (example, value) {bad[:5]}")
    return torch.tensor([int(v) for v in labels], dtype=torch.long)


# -- next-sentence prediction ----------------------------------------------------------------------
def build_nsp_examples(documents: Sequence[Sequence[str]], tokenizer, max_length: int | None = 128,
                       random_next_probability: float = 0.5, seed: int = 0) -> list[dict]:
    """Sentence pairs for next-sentence prediction, one per pair of consecutive sentences.

    With probability `random_next_probability` the second sentence is replaced by a random sentence of
    another document (label 1), else it is the true next sentence (label 0) — BERT's convention, which
    `BertForPreTraining(next_sentence_label=...)` expects. Blank sentences are skipped. Pairs are
    tokenized together (`[CLS] A [SEP] B [SEP]`, token types 0/1), truncated longest-first to
    `max_length`. Returns dicts with `input_ids`, `token_type_ids`, `next_sentence_label`, ready for
    `DataCollatorForLanguageModeling`. Deterministic for a given `seed`.
    """
    if not 0 <= random_next_probability <= 1:
        raise ValueError(f"random_next_probability must be in [0, 1], got {random_next_probability!r}")
    if isinstance(documents, (str, bytes)) or not isinstance(documents, Sequence):
        raise TypeError(f"documents must be a list of documents (lists of sentence strings), "
                        f"got {type(documents).__name__}")
    docs = []
    for d, doc in enumerate(documents):
        if isinstance(doc, (str, bytes)) or not isinstance(doc, Sequence):
            raise TypeError(f"document {d} must be a list of sentence strings, got {type(doc).__name__}")
        bad = next((s for s in doc if not isinstance(s, str)), None)
        if bad is not None:
            raise TypeError(f"document {d} holds a {type(bad).__name__} ({_short(bad, 40)}) "
                            "where a sentence string belongs")
        docs.append([s.strip() for s in doc if s.strip()])
    others = [d for d, doc in enumerate(docs) if doc]
    if len(others) < 2:
        raise ValueError(f"next-sentence pairs need at least 2 non-empty documents (random sentences come from "
                         f"another document); got {len(others)}")
    if not any(len(doc) > 1 for doc in docs):
        raise ValueError("no document has two consecutive sentences, so there is no true next sentence to pair")
    rng = random.Random(seed)
    position = {d: k for k, d in enumerate(others)}
    firsts, seconds, labels = [], [], []
    for d, doc in enumerate(docs):
        for i in range(len(doc) - 1):
            if rng.random() < random_next_probability:
                k = rng.randrange(len(others) - 1)  # uniform over the other documents: skip our own slot
                other = others[k + (k >= position[d])]
                second, label = rng.choice(docs[other]), 1
            else:
                second, label = doc[i + 1], 0
            firsts.append(doc[i])
            seconds.append(second)
            labels.append(label)
    enc = tokenizer(firsts, seconds, truncation="longest_first" if max_length else False, max_length=max_length)
    return [{"input_ids": ids, "token_type_ids": types, "next_sentence_label": label}
            for ids, types, label in zip(enc["input_ids"], enc["token_type_ids"], labels)]
