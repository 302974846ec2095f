"""Regenerate the transformers v4 tokenizer reference fixtures in ``tests/assets/tokenizers_v4/``.

transformers 5.x dropped or changed several v4 tokenizer behaviours that warmstart follows (the
pure-Python BERT tokenizer lower-casing text before matching added tokens, `prepare_for_model` on fast
tokenizers, `prepare_seq2seq_batch`, `additional_special_tokens = None`, the init-keyword check, the
call-time `add_prefix_space` of the pure-Python byte-level BPE tokenizers, chat templates stored in
tokenizer_config.json). The values the tests compare against come from a transformers 4.46.3 install
kept outside the project's virtual environment (see tests/assets/make_relpos_fixtures.py for the
install command), run as:

    PYTHONPATH=/tmp/tf4 /work/main/.venv/bin/python tests/assets/make_tokenizer_v4_fixtures.py

Written files:

    bert/vocab.txt                   a tiny lower-case WordPiece vocabulary (written here, not by v4)
    bpe/vocab.json, bpe/merges.txt   a tiny byte-level BPE (trained here with tokenizers 0.20.3)
    chat_bert/                       v4 BertTokenizer.save_pretrained of a tokenizer with a chat template
    chat_bert_named/                 the same with two named templates
    expected.json                    v4's answers, one key per case (see the `case_*` functions)

The script is a test-asset generator, run by hand; it is never imported by the test suite.
"""

import argparse
import json
import logging
import os
import shutil
import warnings

import transformers
from tokenizers import ByteLevelBPETokenizer
from transformers import (
    AddedToken,
    BertTokenizer,
    BertTokenizerFast,
    GPT2Tokenizer,
    GPT2TokenizerFast,
    RobertaTokenizer,
    RobertaTokenizerFast,
)

if not transformers.__version__.startswith("4."):
    raise SystemExit(
        f"this script needs a transformers 4.x oracle, got transformers {transformers.__version__} from "
        f"{transformers.__file__}; run it with PYTHONPATH=/tmp/tf4 (see the module docstring)"
    )

BERT_VOCAB = (
    ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    + list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'-:")
    + ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"]
    + ["low", "lower", "lowest", "aaaaa", "bbbbbb", "hello", "world", "the", "quick", "brown", "fox", "user",
       "assistant", "system", "hi", "there", "how", "are", "you", "##er", "##est", "##ing"]
)  # fmt: skip
BPE_CORPUS = [
    "Hello world, hello there!", "The quick brown fox jumps over the lazy dog.", "lower lowest low",
    "How are you? I am fine, thank you.", "  leading spaces and trailing  ", "tabs\tand\nnewlines",
] * 4  # fmt: skip
CHAT_TEMPLATE = (
    "{% for m in messages %}[CLS] {{ m['role'] }}: "
    "{% if m['role'] == 'assistant' %}{% generation %}{{ m['content'] }}{% endgeneration %}"
    "{% else %}{{ m['content'] }}{% endif %} [SEP]\n{% endfor %}"
    "{% if add_generation_prompt %}[CLS] assistant:{% endif %}"
)
TOOL_TEMPLATE = "{{ tools | tojson }}|{% for m in messages %}{{ m['content'] }}{% endfor %}"
CHATS = [
    [{"role": "user", "content": "hello there"}],
    [{"role": "system", "content": "hi"}, {"role": "user", "content": "how are you?"},
     {"role": "assistant", "content": "the quick brown fox"}],
]  # fmt: skip


def _plain(enc) -> dict:
    return {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in dict(enc).items()}


def _bert(folder, cls=BertTokenizer, **kw):
    return cls(os.path.join(folder, "bert", "vocab.txt"), **kw)


def _bpe(folder, cls, **kw):
    return cls(os.path.join(folder, "bpe", "vocab.json"), os.path.join(folder, "bpe", "merges.txt"), **kw)


def case_lowercase_added_tokens(folder) -> dict:
    """tokenize() after add_tokens on a do_lower_case tokenizer, slow and fast."""
    texts = ["AAAAA BBBBBB low", "aaaaa bbbbbb LOW", "Hello [CLS] HELLO [cls] xyz XyZ", "[SPEC] [spec] LoWeR"]
    out = {}
    for cls in (BertTokenizer, BertTokenizerFast):
        tok = _bert(folder, cls, do_lower_case=True)
        tok.add_tokens([AddedToken("aaaaa bbbbbb", lstrip=True, rstrip=True), "HeLLo Big"])
        tok.add_tokens([AddedToken("XyZ", normalized=False)])
        tok.add_special_tokens({"additional_special_tokens": ["[SPEC]"]})
        out[cls.__name__] = {t: tok.tokenize(t) for t in texts}
        out[cls.__name__ + "_ids"] = {t: tok(t)["input_ids"] for t in texts}
    return out


PFM_CASES = [
    ("single", [10, 11, 12], None, {}),
    ("pair", [10, 11, 12], [13, 14], {}),
    ("no_specials", [10, 11, 12], [13], {"add_special_tokens": False}),
    ("truncate_pair", [10, 11, 12, 13, 14], [15, 16, 17], {"truncation": True, "max_length": 7}),
    ("truncate_only_first_overflow", [10, 11, 12, 13, 14, 15], [16], {"truncation": "only_first", "max_length": 8,
                                                                     "return_overflowing_tokens": True, "stride": 1}),
    ("overflow_no_cut", [10, 11], None, {"truncation": True, "max_length": 9, "return_overflowing_tokens": True}),
    ("pad_max_length", [10, 11], [12], {"padding": "max_length", "max_length": 9, "return_special_tokens_mask": True,
                                        "return_length": True}),
    ("pad_left_multiple", [10, 11, 12], None, {"padding": True, "pad_to_multiple_of": 8, "padding_side": "left"}),
    ("tensors", [10, 11, 12], [13], {"return_tensors": "np"}),
    ("tensors_batch_axis", [10, 11, 12], None, {"return_tensors": "np", "prepend_batch_axis": True}),
    ("no_mask", [10, 11, 12], None, {"return_attention_mask": False, "return_token_type_ids": False}),
]  # fmt: skip


def case_prepare_for_model(folder) -> dict:
    out = {}
    makers = {
        "BertTokenizerFast": lambda: _bert(folder, BertTokenizerFast),
        "BertTokenizer": lambda: _bert(folder, BertTokenizer),
        "GPT2TokenizerFast": lambda: _bpe(folder, GPT2TokenizerFast, pad_token="<|endoftext|>"),
        "RobertaTokenizerFast": lambda: _bpe(folder, RobertaTokenizerFast),
    }
    for name, make in makers.items():
        tok = make()
        out[name] = {}
        for case, ids, pair, kw in PFM_CASES:
            try:
                enc = tok.prepare_for_model(ids, pair, **kw)
            except AssertionError as err:  # v4's fast GPT-2 has no special-tokens-mask layout; recorded, not compared
                out[name][case] = {"error": f"{type(err).__name__}: {err}"}
                continue
            out[name][case] = {"values": _plain(enc), "shapes": {k: list(getattr(v, "shape", ())) for k, v in enc.items()}}
    return out


def case_prepare_seq2seq_batch(folder) -> dict:
    src = ["hello world", "the quick brown fox", "low"]
    tgt = ["hi", "how are you", "the lowest lower low"]
    settings = {
        "default": {},
        "limits": {"max_length": 5, "max_target_length": 4},
        "only_max_length": {"max_length": 4},
        "no_targets": {"tgt_texts": None},
        "max_length_padding": {"padding": "max_length", "max_length": 8},
    }
    out = {}
    for cls in (BertTokenizer, BertTokenizerFast):
        tok = _bert(folder, cls, model_max_length=16)
        out[cls.__name__] = {}
        for name, kw in settings.items():
            kw = dict(kw)
            targets = kw.pop("tgt_texts", tgt)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                enc = tok.prepare_seq2seq_batch(src, targets, **kw)
            out[cls.__name__][name] = _plain(enc)
            out[cls.__name__]["warning_category"] = caught[0].category.__name__
    return out


def case_special_token_attributes(folder) -> dict:
    out = {}
    for cls in (BertTokenizer, BertTokenizerFast):
        tok = _bert(folder, cls)
        tok.additional_special_tokens = None
        none_case = {"tokens": tok.additional_special_tokens, "ids": tok.additional_special_tokens_ids,
                     "map": tok.special_tokens_map, "all": tok.all_special_tokens}  # fmt: skip
        tok = _bert(folder, cls)
        tok.additional_special_tokens_ids = [52, 53]
        ids_case = {"tokens": tok.additional_special_tokens, "ids": tok.additional_special_tokens_ids,
                    "map": tok.special_tokens_map, "all": tok.all_special_tokens}  # fmt: skip
        out[cls.__name__] = {"set_none": none_case, "set_ids": ids_case}
    return out


def case_add_prefix_space(folder) -> dict:
    texts = ["Hello world", " Hello world", "", "lower<|endoftext|>low"]
    out = {}
    for cls in (GPT2Tokenizer, RobertaTokenizer):
        kw = {"additional_special_tokens": ["<|endoftext|>"]} if cls is RobertaTokenizer else {}
        tok = _bpe(folder, cls, **kw)
        out[cls.__name__] = {t: {"prefix": tok.tokenize(t, add_prefix_space=True), "plain": tok.tokenize(t),
                                 "ids": tok(t, add_prefix_space=True)["input_ids"]} for t in texts}  # fmt: skip
    return out


def case_method_named_keywords(folder) -> dict:
    out = {}
    for cls in (BertTokenizer, GPT2Tokenizer):
        for key in ("tokenize", "pad", "decode"):
            make = (lambda c=cls, k=key: _bert(folder, c, **{k: 1})) if cls is BertTokenizer else \
                (lambda c=cls, k=key: _bpe(folder, c, **{k: 1}))  # fmt: skip
            try:
                make()
            except AttributeError as err:
                out[f"{cls.__name__}.{key}"] = str(err)
    return out


def case_too_long_warning(folder) -> dict:
    records = []

    class Grab(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    logger = logging.getLogger("transformers.tokenization_utils_base")
    handler = Grab()
    logger.addHandler(handler)
    try:
        out = {}
        for cls in (BertTokenizer, BertTokenizerFast):
            records.clear()
            tok = _bert(folder, cls, model_max_length=6)
            tok("the quick brown fox the quick")  # 8 tokens with [CLS] / [SEP]
            tok("the quick brown fox the quick brown")
            tok("the quick brown fox the quick", truncation=True)
            out[cls.__name__] = list(records)
    finally:
        logger.removeHandler(handler)
    return out


def case_chat_templates(folder) -> dict:
    out = {}
    tok = _bert(folder, BertTokenizer, chat_template=CHAT_TEMPLATE)
    target = os.path.join(folder, "chat_bert")
    shutil.rmtree(target, ignore_errors=True)
    tok.save_pretrained(target)
    named = _bert(folder, BertTokenizer, chat_template={"default": CHAT_TEMPLATE, "tool_use": TOOL_TEMPLATE})
    target_named = os.path.join(folder, "chat_bert_named")
    shutil.rmtree(target_named, ignore_errors=True)
    named.save_pretrained(target_named)
    for cls in (BertTokenizer, BertTokenizerFast):
        tok = cls.from_pretrained(target)
        res = {
            "text": [tok.apply_chat_template(c, tokenize=False) for c in CHATS],
            "text_prompt": [tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in CHATS],
            "ids": [tok.apply_chat_template(c) for c in CHATS],
            "batch_ids": tok.apply_chat_template(CHATS),
            "continue_final": tok.apply_chat_template(CHATS[1], tokenize=False, continue_final_message=True),
            "dict": _plain(tok.apply_chat_template(CHATS[1], return_dict=True)),
            "padded_np": _plain(tok.apply_chat_template(CHATS, return_dict=True, padding=True, return_tensors="np")),
            "truncated": tok.apply_chat_template(CHATS[1], truncation=True, max_length=6),
        }
        if cls is BertTokenizerFast:
            res["assistant_masks"] = _plain(tok.apply_chat_template(CHATS, return_dict=True,
                                                                    return_assistant_tokens_mask=True))["assistant_masks"]
        out[cls.__name__] = res
    tok = BertTokenizer.from_pretrained(target_named)
    tools = [{"type": "function", "function": {"name": "f", "description": "a <b>", "parameters": {}}}]
    out["named"] = {
        "default": tok.apply_chat_template(CHATS[0], tokenize=False),
        "tool_use": tok.apply_chat_template(CHATS[0], tools=tools, tokenize=False),
        "by_name": tok.apply_chat_template(CHATS[0], chat_template="tool_use", tokenize=False),
    }
    return out


CASES = [case_lowercase_added_tokens, case_prepare_for_model, case_prepare_seq2seq_batch, case_special_token_attributes,
         case_add_prefix_space, case_method_named_keywords, case_too_long_warning, case_chat_templates]  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "tokenizers_v4"))
    args = parser.parse_args()
    os.makedirs(os.path.join(args.out, "bert"), exist_ok=True)
    with open(os.path.join(args.out, "bert", "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("".join(t + "\n" for t in BERT_VOCAB))
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(BPE_CORPUS, vocab_size=300, min_frequency=2, show_progress=False,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>", "<|endoftext|>"])  # fmt: skip
    os.makedirs(os.path.join(args.out, "bpe"), exist_ok=True)
    bpe.save_model(os.path.join(args.out, "bpe"))
    expected = {"transformers": transformers.__version__}
    for case in CASES:
        expected[case.__name__[len("case_"):]] = case(args.out)
    with open(os.path.join(args.out, "expected.json"), "w", encoding="utf-8") as f:
        # One case per line: compact, and a regenerated file diffs case by case.
        lines = [f"{json.dumps(k)}: {json.dumps(v, sort_keys=True, ensure_ascii=False)}" for k, v in sorted(expected.items())]
        f.write("{\n" + ",\n".join(lines) + "\n}\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
