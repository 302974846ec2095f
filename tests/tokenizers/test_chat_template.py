"""apply_chat_template and chat templates on disk: against frozen transformers 4.46.3 answers
(tests/assets/tokenizers_v4, see make_tokenizer_v4_fixtures.py) and against transformers 5.23."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from warmstart.tokenizers import AutoTokenizer, BertTokenizer, BertTokenizerFast

ASSETS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "assets", "tokenizers_v4")
CHAT_DIR = os.path.join(ASSETS, "chat_bert")
NAMED_DIR = os.path.join(ASSETS, "chat_bert_named")
CHATS = [
    [{"role": "user", "content": "hello there"}],
    [{"role": "system", "content": "hi"}, {"role": "user", "content": "how are you?"},
     {"role": "assistant", "content": "the quick brown fox"}],
]  # fmt: skip


@pytest.fixture(scope="module")
def v4():
    with open(os.path.join(ASSETS, "expected.json"), encoding="utf-8") as f:
        return json.load(f)["chat_templates"]


def _plain(enc) -> dict:
    return {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in dict(enc).items()}


@pytest.mark.parametrize("cls", [BertTokenizer, BertTokenizerFast])
def test_a_v4_folder_renders_as_in_v4(v4, cls):
    tok = cls.from_pretrained(CHAT_DIR)
    expected = v4[cls.__name__]
    assert [tok.apply_chat_template(c, tokenize=False) for c in CHATS] == expected["text"]
    assert [tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in CHATS] == expected["text_prompt"]
    assert [tok.apply_chat_template(c) for c in CHATS] == expected["ids"]
    assert tok.apply_chat_template(CHATS) == expected["batch_ids"]
    assert tok.apply_chat_template(CHATS[1], tokenize=False, continue_final_message=True) == expected["continue_final"]
    assert _plain(tok.apply_chat_template(CHATS[1], return_dict=True)) == expected["dict"]
    padded = tok.apply_chat_template(CHATS, return_dict=True, padding=True, return_tensors="np")
    assert _plain(padded) == expected["padded_np"]
    assert tok.apply_chat_template(CHATS[1], truncation=True, max_length=6) == expected["truncated"]


def test_assistant_masks_from_generation_blocks(v4):
    tok = BertTokenizerFast.from_pretrained(CHAT_DIR)
    out = tok.apply_chat_template(CHATS, return_dict=True, return_assistant_tokens_mask=True)
    assert out["assistant_masks"] == v4["BertTokenizerFast"]["assistant_masks"]
    single = tok.apply_chat_template(CHATS[1], return_dict=True, return_assistant_tokens_mask=True)
    assert single["assistant_masks"] == v4["BertTokenizerFast"]["assistant_masks"][1]
    with pytest.raises(NotImplementedError, match="character offsets"):
        BertTokenizer.from_pretrained(CHAT_DIR).apply_chat_template(CHATS, return_dict=True,
                                                                     return_assistant_tokens_mask=True)  # fmt: skip


def test_named_templates(v4):
    tok = BertTokenizer.from_pretrained(NAMED_DIR)
    assert set(tok.chat_template) == {"default", "tool_use"}
    tools = [{"type": "function", "function": {"name": "f", "description": "a <b>", "parameters": {}}}]
    assert tok.apply_chat_template(CHATS[0], tokenize=False) == v4["named"]["default"]
    assert tok.apply_chat_template(CHATS[0], tools=tools, tokenize=False) == v4["named"]["tool_use"]
    assert tok.apply_chat_template(CHATS[0], chat_template="tool_use", tokenize=False) == v4["named"]["by_name"]
    tok.chat_template = {"a": "x", "b": "y"}
    with pytest.raises(ValueError, match="none named 'default'"):
        tok.apply_chat_template(CHATS[0])


@pytest.mark.parametrize("source", [CHAT_DIR, NAMED_DIR])
def test_saved_into_tokenizer_config_as_v4_does(tmp_path, source):
    tok = BertTokenizerFast.from_pretrained(source)
    tok.save_pretrained(tmp_path)
    with open(os.path.join(source, "tokenizer_config.json"), encoding="utf-8") as f:
        v4_written = json.load(f)["chat_template"]
    with open(tmp_path / "tokenizer_config.json", encoding="utf-8") as f:
        assert json.load(f)["chat_template"] == v4_written
    assert not (tmp_path / "chat_template.jinja").exists()
    assert BertTokenizer.from_pretrained(tmp_path).chat_template == tok.chat_template
    assert AutoTokenizer.from_pretrained(tmp_path).chat_template == tok.chat_template


def test_v5_jinja_files_are_read(tmp_path):
    transformers = pytest.importorskip("transformers")
    hf = transformers.BertTokenizer.from_pretrained(NAMED_DIR)
    hf.save_pretrained(tmp_path)
    assert (tmp_path / "chat_template.jinja").exists() or (tmp_path / "additional_chat_templates").exists()
    ours = BertTokenizerFast.from_pretrained(tmp_path)
    assert ours.chat_template == hf.chat_template
    for chat in CHATS:
        assert ours.apply_chat_template(chat) == hf.apply_chat_template(chat, return_dict=False)


def test_chat_template_json_of_processors(tmp_path):
    shutil.copy(os.path.join(ASSETS, "bert", "vocab.txt"), tmp_path / "vocab.txt")
    (tmp_path / "chat_template.json").write_text(json.dumps({"chat_template": "{{ messages[0]['content'] }}!"}))
    assert BertTokenizer.from_pretrained(tmp_path).apply_chat_template(CHATS[0], tokenize=False) == "hello there!"


TEMPLATES = [
    "{% for m in messages %}<{{ m.role }}>{{ m.content | trim }}\n{% endfor %}{% if add_generation_prompt %}<a>{% endif %}",
    "{{ bos_token }}{% for m in messages %}{% if loop.index0 == 1 %}{% break %}{% endif %}{{ m | tojson }}{% endfor %}",
    "{%- for m in messages -%}\n  {{- m['content'] -}}\n  {%- if not loop.last %} | {% endif -%}\n{%- endfor -%}{{ extra }}",
]


@pytest.mark.parametrize("template", TEMPLATES)
def test_rendering_matches_transformers_5(template):
    transformers = pytest.importorskip("transformers")
    hf = transformers.BertTokenizer.from_pretrained(CHAT_DIR)
    ours = BertTokenizerFast.from_pretrained(CHAT_DIR)
    chats = CHATS + [[{"role": "user", "content": "  é <b>\"quoted\"</b>  "}, {"role": "assistant", "content": "ok"}]]
    for chat in chats:
        for prompt in (False, True):
            kw = {"chat_template": template, "add_generation_prompt": prompt, "extra": "!"}
            assert ours.apply_chat_template(chat, tokenize=False, **kw) == hf.apply_chat_template(chat, tokenize=False, **kw)
            assert ours.apply_chat_template(chat, **kw) == hf.apply_chat_template(chat, return_dict=False, **kw)


def test_the_sandbox_and_errors():
    tok = BertTokenizer.from_pretrained(CHAT_DIR)
    import jinja2

    with pytest.raises(jinja2.exceptions.SecurityError):
        tok.apply_chat_template(CHATS[0], chat_template="{{ messages.append(1) }}", tokenize=False)
    with pytest.raises(jinja2.exceptions.TemplateError, match="no system role"):
        tok.apply_chat_template(CHATS[0], chat_template="{{ raise_exception('no system role') }}", tokenize=False)
    with pytest.raises(ValueError, match="not valid Jinja"):
        tok.apply_chat_template(CHATS[0], chat_template="{% for %}", tokenize=False)
    with pytest.raises(ValueError, match="return_dict=True needs tokenize=True"):
        tok.apply_chat_template(CHATS[0], tokenize=False, return_dict=True)
    with pytest.raises(ValueError, match="exclude each other"):
        tok.apply_chat_template(CHATS[0], continue_final_message=True, add_generation_prompt=True)
    with pytest.raises(TypeError, match="list of \\{'role'"):
        tok.apply_chat_template(["hello"])
    with pytest.raises(TypeError, match="tools must be a list of JSON-schema dicts"):
        tok.apply_chat_template(CHATS[0], tools=[len])
    tok.chat_template = None
    with pytest.raises(ValueError, match="no chat_template"):
        tok.apply_chat_template(CHATS[0])
    with pytest.raises(TypeError, match="chat_template must be"):
        BertTokenizer(os.path.join(ASSETS, "bert", "vocab.txt"), chat_template=3)
