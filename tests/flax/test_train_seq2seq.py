"""Seq2seq training in Flax: the AdamW step on a tiny bert2bert FlaxEncoderDecoderModel against torch.optim.AdamW on
our PyTorch EncoderDecoderModel with the same weights, over batches of our seq2seq collator; gradient accumulation;
bad batches; and `warmstart train --framework flax` end to end, its folder loaded by both wings."""
import json

import numpy as np
import pytest
import torch
from adamw_twins import step_both
from tiny_seq2seq import VOCAB, pairs, tiny_bert, write_jsonl

import warmstart as W
from warmstart.checkpoint.flax_layout import from_flax_tree, to_flax_tree
from warmstart.checkpoint.keymaps import KEYMAPS
from warmstart.config.encoder_decoder import EncoderDecoderConfig
from warmstart.flax.encoder_decoder import FlaxEncoderDecoderModel
from warmstart.flax.training import create_train_state, eval_step, train_step
from warmstart.train.collators import DataCollatorForSeq2Seq
from warmstart.train.loop import lr_factor, parameter_groups, prepare_features, special_ids
from warmstart.train.data import read_seq2seq

SIDE = dict(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48,
            max_position_embeddings=32, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
IDS = dict(decoder_start_token_id=2, eos_token_id=3, pad_token_id=0)  # [CLS] / [SEP] / [PAD] of VOCAB
# One recipe and one batch shape (4 x 16) for all tests: equal recipes share the compiled step. Weight decay, a
# decaying schedule and clipping that really clips (max_grad_norm below the gradients' norm); eps 1e-6 for the
# reason test_training.py gives.
RECIPE = dict(learning_rate=3e-3, weight_decay=0.1, warmup_steps=0, total_steps=8, max_grad_norm=0.5,
              adam_epsilon=1e-6)


def _frozen_pooler(path):
    return path[:2] == ("encoder", "pooler")  # the PyTorch loop freezes it: no seq2seq loss reaches it


def _config():
    cfg = EncoderDecoderConfig.from_encoder_decoder_configs(
        W.BertConfig(**SIDE), W.BertConfig(**SIDE, is_decoder=True, add_cross_attention=True))
    for k, v in IDS.items():
        setattr(cfg, k, v)
    return cfg


def _flax_params(pt) -> dict:
    """Our PyTorch EncoderDecoderModel's weights as the Flax tree (encoder: the bare backbone, decoder: the LM)."""
    km = KEYMAPS["bert"]
    sd = {k: v.detach().numpy() for k, v in pt.state_dict().items()}
    enc = km.to_theirs({k[8:]: v for k, v in sd.items() if k.startswith("encoder.")}, model_has_prefix=False)
    dec = km.to_theirs({k[8:]: v for k, v in sd.items() if k.startswith("decoder.")}, model_has_prefix=True)
    return {"encoder": to_flax_tree(enc), "decoder": to_flax_tree(dec)}


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return W.AutoTokenizer.from_pretrained(tiny_bert(tmp_path_factory.mktemp("tok") / "bert"))


def _batches(tokenizer, n_batches=2, size=4, seed=0, multiple=16):
    """Collated numpy batches of the toy task (padded to 16 tokens: one shape, one compile)."""
    examples = [type("E", (), p) for p in pairs(n_batches * size, seed=seed)]
    feats = prepare_features(examples, tokenizer, tokenizer, special_ids(tokenizer), 16, 16)
    collate = DataCollatorForSeq2Seq(tokenizer, pad_to_multiple_of=multiple, return_tensors="np")
    batches = [dict(collate(feats[i:i + size])) for i in range(0, len(feats), size)]
    for b in batches:  # the tokenizer's token types (all 0 here) reach the encoder, as in the PyTorch model
        b["token_type_ids"] = np.zeros_like(b["input_ids"])
    return batches


@pytest.fixture(scope="module")
def pair():
    """(Flax model, PyTorch model) with the same weights, dropout off."""
    torch.manual_seed(0)
    pt = W.EncoderDecoderModel(_config()).train()  # dropout 0: train mode is deterministic
    pt.encoder.pooler.requires_grad_(False)
    fx = FlaxEncoderDecoderModel(_config())
    fx.params = _flax_params(pt)
    return fx, pt


def test_collator_batches_train_and_the_loss_goes_down(pair, tokenizer):
    fx, _ = pair
    batch = _batches(tokenizer, 1, 4)[0]
    assert {"input_ids", "attention_mask", "token_type_ids", "labels", "decoder_attention_mask"} <= set(batch)
    state = create_train_state(fx, frozen=_frozen_pooler, **RECIPE)
    losses = []
    for _ in range(6):
        state, metrics = train_step(fx, state, batch)
        losses.append(float(metrics["loss"]))
    assert losses[-1] < 0.85 * losses[0] and losses == sorted(losses, reverse=True), losses
    pooler = from_flax_tree(state.params["encoder"]["pooler"])
    assert all(np.array_equal(v, from_flax_tree(fx.params["encoder"]["pooler"])[k]) for k, v in pooler.items())


def test_two_steps_match_torch_adamw(pair, tokenizer):
    """Loss (train and eval step), gradient norm and every parameter after each of two AdamW steps (the frozen
    pooler included) within 1e-5 of the PyTorch loop's recipe; decoder_input_ids made from the labels on both
    sides."""
    fx, fixture_pt = pair
    pt = W.EncoderDecoderModel(_config()).train()  # a copy: the fixture's model stays as built
    pt.load_state_dict(fixture_pt.state_dict())
    pt.encoder.pooler.requires_grad_(False)
    options = RECIPE
    state = create_train_state(fx, frozen=_frozen_pooler, **options)
    groups, _ = parameter_groups(pt, options["weight_decay"])
    opt = torch.optim.AdamW(groups, lr=options["learning_rate"], betas=(0.9, 0.999), eps=options["adam_epsilon"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, 0, options["total_steps"], "linear"))
    for k, batch in enumerate(_batches(tokenizer)):
        assert abs(float(eval_step(fx, state, batch)["loss"])
                   - pt(**{n: torch.from_numpy(v) for n, v in batch.items()}).loss.item()) <= 1e-5
        loss = pt(**{n: torch.from_numpy(v) for n, v in batch.items()}).loss
        state = step_both(loss, [p for g in groups for p in g["params"]], opt, sched, options["max_grad_norm"], fx,
                          state, batch)
        ours = from_flax_tree(state.params)
        theirs = from_flax_tree(_flax_params(pt))
        assert sorted(ours) == sorted(theirs)
        worst = max((float(np.abs(np.asarray(ours[n]) - theirs[n]).max()), n) for n in ours)
        assert worst[0] <= 1e-5, f"after step {k + 1}: {worst[1]} differs by {worst[0]:.3g}"


def test_micro_batches_are_one_batch_of_all_their_tokens(pair, tokenizer):
    """Gradient accumulation: two micro-batches give the update of the one batch holding both (token-weighted,
    as the PyTorch loop), whatever their split into rows."""
    fx, _ = pair
    a, b = _batches(tokenizer, 2, 4, seed=3)
    both = {k: np.concatenate([a[k], b[k]]) for k in a}
    state = create_train_state(fx, frozen=_frozen_pooler, **RECIPE)
    one, m_one = train_step(fx, state, both)
    two, m_two = train_step(fx, state, [a, b])
    assert float(m_two["loss"]) == pytest.approx(float(m_one["loss"]), abs=1e-6)
    assert float(m_two["grad_norm"]) == pytest.approx(float(m_one["grad_norm"]), rel=1e-5)
    diff = max(float(np.abs(np.asarray(x) - np.asarray(y)).max())
               for x, y in zip(*(jax_leaves(s.params) for s in (one, two))))
    assert diff <= 1e-6 and int(two.step) == 1


def jax_leaves(tree):
    import jax

    return jax.tree_util.tree_leaves(tree)


def test_bad_seq2seq_batches(pair, tokenizer):
    fx, _ = pair
    state = create_train_state(fx, frozen=_frozen_pooler, **RECIPE)
    batch = _batches(tokenizer, 1, 4)[0]
    cases = [
        ({**batch, "special_tokens_mask": batch["attention_mask"]}, ValueError, r"takes no \['special_tokens_mask'\]"),
        ({**batch, "labels": np.full_like(batch["labels"], -100)}, ValueError, "NaN"),
        ({**batch, "labels": batch["labels"].astype(np.float32)}, TypeError, r"labels.*float32"),
        ({**batch, "decoder_attention_mask": batch["decoder_attention_mask"][:3]}, ValueError, "batch size"),
        ({k: v for k, v in batch.items() if k != "labels"}, ValueError, "no labels"),
        ({**batch, "labels": np.where(batch["labels"] > 0, 500, batch["labels"])}, ValueError, "500"),
        ({**batch, "input_ids": batch["input_ids"] + 500}, ValueError, "outside"),
        ([], TypeError, "non-empty list"),
    ]
    for bad, error, match in cases:
        with pytest.raises(error, match=match):
            train_step(fx, state, bad)
    with pytest.raises(ValueError, match="NaN"):  # each micro-batch is checked before any runs
        train_step(fx, state, [batch, {**batch, "labels": np.full_like(batch["labels"], -100)}])


# ---- `warmstart train --framework flax` -------------------------------------------------------------------------
@pytest.mark.slow
def test_cli_trains_in_flax_and_both_wings_load_the_folder(tmp_path, capsys):
    from warmstart.cli import main

    bert = tiny_bert(tmp_path / "bert")
    train_file = write_jsonl(tmp_path / "train.jsonl", pairs(32, seed=0))
    valid = write_jsonl(tmp_path / "valid.jsonl", pairs(4, seed=1))
    out = tmp_path / "out"
    main(["train", "--framework", "flax", "--encoder", str(bert), "--train-file", str(train_file), "--eval-file",
          str(valid), "--output-dir", str(out), "--max-steps", "6", "--batch-size", "8", "--learning-rate", "3e-3",
          "--max-new-tokens", "4", "--no-progress", "--samples", "1", "--logging-steps", "3",
          "--gradient-accumulation-steps", "2"])
    text = capsys.readouterr().out
    assert "ROUGE-L on 4 held-out examples after 6 steps" in text and "generated: " in text
    log = json.loads((out / "train_log.json").read_text())
    assert [e["step"] for e in log if "loss" in e] == [3, 6] and "eval_rougeL" in log[-1]
    folder = out / "model"
    fx = FlaxEncoderDecoderModel.from_pretrained(folder)
    pt = W.EncoderDecoderModel.from_pretrained(folder)
    assert json.loads((folder / "config.json").read_text())["decoder_start_token_id"] == 2
    examples = read_seq2seq(valid)
    tok = W.AutoTokenizer.from_pretrained(folder)
    feats = prepare_features(examples, tok, tok, special_ids(tok), 16, 16)
    batch = dict(DataCollatorForSeq2Seq(tok, return_tensors="np")(feats))
    with torch.no_grad():
        pt_loss = pt.eval()(**{k: torch.from_numpy(v) for k, v in batch.items()}).loss.item()
    assert float(fx(**batch).loss) == pytest.approx(pt_loss, abs=1e-5)
    main(["generate", str(folder), str(tmp_path / "valid.jsonl"), "--max-new-tokens", "4"])
    assert len(capsys.readouterr().out.splitlines()) == 4


def test_flax_loop_refuses_pytorch_only_settings(tmp_path):
    from warmstart.train.config import TrainingConfig
    from warmstart.train.flax_loop import train

    for field, value in (("bf16", True), ("save_steps", 5), ("from_scratch", True), ("device", "cuda")):
        config = TrainingConfig(output_dir=str(tmp_path / "out"), train_file=str(tmp_path / "t.jsonl"),
                                encoder=str(tmp_path), **{field: value})
        with pytest.raises(ValueError, match=f"does not support {field}="):
            train(config)
