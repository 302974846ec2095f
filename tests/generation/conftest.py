"""Fixtures for generation tests: each model pair is built in transformers (the oracle), saved, and loaded by
warmstart. Tiny random models (99-token vocabulary, hidden size 32) keep the grids fast; ``minilm_pair`` warm-starts
a bert2bert from the real MiniLM checkpoint (cross-attention random) for realistic sizes.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
import torch
import transformers as T

sys.path.insert(0, str(Path(__file__).parent))

import warmstart as W  # noqa: E402
from gen_support import CAUSAL, SEQ2SEQ, START  # noqa: E402
from parity import hf_encoder_decoder, spread_weights  # noqa: E402


@pytest.fixture(autouse=True)
def _quiet():
    T.logging.set_verbosity_error()
    logging.getLogger("warmstart").setLevel(logging.ERROR)
    yield


@pytest.fixture(scope="session")
def seq2seq_pair(tmp_path_factory):
    """name -> (transformers model, warmstart model) with the same weights; built once per session."""
    built = {}

    def get(name: str):
        if name not in built:
            hf = hf_encoder_decoder(*SEQ2SEQ[name](), START)
            folder = tmp_path_factory.mktemp(name)
            hf.save_pretrained(folder)
            built[name] = (T.EncoderDecoderModel.from_pretrained(folder).eval(),
                           W.EncoderDecoderModel.from_pretrained(folder))
        return built[name]

    return get


@pytest.fixture(scope="session")
def causal_pair(tmp_path_factory):
    built = {}

    def get(name: str):
        if name not in built:
            torch.manual_seed(0)
            make, ours_cls = CAUSAL[name]
            hf = make()
            spread_weights(hf)
            folder = tmp_path_factory.mktemp(name)
            hf.save_pretrained(folder)
            built[name] = (type(hf).from_pretrained(folder).eval(), ours_cls.from_pretrained(folder))
        return built[name]

    return get


@pytest.fixture(scope="session")
def minilm_pair(minilm_dir, tmp_path_factory):
    """bert2bert warm-started from MiniLM by warmstart, saved, and loaded by both libraries."""
    torch.manual_seed(0)
    ours = W.EncoderDecoderModel.from_encoder_decoder_pretrained(minilm_dir, minilm_dir)
    ours.config.decoder_start_token_id, ours.config.pad_token_id = 101, 0  # [CLS], [PAD]
    folder = tmp_path_factory.mktemp("minilm_bert2bert")
    ours.save_pretrained(folder)
    return T.EncoderDecoderModel.from_pretrained(folder).eval(), W.EncoderDecoderModel.from_pretrained(folder)


@pytest.fixture(scope="session")
def minilm_tokenizer(minilm_dir):
    return W.AutoTokenizer.from_pretrained(minilm_dir)


