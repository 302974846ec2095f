"""Regenerate the transformers v4 TFEncoderDecoderModel fixtures in ``tests/assets/tf_v4/{bert2bert,bert2gpt2}/``.

The oracle for the TF encoder-decoder and TF generation: files and numbers from transformers 4.57.1 (the last
release with TensorFlow), in the virtual environment ``make_tf_fixtures.py`` describes (each of the two scripts
rewrites only its own folders of tf_v4/):

    TF_USE_LEGACY_KERAS=1 CUDA_VISIBLE_DEVICES="" TF_CPP_MIN_LOG_LEVEL=2 TF_ENABLE_ONEDNN_OPTS=0 \\
        /tmp/tf457/bin/python tests/assets/make_tf_seq2seq_fixtures.py

(The four variables are set here when missing, before TensorFlow is imported; make_tf_fixtures.py is imported for
its helpers only, which regenerates nothing.) Two runs write byte-identical files.

Each case (``CASES``) is ``TFEncoderDecoderModel(encoder=..., decoder=...)`` built from the tiny configs of
make_tf_fixtures.py, two layers a side, the decoder with cross-attention; bert2gpt2's GPT-2 has n_embd 24, so v4
adds ``enc_to_dec_proj`` (Dense 32 -> 24). The sub-models are named ``encoder`` / ``decoder``, as v4's own
from_encoder_decoder_pretrained names them: with Keras' default names (``tf_bert_model``...) v4's
TFEncoderDecoderModel.from_pretrained cannot find the weights it saved and silently re-initialises them. Each
case folder holds:

    config.json, tf_model.h5,         v4's save_pretrained (architectures ["EncoderDecoderModel"]); the
    generation_config.json            generation config re-derived from the composite config once the special
                                      ids are set (v4 derives it at construction, before they are)
    expected.safetensors              inputs.* (int32): input_ids / attention_mask (2, 7), last row right-padded;
                                      decoder_input_ids / decoder_attention_mask (2, 5), starting with
                                      decoder_start_token_id, last row padded at position 4; labels (2, 5) with
                                      -100 entries; shifted_labels = v4's shift_tokens_right(labels, pad, start).
                                      outputs.* (float32): logits, encoder_last_hidden_state, loss of the call with
                                      the decoder inputs AND labels; logits_from_labels, loss_from_labels of a
                                      call with labels only (v4 shifts them itself, no decoder mask).
                                      generate.* (int32, as v4 returns them): greedy (eager), beam (num_beams 3,
                                      2 returned per input), greedy_eos (eos overridden to a token v4 meets, so
                                      finished rows are padded), greedy_xla / greedy_eos_xla
                                      (tf.function(generate, jit_compile=True)) only where v4's XLA generate
                                      agrees with its eager one; tree.json says what happened
    tree.json                         model / output class, output fields, model.name, model.layers,
                                      model.weights (name, shape, dtype, in order), the generate settings, and
                                      tf_model.h5's structure (root attrs, layer groups' weight_names, datasets)
    pt/ (PT_CASES)                    the same weights as a PyTorch EncoderDecoderModel, each side through v4's
                                      load_tf2_state_dict_in_pytorch_model as v4's from_pretrained(from_tf=True)
                                      converts a composite (see _pt: load_tf2_checkpoint_in_pytorch_model leaves
                                      the encoder random; from_tf=True itself is broken in 4.57.1: meta tensors),
                                      save_pretrained(safe_serialization=True); the script stops unless its
                                      logits match the TF ones (atol 1e-5)

Biases and LayerNorm weights are random, as in make_tf_fixtures.py. The script is a test-asset generator, run by
hand; it is never imported by the test suite.
"""

import argparse
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import make_tf_fixtures as base  # noqa: E402  (sets the TF env vars and checks for transformers 4.x on import)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402
from transformers import (  # noqa: E402
    EncoderDecoderConfig,
    EncoderDecoderModel,
    GenerationConfig,
    TFEncoderDecoderModel,
)
from transformers.modeling_tf_pytorch_utils import load_tf2_state_dict_in_pytorch_model  # noqa: E402
from transformers.models.encoder_decoder.modeling_tf_encoder_decoder import shift_tokens_right  # noqa: E402

SEED = 8765
DEC_SEQ, NEW_TOKENS = 5, 8
BEAM = dict(num_beams=3, length_penalty=0.8, early_stopping=True, num_return_sequences=2)
BERT_NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
GPT2_NO_DROPOUT = {"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}
PT_CASES = ("bert2bert", "bert2gpt2")  # cases that also get pt/ (about 200 KB each)
# PyTorch weights tied to others (tie_weights fills them), which TF does not store apart.
TIED = {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias", "lm_head.weight"}
GPT2_EMBD = 24  # != the encoder's 32: v4 adds enc_to_dec_proj
# case folder, encoder class, decoder class, decoder family, (decoder_start, pad, eos)
CASES = (
    ("bert2bert", "TFBertModel", "TFBertLMHeadModel", "bert", (2, 0, 3)),
    ("bert2gpt2", "TFBertModel", "TFGPT2LMHeadModel", "gpt2", (98, 0, 98)),
)


def _model(index, enc_class, dec_class, dec_family, special):
    start, pad, eos = special
    enc_config = base._config("bert", BERT_NO_DROPOUT)
    if dec_family == "gpt2":
        dec_config = base._config("gpt2", {"add_cross_attention": True, **GPT2_NO_DROPOUT})
        dec_config.n_embd = GPT2_EMBD
    else:
        dec_config = base._config("bert", {**base.CROSS, **BERT_NO_DROPOUT})
    # The decoder config carries the ids too, as v4 users set them.
    dec_config.decoder_start_token_id, dec_config.pad_token_id, dec_config.eos_token_id = start, pad, eos
    base._fresh(SEED + index)
    encoder = getattr(transformers, enc_class)(enc_config, name="encoder")
    decoder = getattr(transformers, dec_class)(dec_config, name="decoder")
    model = TFEncoderDecoderModel(encoder=encoder, decoder=decoder)
    model.config.decoder_start_token_id, model.config.pad_token_id, model.config.eos_token_id = start, pad, eos
    model.generation_config = GenerationConfig.from_model_config(model.config)
    model.build_in_name_scope()
    base._perturb(model, SEED + index)
    return model


def _inputs(index, special):
    rng = np.random.default_rng(SEED + index)
    start, pad, _ = special
    input_ids = rng.integers(3, 98, (base.BATCH, base.SEQ)).astype(np.int32)
    attention_mask = np.ones_like(input_ids)
    attention_mask[-1, 5:] = 0
    input_ids[attention_mask == 0] = base.PAD_ID["bert"]
    decoder_input_ids = rng.integers(3, 98, (base.BATCH, DEC_SEQ)).astype(np.int32)
    decoder_input_ids[:, 0] = start
    decoder_attention_mask = np.ones_like(decoder_input_ids)
    decoder_attention_mask[-1, 4:] = 0
    decoder_input_ids[decoder_attention_mask == 0] = pad
    # Labels independent of decoder_input_ids; -100 in the middle of the last row (so the shifted decoder input has
    # a pad token inside it, which v4 does not mask) and at its end.
    labels = rng.integers(3, 98, (base.BATCH, DEC_SEQ)).astype(np.int32)
    labels[-1, [2, 4]] = -100
    return {"input_ids": input_ids, "attention_mask": attention_mask, "decoder_input_ids": decoder_input_ids,
            "decoder_attention_mask": decoder_attention_mask, "labels": labels}


def _generate(model, inputs, special):
    start = special[0]
    ids, mask = tf.constant(inputs["input_ids"]), tf.constant(inputs["attention_mask"])
    out, notes = {}, {}
    greedy = model.generate(ids, attention_mask=mask, decoder_start_token_id=start, max_new_tokens=NEW_TOKENS)
    out["generate.greedy"] = greedy.numpy()
    notes["greedy"] = {"dtype": greedy.dtype.name, "shape": list(greedy.shape)}
    beam = model.generate(ids, attention_mask=mask, decoder_start_token_id=start, max_new_tokens=NEW_TOKENS, **BEAM)
    out["generate.beam"] = beam.numpy()
    notes["beam"] = {"dtype": beam.dtype.name, "shape": list(beam.shape)}
    xla = tf.function(model.generate, jit_compile=True)
    # An eos id v4 does meet: the last row's first generated token. Rows that finish are padded with pad_token_id;
    # eager generate trims the batch to its longest row, XLA generate returns max_length columns.
    eos = int(out["generate.greedy"][-1, 1])
    runs = {"greedy_xla": (xla, {}), "greedy_eos": (model.generate, {"eos_token_id": eos}),
            "greedy_eos_xla": (xla, {"eos_token_id": eos})}
    for key, (fn, extra) in runs.items():
        note = dict(extra)
        try:
            tokens = fn(ids, attention_mask=mask, decoder_start_token_id=start, max_new_tokens=NEW_TOKENS,
                        **extra).numpy()
        except Exception as exc:  # noqa: BLE001  (v4's XLA path: record the failure instead of the tokens)
            note["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
            notes[key] = note
            continue
        note.update(dtype=str(tokens.dtype), shape=list(tokens.shape))
        if key.endswith("_xla"):
            eager = out["generate." + key[:-len("_xla")]]
            width = eager.shape[1]
            same = tokens.shape[0] == eager.shape[0] and (tokens[:, :width] == eager).all()
            note["equals_eager"] = bool(same and tokens.shape == eager.shape)
            note["equals_eager_then_pad"] = bool(same and (tokens[:, width:] == special[1]).all())
            if not same:
                # Not stored as a reference: v4's own XLA generate disagrees with its eager one.
                note["tokens"] = tokens.tolist()
                notes[key] = note
                continue
        out["generate." + key] = tokens
        notes[key] = note
    for key, value in out.items():
        if value.dtype != np.int32:
            raise SystemExit(f"{key} came back as {value.dtype}, expected int32")
    return out, notes


def _pt(folder, inputs, logits):
    """The saved weights as a PyTorch EncoderDecoderModel, checked on the same inputs.

    v4's load_tf2_checkpoint_in_pytorch_model cannot convert the composite: it maps
    ``tf_encoder_decoder_model/encoder/bert/...`` to ``encoder.bert.*`` while PyTorch's encoder is a bare BertModel
    (``encoder.embeddings.*``), so the encoder stays random (and v4 still logs "All TF 2.0 model weights were
    used"). v4's own EncoderDecoderModel.from_pretrained(from_tf=True) converts each side separately, re-rooting
    its weights, then copies enc_to_dec_proj by hand (kernel transposed); this does the same, each side through
    v4's load_tf2_state_dict_in_pytorch_model.
    """
    tf_model = TFEncoderDecoderModel.from_pretrained(folder)
    pt_model = EncoderDecoderModel(config=EncoderDecoderConfig.from_pretrained(folder))
    for side in ("encoder", "decoder"):
        # "tf_encoder_decoder_model/encoder/bert/..." -> "encoder/bert/...": v4 drops the first level, as for a
        # stand-alone TFBertModel ("tf_bert_model/bert/...").
        state = {w.name.split("/", 1)[1]: w.numpy() for w in getattr(tf_model, side).weights}
        _, info = load_tf2_state_dict_in_pytorch_model(getattr(pt_model, side), state, allow_missing_keys=True,
                                                       output_loading_info=True)
        untied = set(info["missing_keys"]) - TIED
        if untied or info["unexpected_keys"] or info.get("mismatched_keys"):
            raise SystemExit(f"{folder}: v4's TF -> PyTorch conversion of the {side} left {info}")
    if hasattr(tf_model, "enc_to_dec_proj"):
        with torch.no_grad():
            pt_model.enc_to_dec_proj.weight.copy_(torch.from_numpy(tf_model.enc_to_dec_proj.kernel.numpy().T))
            pt_model.enc_to_dec_proj.bias.copy_(torch.from_numpy(tf_model.enc_to_dec_proj.bias.numpy()))
    pt_model.tie_weights()
    pt_model.eval()
    pt_model.save_pretrained(os.path.join(folder, "pt"), safe_serialization=True)
    feed = {k: torch.from_numpy(inputs[k]).long() for k in
            ("input_ids", "attention_mask", "decoder_input_ids", "decoder_attention_mask")}
    with torch.no_grad():
        pt_logits = pt_model(**feed).logits.numpy()
    np.testing.assert_allclose(pt_logits, logits, atol=1e-5, rtol=0)
    return float(np.abs(pt_logits - logits).max())


def _case(root, index, name, enc_class, dec_class, dec_family, special):
    model = _model(index, enc_class, dec_class, dec_family, special)
    inputs = _inputs(index, special)
    feed = {k: tf.constant(v) for k, v in inputs.items()}
    plain = {k: v for k, v in feed.items() if k != "labels"}
    out = model(**plain, training=False)
    labelled = model(**feed, training=False)
    np.testing.assert_array_equal(labelled.logits.numpy(), out.logits.numpy())
    from_labels = model(input_ids=feed["input_ids"], attention_mask=feed["attention_mask"], labels=feed["labels"],
                        training=False)
    start, pad, _ = special
    inputs["shifted_labels"] = shift_tokens_right(feed["labels"], pad, start).numpy()
    rebuilt = model(input_ids=feed["input_ids"], attention_mask=feed["attention_mask"],
                    decoder_input_ids=tf.constant(inputs["shifted_labels"]), training=False)
    np.testing.assert_array_equal(rebuilt.logits.numpy(), from_labels.logits.numpy())
    # v4 builds no decoder mask from labels: masking the shifted pad would change the logits (the fixture can tell).
    masked = model(input_ids=feed["input_ids"], attention_mask=feed["attention_mask"],
                   decoder_input_ids=tf.constant(inputs["shifted_labels"]),
                   decoder_attention_mask=tf.constant((inputs["shifted_labels"] != pad).astype(np.int32)),
                   training=False)
    if np.allclose(masked.logits.numpy(), from_labels.logits.numpy(), atol=1e-4):
        raise SystemExit(f"{name}: masking the shifted labels' pad changes nothing; pick other labels")
    expected = {
        "outputs.logits": out.logits.numpy(),
        "outputs.encoder_last_hidden_state": out.encoder_last_hidden_state.numpy(),
        "outputs.loss": labelled.loss.numpy(),
        "outputs.logits_from_labels": from_labels.logits.numpy(),
        "outputs.loss_from_labels": from_labels.loss.numpy(),
    }
    for key, value in expected.items():
        if value.dtype != np.float32:
            raise SystemExit(f"{name}: {key} came back as {value.dtype}, expected float32")
    generated, notes = _generate(model, inputs, special)

    folder = os.path.join(root, name)
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    model.save_pretrained(folder)
    base._fresh(SEED + 100 + index)
    base._assert_same_weights(TFEncoderDecoderModel.from_pretrained(folder), model, folder)
    pt_diff = _pt(folder, inputs, expected["outputs.logits"]) if name in PT_CASES else None

    tensors = {f"inputs.{k}": np.ascontiguousarray(v.astype(np.int32)) for k, v in inputs.items()}
    tensors.update({k: np.ascontiguousarray(v) for k, v in {**expected, **generated}.items()})
    save_file(tensors, os.path.join(folder, "expected.safetensors"), base.METADATA)
    tree = base._model_tree("TFEncoderDecoderModel", model, out, ["labels"])
    tree["special_ids"] = dict(zip(("decoder_start_token_id", "pad_token_id", "eos_token_id"), special))
    tree["generate"] = {"max_new_tokens": NEW_TOKENS, "decoder_start_token_id": special[0], "beam_settings": BEAM,
                        **notes}
    if pt_diff is not None:
        tree["pt_logits_max_abs_diff"] = float(f"{pt_diff:.1e}")
    tree["h5"] = base._h5_single(os.path.join(folder, "tf_model.h5"))
    base._write_tree(folder, tree)
    return notes


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(here, "tf_v4"), help="fixture root folder")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for index, (name, enc_class, dec_class, dec_family, special) in enumerate(CASES):
        notes = _case(args.out, index, name, enc_class, dec_class, dec_family, special)
        print(f"wrote {name}: {base._total_size(os.path.join(args.out, name))} bytes; generate {notes}")
    print(f"total {sum(base._total_size(os.path.join(args.out, c[0])) for c in CASES)} bytes in the seq2seq folders")


if __name__ == "__main__":
    main()
