"""from_pretrained / save_pretrained for tokenizers, in transformers' on-disk layout.

A tokenizer folder holds the vocabulary file(s) named by the class's `vocab_files_names`, plus
`tokenizer_config.json` (constructor arguments, `added_tokens_decoder`, `tokenizer_class`),
`special_tokens_map.json`, for slow tokenizers `added_tokens.json`, and for fast ones `tokenizer.json`.
We read every variant transformers v4 and v5 write (special tokens as plain strings or as
`{"content": ..., "__type": "AddedToken"}` dicts, the legacy `added_tokens.json`) and write a layout
both versions load.
"""

from __future__ import annotations

import json
import os

from tokenizers import AddedToken

from ..storage.files import read_json
from ..storage.options import LoadOptions
from .base_special import SPECIAL_TOKENS_ATTRIBUTES

TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
ADDED_TOKENS_FILE = "added_tokens.json"
FAST_TOKENIZER_FILE = "tokenizer.json"
CHAT_TEMPLATE_FILE = "chat_template.jinja"  # v5's file; v4.46 reads and writes tokenizer_config.json's key
CHAT_TEMPLATE_JSON_FILE = "chat_template.json"
ADDITIONAL_CHAT_TEMPLATES_DIR = "additional_chat_templates"

# Keys transformers v5 writes into tokenizer_config.json that describe one call's settings or the
# loading machinery, not the tokenizer; reading them back as constructor arguments would be wrong.
_RUNTIME_KEYS = {
    "tokenizer_class", "auto_map", "added_tokens_decoder", "name_or_path", "is_local", "local_files_only",
    "backend", "files_loaded", "max_length", "stride", "truncation_strategy", "pad_to_multiple_of",
    "pad_token_type_id", "padding_strategy", "processor_class", "_commit_hash", "chat_template",
}  # fmt: skip


def added_token_from_json(value, special: bool | None = None):
    """A token as stored in JSON (a string, or a dict of AddedToken fields) -> str or AddedToken."""
    if value is None or isinstance(value, (str, AddedToken)):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        fields = {k: value[k] for k in ("single_word", "lstrip", "rstrip", "normalized", "special") if k in value}
        if special is not None:
            fields.setdefault("special", special)
        return AddedToken(value["content"], **fields)
    if isinstance(value, list):
        return [added_token_from_json(v, special) for v in value]
    raise ValueError(f"Cannot read a token from {value!r}: expected a string or a dict with a 'content' string")


def added_token_to_json(token: AddedToken) -> dict:
    return {
        "content": token.content,
        "lstrip": token.lstrip,
        "normalized": token.normalized,
        "rstrip": token.rstrip,
        "single_word": token.single_word,
        "special": token.special,
    }


def _read_json(path: str | None) -> dict:
    return {} if path is None else read_json(path)


# The keyword AutoTokenizer passes the folder it already resolved with, so the class does not resolve the name a
# second time (for a repo id, a second round trip to the Hub); popped before the constructor sees the kwargs.
RESOLVED_FOLDER_KWARG = "_resolved_folder"


def resolve_folder(name_or_path: str, options: LoadOptions) -> str:
    """The local folder holding a tokenizer named by a folder or a Hugging Face Hub repo id.

    A repo id goes through the one resolver of the package (storage.hub): the cache, or a download of the
    tokenizer files when the network is allowed."""
    folder = os.path.join(name_or_path, options.subfolder) if options.subfolder else name_or_path
    if os.path.isdir(folder):
        return folder
    if os.path.isdir(name_or_path):
        raise FileNotFoundError(f"Tokenizer folder {name_or_path!r} has no sub-folder {options.subfolder!r}")
    if os.path.exists(name_or_path) or name_or_path.startswith((".", "/")) or name_or_path.count("/") > 1:
        raise FileNotFoundError(f"Tokenizer path {name_or_path!r} is not a folder (subfolder={options.subfolder!r})")
    from ..storage.hub import TOKENIZER_FILES, resolve  # imported on use: huggingface_hub is slow to import

    return os.fspath(resolve(name_or_path, options, files=TOKENIZER_FILES, what="tokenizer"))


def files_in(folder: str):
    """f(filename) -> its path in ``folder``, or None when the folder has no such file."""
    return lambda name: (p if os.path.isfile(p := os.path.join(folder, name)) else None)


def _resolver(name_or_path: str, options: LoadOptions):
    """Return f(filename) -> local path or None, for a folder or a Hugging Face Hub repo id."""
    return files_in(resolve_folder(name_or_path, options))


class PretrainedIOMixin:
    """Adds `from_pretrained` and `save_pretrained` to a tokenizer class."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *init_inputs, **kwargs):
        """Build the tokenizer from a folder (or Hub repo id) written by transformers or by us.

        Loading options are those of every from_pretrained (cache_dir, revision, subfolder, local_files_only,
        token, ...); other keyword arguments override what the folder's tokenizer_config.json says."""
        path = os.fspath(pretrained_model_name_or_path)
        options = LoadOptions.pop_from(kwargs)
        kwargs.pop("use_fast", None)
        folder = kwargs.pop(RESOLVED_FOLDER_KWARG, None)

        if os.path.isfile(path):  # v4 allowed pointing straight at the (single) vocabulary file
            if len(cls.vocab_files_names) != 1 and "tokenizer_file" not in cls.vocab_files_names:
                raise ValueError(f"{cls.__name__} needs a folder, not the single file {path!r}")
            first = next(iter(cls.vocab_files_names))
            return cls(*init_inputs, **{first: path, "name_or_path": path, **kwargs})

        resolve = files_in(folder) if folder is not None else _resolver(path, options)
        # fallback_files_names: files a class can also build itself from (e.g. the slow BERT class
        # reads its vocabulary out of tokenizer.json when a v5 save left no vocab.txt).
        wanted_files = {**getattr(cls, "fallback_files_names", {}), **cls.vocab_files_names}
        files = {key: resolve(name) for key, name in wanted_files.items()}
        if not any(files.values()) and not any(k in kwargs for k in wanted_files):
            wanted = ", ".join(sorted(set(wanted_files.values())))
            raise FileNotFoundError(f"No vocabulary file for {cls.__name__} in {path!r}: looked for {wanted}")

        config = _read_json(resolve(TOKENIZER_CONFIG_FILE))
        init_kwargs = {k: v for k, v in config.items() if k not in _RUNTIME_KEYS}
        for name in (*SPECIAL_TOKENS_ATTRIBUTES, "additional_special_tokens", "extra_special_tokens"):
            if name in init_kwargs:
                init_kwargs[name] = added_token_from_json(init_kwargs[name], special=True)
        for name, value in _read_json(resolve(SPECIAL_TOKENS_MAP_FILE)).items():
            if name in SPECIAL_TOKENS_ATTRIBUTES or name in ("additional_special_tokens", "extra_special_tokens"):
                init_kwargs[name] = added_token_from_json(value, special=True)

        added: dict[int, AddedToken] = {}
        for index, value in (config.get("added_tokens_decoder") or {}).items():
            added[int(index)] = added_token_from_json(value, special=True)
            if not isinstance(added[int(index)], AddedToken):
                added[int(index)] = AddedToken(added[int(index)], special=True, normalized=False)
        legacy_added = _read_json(resolve(ADDED_TOKENS_FILE))
        specials = {str(v) for k, v in init_kwargs.items() if k in SPECIAL_TOKENS_ATTRIBUTES and v is not None}
        for content, index in sorted(legacy_added.items(), key=lambda kv: kv[1]):
            if int(index) not in added:
                is_special = content in specials
                added[int(index)] = AddedToken(content, special=is_special, normalized=not is_special)
        if added:
            init_kwargs["added_tokens_decoder"] = added
        chat_template = _read_chat_templates(resolve, config)
        if chat_template is not None:
            init_kwargs["chat_template"] = chat_template

        init_kwargs.update({k: v for k, v in files.items() if v is not None})
        init_kwargs["name_or_path"] = path
        init_kwargs.update(kwargs)
        return cls(*init_inputs, **init_kwargs)

    def save_pretrained(self, save_directory, legacy_format: bool | None = None, filename_prefix: str | None = None,
                        push_to_hub: bool = False, **kwargs) -> tuple[str, ...]:  # fmt: skip
        """Write tokenizer_config.json, special_tokens_map.json and the vocabulary; return the paths."""
        if push_to_hub:
            raise NotImplementedError("push_to_hub is not supported; save locally and upload with huggingface_hub")
        save_directory = os.fspath(save_directory)
        if os.path.isfile(save_directory):
            raise ValueError(f"save_pretrained needs a folder, but {save_directory!r} is a file")
        os.makedirs(save_directory, exist_ok=True)
        prefix = f"{filename_prefix}-" if filename_prefix else ""

        paths = {*self.vocab_files_names, *getattr(self, "fallback_files_names", {}), "vocab_file", "tokenizer_file"}
        config = {k: v for k, v in self.init_kwargs.items() if k not in paths and k not in _RUNTIME_KEYS}
        for k in (*SPECIAL_TOKENS_ATTRIBUTES, "additional_special_tokens", "extra_special_tokens"):
            config.pop(k, None)
        config.update(self.special_tokens_map)
        config["added_tokens_decoder"] = {str(i): added_token_to_json(t) for i, t in sorted(self.added_tokens_decoder.items())}
        config["model_max_length"] = self.model_max_length
        config["clean_up_tokenization_spaces"] = self.clean_up_tokenization_spaces
        config["padding_side"] = self.padding_side
        config["truncation_side"] = self.truncation_side
        # Like transformers, name the slow class: both versions map it to the right loader.
        name = type(self).__name__
        config["tokenizer_class"] = name[:-4] if name.endswith("Fast") else name
        template = getattr(self, "chat_template", None)
        if isinstance(template, dict):  # v4.46's layout for named templates: a list of records
            config["chat_template"] = [{"name": k, "template": v} for k, v in template.items()]
        elif template is not None:  # v4.46 writes the template into tokenizer_config.json
            config["chat_template"] = template
        config = {k: _jsonable(v) for k, v in config.items() if _is_jsonable(_jsonable(v))}

        written = []
        config_file = os.path.join(save_directory, prefix + TOKENIZER_CONFIG_FILE)
        with open(config_file, "w", encoding="utf-8") as f:
            f.write(json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        written.append(config_file)
        map_file = os.path.join(save_directory, prefix + SPECIAL_TOKENS_MAP_FILE)
        with open(map_file, "w", encoding="utf-8") as f:
            f.write(json.dumps(self.special_tokens_map, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        written.append(map_file)
        written.extend(self.save_vocabulary(save_directory, filename_prefix=filename_prefix))
        written.extend(self._save_extra_files(save_directory, prefix))
        return tuple(written)

    def _save_extra_files(self, save_directory: str, prefix: str) -> tuple[str, ...]:
        """Slow: added_tokens.json; fast: tokenizer.json. Overridden by the two bases."""
        return ()


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _read_chat_templates(resolve, config: dict):
    """The chat template(s) of a tokenizer folder, from any layout transformers writes: v4 puts it in
    tokenizer_config.json ("chat_template": a string, or a list of {"name", "template"} records); v5
    writes chat_template.jinja (plus additional_chat_templates/<name>.jinja for named ones); processors
    write chat_template.json ({"chat_template": ...}). The .jinja files win, as in v5."""
    template = config.get("chat_template")
    jinja_file = resolve(CHAT_TEMPLATE_FILE)
    if jinja_file is not None:
        template = _read_text(jinja_file)
    elif template is None and (json_file := resolve(CHAT_TEMPLATE_JSON_FILE)) is not None:
        template = read_json(json_file).get("chat_template")
    anchor = resolve(TOKENIZER_CONFIG_FILE) or jinja_file
    extra_dir = os.path.join(os.path.dirname(anchor), ADDITIONAL_CHAT_TEMPLATES_DIR) if anchor else None
    if extra_dir and os.path.isdir(extra_dir):
        named = {name[: -len(".jinja")]: _read_text(os.path.join(extra_dir, name))
                 for name in sorted(os.listdir(extra_dir)) if name.endswith(".jinja")}  # fmt: skip
        if named:
            if isinstance(template, str):
                named = {"default": template, **named}
            template = named
    return template


def _is_jsonable(value) -> bool:
    # Constructor arguments like a live `tokenizers.Tokenizer` object cannot be written; they are
    # rebuilt from the vocabulary files instead.
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _jsonable(value):
    if isinstance(value, AddedToken):
        return value.content
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(_jsonable(v) for v in value)
    return value
