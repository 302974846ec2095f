"""Regenerate the contrastive-search and DoLa reference fixtures in ``tests/assets/strategies/``.

transformers 5.x moved contrastive search (``penalty_alpha`` + ``top_k``) and DoLa decoding (``dola_layers``) out
of the library into Hub repositories, so the token ids warmstart is checked against come from a transformers 4.46.3
install kept out of the project's virtual environment (see tests/assets/make_relpos_fixtures.py for how it is
installed). The exact command:

    PYTHONPATH=/tmp/tf4 /work/main/.venv/bin/python tests/assets/make_strategy_fixtures.py

Layout (everything small: a few tiny models shared by the cases):

    models/<name>/        config.json, generation_config.json, model.safetensors written by v4's
                          save_pretrained(safe_serialization=True): gpt2, gpt2_deep (6 layers, for DoLa's layer
                          choice), bert (BertLMHeadModel, is_decoder=True), bert2bert (EncoderDecoderModel)
    <case>/case.json      {"model": <name>, "kwargs": generate() keyword arguments, "seed": sampling seed or null,
                           "error": v4's error message or null, "shapes": per-step attention / hidden-state shapes}
    <case>/tensors.safetensors
                          input_ids / attention_mask (the prompt) and expected.sequences, plus expected.scores.<i>,
                          expected.logits.<i>, expected.attentions.<i>.<layer>, expected.hidden_states.<i>.<layer>
                          (cross_attentions / decoder_* for the encoder-decoder) where the case records them

The script is a test-asset generator, run by hand; it is never imported by the test suite.
"""

import argparse
import json
import os
import shutil

import torch
import transformers
from safetensors.torch import save_file
from transformers import BertConfig, BertLMHeadModel, EncoderDecoderConfig, EncoderDecoderModel, GPT2Config, \
    GPT2LMHeadModel

if not transformers.__version__.startswith("4."):
    raise SystemExit(
        f"this script needs a transformers 4.x oracle (contrastive search and DoLa left the library in 5.x), "
        f"got transformers {transformers.__version__} from {transformers.__file__}; run it with PYTHONPATH=/tmp/tf4")

SEED = 1234
PAD, BOS, START = 0, 1, 3
BERT = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64, type_vocab_size=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
            initializer_range=0.2, pad_token_id=PAD)
GPT2 = dict(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=64, resid_pdrop=0.0, embd_pdrop=0.0,
            attn_pdrop=0.0, initializer_range=0.2, pad_token_id=PAD, bos_token_id=BOS, eos_token_id=None)


def _spread(model):
    """Non-trivial biases and norms (v4 initialises them to 0 / 1), so a dropped parameter cannot hide."""
    g = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                base = 1.0 if ("LayerNorm.weight" in name or name.endswith(("ln_1.weight", "ln_2.weight",
                                                                             "ln_f.weight"))) else 0.0
                p.copy_(base + 0.1 * torch.randn(p.shape, generator=g))
    return model.eval()


def _models():
    torch.manual_seed(SEED)
    gpt2 = GPT2LMHeadModel(GPT2Config(**GPT2, attn_implementation="eager"))
    torch.manual_seed(SEED + 1)
    deep = GPT2LMHeadModel(GPT2Config(**dict(GPT2, n_embd=16, n_layer=6), attn_implementation="eager"))
    torch.manual_seed(SEED + 2)
    bert = BertLMHeadModel(BertConfig(**BERT, is_decoder=True, attn_implementation="eager"))
    torch.manual_seed(3)  # a seed whose random bert2bert does not repeat one token forever under greedy search
    config = EncoderDecoderConfig.from_encoder_decoder_configs(BertConfig(**BERT), BertConfig(**BERT))
    config.decoder_start_token_id, config.pad_token_id = START, PAD
    b2b = EncoderDecoderModel(config=config)
    return {"gpt2": _spread(gpt2), "gpt2_deep": _spread(deep), "bert": _spread(bert), "bert2bert": _spread(b2b)}


def _prompt(rows, length, seed, left_pad=(), right_pad=()):
    """Random ids in [4, 97); row r of ``left_pad`` / ``right_pad`` (row, n) loses n positions to padding."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, 97, (rows, length), generator=g)
    mask = torch.ones_like(ids)
    for row, n in left_pad:
        mask[row, :n] = 0
    for row, n in right_pad:
        mask[row, length - n:] = 0
    ids[mask == 0] = PAD
    return ids, mask


CS = dict(penalty_alpha=0.6, top_k=4)
DICT = dict(return_dict_in_generate=True, output_scores=True, output_logits=True, output_attentions=True,
            output_hidden_states=True)
# name -> (model, prompt, generate() kwargs, sampling seed). An "eos" kwarg of "auto" is replaced by a token the
# case generates without EOS, so that rows stop at different steps.
CASES = {
    # contrastive search
    "cs_gpt2_single": ("gpt2", _prompt(1, 6, 1), dict(CS, max_new_tokens=12), None),
    "cs_gpt2_left_padded": ("gpt2", _prompt(3, 7, 2, left_pad=((1, 2), (2, 4))),
                            dict(penalty_alpha=0.5, top_k=5, max_new_tokens=10), None),
    "cs_gpt2_eos": ("gpt2", _prompt(3, 5, 3, left_pad=((2, 1),)), dict(CS, max_new_tokens=14, eos_token_id="auto"),
                    None),
    "cs_gpt2_processors": ("gpt2", _prompt(2, 5, 4), dict(penalty_alpha=0.4, top_k=3, max_new_tokens=12,
                                                          repetition_penalty=1.3, no_repeat_ngram_size=2), None),
    "cs_gpt2_dict": ("gpt2", _prompt(2, 5, 5, left_pad=((1, 2),)), dict(CS, max_new_tokens=5, **DICT), None),
    "cs_gpt2_alpha_zero": ("gpt2", _prompt(2, 5, 6), dict(penalty_alpha=1e-9, top_k=6, max_new_tokens=8), None),
    "cs_bert_left_padded": ("bert", _prompt(2, 6, 7, left_pad=((1, 3),)), dict(CS, max_new_tokens=10), None),
    "cs_bert_dict": ("bert", _prompt(1, 4, 8), dict(CS, max_new_tokens=4, **DICT), None),
    "cs_bert2bert": ("bert2bert", _prompt(3, 7, 9, right_pad=((1, 2), (2, 4))), dict(CS, max_new_tokens=10), None),
    "cs_bert2bert_eos": ("bert2bert", _prompt(2, 6, 10, right_pad=((1, 2),)),
                         dict(penalty_alpha=0.3, top_k=5, max_new_tokens=12, eos_token_id="auto"), None),
    "cs_bert2bert_dict": ("bert2bert", _prompt(2, 5, 11, right_pad=((1, 1),)), dict(CS, max_new_tokens=4, **DICT),
                          None),
    # DoLa
    "dola_gpt2_low": ("gpt2", _prompt(1, 6, 21), dict(dola_layers="low", repetition_penalty=1.2, max_new_tokens=12),
                      None),
    "dola_gpt2_high_left_padded": ("gpt2", _prompt(3, 7, 22, left_pad=((1, 2), (2, 5))),
                                   dict(dola_layers="high", repetition_penalty=1.2, max_new_tokens=10), None),
    "dola_gpt2_layers_dict": ("gpt2", _prompt(2, 5, 23), dict(dola_layers=[0, 1], max_new_tokens=5, **DICT), None),
    "dola_gpt2_eos": ("gpt2", _prompt(3, 5, 24), dict(dola_layers=[0, 1, 2], repetition_penalty=1.2,
                                                      max_new_tokens=14, eos_token_id="auto"), None),
    "dola_gpt2_sample": ("gpt2", _prompt(2, 5, 25), dict(dola_layers="low", do_sample=True, top_k=20, top_p=0.9,
                                                         repetition_penalty=1.2, max_new_tokens=10), 7),
    "dola_deep_high": ("gpt2_deep", _prompt(2, 6, 26, left_pad=((1, 2),)),
                       dict(dola_layers="high", repetition_penalty=1.2, max_new_tokens=12), None),
    "dola_deep_layers": ("gpt2_deep", _prompt(2, 6, 27), dict(dola_layers=[0, 2, 4], max_new_tokens=12), None),
    "dola_bert_low": ("bert", _prompt(2, 6, 28, left_pad=((1, 2),)),
                      dict(dola_layers="low", repetition_penalty=1.2, max_new_tokens=10), None),
    # v4's refusals
    "dola_bert2bert_refused": ("bert2bert", _prompt(1, 5, 31), dict(dola_layers="low", max_new_tokens=4), None),
    "dola_beams_refused": ("gpt2", _prompt(1, 5, 32), dict(dola_layers="low", num_beams=2, max_new_tokens=4), None),
}


README = """# Contrastive search and DoLa reference outputs (transformers v4 oracle)

transformers 5.x moved contrastive search and DoLa decoding to Hub repositories. Everything here was computed by
{generated_by} (fp32, CPU, eager attention, eval mode) and is the oracle that
tests/generation/test_contrastive.py and test_dola.py compare warmstart with; nothing here was produced by warmstart.
Regenerate (byte-identical) with

    PYTHONPATH=/tmp/tf4 /work/main/.venv/bin/python tests/assets/make_strategy_fixtures.py

The layout and the meaning of every file are in that script's docstring. Cases:

{cases}
"""


def _generate(model, ids, mask, kwargs, seed):
    if seed is not None:
        torch.manual_seed(seed)
    with torch.no_grad():
        return model.generate(ids, attention_mask=mask, **kwargs)


def _auto_eos(model, ids, mask, kwargs, seed):
    """A token that row 1 generates (without EOS) from its third step on but row 0 not in its first five: rows then
    stop at different times."""
    free = {k: v for k, v in kwargs.items() if k != "eos_token_id"}
    seq = _generate(model, ids, mask, free, seed)
    start = ids.shape[1] if not model.config.is_encoder_decoder else 1
    early = set(seq[0, start:start + 5].tolist())
    return next(int(t) for t in seq[1, start + 2:] if int(t) not in early)


def _record(expected, shapes, out, seq2seq):
    for i, s in enumerate(out.scores or ()):
        expected[f"expected.scores.{i}"] = s
    for i, s in enumerate(out.logits or ()):
        expected[f"expected.logits.{i}"] = s
    fields = (("decoder_attentions", "cross_attentions", "decoder_hidden_states") if seq2seq
              else ("attentions", "hidden_states"))
    for name in fields:
        steps = getattr(out, name)
        if steps is None:
            continue
        shapes[name] = [[list(t.shape) for t in step] for step in steps]
        for i, step in enumerate(steps):
            for layer, t in enumerate(step):
                expected[f"expected.{name}.{i}.{layer}"] = t
    if seq2seq:
        for name in ("encoder_attentions", "encoder_hidden_states"):
            shapes[name] = [list(t.shape) for t in getattr(out, name)]
    past = out.past_key_values
    legacy = past.to_legacy_cache() if hasattr(past, "to_legacy_cache") else past
    shapes["past_key_values"] = [[list(t.shape) for t in layer] for layer in legacy]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(here, "strategies"), help="fixture root folder")
    args = parser.parse_args()
    if os.path.isdir(args.out):
        shutil.rmtree(args.out)
    transformers.logging.set_verbosity_error()
    models = _models()
    for name, model in models.items():
        model.save_pretrained(os.path.join(args.out, "models", name), safe_serialization=True)
    metadata = {"generated_by": f"transformers {transformers.__version__}, torch {torch.__version__}"}
    with open(os.path.join(args.out, "README.md"), "w") as f:
        f.write(README.format(generated_by=metadata["generated_by"], cases="\n".join(f"- `{c}`" for c in CASES)))
    for case, (model_name, (ids, mask), kwargs, seed) in CASES.items():
        model = models[model_name]
        kwargs = dict(kwargs)
        if kwargs.get("eos_token_id") == "auto":
            kwargs["eos_token_id"] = _auto_eos(model, ids, mask, kwargs, seed)
        tensors = {"input_ids": ids, "attention_mask": mask}
        info = {"model": model_name, "kwargs": kwargs, "seed": seed, "error": None, "shapes": {}}
        try:
            out = _generate(model, ids, mask, kwargs, seed)
        except ValueError as e:
            info["error"] = str(e)
        else:
            if kwargs.get("return_dict_in_generate"):
                tensors["expected.sequences"] = out.sequences
                _record(tensors, info["shapes"], out, model.config.is_encoder_decoder)
            else:
                tensors["expected.sequences"] = out
        folder = os.path.join(args.out, case)
        os.makedirs(folder)
        with open(os.path.join(folder, "case.json"), "w") as f:
            json.dump(info, f, indent=1, sort_keys=True)
            f.write("\n")
        save_file({k: v.detach().clone().contiguous() for k, v in tensors.items()},
                  os.path.join(folder, "tensors.safetensors"), metadata)
        shown = info["error"] or tuple(tensors["expected.sequences"].shape)
        print(f"{case}: {shown}")


if __name__ == "__main__":
    main()
