"""Chat templates: transformers v4's `apply_chat_template` / `get_chat_template` for every tokenizer.

A chat template is a Jinja template (stored with the tokenizer, see `base_io`) that turns a list of
``{"role": ..., "content": ...}`` messages into the prompt text a chat model was trained on. It is
rendered as transformers renders it, so a template written for transformers gives the same text:

  * in jinja2's immutable sandbox (a template comes from a downloaded file and must not reach Python
    internals or mutate the messages), with ``trim_blocks`` and ``lstrip_blocks`` on and the
    ``loopcontrols`` extension (``{% break %}``);
  * with ``messages``, ``tools``, ``documents``, ``add_generation_prompt``, the tokenizer's special
    tokens (``bos_token``, ...) and any extra keyword argument as variables;
  * with a ``tojson`` filter that does not HTML-escape (Jinja's own does), ``raise_exception(msg)``
    and ``strftime_now(fmt)``;
  * with a ``{% generation %}...{% endgeneration %}`` block marking assistant text, for
    ``return_assistant_tokens_mask``.

jinja2 is imported on first use only.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from datetime import datetime

from .base_encoding import describe as _describe

# Private-use code points that bracket each {% generation %} block while rendering; they are removed
# from the text afterwards and their positions give the assistant character spans. (Rendering into one
# string and locating the marks is simpler than tracking output positions inside Jinja.)
_OPEN, _CLOSE = "\U000f8a01\U000f8a02", "\U000f8a03\U000f8a04"


@functools.lru_cache(maxsize=32)
def compile_template(source: str):
    """A Jinja template string -> a compiled template (cached: programs render the same one repeatedly)."""
    try:
        import jinja2
        from jinja2 import nodes
        from jinja2.ext import Extension, loopcontrols
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError as err:  # pragma: no cover - jinja2 is a dependency
        raise ImportError("apply_chat_template needs jinja2>=3.1 (pip install jinja2)") from err

    class GenerationBlock(Extension):
        """``{% generation %}body{% endgeneration %}`` renders body, bracketed by the span marks."""

        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.CallBlock(self.call_method("_mark"), [], [], body).set_lineno(lineno)

        def _mark(self, caller):
            return _OPEN + caller() + _CLOSE

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[GenerationBlock, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    try:
        return env.from_string(source)
    except jinja2.exceptions.TemplateSyntaxError as err:
        raise ValueError(f"The chat template is not valid Jinja (line {err.lineno}): {err.message}") from err


def _take_spans(text: str) -> tuple[str, list[tuple[int, int]]]:
    """Remove the generation marks; return the clean text and the [start, end) spans they enclosed."""
    if _OPEN not in text:
        return text, []
    out, spans, pos = [], [], 0
    length = 0
    while True:
        start = text.find(_OPEN, pos)
        if start < 0:
            break
        end = text.find(_CLOSE, start)
        if end < 0:
            raise ValueError("A {% generation %} block of the chat template was not closed")
        out.append(text[pos:start])
        length += start - pos
        body = text[start + len(_OPEN) : end]
        out.append(body)
        spans.append((length, length + len(body)))
        length += len(body)
        pos = end + len(_CLOSE)
    out.append(text[pos:])
    return "".join(out), spans


def _messages(chat, where: str) -> list:
    if hasattr(chat, "messages"):  # v4's Conversation objects
        chat = chat.messages
    if not isinstance(chat, (list, tuple)) or not all(isinstance(m, Mapping) for m in chat):
        raise TypeError(f"{where} must be a list of {{'role': ..., 'content': ...}} dicts, got {_describe(chat)}")
    return list(chat)


class ChatTemplateMixin:
    """`chat_template` (set by the base's __init__), `get_chat_template`, `apply_chat_template`."""

    def get_chat_template(self, chat_template: str | None = None, tools: list | None = None) -> str:
        """The Jinja source to use: the argument (a template, or the name of one of the tokenizer's named
        templates), else the tokenizer's own ("tool_use" when tools are given and it has one, else "default")."""
        own = self.chat_template
        if isinstance(own, dict):
            if chat_template is not None and chat_template in own:
                return own[chat_template]
            if chat_template is None:
                if tools is not None and "tool_use" in own:
                    return own["tool_use"]
                if "default" in own:
                    return own["default"]
                raise ValueError(
                    f"This tokenizer has several chat templates and none named 'default'; pass chat_template= one "
                    f"of {sorted(own)} or a template string"
                )
        if chat_template is None:
            if own is None:
                raise ValueError(
                    "This tokenizer has no chat_template and none was passed: set tokenizer.chat_template to a Jinja "
                    "template (see transformers' chat templating guide) or pass chat_template="
                )
            return own
        if not isinstance(chat_template, str):
            raise TypeError(f"chat_template must be a str (a template or a template name), got {_describe(chat_template)}")
        return chat_template

    def apply_chat_template(self, conversation, tools: list | None = None, documents: list | None = None,
                            chat_template: str | None = None, add_generation_prompt: bool = False,
                            continue_final_message: bool = False, tokenize: bool = True, padding=False,
                            truncation=False, max_length: int | None = None, return_tensors=None,
                            return_dict: bool = False, return_assistant_tokens_mask: bool = False,
                            tokenizer_kwargs: dict | None = None, **kwargs):  # fmt: skip
        """Render one conversation (a list of message dicts) or a batch of them with the chat template.

        Returns the text (tokenize=False), else the token ids (no special tokens are added: the template
        writes them), or with return_dict=True the whole encoding (plus ``assistant_masks`` if asked).
        Extra keyword arguments become template variables."""
        if return_dict and not tokenize:
            raise ValueError("return_dict=True needs tokenize=True: there is no encoding of untokenized text")
        if return_assistant_tokens_mask and not return_dict:
            raise ValueError("return_assistant_tokens_mask=True needs return_dict=True")
        if continue_final_message and add_generation_prompt:
            raise ValueError(
                "continue_final_message and add_generation_prompt exclude each other: the first leaves the last "
                "message open for the model to continue, the second starts a new assistant message"
            )
        if continue_final_message and return_assistant_tokens_mask:
            raise ValueError("continue_final_message cannot be combined with return_assistant_tokens_mask")
        if tools is not None:
            if not isinstance(tools, (list, tuple)) or not all(isinstance(t, Mapping) for t in tools):
                raise TypeError(f"tools must be a list of JSON-schema dicts, got {_describe(tools)}")
            tools = list(tools)
        if documents is not None and (not isinstance(documents, (list, tuple))
                                      or not all(isinstance(d, Mapping) for d in documents)):  # fmt: skip
            raise TypeError(f"documents must be a list of dicts (e.g. with 'title' and 'text'), got {_describe(documents)}")
        template = compile_template(self.get_chat_template(chat_template, tools))

        is_batched = (isinstance(conversation, (list, tuple)) and bool(conversation)
                      and (isinstance(conversation[0], (list, tuple)) or hasattr(conversation[0], "messages")))  # fmt: skip
        chats = [_messages(c, f"conversation[{i}]") for i, c in enumerate(conversation)] if is_batched \
            else [_messages(conversation, "conversation")]  # fmt: skip
        variables = {**self.special_tokens_map, **kwargs}  # a keyword argument wins over a special token
        texts, all_spans = [], []
        for chat in chats:
            text = template.render(messages=chat, tools=tools, documents=documents,
                                   add_generation_prompt=add_generation_prompt, **variables)  # fmt: skip
            text, spans = _take_spans(text)
            if continue_final_message:
                text = _open_final_message(text, chat)
            texts.append(text)
            all_spans.append(spans)
        rendered = texts if is_batched else texts[0]
        if not tokenize:
            return rendered
        if return_assistant_tokens_mask and not self.is_fast:
            raise NotImplementedError(
                f"return_assistant_tokens_mask needs character offsets, which {type(self).__name__} (pure Python) "
                "does not track; use the fast tokenizer class"
            )
        out = self(rendered, padding=padding, truncation=truncation, max_length=max_length, add_special_tokens=False,
                   return_tensors=return_tensors, **(tokenizer_kwargs or {}))  # fmt: skip
        if not return_dict:
            return out["input_ids"]
        if return_assistant_tokens_mask:
            masks = [self._assistant_mask(out, i, spans) for i, spans in enumerate(all_spans)]
            out["assistant_masks"] = masks if is_batched else masks[0]  # lists, even with return_tensors (as v4)
        return out

    @staticmethod
    def _assistant_mask(out, row: int, spans: list[tuple[int, int]]) -> list[int]:
        """1 on the tokens of the {% generation %} spans of one row, 0 elsewhere (v4's assistant mask)."""
        ids = out["input_ids"]
        length = len(ids[row]) if isinstance(ids[0], (list, tuple)) or hasattr(ids, "shape") and len(ids.shape) > 1 \
            else len(ids)  # fmt: skip
        mask = [0] * length
        for start, end in spans:
            first = out.char_to_token(row, start)
            if first is None:  # the span was truncated away (and so is every later one)
                break
            last = out.char_to_token(row, end - 1)
            for t in range(first, length if last is None else last + 1):
                mask[t] = 1
        return mask


def _open_final_message(text: str, chat: list) -> str:
    """Cut the rendered chat right after the last message's text, so the model continues that message
    (v4: everything the template writes after it, such as an end-of-turn token, is dropped)."""
    if not chat:
        raise ValueError("continue_final_message=True needs at least one message")
    final = chat[-1].get("content")
    if isinstance(final, (list, tuple)):  # multimodal content: the last text part
        final = final[-1].get("text") if final and isinstance(final[-1], Mapping) else None
    if not isinstance(final, str):
        raise TypeError(f"continue_final_message=True needs the last message's content as text, got {_describe(final)}")
    final = final.strip()
    at = text.rfind(final)
    if at < 0:
        raise ValueError("continue_final_message=True, but the last message's text does not appear in the rendered chat")
    return text[: at + len(final)].rstrip()
