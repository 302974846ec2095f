"""Checkpoints every N steps and exact resume: an interrupted and resumed run ends bit-identical to an
uninterrupted one (CPU, fp32, with dropout, gradient accumulation and an epoch boundary crossed); a checkpoint is
never half-written; resuming under other settings or from another run's checkpoint fails before training."""
import json

import pytest
import torch
from safetensors.torch import load_file
from tiny_seq2seq import one_thread, pairs, tiny_bert, write_jsonl

from warmstart.train import checkpointing, loop
from warmstart.train.checkpointing import CheckpointMismatch, list_checkpoints
from warmstart.train.config import TrainingConfig
from warmstart.train.loop import train


class Interrupt(Exception):
    pass


single_thread = pytest.fixture(autouse=True, scope="module")(one_thread)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {"bert": tiny_bert(root / "bert", dropout=0.1),
            "train": write_jsonl(root / "train.jsonl", pairs(40, seed=0)),
            "other": write_jsonl(root / "other.jsonl", pairs(40, seed=5))}


def config(assets, out, **kw) -> TrainingConfig:
    # 40 pairs / batch 4 = 10 micro-batches per epoch; 2 per step -> 5 steps per epoch; 8 steps cross into epoch 1.
    base = {"output_dir": str(out), "train_file": str(assets["train"]), "encoder": str(assets["bert"]),
            "batch_size": 4, "gradient_accumulation_steps": 2, "max_steps": 8, "learning_rate": 1e-3,
            "warmup_steps": 2, "lr_scheduler": "cosine", "weight_decay": 0.01, "save_steps": 3, "save_total_limit": 0,
            "logging_steps": 1, "progress": False, "verbose": False}
    return TrainingConfig(**{**base, **kw})


def stop_at(step):
    def on_step(s, loss):
        if s == step:
            raise Interrupt

    return on_step


@pytest.fixture(scope="module")
def uninterrupted(assets, tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    return train(config(assets, out)), out


def steps(history):
    return {e["step"]: (e["loss"], e["grad_norm"], e["learning_rate"]) for e in history if "loss" in e}


def test_resume_is_bit_exact(assets, uninterrupted, tmp_path):
    full, full_out = uninterrupted
    with pytest.raises(Interrupt):
        train(config(assets, tmp_path), on_step=stop_at(5))  # steps 4 and 5 are lost: the last checkpoint is step 3
    assert [s for s, _ in list_checkpoints(tmp_path)] == [3]
    state = json.loads((tmp_path / "checkpoints" / "step-00000003" / "trainer_state.json").read_text())
    assert (state["global_step"], state["epoch"], state["batch_in_epoch"]) == (3, 0, 6)

    resumed = train(config(assets, tmp_path, resume=True))
    assert resumed.global_step == 8
    assert steps(resumed.log_history) == steps(full.log_history)  # same loss, norm and lr at every step, exactly
    ours = load_file(tmp_path / "model" / "model.safetensors")
    theirs = load_file(full_out / "model" / "model.safetensors")
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [3, 6]


def test_resume_from_an_explicit_checkpoint_folder(assets, uninterrupted, tmp_path):
    full, full_out = uninterrupted
    resumed = train(config(assets, tmp_path, resume=str(full_out / "checkpoints" / "step-00000006")))
    assert steps(resumed.log_history) == steps(full.log_history)


def test_changed_settings_are_refused_before_training(assets, uninterrupted, tmp_path, monkeypatch):
    _, full_out = uninterrupted
    monkeypatch.setattr(loop, "_build_model", lambda *a, **k: pytest.fail("model loaded despite a bad resume"))
    with pytest.raises(CheckpointMismatch, match=r"different settings(.|\n)*learning_rate: 0.001 in the checkpoint, "
                                                  r"0.002 now(.|\n)*seed: 42 in the checkpoint, 7 now"):
        train(config(assets, full_out, resume=True, learning_rate=2e-3, seed=7))
    # Another run's checkpoint: same options, other data.
    with pytest.raises(CheckpointMismatch, match="train_data_sha256"):
        train(config(assets, tmp_path, train_file=str(assets["other"]),
                     resume=str(full_out / "checkpoints" / "step-00000003")))
    # Settings that only steer reporting may change.
    monkeypatch.undo()
    assert train(config(assets, tmp_path / "x", resume=str(full_out / "checkpoints" / "step-00000006"),
                        logging_steps=4, save_steps=0)).global_step == 8


def test_folders_that_cannot_be_resumed(assets, uninterrupted, tmp_path, monkeypatch):
    _, full_out = uninterrupted
    monkeypatch.setattr(loop, "_build_model", lambda *a, **k: pytest.fail("model loaded despite a bad resume"))
    with pytest.raises(CheckpointMismatch, match="holds no checkpoint"):
        train(config(assets, tmp_path, resume=True))
    with pytest.raises(CheckpointMismatch, match="not a warmstart training checkpoint"):
        train(config(assets, tmp_path, resume=str(full_out / "model")))
    with pytest.raises(CheckpointMismatch, match="already holds checkpoints .*--resume.*--overwrite-output-dir"):
        train(config(assets, full_out))


def test_overwrite_starts_over(assets, tmp_path):
    train(config(assets, tmp_path, max_steps=3))
    assert [s for s, _ in list_checkpoints(tmp_path)] == [3]
    train(config(assets, tmp_path, max_steps=2, save_steps=1, save_total_limit=1, overwrite_output_dir=True))
    assert [s for s, _ in list_checkpoints(tmp_path)] == [2]  # older ones pruned; step 3 of the old run gone


def test_a_failed_save_leaves_no_partial_checkpoint(assets, tmp_path, monkeypatch):
    real_save = torch.save
    calls = {"n": 0}

    def flaky(obj, f, *a, **k):
        if str(f).endswith("rng_state.pt"):
            calls["n"] += 1
            if calls["n"] == 2:  # the second checkpoint dies half-way through its files
                raise OSError("disk full")
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(checkpointing.torch, "save", flaky)
    with pytest.raises(OSError, match="disk full"):
        train(config(assets, tmp_path))
    assert [s for s, _ in list_checkpoints(tmp_path)] == [3]  # step 6 absent, not half there
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name != "step-00000003"
                and not p.name.endswith("ws-lock")]
    monkeypatch.setattr(checkpointing.torch, "save", real_save)
    assert train(config(assets, tmp_path, resume=True)).global_step == 8


def test_every_example_once_per_epoch(assets, tmp_path, monkeypatch):
    from warmstart.train import DataCollatorForSeq2Seq

    seen = []
    real = DataCollatorForSeq2Seq.__call__

    def record(self, features):
        seen.extend(tuple(f["input_ids"]) + tuple(f["labels"]) for f in features)
        return real(self, features)

    monkeypatch.setattr(DataCollatorForSeq2Seq, "__call__", record)
    train(config(assets, tmp_path, max_steps=10, save_steps=0))  # exactly two epochs
    from collections import Counter

    from warmstart import BertTokenizerFast
    from warmstart.train import read_seq2seq
    from warmstart.train.loop import prepare_features, special_ids

    tok = BertTokenizerFast.from_pretrained(assets["bert"])
    feats = prepare_features(read_seq2seq(assets["train"]), tok, tok, special_ids(tok), 128, 128)
    want = Counter(tuple(f["input_ids"]) + tuple(f["labels"]) for f in feats)
    assert Counter(seen) == Counter({k: 2 * v for k, v in want.items()})
