"""Data parallelism: `torchrun --nproc-per-node 2 -m warmstart.cli train` (gloo on CPU) gives the updates of a
single process that accumulates the same two micro-batches per step, because each step's loss is the mean over all
of its target tokens whichever process holds them. Without dropout the two runs agree to float rounding."""
import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from tiny_seq2seq import one_thread, pairs, tiny_bert, write_jsonl

from warmstart.train.config import TrainingConfig
from warmstart.train.loop import train

single_thread = pytest.fixture(autouse=True, scope="module")(one_thread)

# 40 pairs / batch 4 = 10 length-grouped batches, one epoch in 5 steps: rank r takes batches r, r+2, r+4...; the
# single process takes batches 2k and 2k+1 at step k. Same tokens per step, split differently.
SETTINGS = {"batch_size": 4, "max_steps": 5, "learning_rate": 1e-3, "warmup_steps": 1, "weight_decay": 0.01,
            "logging_steps": 1, "save_steps": 2, "save_total_limit": 0, "seed": 3}


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    return {"bert": tiny_bert(root / "bert", dropout=0.0), "train": write_jsonl(root / "train.jsonl", pairs(40))}


def cli_args(assets, out, **settings) -> list[str]:
    args = ["train", "--encoder", str(assets["bert"]), "--train-file", str(assets["train"]), "--output-dir", str(out),
            "--no-progress", "--no-verbose"]
    for k, v in settings.items():
        args += ["--" + k.replace("_", "-"), str(v)]
    return args


def test_two_gloo_processes_equal_one_process_accumulating(assets, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    ddp_out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc-per-node", "2",
           "-m", "warmstart.cli", *cli_args(assets, ddp_out, **SETTINGS)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    single_out = tmp_path / "single"
    single = train(TrainingConfig(output_dir=str(single_out), train_file=str(assets["train"]),
                                  encoder=str(assets["bert"]), gradient_accumulation_steps=2, progress=False,
                                  verbose=False, **SETTINGS))
    ddp_log = json.loads((ddp_out / "train_log.json").read_text())
    assert [e["step"] for e in ddp_log] == [e["step"] for e in single.log_history] == [1, 2, 3, 4, 5]
    for a, b in zip(ddp_log, single.log_history):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5, abs=1e-6)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4)  # the all-reduced gradient
    ours, theirs = (load_file(d / "model" / "model.safetensors") for d in (ddp_out, single_out))
    assert ours.keys() == theirs.keys()
    for k in ours:
        torch.testing.assert_close(ours[k], theirs[k], atol=2e-6, rtol=1e-5, msg=k)

    # Rank 0 alone wrote the checkpoints, holding both ranks' generator states.
    names = sorted(p.name for p in (ddp_out / "checkpoints").iterdir() if not p.name.startswith("."))
    assert names == ["step-00000002", "step-00000004"]
    rng = torch.load(ddp_out / "checkpoints" / "step-00000004" / "rng_state.pt", weights_only=True)["ranks"]
    assert len(rng) == 2 and not torch.equal(rng[0]["torch"], rng[1]["torch"])  # per-rank dropout streams
    state = json.loads((ddp_out / "checkpoints" / "step-00000004" / "trainer_state.json").read_text())
    assert state["settings"]["world_size"] == 2

    # A single process cannot resume a 2-process run: its data shards and generator states would not line up.
    with pytest.raises(ValueError, match="world_size: 2 in the checkpoint, 1 now"):
        train(TrainingConfig(output_dir=str(ddp_out), train_file=str(assets["train"]), encoder=str(assets["bert"]),
                             resume=True, progress=False, verbose=False, **SETTINGS))
