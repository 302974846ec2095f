"""Collators and the length-grouped sampler: masking statistics over many draws, labels, whole words,
NSP pairs, seq2seq padding (checked against transformers' DataCollatorForSeq2Seq) and batch grouping."""
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers as T

import warmstart as W
from warmstart.train import (DataCollatorForLanguageModeling, DataCollatorForSeq2Seq, LengthGroupedBatchSampler,
                             build_nsp_examples)

DATA = Path(__file__).resolve().parents[2] / "data" / "wordnet_defs"


@pytest.fixture(scope="module")
def tok(minilm_dir):
    return W.BertTokenizerFast.from_pretrained(minilm_dir)


@pytest.fixture(scope="module")
def texts():
    """Real English text: WordNet definitions (many multi-piece words such as 'dystrophy')."""
    with open(DATA / "valid.jsonl", encoding="utf-8") as f:
        return [json.loads(line)["target"] for line in f][:400]


@pytest.fixture(scope="module")
def ids(tok, texts):
    """Rows of 20 to 64 tokens: three definitions each, some cut by truncation."""
    return tok([" ".join(texts[i:i + 3]) for i in range(0, len(texts), 3)], truncation=True, max_length=64)["input_ids"]


def _special(tok):
    return torch.tensor(sorted(set(tok.all_special_ids)))


def _draws(collator, rows, n_draws, batch=64):
    """(original, inputs, labels) over n_draws batches cycling through rows."""
    for k in range(n_draws):
        chunk = [rows[(k * batch + i) % len(rows)] for i in range(batch)]
        original = collator.__class__(collator.tokenizer, mlm=False)(chunk)["input_ids"]
        out = collator(chunk)
        yield original, out["input_ids"], out["labels"]


# ---- MLM: statistics ---------------------------------------------------------------------------------------
def test_mlm_selects_15_percent_and_splits_80_10_10(tok, ids):
    collator = DataCollatorForLanguageModeling(tok, seed=0)
    special = _special(tok)
    picked = maskable = masked = swapped = kept = 0
    for original, inputs, labels in _draws(collator, ids, 60):
        can = ~torch.isin(original, special)
        sel = labels != -100
        # Exactly BERT's per-sequence budget: max(1, round(15% of the maskable tokens)).
        budget = torch.clamp(torch.round(can.sum(1).double() * 0.15).long(), min=1)
        assert torch.equal(sel.sum(1), budget)
        assert not (sel & ~can).any(), "a special or pad token was selected"
        assert torch.equal(labels[sel], original[sel])
        assert torch.equal(inputs[~sel], original[~sel]), "an unselected token changed"
        picked, maskable = picked + int(sel.sum()), maskable + int(can.sum())
        masked += int((inputs[sel] == tok.mask_token_id).sum())
        changed = (inputs[sel] != original[sel]) & (inputs[sel] != tok.mask_token_id)
        swapped += int(changed.sum())
        kept += int((inputs[sel] == original[sel]).sum())
        assert not torch.isin(inputs[sel][changed], special).any(), "a random replacement was a special token"
    assert picked > 15000
    assert abs(picked / maskable - 0.15) < 0.01
    assert abs(masked / picked - 0.8) < 0.015
    assert abs(swapped / picked - 0.1) < 0.012
    assert abs(kept / picked - 0.1) < 0.012


def test_mlm_selection_covers_every_position(tok, ids):
    # No position is favoured: over many draws each maskable position of a row is picked about equally.
    row = ids[0]
    collator = DataCollatorForLanguageModeling(tok, seed=1)
    counts = torch.zeros(len(row))
    for _ in range(300):
        counts += (collator([row])["labels"][0] != -100).float()
    inner = counts[1:-1]
    assert counts[0] == 0 and counts[-1] == 0  # [CLS], [SEP]
    expected = 300 * max(1, round(0.15 * len(inner))) / len(inner)
    assert inner.min() > 0.4 * expected and inner.max() < 1.8 * expected


def test_mlm_never_touches_padding_or_given_special_tokens(tok, ids):
    collator = DataCollatorForLanguageModeling(tok, seed=2, pad_to_multiple_of=16)
    rows = [{"input_ids": r, "special_tokens_mask": [0] + [1] * 3 + [0] * (len(r) - 4)} for r in ids[:32]]
    for _ in range(20):
        out = collator(rows)
        assert out["input_ids"].shape[1] % 16 == 0
        pad = out["attention_mask"] == 0
        assert pad.any()
        assert (out["labels"][pad] == -100).all() and (out["input_ids"][pad] == tok.pad_token_id).all()
        assert (out["labels"][:, :4] == -100).all()  # [CLS] and the three flagged tokens


def test_mlm_whole_words(tok, ids):
    collator = DataCollatorForLanguageModeling(tok, seed=3, whole_word_mask=True)
    cont = torch.tensor([t.startswith("##") for t in tok.convert_ids_to_tokens(list(range(len(tok))))])
    special = _special(tok)
    picked = maskable = pieces = masked = 0
    for original, inputs, labels in _draws(collator, ids, 30):
        sel = labels != -100
        can = ~torch.isin(original, special)
        is_cont = cont[original] & can
        # A continuation piece is selected exactly when the token before it is.
        prev = torch.zeros_like(sel)
        prev[:, 1:] = sel[:, :-1]
        assert torch.equal(sel[is_cont], prev[is_cont]), "a word was split by the mask"
        assert not (sel & ~can).any()
        budget = torch.clamp(torch.round(can.sum(1).double() * 0.15).long(), min=1)
        words_of_one = sel.sum(1) <= budget
        assert words_of_one.float().mean() > 0.95  # only the 'one word longer than the budget' fallback exceeds it
        picked, maskable = picked + int(sel.sum()), maskable + int(can.sum())
        pieces += int((sel & is_cont).sum())
        masked += int((inputs[sel] == tok.mask_token_id).sum())
        assert torch.equal(labels[sel], original[sel])
    assert pieces > 300, "no multi-piece word was ever masked"
    assert 0.12 < picked / maskable < 0.16
    assert abs(masked / picked - 0.8) < 0.02  # 80/10/10 still applies per token


def test_mlm_whole_word_needs_wordpiece(tmp_path):
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"]) + "\n")
    plain = W.BertTokenizer(str(tmp_path / "vocab.txt"))
    with pytest.raises(ValueError, match="WordPiece vocabulary"):
        DataCollatorForLanguageModeling(plain, whole_word_mask=True)
    DataCollatorForLanguageModeling(plain)  # token-level masking is fine


def test_mlm_is_reproducible_and_resumable(tok, ids):
    a, b = DataCollatorForLanguageModeling(tok, seed=7), DataCollatorForLanguageModeling(tok, seed=7)
    first = a(ids[:8])
    assert torch.equal(first["input_ids"], b(ids[:8])["input_ids"])
    state = a.state_dict()
    after = a(ids[:8])
    assert not torch.equal(after["labels"], first["labels"])
    c = DataCollatorForLanguageModeling(tok, seed=99)
    c.load_state_dict(state)
    assert torch.equal(c(ids[:8])["labels"], after["labels"])
    assert DataCollatorForLanguageModeling(tok).state_dict() == {}


def test_mlm_short_and_special_only_rows(tok):
    collator = DataCollatorForLanguageModeling(tok, seed=0)
    out = collator([[101, 7592, 102], [101, 102]])
    assert (out["labels"][0] != -100).sum() == 1  # one maskable token still gets its prediction
    assert (out["labels"][1] == -100).all()  # nothing maskable: nothing selected
    capped = DataCollatorForLanguageModeling(tok, seed=0, max_predictions_per_seq=2)
    assert ((capped([list(range(2000, 2100))])["labels"] != -100).sum()) == 2


def test_numpy_batches_hold_the_same_values(tok, ids):
    pt = DataCollatorForLanguageModeling(tok, seed=3)(ids[:4])
    np_batch = DataCollatorForLanguageModeling(tok, seed=3, return_tensors="np")(ids[:4])
    assert set(np_batch) == set(pt)
    for key, value in np_batch.items():
        assert type(value).__module__ == "numpy" and (value == pt[key].numpy()).all(), key


def test_causal_lm_labels(tok, ids):
    out = DataCollatorForLanguageModeling(tok, mlm=False)(ids[:4])
    expect = out["input_ids"].masked_fill(out["attention_mask"] == 0, -100)
    assert torch.equal(out["labels"], expect)


@pytest.mark.parametrize("kwargs, match", [
    ({"mlm_probability": 1.5}, "mlm_probability"),
    ({"mask_replace_prob": 0.9, "random_replace_prob": 0.2}, "must not exceed 1"),
    ({"pad_to_multiple_of": 0}, "pad_to_multiple_of"),
    ({"return_tensors": "tf"}, "torch tensors .* or numpy arrays"),
    ({"mlm": False, "whole_word_mask": True}, "whole_word_mask"),
    ({"max_predictions_per_seq": 0}, "max_predictions_per_seq"),
])
def test_mlm_bad_options(tok, kwargs, match):
    with pytest.raises(ValueError, match=match):
        DataCollatorForLanguageModeling(tok, **kwargs)


def test_mlm_bad_batches(tok):
    collator = DataCollatorForLanguageModeling(tok)
    with pytest.raises(ValueError, match="non-empty list"):
        collator([])
    with pytest.raises(TypeError, match="example 1 must be a sequence of token ids"):
        collator([[101, 102], "hello"])
    with pytest.raises(TypeError, match="found 2.5"):
        collator([[101, 2.5, 102]])
    with pytest.raises(ValueError, match="next_sentence_label must be 0"):
        collator([{"input_ids": [101, 102], "next_sentence_label": 2}])
    with pytest.raises(ValueError, match="special_tokens_mask has 3 entries but its input_ids have 2"):
        collator([{"input_ids": [101, 102], "special_tokens_mask": [1, 0, 1]}])


# ---- NSP ---------------------------------------------------------------------------------------------------
NUMBERS = "zero one two three four five six seven eight nine ten eleven twelve".split()


def _documents(n_docs=60, n_sents=12):
    # Each sentence names its document and position, so a pair can be traced back.
    return [[f"document {NUMBERS[d % 13]} {NUMBERS[d // 13]} sentence {NUMBERS[s]}" for s in range(n_sents)]
            for d in range(n_docs)]


def test_nsp_pairs_are_half_random_and_labelled_like_bert(tok):
    docs = _documents()
    where = {tuple(tok(s, add_special_tokens=False)["input_ids"]): (d, i)
             for d, doc in enumerate(docs) for i, s in enumerate(doc)}
    examples = build_nsp_examples(docs, tok, seed=0)
    assert len(examples) == 60 * 11
    labels = Counter(e["next_sentence_label"] for e in examples)
    assert abs(labels[1] / len(examples) - 0.5) < 0.06
    for e in examples:
        ids, types = e["input_ids"], e["token_type_ids"]
        sep = ids.index(tok.sep_token_id)
        assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
        assert types == [0] * (sep + 1) + [1] * (len(ids) - sep - 1)
        (da, ia), (db, ib) = where[tuple(ids[1:sep])], where[tuple(ids[sep + 1:-1])]
        if e["next_sentence_label"] == 0:
            assert (db, ib) == (da, ia + 1)
        else:
            assert db != da
    assert build_nsp_examples(docs, tok, seed=0) == examples
    assert build_nsp_examples(docs, tok, seed=1) != examples


def test_nsp_truncation_and_probability(tok):
    docs = [["word " * 100, "other " * 100], ["third sentence"]]
    (example,) = build_nsp_examples(docs, tok, max_length=32, random_next_probability=0.0)
    assert len(example["input_ids"]) == 32 and example["next_sentence_label"] == 0
    (example,) = build_nsp_examples(docs, tok, random_next_probability=1.0)
    assert example["next_sentence_label"] == 1
    assert tok.decode(example["input_ids"]).endswith("third sentence [SEP]")


@pytest.mark.parametrize("docs, error, match", [
    ([["a", "b"]], ValueError, "at least 2 non-empty documents"),
    ([["a", "b"], ["  "]], ValueError, "at least 2 non-empty documents"),
    ([["a"], ["b"]], ValueError, "two consecutive sentences"),
    ([["a", 3], ["b"]], TypeError, "document 0 holds a int"),
    (["just a string", ["b"]], TypeError, "document 0 must be a list"),
    ("text", TypeError, "documents must be a list"),
])
def test_nsp_bad_documents(tok, docs, error, match):
    with pytest.raises(error, match=match):
        build_nsp_examples(docs, tok)


@pytest.mark.parametrize("whole_word", [False, True])
def test_pretraining_batch_feeds_bert_for_pretraining(tok, whole_word, tmp_path):
    batch = DataCollatorForLanguageModeling(tok, seed=0, whole_word_mask=whole_word)(
        build_nsp_examples(_documents(4, 4), tok, seed=0))
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels", "next_sentence_label"}
    config = dict(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                  intermediate_size=37, max_position_embeddings=64)
    torch.manual_seed(0)
    theirs = T.BertForPreTraining(T.BertConfig(**config)).eval()
    theirs.save_pretrained(tmp_path)
    ours = W.BertForPreTraining.from_pretrained(tmp_path).eval()
    loss = ours(**batch).loss
    assert torch.isfinite(loss)
    torch.testing.assert_close(loss, theirs(**batch).loss, atol=1e-4, rtol=1e-5)


# ---- seq2seq -----------------------------------------------------------------------------------------------
def _pairs(tok, texts, n=6):
    sources = tok([t.split()[0] for t in texts[:n]])["input_ids"]
    targets = tok(texts[:n], truncation=True, max_length=40)["input_ids"]
    return [{"input_ids": s, "labels": t} for s, t in zip(sources, targets)]


def test_seq2seq_matches_transformers_and_masks_decoder_inputs(tok, texts, minilm_dir):
    features = _pairs(tok, texts)
    ours = DataCollatorForSeq2Seq(tok, pad_to_multiple_of=8)(features)
    hf_tok = T.BertTokenizerFast.from_pretrained(minilm_dir)
    theirs = T.DataCollatorForSeq2Seq(hf_tok, pad_to_multiple_of=8)([dict(f) for f in features])
    for key in ("input_ids", "attention_mask", "labels"):
        assert torch.equal(ours[key], theirs[key]), key
    labels, dmask = ours["labels"], ours["decoder_attention_mask"]
    assert labels.shape[1] % 8 == 0 and ours["input_ids"].shape[1] % 8 == 0
    for row, f in enumerate(features):
        n = len(f["labels"])
        assert labels[row, :n].tolist() == f["labels"] and (labels[row, n:] == -100).all()
        # The decoder reads [start, y0 .. y_{T-2}]: its first n+1 inputs are real.
        assert dmask[row].tolist() == [1] * min(n + 1, labels.shape[1]) + [0] * max(0, labels.shape[1] - n - 1)


def test_seq2seq_decoder_mask_does_not_change_the_loss(tok, texts):
    # Padding the decoder inputs must not change what the real positions see: the loss with our
    # decoder_attention_mask equals the loss of each example run alone, unpadded.
    config = dict(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                  intermediate_size=37, max_position_embeddings=64, hidden_dropout_prob=0.0,
                  attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    model = W.EncoderDecoderModel(encoder=W.BertModel(W.BertConfig(**config)), decoder=W.BertLMHeadModel(
        W.BertConfig(**config, is_decoder=True, add_cross_attention=True))).eval()
    model.config.decoder_start_token_id, model.config.pad_token_id = tok.cls_token_id, tok.pad_token_id
    features = _pairs(tok, texts, 4)
    collator = DataCollatorForSeq2Seq(tok, model=model)
    batch = collator(features)
    assert torch.equal(batch["decoder_input_ids"], model.prepare_decoder_input_ids_from_labels(batch["labels"]))
    with torch.no_grad():
        logits = model(**batch).logits
        for row, f in enumerate(features):
            alone = model(**collator([f])).logits[0]
            n = len(f["labels"])
            torch.testing.assert_close(logits[row, :n], alone[:n], atol=1e-5, rtol=1e-5)


def test_seq2seq_left_padding_keeps_labels_on_the_right(tok, texts, minilm_dir):
    left = W.BertTokenizerFast.from_pretrained(minilm_dir, padding_side="left")
    features = _pairs(tok, texts, 3)
    out = DataCollatorForSeq2Seq(left)(features)
    width = out["input_ids"].shape[1]
    for row, f in enumerate(features):
        n = len(f["input_ids"])
        assert out["input_ids"][row, width - n:].tolist() == f["input_ids"]
        assert out["attention_mask"][row].tolist() == [0] * (width - n) + [1] * n
        assert out["labels"][row, :len(f["labels"])].tolist() == f["labels"]


def test_seq2seq_options_and_extra_keys(tok):
    features = [{"input_ids": [101, 5, 102], "token_type_ids": [0, 0, 0], "attention_mask": [1, 1, 1],
                 "labels": [101, 7, 102]},
                {"input_ids": [101, 102], "token_type_ids": [0, 0], "attention_mask": [1, 1], "labels": [101, 102]}]
    out = DataCollatorForSeq2Seq(tok, padding="max_length", max_length=6, label_pad_token_id=-1)(features)
    assert out["input_ids"].tolist() == [[101, 5, 102, 0, 0, 0], [101, 102, 0, 0, 0, 0]]
    assert out["token_type_ids"].tolist() == [[0] * 6] * 2
    assert out["labels"].tolist() == [[101, 7, 102, -1, -1, -1], [101, 102, -1, -1, -1, -1]]
    no_labels = DataCollatorForSeq2Seq(tok)([{"input_ids": [101, 102]}])
    assert set(no_labels) == {"input_ids", "attention_mask"}
    # Rows may come as tensors, numpy arrays or BatchEncodings (what a tokenizer call returns).
    mixed = [W.BatchEncoding({"input_ids": torch.tensor([101, 5, 102]), "labels": np.array([101, 7, 102])}),
             {"input_ids": np.array([101, 102]), "labels": [101, 102]}]
    out = DataCollatorForSeq2Seq(tok)(mixed)
    assert out["input_ids"].tolist() == [[101, 5, 102], [101, 102, 0]]
    assert out["labels"].tolist() == [[101, 7, 102], [101, 102, -100]]


@pytest.mark.parametrize("features, error, match", [
    ([], ValueError, "non-empty list"),
    ([[101, 102]], ValueError, "example 0 of the batch must be a dict with 'input_ids'"),
    ([{"input_ids": [101], "labels": [5]}, {"input_ids": [101]}], ValueError, r"examples \[1\] of the batch have no labels"),
    ([{"input_ids": "101 102", "labels": [5]}], TypeError, "example 0's input_ids must be a sequence"),
    ([{"input_ids": [[101]], "labels": [5]}], TypeError, r"found \[101\]"),
    ([{"input_ids": [101, 102], "attention_mask": [1], "labels": [5]}], ValueError,
     "example 0's attention_mask has 1 entries but its input_ids have 2"),
    ([{"input_ids": [101], "token_type_ids": [0], "labels": [5]}, {"input_ids": [101], "labels": [5]}], ValueError,
     "example 1 of the batch has no 'token_type_ids' while others do"),
    ([{"input_ids": torch.ones(2, 2, dtype=torch.long), "labels": [5]}], ValueError, "1-D sequence"),
])
def test_seq2seq_bad_batches(tok, features, error, match):
    with pytest.raises(error, match=match):
        DataCollatorForSeq2Seq(tok)(features)


def test_seq2seq_bad_options(tok):
    with pytest.raises(ValueError, match="padding must be"):
        DataCollatorForSeq2Seq(tok, padding=False)
    with pytest.raises(ValueError, match="needs max_length"):
        DataCollatorForSeq2Seq(tok, padding="max_length")
    with pytest.raises(ValueError, match="a target has 4 tokens, more than"):
        DataCollatorForSeq2Seq(tok, padding="max_length", max_length=3)([{"input_ids": [1], "labels": [1, 2, 3, 4]}])


# ---- length-grouped batches --------------------------------------------------------------------------------
def _lengths(n=1000, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, 200, (n,), generator=g).tolist()


def _padding(batches, lengths):
    return sum(len(b) * max(lengths[i] for i in b) - sum(lengths[i] for i in b) for b in batches)


def test_sampler_covers_every_index_once_and_groups_lengths():
    lengths = _lengths()
    sampler = LengthGroupedBatchSampler(lengths, 16, mega_batch_mult=8, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 63
    assert sorted(i for b in batches for i in b) == list(range(1000))
    assert max(lengths) == lengths[batches[0][0]]  # the longest batch first
    g = torch.Generator().manual_seed(0)
    shuffled = torch.randperm(1000, generator=g).tolist()
    random_batches = [shuffled[i:i + 16] for i in range(0, 1000, 16)]
    assert _padding(batches, lengths) < 0.2 * _padding(random_batches, lengths)


def test_sampler_sorts_within_mega_batches_only():
    lengths = _lengths(200)
    # One mega-batch holding everything: batches are consecutive runs of the sorted lengths.
    whole = list(LengthGroupedBatchSampler(lengths, 10, mega_batch_mult=20, seed=1))
    spans = sorted((min(lengths[i] for i in b), max(lengths[i] for i in b)) for b in whole)
    assert all(hi <= lo for (_, hi), (lo, _) in zip(spans, spans[1:]))
    # Mega-batches of one batch: no sorting across batches, so their spans overlap.
    small = list(LengthGroupedBatchSampler(lengths, 10, mega_batch_mult=1, seed=1))
    spans = sorted((min(lengths[i] for i in b), max(lengths[i] for i in b)) for b in small)
    assert any(hi > lo for (_, hi), (lo, _) in zip(spans, spans[1:]))


def test_sampler_is_seeded_per_epoch():
    lengths = _lengths(300)
    a, b = LengthGroupedBatchSampler(lengths, 8, seed=5), LengthGroupedBatchSampler(lengths, 8, seed=5)
    assert list(a) == list(b) and list(a) == list(a)
    a.set_epoch(1)
    assert list(a) != list(b)
    b.set_epoch(1)
    assert list(a) == list(b)
    assert list(LengthGroupedBatchSampler(lengths, 8, seed=6)) != list(LengthGroupedBatchSampler(lengths, 8, seed=5))


def test_sampler_drop_last_and_replicas():
    lengths = _lengths(105)
    kept = list(LengthGroupedBatchSampler(lengths, 10, mega_batch_mult=3, seed=0, drop_last=True))
    assert all(len(b) == 10 for b in kept) and len(kept) == len(
        LengthGroupedBatchSampler(lengths, 10, mega_batch_mult=3, drop_last=True))
    ranks = [LengthGroupedBatchSampler(lengths, 10, mega_batch_mult=3, seed=0, num_replicas=3, rank=r) for r in range(3)]
    per_rank = [list(s) for s in ranks]
    assert {len(b) for b in per_rank} == {len(ranks[0])} == {4}  # 12 batches: 11 real, one repeated
    assert {i for b in per_rank for batch in b for i in batch} == set(range(105))
    assert _loads_with_dataloader(lengths)


def _loads_with_dataloader(lengths):
    data = [torch.tensor([7] * n) for n in lengths]
    loader = torch.utils.data.DataLoader(data, batch_sampler=LengthGroupedBatchSampler(lengths, 10, seed=0),
                                         collate_fn=lambda rows: torch.nn.utils.rnn.pad_sequence(rows, batch_first=True))
    return sum(b.shape[0] for b in loader) == len(lengths)


@pytest.mark.parametrize("args, kwargs, match", [
    ([[], 4], {}, "at least one length"),
    ([[3, -1], 4], {}, "non-negative ints"),
    ([[3, 4], 0], {}, "batch_size"),
    ([[3, 4], 2], {"mega_batch_mult": 0}, "mega_batch_mult"),
    ([[3, 4], 2], {"num_replicas": 2, "rank": 2}, "rank must be in"),
    ([[3, 4], 4], {"drop_last": True}, "leaves no batch"),
])
def test_sampler_bad_arguments(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        LengthGroupedBatchSampler(*args, **kwargs)


def _worker_masks(tok, rows, prime):
    collator = DataCollatorForLanguageModeling(tok, seed=11)
    if prime:
        collator.state_dict()  # creates the generator in the main process before the workers copy it
    loader = torch.utils.data.DataLoader([rows[0]] * 4, batch_size=1, num_workers=2, collate_fn=collator)
    return [batch["labels"] for batch in loader]


def test_mlm_workers_draw_different_masks(tok, ids):
    for prime in (False, True):
        a, b, c, d = _worker_masks(tok, ids, prime)  # batches alternate between workers 0 and 1
        assert not torch.equal(a, b), "two DataLoader workers drew the same masks"
        assert torch.equal(a, DataCollatorForLanguageModeling(tok, seed=11)([ids[0]])["labels"])
