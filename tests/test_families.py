"""Every family record, walked: each (model_type, task) class loads transformers' checkpoint of the same class
with no missing or unexpected weights and gives the same output, both by its own name and through the Auto
class of its task; and every name a record declares (config class, key map, tokenizers) exists.

The parametrisation is read from ``warmstart.families.FAMILIES``, so a new family or task is tested the day its
record is added; only its tiny oracle config (``TINY_CONFIGS`` below) has to be written, and a missing one fails
loudly instead of being skipped.
"""
from __future__ import annotations

import pytest
import torch
import transformers as T

import warmstart.tokenizers
from parity import TINY, assert_close, hf_encoder_decoder, inputs, spread_weights
from warmstart.checkpoint.keymaps import KEYMAPS
from warmstart.config import AutoConfig, PretrainedConfig
from warmstart.families import FAMILIES, TASKS, load_object
from warmstart.models.auto import AUTO_CLASSES

ROBERTA_PAD = 1  # RoBERTa numbers positions after its pad id, so inputs must not use it for real tokens
START = 3        # decoder_start_token_id of the composite; no family's pad id

# model_type -> the transformers config class and its tiny fields (same sizes in every family).
TINY_CONFIGS = {
    "bert": (T.BertConfig, TINY),
    "roberta": (T.RobertaConfig, dict(TINY, pad_token_id=ROBERTA_PAD, bos_token_id=0, eos_token_id=2,
                                      max_position_embeddings=66)),  # 64 positions after the pad offset
    "bert-generation": (T.BertGenerationConfig, {k: v for k, v in TINY.items() if k != "type_vocab_size"}),
    "gpt2": (T.GPT2Config, dict(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=64, resid_pdrop=0.0,
                                embd_pdrop=0.0, attn_pdrop=0.0, initializer_range=0.2, bos_token_id=98,
                                eos_token_id=98)),
}
# Heads whose output size is a config choice: a non-default one catches a head built from the wrong field.
TASK_EXTRAS = {"sequence-classification": {"num_labels": 3}, "token-classification": {"num_labels": 5}}
# The output compared first for each task; the other tensor fields both outputs hold are compared as well.
MAIN_FIELD = {"base": "last_hidden_state", "pretraining": "prediction_logits", "question-answering": "start_logits"}

CASES = [(model_type, task, path) for model_type, record in FAMILIES.items()
         for task, path in record.classes.get("pt", {}).items()]


def _oracle(model_type: str, task: str, class_name: str):
    """transformers' model of the same class name on a tiny config, with spread (non-trivial) weights."""
    torch.manual_seed(0)
    if model_type == "encoder-decoder":
        # A tiny bert2bert: the composite's own parity across pairings lives in test_encoder_decoder_parity.py.
        return hf_encoder_decoder(T.BertConfig(**TINY), T.BertConfig(**TINY), START)
    if model_type not in TINY_CONFIGS:
        pytest.fail(f"family {model_type!r} has no tiny oracle config: add it to TINY_CONFIGS in {__file__}")
    config_cls, fields = TINY_CONFIGS[model_type]
    extra = dict(TASK_EXTRAS.get(task, {}))
    if task == "causal-lm" and not FAMILIES[model_type].is_causal:
        extra["is_decoder"] = True  # BERT-like stacks are causal only as decoders (transformers warns otherwise)
    hf = getattr(T, class_name)(config_cls(**fields, **extra))
    spread_weights(hf)
    return hf.eval()


def _inputs(model_type: str, task: str) -> dict[str, torch.Tensor]:
    # No padding: padded positions are free to differ (ours may skip them), and the main output is compared whole.
    ids, mask, types = inputs(pad_row_from=None)
    if model_type == "roberta":
        ids[ids == ROBERTA_PAD] = 3
    kw = {"input_ids": ids, "attention_mask": mask}
    if model_type in ("bert", "roberta"):
        kw["token_type_ids"] = types if model_type == "bert" else torch.zeros_like(types)  # RoBERTa has one type
    if task == "multiple-choice":
        kw = {k: torch.stack([v, v.flip(0)], 1) for k, v in kw.items()}  # (B, K=2, T)
    if task == "seq2seq-lm":
        dec = inputs(length=6, pad_row_from=None, seed=1)[0]
        dec[:, 0] = START
        kw["decoder_input_ids"] = dec
    return kw


def _assert_loaded_cleanly(info: dict, what: str) -> None:
    # The checkpoint is of the very same class: every weight must be used and none may be freshly initialised.
    assert info["missing_keys"] == [], f"{what}: missing {info['missing_keys']}"
    assert info["unexpected_keys"] == [], f"{what}: unexpected {info['unexpected_keys']}"
    assert info["mismatched_keys"] == [], f"{what}: mismatched {info['mismatched_keys']}"


def _assert_same_outputs(hf_out, our_out, task: str, what: str) -> None:
    main = MAIN_FIELD.get(task, "logits")
    assert getattr(our_out, main, None) is not None, f"{what}: our output has no {main}"
    assert_close(getattr(hf_out, main), getattr(our_out, main), f"{what} {main}")
    for name in hf_out.keys():
        theirs, ours = getattr(hf_out, name), getattr(our_out, name, None)
        if isinstance(theirs, torch.Tensor) and isinstance(ours, torch.Tensor):
            assert_close(theirs, ours, f"{what} {name}")


@pytest.mark.parametrize("model_type,task,path", CASES, ids=[f"{m}-{t}" for m, t, _ in CASES])
def test_every_task_loads_transformers_checkpoint_and_matches(tmp_path, model_type, task, path):
    our_cls = load_object(path)
    hf = _oracle(model_type, task, our_cls.__name__)
    hf.save_pretrained(tmp_path)
    kw = _inputs(model_type, task)
    with torch.no_grad():
        want = hf(**kw)

    direct, info = our_cls.from_pretrained(tmp_path, output_loading_info=True)
    _assert_loaded_cleanly(info, path)
    auto, auto_info = AUTO_CLASSES[task].from_pretrained(tmp_path, output_loading_info=True)
    assert type(auto) is our_cls, f"{AUTO_CLASSES[task].__name__} built {type(auto).__name__}, the record says {path}"
    _assert_loaded_cleanly(auto_info, f"{AUTO_CLASSES[task].__name__} -> {path}")
    for name, model in (("direct", direct), ("auto", auto)):
        assert not model.training, f"{name}: from_pretrained must return an eval-mode model"
        with torch.no_grad():
            _assert_same_outputs(want, model.eval()(**kw), task, f"{path} ({name})")


def test_every_auto_task_is_a_family_task():
    # A task in a record with no Auto class (or the reverse) would be unreachable through AutoModelFor*.
    assert set(AUTO_CLASSES) == set(TASKS)
    for model_type, record in FAMILIES.items():
        assert set(record.classes.get("pt", {})) <= set(TASKS), model_type


@pytest.mark.parametrize("model_type", sorted(FAMILIES))
def test_record_names_exist(model_type):
    record = FAMILIES[model_type]
    assert record.model_type == model_type
    config_cls = record.config_class()
    assert issubclass(config_cls, PretrainedConfig)
    assert config_cls.model_type == model_type
    config = config_cls()  # every family's config has working defaults (the composite: bert2bert)
    assert type(AutoConfig.for_model(model_type)) is config_cls
    assert type(config).from_dict(config.to_dict()).to_dict() == config.to_dict()
    if record.keymap is not None:
        assert record.keymap in KEYMAPS, f"{model_type}: key map {record.keymap!r} not in KEYMAPS"
    for name in record.tokenizers:
        assert hasattr(warmstart.tokenizers, name), f"{model_type}: no tokenizer class {name!r}"
    # Only a composite (no key map of its own: each side uses its family's) borrows its tokenizer (the encoder's).
    assert bool(record.tokenizers) == (record.keymap is not None), model_type
    for task, path in record.classes.get("pt", {}).items():
        cls = load_object(path)
        assert cls.config_class is config_cls, f"{path}.config_class is {cls.config_class}"
    assert record.causal(config) == (record.is_causal or bool(getattr(config, "is_decoder", False)))
