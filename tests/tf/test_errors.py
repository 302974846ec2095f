"""The TF models check their inputs as the PyTorch wing does, with the same messages: eagerly a ValueError /
TypeError before the stack runs; inside a non-XLA tf.function, value checks become InvalidArgumentErrors at run
time and shape checks fail at trace time; configs the TF wing cannot run are refused at construction."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from support import bert_config, gpt2_config, ids_and_mask, roberta_config  # noqa: E402

import warmstart as ws  # noqa: E402
import warmstart.tf as wtf  # noqa: E402
from warmstart.tf.backend import tf  # noqa: E402


@pytest.fixture(scope="module")
def bert():
    """(PyTorch BertModel, TF BertModel) on the same tiny config (weights need not agree for input checks)."""
    config = bert_config()
    return ws.BertModel(config).eval(), wtf.TFBertModel(config)


def _ids(**overrides):
    ids, mask = ids_and_mask()
    return {"input_ids": ids, "attention_mask": mask, **overrides}


def _bad_ids(value):
    ids, _ = ids_and_mask()
    ids[1, 2] = value
    return {"input_ids": ids}


def _embeds():
    return np.random.RandomState(0).randn(2, 7, 32).astype(np.float32)


# id, inputs, error type, a pattern both wings' messages match, whether PyTorch's whole message is in the TF one
CASES = [
    ("id-too-large", lambda: _bad_ids(99), ValueError,
     re.escape("input_ids contains 99, outside [0, 99) (vocab_size = 99)"), True),
    ("id-negative", lambda: _bad_ids(-3), ValueError,
     re.escape("input_ids contains -3, outside [0, 99) (vocab_size = 99)"), True),
    ("float-ids", lambda: {"input_ids": ids_and_mask()[0].astype(np.float32)}, TypeError,
     "input_ids must be an integer tensor", False),
    ("too-long", lambda: {"input_ids": np.full((1, 65), 5, np.int64)}, ValueError,
     re.escape("sequence length 65 (past 0 + new 65) exceeds the position table: max_position_embeddings = 64"),
     True),
    ("mask-shape", lambda: _ids(attention_mask=np.ones((2, 5), np.int64)), ValueError,
     re.escape("attention_mask shape (2, 5) does not match"), False),
    ("token-type-too-large", lambda: _ids(token_type_ids=np.full((2, 7), 2, np.int64)), ValueError,
     re.escape("token_type_ids contains 2, outside [0, 2) (type_vocab_size = 2)"), True),
    ("token-type-shape", lambda: _ids(token_type_ids=np.zeros((2, 5), np.int64)), ValueError,
     r"token_type_ids.*the shape of input_ids \(2, 7\)", False),
    ("position-too-large", lambda: _ids(position_ids=np.tile(np.arange(58, 65), (2, 1))), ValueError,
     re.escape("position_ids contains 64, outside [0, 64) (max_position_embeddings = 64)"), True),
    ("position-negative", lambda: _ids(position_ids=np.tile(np.arange(-1, 6), (2, 1))), ValueError,
     re.escape("position_ids contains -1, outside [0, 64)"), False),
    ("no-cross-attention", lambda: _ids(encoder_hidden_states=np.zeros((2, 5, 32), np.float32)), ValueError,
     re.escape("encoder_hidden_states were passed but this model has no cross-attention; build it with "
               "is_decoder=True, add_cross_attention=True"), True),
    ("head-mask-shape", lambda: _ids(head_mask=np.ones((3, 4), np.float32)), ValueError,
     re.escape("head_mask must be (num_heads,) or (num_layers=2, num_heads"), False),
    ("both-ids-and-embeds", lambda: _ids(inputs_embeds=_embeds()), ValueError,
     "pass exactly one of input_ids or inputs_embeds", True),
    ("neither-ids-nor-embeds", lambda: {"attention_mask": ids_and_mask()[1]}, ValueError,
     "pass exactly one of input_ids or inputs_embeds", True),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_eager_errors_match_pytorch(case, bert):
    _, make, error, pattern, identical = case
    pt, tfm = bert
    inputs = make()
    with pytest.raises(error, match=pattern) as theirs:
        with torch.no_grad():
            pt(**{k: torch.from_numpy(np.asarray(v)) for k, v in inputs.items()})
    with pytest.raises(error, match=pattern) as mine:
        tfm(**inputs)
    if identical:  # Keras' __call__ re-raises with "Exception encountered when calling ..." around the text
        assert str(theirs.value) in str(mine.value), (str(mine.value), str(theirs.value))
    with pytest.raises(error, match=pattern):  # the v4 dict form checks the same
        tfm(inputs)


def test_roberta_and_gpt2_checks():
    rob = wtf.TFRobertaModel(roberta_config())
    rob(np.full((1, 62), 5, np.int64))  # positions 2..63 fit
    with pytest.raises(ValueError, match="exceeds the position table.*minus 2 reserved") as mine:
        rob(np.full((1, 63), 5, np.int64))
    with pytest.raises(ValueError) as theirs:
        ws.RobertaModel(roberta_config())(torch.full((1, 63), 5))
    assert str(theirs.value) in str(mine.value)
    gpt = wtf.TFGPT2Model(gpt2_config())
    with pytest.raises(ValueError, match=re.escape("input_ids contains 99, outside [0, 99) (vocab_size = 99)")):
        gpt(np.array([[1, 99]]))
    with pytest.raises(ValueError, match="exceeds the position table"):
        gpt(np.full((1, 65), 5, np.int64))


def test_value_checks_inside_tf_function_raise_at_run_time(bert):
    _, tfm = bert

    @tf.function
    def run(ids, types):
        return tfm(ids, token_type_ids=types).last_hidden_state

    ids, _ = ids_and_mask()
    zeros = tf.zeros((2, 7), tf.int64)
    run(tf.constant(ids), zeros)  # valid: traces and runs
    for bad in (99, -1):
        with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape("outside [0, 99)")):
            run(tf.constant(np.where(ids == ids[0, 3], bad, ids)), zeros)
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape("token_type_ids contains ids outside [0, 2)")):
        run(tf.constant(ids), tf.fill((2, 7), tf.constant(2, tf.int64)))


def test_shape_checks_inside_tf_function_raise_at_trace_time(bert):
    _, tfm = bert
    ids, _ = ids_and_mask()

    @tf.function
    def masked(ids, mask):
        return tfm(ids, attention_mask=mask).last_hidden_state

    with pytest.raises(ValueError, match=re.escape("attention_mask shape (2, 5) does not match")):
        masked(tf.constant(ids), tf.ones((2, 5), tf.int64))

    @tf.function
    def typed(ids, types):
        return tfm(ids, token_type_ids=types).last_hidden_state

    with pytest.raises(ValueError, match="token_type_ids shape"):
        typed(tf.constant(ids), tf.zeros((2, 5), tf.int64))

    @tf.function
    def floats(ids):
        return tfm(ids).last_hidden_state

    with pytest.raises(TypeError, match="input_ids must be an integer tensor"):
        floats(tf.constant(ids, tf.float32))

    @tf.function
    def long(ids):
        return tfm(ids).last_hidden_state

    with pytest.raises(ValueError, match="exceeds the position table"):
        long(tf.fill((1, 65), tf.constant(5, tf.int64)))


def test_unsupported_configs_are_refused_at_construction():
    with pytest.raises(ValueError, match="position_embedding_type='absolute' only"):
        wtf.TFBertModel(bert_config(position_embedding_type="relative_key"))
    with pytest.raises(ValueError, match="position_embedding_type='absolute' only"):
        wtf.TFRobertaForMaskedLM(roberta_config(position_embedding_type="relative_key_query"))
    message = "add_cross_attention=True needs is_decoder=True"
    with pytest.raises(ValueError, match=message) as mine:
        wtf.TFBertLMHeadModel(bert_config(add_cross_attention=True))
    with pytest.raises(ValueError, match=message) as theirs:
        ws.BertLMHeadModel(bert_config(add_cross_attention=True))
    assert str(mine.value) == str(theirs.value)
    with pytest.raises(ValueError, match=message):
        wtf.TFRobertaForCausalLM(roberta_config(add_cross_attention=True))
