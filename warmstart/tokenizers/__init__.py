"""Tokenizers with transformers' public API: WordPiece (BERT), SentencePiece (BertGeneration),
byte-level BPE (GPT-2, RoBERTa), and AutoTokenizer. Framework-free: torch is imported only for
``return_tensors="pt"``."""

from .auto import AutoTokenizer
from .base import (
    BatchEncoding,
    PaddingStrategy,
    PreTrainedTokenizer,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
    TensorType,
    TruncationStrategy,
)
from .bpe import GPT2Tokenizer, GPT2TokenizerFast, RobertaTokenizer, RobertaTokenizerFast
from .sentencepiece import BertGenerationTokenizer
from .wordpiece import BasicTokenizer, BertTokenizer, BertTokenizerFast, WordpieceTokenizer

__all__ = [
    "AutoTokenizer",
    "BasicTokenizer",
    "BatchEncoding",
    "BertGenerationTokenizer",
    "BertTokenizer",
    "BertTokenizerFast",
    "GPT2Tokenizer",
    "GPT2TokenizerFast",
    "PaddingStrategy",
    "PreTrainedTokenizer",
    "PreTrainedTokenizerBase",
    "PreTrainedTokenizerFast",
    "RobertaTokenizer",
    "RobertaTokenizerFast",
    "TensorType",
    "TruncationStrategy",
    "WordpieceTokenizer",
]
