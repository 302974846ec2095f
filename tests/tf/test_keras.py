"""Keras 3 training and SavedModel export of the TF models.

``compile(optimizer)`` with no loss trains on the model's own loss (labels in the input dict, in a tf.data
Dataset of dicts, or as ``fit``'s ``y``) for sequence, token and span heads; ``evaluate`` reports that loss; a
compiled Keras loss is applied to the logits instead; a batch without labels and no loss is a clear error. Then
``save_pretrained(saved_model=True)`` and ``export`` write SavedModels whose ``serving_default`` (int32) and
``int64_serving`` (int64) signatures, loaded in a fresh process without warmstart, give the parent's logits.

Tracing a Keras train function costs ~10 s on a 2-core CPU and one eager Adam step about half a second, so the
fast tests run eagerly (``run_eagerly=True``: the same train_step / compute_loss code) on full-batch steps; the
traced (default) mode and the SavedModel round trip are marked slow.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import warmstart as W
from warmstart.tf import (TFBertForMultipleChoice, TFBertForQuestionAnswering, TFBertForSequenceClassification,
                          TFBertForTokenClassification, TFGPT2LMHeadModel)
from warmstart.tf.backend import keras, tf

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)
NO_DROPOUT = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)  # deterministic loss curves
B, T = 16, 8


def _config(**kw):
    return W.BertConfig(**TINY, **NO_DROPOUT, **kw)


def _inputs(seed: int = 0, batch: int = B, length: int = T) -> dict:
    g = np.random.default_rng(seed)
    ids = g.integers(1, TINY["vocab_size"], (batch, length)).astype(np.int32)
    mask = np.ones((batch, length), np.int32)
    mask[: batch // 2, -2:] = 0  # some right padding
    return {"input_ids": ids, "attention_mask": mask}


def _seq_labels(batch: int = B) -> np.ndarray:
    return (np.arange(batch) % 3).astype(np.int32)


def _own_loss(model, batch: dict) -> float:
    """The model's own loss on the whole batch (the mean of a per-example loss)."""
    return float(tf.reduce_mean(model(batch, training=False).loss))


def _decreased(history: dict, before: float, after: float) -> None:
    losses = history["loss"]
    assert all(np.isfinite(losses)), losses
    assert losses[-1] < losses[0], losses
    assert after < before, (before, after)


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


# ---- fit on the model's own loss -------------------------------------------------------------------------------
def test_fit_dict_dataset_and_x_y_lower_the_own_loss_and_evaluate_reports_it():
    """Labels inside the x dict, then a tf.data Dataset of the same dicts, then ``fit(x, y)``, through one
    compiled model."""
    model = TFBertForSequenceClassification(_config(num_labels=3))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)
    data = {**_inputs(), "labels": _seq_labels()}
    before = _own_loss(model, data)
    history = model.fit(data, epochs=2, batch_size=B, verbose=0).history
    after = _own_loss(model, data)
    _decreased(history, before, after)

    dataset = tf.data.Dataset.from_tensor_slices(data).batch(B)
    history = model.fit(dataset, epochs=2, verbose=0).history
    _decreased(history, after, _own_loss(model, data))

    # evaluate: Keras' "loss" is the model's own loss (one full batch, so exactly the mean)
    result = model.evaluate(dataset, verbose=0, return_dict=True)
    assert set(result) == {"loss"}, result
    assert result["loss"] == pytest.approx(_own_loss(model, data), abs=1e-5)

    # fit(x, y): y become the model's labels (there is no compiled loss)
    x, y = _inputs(6), _seq_labels()
    before = _own_loss(model, {**x, "labels": y})
    history = model.fit(x, y, epochs=2, batch_size=B, verbose=0).history
    after = _own_loss(model, {**x, "labels": y})
    _decreased(history, before, after)
    assert model.evaluate(x, y, batch_size=B, verbose=0) == pytest.approx(after, abs=1e-5)


def test_fit_token_head_ignores_minus_100():
    model = TFBertForTokenClassification(_config(num_labels=5))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)
    x = _inputs(1)
    labels = np.random.default_rng(1).integers(0, 5, (B, T)).astype(np.int32)
    labels[x["attention_mask"] == 0] = -100
    labels[:, 0] = -100  # [CLS]-like position
    data = {**x, "labels": labels}
    before = _own_loss(model, data)
    history = model.fit(data, epochs=2, batch_size=B, verbose=0).history
    after = _own_loss(model, data)
    _decreased(history, before, after)
    # the loss is the mean cross-entropy over the labelled positions only
    logits = model(x).logits.numpy().reshape(-1, 5).astype(np.float64)
    flat = labels.reshape(-1)
    keep = flat != -100
    top = logits.max(-1, keepdims=True)
    logp = logits - top - np.log(np.exp(logits - top).sum(-1, keepdims=True))
    assert after == pytest.approx(float(-logp[keep, flat[keep]].mean()), abs=1e-5)
    assert model.evaluate(data, batch_size=B, verbose=0) == pytest.approx(after, abs=1e-5)


def test_fit_question_answering_positions_in_the_dict_or_as_y():
    model = TFBertForQuestionAnswering(_config())
    model.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)
    g = np.random.default_rng(2)
    x = _inputs(2)
    spans = {"start_positions": g.integers(0, T - 2, B).astype(np.int32),
             "end_positions": g.integers(0, T - 2, B).astype(np.int32)}
    data = {**x, **spans}
    before = _own_loss(model, data)
    history = model.fit(data, epochs=2, batch_size=B, verbose=0).history
    after = _own_loss(model, data)
    _decreased(history, before, after)
    assert model.evaluate(data, batch_size=B, verbose=0) == pytest.approx(after, abs=1e-5)
    assert model.evaluate(x, spans, batch_size=B, verbose=0) == pytest.approx(after, abs=1e-5)  # y as a dict
    with pytest.raises(ValueError, match=r"start_positions.*end_positions.*dict"):  # one y for two label names
        model.fit(x, spans["start_positions"], epochs=1, batch_size=B, verbose=0)


def test_compiled_keras_loss_is_applied_to_the_logits():
    model = TFBertForSequenceClassification(_config(num_labels=3))
    scce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=scce, run_eagerly=True)
    x, y = _inputs(3), _seq_labels()
    before = float(scce(y, model(x).logits))
    history = model.fit(x, y, epochs=2, batch_size=B, verbose=0).history
    after = float(scce(y, model(x).logits))
    _decreased(history, before, after)
    assert model.evaluate(x, y, batch_size=B, verbose=0) == pytest.approx(after, abs=1e-5)


def test_no_labels_and_no_loss_is_a_clear_error():
    model = TFBertForSequenceClassification(_config(num_labels=3))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)
    with pytest.raises(ValueError, match=r"compiled without a loss.*\['labels'\].*input dict"):
        model.fit(_inputs(), epochs=1, batch_size=B, verbose=0)
    with pytest.raises(ValueError, match=r"compiled without a loss"):
        model.evaluate(_inputs(), batch_size=B, verbose=0)


def test_predict_returns_the_set_fields_joined_over_batches():
    model = TFBertForSequenceClassification(_config(num_labels=3))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)
    x = _inputs(batch=10)
    got = model.predict(x, batch_size=4, verbose=0)  # three batches: 4 + 4 + 2
    assert sorted(got) == ["logits"]
    np.testing.assert_allclose(got["logits"], model(x).logits.numpy(), atol=1e-5)


@pytest.mark.slow
def test_graph_mode_fit_and_evaluate():
    """The same through Keras' traced train / test functions (compile's default): a dict with labels over
    several batches, then evaluate. (Each new input structure retraces, ~10 s here: the Dataset and fit(x, y)
    forms run eagerly above through the same train_step.)"""
    model = TFBertForSequenceClassification(_config(num_labels=3))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    assert not model.run_eagerly
    data = {**_inputs(), "labels": _seq_labels()}
    before = _own_loss(model, data)
    history = model.fit(data, epochs=3, batch_size=8, shuffle=False, verbose=0).history
    after = _own_loss(model, data)
    _decreased(history, before, after)
    result = model.evaluate(data, batch_size=B, verbose=0, return_dict=True)
    assert set(result) == {"loss"}, result
    assert result["loss"] == pytest.approx(after, abs=1e-5)


# ---- SavedModel --------------------------------------------------------------------------------------------------
_LOAD = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf

    cases = json.loads(sys.argv[1])
    report = {}
    for case in cases:
        loaded = tf.saved_model.load(case["path"])
        sigs = loaded.signatures
        ref = np.load(case["ref"])
        entry = {"signatures": sorted(sigs.keys()), "dtypes": {}, "diff": {}}
        for name, dtype in (("serving_default", tf.int32), ("int64_serving", tf.int64)):
            if name not in sigs:
                continue
            spec = sigs[name].structured_input_signature[1]
            entry["dtypes"][name] = {k: [v.dtype.name, len(v.shape)] for k, v in sorted(spec.items())}
            feed = {k: tf.constant(ref[k], dtype) for k in spec}
            out = sigs[name](**feed)
            entry["outputs"] = sorted(out)
            entry["diff"][name] = float(np.abs(out["logits"].numpy() - ref["logits"]).max())
        report[case["name"]] = entry
    print("REPORT" + json.dumps(report))
""")


@pytest.mark.slow
def test_saved_model_signatures_in_a_fresh_process(tmp_path):
    g = np.random.default_rng(5)
    bert = TFBertForSequenceClassification(_config(num_labels=3))
    gpt2 = TFGPT2LMHeadModel(W.GPT2Config(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=64))
    choice = TFBertForMultipleChoice(_config())

    x = _inputs(5, batch=3, length=7)
    x["token_type_ids"] = np.tile(np.array([0, 0, 0, 1, 1, 1, 1], np.int32), (3, 1))
    mc = {k: np.stack([v, v[::-1]], axis=1) for k, v in x.items()}  # (3, 2 choices, 7)
    mc["input_ids"][:, 1] = g.integers(1, 99, (3, 7))
    gx = {"input_ids": x["input_ids"], "attention_mask": x["attention_mask"]}

    bert.save_pretrained(tmp_path / "bert", saved_model=True)
    assert (tmp_path / "bert" / "saved_model" / "1" / "saved_model.pb").is_file()
    assert (tmp_path / "bert" / "config.json").is_file()
    cases = [("bert_save_pretrained", tmp_path / "bert" / "saved_model" / "1", bert, x)]
    # save_pretrained(saved_model=True) and export() share export_saved_model: BERT goes the first way only.
    for name, model, feed in (("gpt2_export", gpt2, gx), ("multiple_choice", choice, mc)):
        model.export(str(tmp_path / name), verbose=False)
        assert (tmp_path / name / "saved_model.pb").is_file()
        cases.append((name, tmp_path / name, model, feed))

    spec = []
    for name, path, model, feed in cases:
        logits = model(feed, training=False).logits.numpy()
        np.savez(tmp_path / f"{name}.npz", logits=logits, **feed)
        spec.append({"name": name, "path": str(path), "ref": str(tmp_path / f"{name}.npz")})

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    run = subprocess.run([sys.executable, "-c", _LOAD, json.dumps(spec)], check=False, capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.split("REPORT", 1)[1])

    for name, _, model, feed in cases:
        entry = report[name]
        assert {"serving_default", "int64_serving"} <= set(entry["signatures"]), entry
        names = sorted(feed)
        rank = 3 if name == "multiple_choice" else 2
        assert entry["dtypes"]["serving_default"] == {k: ["int32", rank] for k in names}, entry
        assert entry["dtypes"]["int64_serving"] == {k: ["int64", rank] for k in names}, entry
        assert "logits" in entry["outputs"]
        for sig, diff in entry["diff"].items():
            assert diff <= 1e-5, (name, sig, diff)
    assert "token_type_ids" not in report["gpt2_export"]["dtypes"]["serving_default"]
