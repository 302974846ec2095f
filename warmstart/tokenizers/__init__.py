"""Tokenizers with transformers' public API: WordPiece (BERT), SentencePiece (BertGeneration),
byte-level BPE (GPT-2, RoBERTa), and AutoTokenizer."""

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
from .wordpiece import BasicTokenizer, BertTokenizer, BertTokenizerFast, WordpieceTokenizer

__all__ = [
    "AutoTokenizer",
    "BasicTokenizer",
    "BatchEncoding",
    "BertTokenizer",
    "BertTokenizerFast",
    "PaddingStrategy",
    "PreTrainedTokenizer",
    "PreTrainedTokenizerBase",
    "PreTrainedTokenizerFast",
    "TensorType",
    "TruncationStrategy",
    "WordpieceTokenizer",
]

# ---- Engineer B's exports (sentencepiece.py, bpe.py): add lines only inside this block ----
from .bpe import GPT2Tokenizer, GPT2TokenizerFast, RobertaTokenizer, RobertaTokenizerFast  # noqa: E402
from .sentencepiece import BertGenerationTokenizer  # noqa: E402

__all__ += ["BertGenerationTokenizer", "GPT2Tokenizer", "GPT2TokenizerFast", "RobertaTokenizer", "RobertaTokenizerFast"]
# ---- end of Engineer B's block ----
