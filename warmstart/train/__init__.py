"""Training support: reading seq2seq data, batching it, and BERT's pretraining inputs (MLM / NSP)."""
from .collators import (IGNORE_INDEX, DataCollatorForLanguageModeling, DataCollatorForSeq2Seq,
                        LengthGroupedBatchSampler, build_nsp_examples, pad_ids)
from .data import (Seq2SeqExample, check_source_lengths, check_target_lengths, position_limit, read_seq2seq,
                   tokenize_seq2seq)

__all__ = ["IGNORE_INDEX", "DataCollatorForLanguageModeling", "DataCollatorForSeq2Seq", "LengthGroupedBatchSampler",
           "Seq2SeqExample", "build_nsp_examples", "check_source_lengths", "check_target_lengths", "pad_ids",
           "position_limit", "read_seq2seq", "tokenize_seq2seq"]
