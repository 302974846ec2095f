"""BertGenerationTokenizer: the SentencePiece tokenizer of the BertGeneration checkpoints.

The encoder/decoder checkpoints of Rothe et al. 2020 ("Leveraging Pre-trained Checkpoints for
Sequence Generation Tasks") share one SentencePiece model (spiece.model) with `<s>`, `</s>`,
`<unk>`, `<pad>` and the separator `<::::>`. The `sentencepiece` library does the segmentation;
this class adds transformers' calling convention on top, through the shared pure-Python base.

As transformers does, the tokenizer adds no special tokens by default (the seq2seq code adds
`</s>` itself where needed), a pair is the plain concatenation, special tokens written in the
text are kept whole, and decoding joins the pieces, turns "▁" into spaces and strips the ends.

Documented behaviour on odd input: lone surrogates become U+FFFD before SentencePiece sees them
(it cannot take them); SentencePiece's own normaliser (usually NFKC) then applies, so control
characters not in the model become `<unk>` and zero-width characters may vanish.
"""

from __future__ import annotations

import os
import shutil

import sentencepiece as spm

from .base_fast import replace_surrogates
from .base_slow import PreTrainedTokenizer

VOCAB_FILES_NAMES = {"vocab_file": "spiece.model"}
SPIECE_UNDERLINE = "\u2581"


def load_sentencepiece(path, sp_model_kwargs: dict | None = None) -> spm.SentencePieceProcessor:
    """Load a SentencePiece model file, turning the library's terse errors into ones naming the file."""
    if path is None:
        raise FileNotFoundError("BertGenerationTokenizer needs vocab_file, the SentencePiece model (spiece.model)")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"SentencePiece model file not found: {path!r}")
    processor = spm.SentencePieceProcessor(**(sp_model_kwargs or {}))
    try:
        processor.Load(path)
    except (RuntimeError, OSError) as err:
        raise ValueError(f"{path!r} is not a SentencePiece model (sentencepiece says: {err})") from None
    if processor.get_piece_size() == 0:
        raise ValueError(f"SentencePiece model {path!r} has an empty vocabulary")
    return processor


class BertGenerationTokenizer(PreTrainedTokenizer):
    """SentencePiece tokenizer for BertGeneration (transformers' `BertGenerationTokenizer`)."""

    vocab_files_names = VOCAB_FILES_NAMES
    model_input_names = ["input_ids", "attention_mask"]
    prefix_tokens: list[int] = []

    def __init__(self, vocab_file=None, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
                 sep_token="<::::>", sp_model_kwargs: dict | None = None, **kwargs):  # fmt: skip
        self.vocab_file = None if vocab_file is None else os.fspath(vocab_file)
        self.sp_model_kwargs = dict(sp_model_kwargs or {})
        self.sp_model = load_sentencepiece(self.vocab_file, self.sp_model_kwargs)
        self._pieces = [self.sp_model.id_to_piece(i) for i in range(self.sp_model.get_piece_size())]
        self._piece_ids = {piece: i for i, piece in enumerate(self._pieces)}
        super().__init__(vocab_file=self.vocab_file, bos_token=bos_token, eos_token=eos_token, unk_token=unk_token,
                         pad_token=pad_token, sep_token=sep_token, sp_model_kwargs=self.sp_model_kwargs,
                         **kwargs)  # fmt: skip

    # A SentencePieceProcessor cannot be pickled; rebuild it from the serialized model instead
    # (DataLoader workers and multiprocessing pickle tokenizers).
    def __getstate__(self):
        state = self.__dict__.copy()
        state["sp_model"] = self.sp_model.serialized_model_proto()
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        processor = spm.SentencePieceProcessor(**self.sp_model_kwargs)
        processor.LoadFromSerializedProto(state["sp_model"])
        self.sp_model = processor

    @property
    def vocab_size(self) -> int:
        return len(self._pieces)

    def get_vocab(self) -> dict[str, int]:
        return {**self._piece_ids, **self._added_tokens_encoder}

    def _tokenize(self, text: str, **kwargs) -> list[str]:
        return self.sp_model.encode(replace_surrogates(text), out_type=str)

    def _tokenize_to_ids(self, text: str) -> list[int]:
        return self.sp_model.encode(replace_surrogates(text))

    def _convert_token_to_id(self, token: str) -> int:
        # SentencePiece maps any piece it does not know to its own unk id.
        return self.sp_model.piece_to_id(token)

    def _convert_id_to_token(self, index: int) -> str:
        if not 0 <= index < len(self._pieces):
            raise ValueError(f"token id {index} is outside the SentencePiece vocabulary (ids 0..{len(self._pieces) - 1})")
        return self._pieces[index]

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        """Join pieces, "▁" -> space, strip the ends (transformers v5's SentencePiece decoding)."""
        return "".join(tokens).replace(SPIECE_UNDERLINE, " ").strip()

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str]:
        """Copy the SentencePiece model file (or write it from memory if the file is gone)."""
        if not os.path.isdir(save_directory):
            raise ValueError(f"save_vocabulary needs an existing folder, got {save_directory!r}")
        name = (f"{filename_prefix}-" if filename_prefix else "") + VOCAB_FILES_NAMES["vocab_file"]
        out = os.path.join(save_directory, name)
        if self.vocab_file and os.path.isfile(self.vocab_file):
            if os.path.abspath(self.vocab_file) != os.path.abspath(out):
                shutil.copyfile(self.vocab_file, out)
        else:
            with open(out, "wb") as f:
                f.write(self.sp_model.serialized_model_proto())
        return (out,)
