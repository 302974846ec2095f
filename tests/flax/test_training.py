"""The Flax AdamW step against torch.optim.AdamW on our PyTorch BERT, the PyTorch trainer's schedule, our batches."""
import numpy as np
import pytest
import torch
from adamw_twins import step_both

import warmstart as W
from warmstart.checkpoint.flax_layout import from_flax_tree, to_flax_tree
from warmstart.checkpoint.keymaps import KEYMAPS
from warmstart.flax.bert import FlaxBertForMaskedLM, FlaxBertForQuestionAnswering, FlaxBertForSequenceClassification
from warmstart.flax.bert import FlaxBertModel
from warmstart.flax.training import create_train_state, eval_step, lr_schedule, train_step
from warmstart.train.collators import DataCollatorForLanguageModeling
from warmstart.train.loop import lr_factor, parameter_groups

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64, num_labels=3)
NO_DROPOUT = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
WORDS = "the a cat dog sat ran on under mat rug big small red blue fast slow".split()


def _batch(seed=0, b=3, t=10):
    g = np.random.default_rng(seed)
    ids = g.integers(5, 99, (b, t))
    mask = np.ones_like(ids)
    mask[-1, t - 3:] = 0
    ids[-1, t - 3:] = 0
    labels = np.where((g.random((b, t)) < 0.4) & (mask == 1), ids, -100)
    labels[:, 1] = ids[:, 1]
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids), "labels": labels}


@pytest.mark.parametrize("kind", ["linear", "cosine", "constant"])
def test_schedule_is_the_pytorch_trainers(kind):
    schedule = lr_schedule(1e-3, 3, 10, kind)
    for step in range(13):  # fp32 vs Python floats: 1 + cos rounds to ~1e-7 of the peak
        assert float(schedule(step)) == pytest.approx(1e-3 * lr_factor(step, 3, 10, kind), rel=1e-6, abs=1e-10)


@pytest.mark.parametrize("head", ["mlm", "seq-cls"])
def test_two_steps_match_torch_adamw(head):
    """Weight decay (masked off biases and LayerNorm), torch-style clipping (active: norm > max_grad_norm) and a
    decaying schedule; two steps so clipping changes Adam's moments, not only the scale-free first update.
    Adam's first update is lr * g / (|g| + eps): for a gradient component near eps the two frameworks' last-bit
    differences in g swing it by a sizeable fraction of lr, so eps is 1e-6 here (the optimizer is under test, not
    how fp32 rounds a 1e-9 gradient; gradients themselves are compared in the parity tests)."""
    pt_cls, fx_cls = {"mlm": (W.BertForMaskedLM, FlaxBertForMaskedLM),
                      "seq-cls": (W.BertForSequenceClassification, FlaxBertForSequenceClassification)}[head]
    torch.manual_seed(0)
    pt = pt_cls(W.BertConfig(**TINY, **NO_DROPOUT)).train()  # dropout 0: train mode is deterministic
    pt.bert.skip_padding = False
    km = KEYMAPS["bert"]
    fx = fx_cls(W.BertConfig(**TINY, **NO_DROPOUT))
    fx.params = to_flax_tree(km.to_theirs({k: v.detach().numpy() for k, v in pt.state_dict().items()},
                                          model_has_prefix=True))
    options = dict(learning_rate=1e-3, weight_decay=0.1, warmup_steps=0, total_steps=4, max_grad_norm=0.1,
                   adam_epsilon=1e-6)
    state = create_train_state(fx, **options)
    groups, _ = parameter_groups(pt, options["weight_decay"])
    opt = torch.optim.AdamW(groups, lr=options["learning_rate"], betas=(0.9, 0.999), eps=options["adam_epsilon"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, 0, 4, "linear"))
    for seed in (0, 1):
        batch = _batch(seed)
        if head == "seq-cls":
            batch["labels"] = np.array([2, 0, 1])
        loss = pt(**{k: torch.from_numpy(v) for k, v in batch.items()}).loss
        state = step_both(loss, list(pt.parameters()), opt, sched, options["max_grad_norm"], fx, state, batch)
        ours = from_flax_tree(state.params)
        theirs = km.to_theirs({k: v.detach().numpy() for k, v in pt.state_dict().items()}, model_has_prefix=True)
        theirs.pop("cls.predictions.decoder.weight", None)  # tied to the embeddings: no Flax leaf
        assert sorted(ours) == sorted(theirs)
        worst = max((float(np.abs(ours[k] - theirs[k]).max()), k) for k in ours)
        assert worst[0] <= 1e-5, f"after step {seed + 1}: {worst[1]} differs by {worst[0]:.3g}"


@pytest.fixture(scope="module")
def mlm():
    """One MLM model for the tests that need any: its train step compiles once for all of them."""
    return FlaxBertForMaskedLM(W.BertConfig(**TINY))


def _tokenizer(tmp_path):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return W.BertTokenizer(str(tmp_path / "vocab.txt"))


def _sentences(n=8):
    g = np.random.default_rng(0)
    return [" ".join(g.choice(WORDS, size=int(g.integers(4, 9)))) for _ in range(n)]


def test_loss_goes_down_mlm_from_the_collator(tmp_path):
    tok = _tokenizer(tmp_path)
    features = [{"input_ids": ids} for ids in tok(_sentences())["input_ids"]]
    collator = DataCollatorForLanguageModeling(tok, mlm_probability=0.3, seed=0, return_tensors="np")
    model = FlaxBertForMaskedLM(W.BertConfig(**TINY))
    state = create_train_state(model, learning_rate=3e-3, lr_scheduler="constant")
    batch = dict(collator(features))
    losses = []
    for _ in range(12):
        state, metrics = train_step(model, state, batch)
        losses.append(float(metrics["loss"]))
    assert losses[-1] < 0.8 * losses[0], losses
    assert int(state.step) == 12


def test_loss_goes_down_seq_cls_from_a_numpy_tokenizer_batch(tmp_path):
    tok = _tokenizer(tmp_path)
    batch = dict(tok(_sentences(), padding=True, return_tensors="np"))
    batch["labels"] = np.arange(8) % 3
    model = FlaxBertForSequenceClassification(W.BertConfig(**TINY))
    state = create_train_state(model, learning_rate=1e-2, warmup_steps=2, total_steps=20)
    first = float(eval_step(model, state, batch)["loss"])
    for _ in range(10):
        state, metrics = train_step(model, state, batch)
    assert float(eval_step(model, state, batch)["loss"]) < 0.8 * first
    assert float(metrics["learning_rate"]) == pytest.approx(1e-2 * lr_factor(9, 2, 20, "linear"), rel=1e-6)


def test_dropout_key_is_fresh_each_step_and_the_step_compiles_once(mlm):
    model = mlm
    state = create_train_state(model, learning_rate=0.0, lr_scheduler="constant")
    batch = _batch()
    s1, m1 = train_step(model, state, batch)
    s2, m2 = train_step(model, s1, batch)
    again, m1_again = train_step(model, state, batch)
    assert float(m1["loss"]) == float(m1_again["loss"])  # reproducible from the same state
    assert float(m1["loss"]) != float(m2["loss"])  # lr 0: same params, so only the dropout mask changed
    assert not np.array_equal(np.asarray(s1.rng), np.asarray(s2.rng))
    from warmstart.flax.training import _train_step_jit
    before = _train_step_jit._cache_size()
    train_step(model, s2, batch)
    assert _train_step_jit._cache_size() == before


def test_eval_step_is_the_models_forward(mlm):
    model = mlm
    state = create_train_state(model, lr_scheduler="constant")
    batch = _batch()
    out = eval_step(model, state, batch)
    ref = model(batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
    assert np.abs(np.asarray(out["logits"]) - np.asarray(ref.logits)).max() == 0
    assert float(out["loss"]) == float(ref.loss)
    assert "loss" not in eval_step(model, state.params, {k: v for k, v in batch.items() if k != "labels"})


def test_question_answering_positions():
    model = FlaxBertForQuestionAnswering(W.BertConfig(**{**TINY, "num_labels": 2}))
    state = create_train_state(model, lr_scheduler="constant")
    batch = {k: v for k, v in _batch().items() if k != "labels"}
    batch.update(start_positions=np.array([1, 2, 30]), end_positions=np.array([3, 4, 5]))
    state, metrics = train_step(model, state, batch)
    assert np.isfinite(float(metrics["loss"]))
    with pytest.raises(ValueError, match="both 'start_positions' and 'end_positions'"):
        train_step(model, state, {k: v for k, v in batch.items() if k != "end_positions"})


def test_bad_batches_and_options(mlm):
    model = mlm
    state = create_train_state(model, lr_scheduler="constant")
    batch = _batch()
    cases = [
        ({k: v for k, v in batch.items() if k != "labels"}, ValueError, "no labels"),
        ({**batch, "special_tokens_mask": batch["attention_mask"]}, ValueError, r"takes no \['special_tokens_mask'\]"),
        ({**batch, "input_ids": batch["input_ids"].astype(np.float32)}, TypeError, r"input_ids.*float32"),
        ({**batch, "labels": batch["labels"].astype(np.float32)}, TypeError, r"labels.*float32"),
        ({**batch, "labels": batch["labels"][:2]}, ValueError, "batch size"),
        ({**batch, "labels": np.full_like(batch["labels"], -100)}, ValueError, "NaN"),
        ({**batch, "input_ids": batch["input_ids"] + 99}, ValueError, r"outside \[0, 99\)"),
        ({**batch, "labels": np.where(batch["labels"] >= 0, 150, -100)}, ValueError, "150"),
        ([batch["input_ids"]], TypeError, "dict of arrays"),
    ]
    for bad, error, match in cases:
        with pytest.raises(error, match=match):
            train_step(model, state, bad)
    with pytest.raises(TypeError, match="TrainState"):
        train_step(model, state.params, batch)
    bare = FlaxBertModel(W.BertConfig(**TINY))
    with pytest.raises(ValueError, match="takes no"):
        train_step(bare, create_train_state(bare, lr_scheduler="constant"), batch)
    for options, match in [(dict(learning_rate=-1.0), "learning_rate"), (dict(lr_scheduler="step"), "lr_scheduler"),
                           (dict(), "needs total_steps"), (dict(total_steps=0), "total_steps"),
                           (dict(adam_beta2=1.0, lr_scheduler="constant"), "adam_beta2"),
                           (dict(warmup_steps=1.5, lr_scheduler="constant"), "warmup_steps")]:
        with pytest.raises(ValueError, match=match):
            create_train_state(model, **options)
