"""Regenerate the generate() reference fixtures in ``tests/assets/generate_v4/`` (transformers v4 behaviours).

transformers 5.x removed or changed what these cases check: diverse (group) beam search moved to a Hub repository,
the default ``max_length`` became 20 *new* tokens, ``use_cache=False`` no longer returns per-step attentions, and
``head_mask`` is no longer passed on by generate(). The numbers come from a transformers 4.x install kept out of the
project's virtual environment (see tests/assets/make_relpos_fixtures.py for how /tmp/tf4 is installed):

    PYTHONPATH=/tmp/tf4 /work/main/.venv/bin/python tests/assets/make_generate_v4_fixtures.py

Models (written by v4's save_pretrained(safe_serialization=True), eval mode, eager attention, dropout 0, seed
1234, vocab 99, hidden 32, 2 layers, 4 heads): ``gpt2/`` (GPT2LMHeadModel, pad 0 / bos 1 / eos 2),
``bert_bidirectional/`` (BertLMHeadModel built with is_decoder=False), ``bert2bert/`` (EncoderDecoderModel,
decoder_start_token_id 3, pad 0, eos 2). ``expected.json`` holds, per case, the generate() arguments that are not
tensors and v4's ``sequences``; ``tensors.safetensors`` the input tensors and the attention / hidden-state values.

The script is a test-asset generator, run by hand; it is never imported by the test suite.
"""

import json
import os
import shutil

import torch
import transformers
from safetensors.torch import save_file
from transformers import (BertConfig, BertLMHeadModel, EncoderDecoderConfig, EncoderDecoderModel, GPT2Config,
                          GPT2LMHeadModel)

if not transformers.__version__.startswith("4."):
    raise SystemExit(f"this script needs a transformers 4.x oracle, got {transformers.__version__} from "
                     f"{transformers.__file__}; run it with PYTHONPATH=/tmp/tf4 (see the module docstring)")

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "generate_v4")
SEED = 1234
BERT = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
            initializer_range=0.2, pad_token_id=0)
GPT2 = dict(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=64, pad_token_id=0, bos_token_id=1,
            eos_token_id=2, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, initializer_range=0.2)


def _save(model, name):
    folder = os.path.join(OUT, name)
    model.save_pretrained(folder, safe_serialization=True)
    return model.eval()


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    expected, tensors = {}, {}

    torch.manual_seed(SEED)
    gpt2 = _save(GPT2LMHeadModel(GPT2Config(**GPT2, attn_implementation="eager")), "gpt2")
    torch.manual_seed(SEED + 1)
    bidir = _save(BertLMHeadModel(BertConfig(**BERT, attn_implementation="eager")), "bert_bidirectional")
    torch.manual_seed(SEED + 2)
    enc_dec = EncoderDecoderModel(EncoderDecoderConfig.from_encoder_decoder_configs(
        BertConfig(**BERT), BertConfig(**BERT, is_decoder=True, add_cross_attention=True)))
    for c in (enc_dec.config, enc_dec.generation_config):  # v4 made the generation config at init already
        c.decoder_start_token_id, c.pad_token_id, c.eos_token_id = 3, 0, 2
    enc_dec = _save(enc_dec, "bert2bert")

    g = torch.Generator().manual_seed(SEED)
    left = torch.randint(4, 97, (3, 7), generator=g)
    left_mask = torch.ones_like(left)
    left_mask[1, :2] = 0
    left_mask[2, :4] = 0
    left[left_mask == 0] = 0
    plain = torch.randint(4, 97, (2, 5), generator=g)
    source = torch.randint(4, 97, (2, 6), generator=g)
    tensors.update(left_ids=left, left_mask=left_mask, plain_ids=plain, source_ids=source)

    def case(name, model, ids_key, mask_key=None, record=(), **kwargs):
        inputs = {"attention_mask": tensors[mask_key]} if mask_key else {}
        extra = {k: v for k, v in kwargs.items() if isinstance(v, torch.Tensor)}
        settings = {k: v for k, v in kwargs.items() if not isinstance(v, torch.Tensor)}
        for k, v in extra.items():
            tensors[f"{name}.{k}"] = v.clone()
        with torch.no_grad():
            out = model.generate(tensors[ids_key], **inputs, **extra, **settings)
        seq = out.sequences if hasattr(out, "sequences") else out
        expected[name] = {"ids": ids_key, "mask": mask_key, "tensors": sorted(extra), "settings": settings,
                          "sequences": seq.tolist()}
        for field in record:  # the last step's first layer, and every step's shape
            steps = getattr(out, field)
            expected[name][f"{field}_shapes"] = [list(s[0].shape) for s in steps]
            tensors[f"{name}.{field}"] = steps[-1][0].contiguous()
        print(name, tuple(seq.shape))

    # 1. diverse beam search with a repetition penalty on a left-padded batch
    case("diverse_repetition", gpt2, "left_ids", "left_mask", num_beams=4, num_beam_groups=2, diversity_penalty=1.0,
         repetition_penalty=1.2, max_new_tokens=6, num_return_sequences=2)
    case("diverse_repetition_plain", gpt2, "plain_ids", num_beams=4, num_beam_groups=2, diversity_penalty=1.0,
         repetition_penalty=1.2, max_new_tokens=6)
    # 2. no length set: max_length=20 counts the prompt (decoder-only) and the decoder start token (seq2seq)
    case("default_length_gpt2", gpt2, "plain_ids", eos_token_id=None)
    case("default_length_bert2bert", enc_dec, "source_ids", eos_token_id=None)
    # 3. use_cache=False: every step re-reads the whole sequence, attentions and hidden states cover it
    case("no_cache_gpt2", gpt2, "left_ids", "left_mask", use_cache=False, output_attentions=True,
         output_hidden_states=True, return_dict_in_generate=True, max_new_tokens=4, eos_token_id=None,
         record=("attentions", "hidden_states"))
    case("no_cache_beams_gpt2", gpt2, "left_ids", "left_mask", use_cache=False, num_beams=3, max_new_tokens=5,
         eos_token_id=None)
    case("no_cache_bert2bert", enc_dec, "source_ids", use_cache=False, output_attentions=True,
         return_dict_in_generate=True, max_new_tokens=4, eos_token_id=None, record=("decoder_attentions",))
    # 4. an LM head built with is_decoder=False generates bidirectionally, without a cache
    case("bidirectional_bert", bidir, "plain_ids", max_new_tokens=6)
    case("bidirectional_bert_beams", bidir, "plain_ids", max_new_tokens=5, num_beams=2)
    # 6. head_mask reaches every forward of a decoder-only model
    head_mask = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 1.0]])
    case("head_mask_gpt2", gpt2, "left_ids", "left_mask", head_mask=head_mask, max_new_tokens=6, eos_token_id=None)
    case("head_mask_bidirectional_bert", bidir, "plain_ids", head_mask=head_mask, max_new_tokens=5)

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump({"transformers": transformers.__version__, "torch": torch.__version__, "cases": expected}, f,
                  indent=1, sort_keys=True)
        f.write("\n")
    save_file(tensors, os.path.join(OUT, "tensors.safetensors"))


if __name__ == "__main__":
    main()
