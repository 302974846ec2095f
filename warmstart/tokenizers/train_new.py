"""`train_new_from_iterator`: a fast tokenizer retrained on a new corpus with the same pipeline.

What carries over (as in transformers v4): the normaliser, pre-tokenizer, decoder and model kind
(WordPiece for BERT, byte-level BPE for GPT-2 / RoBERTa, Unigram or WordLevel for others), the
model's own options (unk token, continuation prefix, ...), the special tokens (kept at the start of the
new vocabulary, optionally renamed through `special_tokens_map`) and the post-processor (its token ids
re-read from the new vocabulary). What does not: the old vocabulary, merges and non-special added
tokens. The trainer is the `tokenizers` library's one for the model kind; extra keyword arguments go
to it (``min_frequency``, ``show_progress``, ...). A byte-level pre-tokenizer seeds the alphabet with
all 256 byte symbols so the new model can encode any text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from tokenizers import AddedToken, Tokenizer, pre_tokenizers, trainers

_TRAINERS = {
    "BPE": trainers.BpeTrainer,
    "WordPiece": trainers.WordPieceTrainer,
    "WordLevel": trainers.WordLevelTrainer,
    "Unigram": trainers.UnigramTrainer,
}


def _trainer_options(trainer_class) -> set[str]:
    """The keyword names a `tokenizers` trainer accepts, read from its signature (empty if it has none)."""
    signature = getattr(trainer_class, "__text_signature__", None) or ""
    return set(re.findall(r"(\w+)=", signature))


def _renamed(token: str, mapping: Mapping | None) -> str:
    return mapping.get(token, token) if mapping else token


def _empty_model(model: dict, mapping: Mapping | None, trainer_kwargs: dict) -> None:
    """Drop the learned part of a serialised model in place, keeping its options."""
    kind = model.get("type")
    if kind not in _TRAINERS:
        raise ValueError(
            f"train_new_from_iterator supports BPE, WordPiece, WordLevel and Unigram models; this tokenizer has {kind!r}"
        )
    if kind == "BPE":
        model["vocab"], model["merges"] = {}, []
        for option in ("continuing_subword_prefix", "end_of_word_suffix"):
            if model.get(option) is not None:  # the trainer must build pieces with the model's affixes
                trainer_kwargs.setdefault(option, model[option])
    elif kind == "Unigram":
        unk = None
        if model.get("unk_id") is not None:
            unk = _renamed(model["vocab"][model["unk_id"]][0], mapping)
            trainer_kwargs.setdefault("unk_token", unk)
        model["vocab"] = [[unk, 0.0]] if unk is not None else []
        model["unk_id"] = 0 if unk is not None else None
    else:
        model["vocab"] = {}
    if isinstance(model.get("unk_token"), str):
        model["unk_token"] = _renamed(model["unk_token"], mapping)


def _is_byte_level(pre: dict | None) -> bool:
    if not pre:
        return False
    if pre.get("type") == "ByteLevel":
        return True
    return pre.get("type") == "Sequence" and any(_is_byte_level(p) for p in pre.get("pretokenizers", ()))


def _relink(post: dict, backend: Tokenizer, mapping: Mapping | None) -> None:
    """Point a serialised post-processor at the new vocabulary's ids (in place)."""

    def id_of(token: str) -> int:
        index = backend.token_to_id(token)
        if index is None:
            raise ValueError(f"The post-processor uses the token {token!r}, which the trained vocabulary lacks")
        return index

    if post.get("type") == "Sequence":
        for inner in post.get("processors", ()):
            _relink(inner, backend, mapping)
        return
    for entry in (post.get("special_tokens") or {}).values():  # TemplateProcessing
        entry["tokens"] = [_renamed(t, mapping) for t in entry["tokens"]]
        entry["ids"] = [id_of(t) for t in entry["tokens"]]
    for key in ("cls", "sep"):  # BertProcessing / RobertaProcessing: [token, id]
        if key in post:
            token = _renamed(post[key][0], mapping)
            post[key] = [token, id_of(token)]


def train_new_from_iterator(tokenizer, text_iterator, vocab_size: int, length: int | None = None,
                            new_special_tokens=None, special_tokens_map: Mapping | None = None, **trainer_kwargs):  # fmt: skip
    """Train a tokenizer of the same class and pipeline on `text_iterator` (texts, or batches of texts)."""
    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool) or vocab_size < 1:
        raise ValueError(f"vocab_size must be a positive int, got {vocab_size!r}")
    if special_tokens_map is not None and not isinstance(special_tokens_map, Mapping):
        raise TypeError(f"special_tokens_map must map old token strings to new ones, got {special_tokens_map!r}")
    new_special_tokens = list(new_special_tokens or ())
    for t in new_special_tokens:
        if not isinstance(t, (str, AddedToken)):
            raise TypeError(f"new_special_tokens must hold str or AddedToken, got {type(t).__name__}: {t!r}")

    state = json.loads(tokenizer.backend_tokenizer.to_str())
    added = state.pop("added_tokens", None) or []
    post = state.pop("post_processor", None)
    _empty_model(state["model"], special_tokens_map, trainer_kwargs)
    backend = Tokenizer.from_str(json.dumps(state))

    # Special tokens go first into the new vocabulary; a Unigram model keeps all added tokens (they
    # cannot be re-learned by its trainer), the others only the special ones.
    keep_all = state["model"]["type"] == "Unigram"
    specials = []
    for entry in added:
        if not (entry.get("special") or keep_all):
            continue
        specials.append(AddedToken(_renamed(entry["content"], special_tokens_map), single_word=entry.get("single_word", False),
                                   lstrip=entry.get("lstrip", False), rstrip=entry.get("rstrip", False),
                                   normalized=entry.get("normalized", True), special=True))  # fmt: skip
    specials.extend(new_special_tokens)
    if _is_byte_level(state.get("pre_tokenizer")):
        trainer_kwargs.setdefault("initial_alphabet", pre_tokenizers.ByteLevel.alphabet())
    trainer_class = _TRAINERS[state["model"]["type"]]
    known = _trainer_options(trainer_class)
    unknown = sorted(set(trainer_kwargs) - known) if known else []
    if unknown:  # the Rust trainers only print "Ignored unknown kwargs option" and carry on
        raise TypeError(f"Bad trainer option for a {state['model']['type']} model: {unknown}; "
                        f"{trainer_class.__name__} takes {sorted(known - {'vocab_size', 'special_tokens'})}")  # fmt: skip
    try:
        trainer = trainer_class(vocab_size=vocab_size, special_tokens=specials, **trainer_kwargs)
    except TypeError as err:
        raise TypeError(f"Bad trainer option for a {state['model']['type']} model: {err}") from err
    backend.train_from_iterator(text_iterator, trainer=trainer, length=length)

    if post is not None:
        _relink(post, backend, special_tokens_map)
        trained = json.loads(backend.to_str())
        trained["post_processor"] = post
        backend = Tokenizer.from_str(json.dumps(trained))
    return type(tokenizer)(tokenizer_object=backend, **_init_kwargs(tokenizer, new_special_tokens, special_tokens_map))


def _init_kwargs(tokenizer, new_special_tokens: list, mapping: Mapping | None) -> dict:
    """The old tokenizer's constructor arguments, minus its files and added-token table, with the
    special tokens renamed (an AddedToken keeps its flags)."""
    drop = {*tokenizer.vocab_files_names, "tokenizer_file", "vocab_file", "merges_file", "added_tokens_decoder",
            "vocab", "merges", "additional_special_tokens", "extra_special_tokens"}  # fmt: skip
    kwargs = {k: v for k, v in tokenizer.init_kwargs.items() if k not in drop}
    for name, value in tokenizer.special_tokens_map_extended.items():
        if name == "additional_special_tokens":
            continue
        content = _renamed(str(value), mapping)
        if isinstance(value, AddedToken):
            value = AddedToken(content, single_word=value.single_word, lstrip=value.lstrip, rstrip=value.rstrip,
                               normalized=value.normalized, special=True)  # fmt: skip
        else:
            value = content
        kwargs[name] = value
    extra = [*(tokenizer.additional_special_tokens or []), *new_special_tokens]
    if extra:
        kwargs["additional_special_tokens"] = extra
    return kwargs
