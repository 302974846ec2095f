"""`warmstart train --compile`: a compiled training step gives the eager step's loss and gradients, and the CLI
trains end to end with it.

Both tests use one dropout-free tiny bert2bert at one batch shape, so the session compiles one graph; the second
test finds it in inductor's cache. Dropout is off: eager code drops padding tokens before it draws dropout masks
(nn.packing) and compiled code does not, so with dropout on the two steps would differ by their masks, not by their
arithmetic.
"""
import json

import pytest
import torch
from tiny_seq2seq import one_thread, pairs, tiny_bert, write_jsonl

from warmstart.cli import main
from warmstart.train.collators import IGNORE_INDEX, DataCollatorForSeq2Seq
from warmstart.train.data import read_seq2seq
from warmstart.train.loop import (COMPILE_PAD_MULTIPLE, _graphs_compiled, compiled_loss, prepare_features,
                                  special_ids)

pytestmark = pytest.mark.slow  # inductor generates and builds C++ (about a minute on a cold cache)

single_thread = pytest.fixture(autouse=True, scope="module")(one_thread)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("compile")
    # 8 pairs, batch 8: the CLI run's every step has the shape of the gradient test's batch.
    return {"bert": tiny_bert(root / "bert", dropout=0.0), "root": root,
            "train": write_jsonl(root / "train.jsonl", pairs(8, seed=0))}


def test_compiled_step_matches_eager(assets):
    from warmstart import BertTokenizerFast, EncoderDecoderModel

    torch.manual_seed(0)
    model = EncoderDecoderModel.from_encoder_decoder_pretrained(assets["bert"], assets["bert"]).train()
    model.config.decoder_start_token_id, model.config.pad_token_id = 2, 0
    tok = BertTokenizerFast.from_pretrained(assets["bert"])
    features = prepare_features(read_seq2seq(assets["train"]), tok, tok, special_ids(tok), 32, 32)
    collate = DataCollatorForSeq2Seq(tok, label_pad_token_id=IGNORE_INDEX, pad_to_multiple_of=COMPILE_PAD_MULTIPLE)
    batch = dict(collate(features))
    assert not bool(batch["attention_mask"].all())  # padded rows: eager drops them, compiled code masks them

    def grads(loss_fn):
        model.zero_grad(set_to_none=True)
        loss = loss_fn(**batch)
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    eager_loss, eager = grads(lambda **b: model(**b).loss)
    graphs = _graphs_compiled()
    compiled_loss_, compiled = grads(compiled_loss(model))
    assert _graphs_compiled() == graphs + 1  # one graph: nothing in the model breaks it
    assert abs(float(compiled_loss_ - eager_loss)) <= 1e-5
    assert eager.keys() == compiled.keys()
    worst = max((float((compiled[n] - eager[n]).abs().max()), n) for n in eager)
    assert worst[0] <= 1e-5, worst


def test_cli_trains_with_compile(assets, capsys):
    out = assets["root"] / "out"
    main(["train", "--encoder", str(assets["bert"]), "--train-file", str(assets["train"]), "--output-dir", str(out),
          "--max-steps", "3", "--batch-size", "8", "--learning-rate", "3e-3", "--logging-steps", "1",
          "--no-progress", "--samples", "0", "--compile"])
    printed = capsys.readouterr().out
    assert "compiling the training step" in printed and "compiling took" in printed
    log = json.loads((out / "train_log.json").read_text())
    losses = [e["loss"] for e in log if "loss" in e]
    assert len(losses) == 3 and all(x == x for x in losses) and losses[-1] < losses[0]
    assert all(e["compile_s"] > 0 for e in log if "loss" in e)
    assert (out / "model" / "model.safetensors").is_file()
