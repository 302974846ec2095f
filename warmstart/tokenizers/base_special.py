"""Special-token attributes (`cls_token`, `pad_token_id`, ...) shared by slow and fast tokenizers.

The seven named tokens plus `additional_special_tokens` behave as in transformers: the attribute
gives the token string (or None), `<name>_id` its id, both are assignable, and `special_tokens_map`,
`all_special_tokens`, `all_special_ids` list them in this fixed attribute order.
"""

from __future__ import annotations

from tokenizers import AddedToken

SPECIAL_TOKENS_ATTRIBUTES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


def check_token(name: str, value):
    if value is None or isinstance(value, (str, AddedToken)):
        return value
    raise TypeError(f"{name} must be a str or tokenizers.AddedToken, got {type(value).__name__}: {value!r}")


class SpecialTokensMixin:
    """Storage and accessors for special tokens; needs `convert_tokens_to_ids` / `convert_ids_to_tokens`."""

    def _init_special_tokens(self, kwargs: dict) -> None:
        """Pop the special-token kwargs (and v5's `extra_special_tokens` alias) into `_special_tokens_map`."""
        self._special_tokens_map: dict[str, str | AddedToken | None] = dict.fromkeys(SPECIAL_TOKENS_ATTRIBUTES)
        for name in SPECIAL_TOKENS_ATTRIBUTES:
            self._special_tokens_map[name] = check_token(name, kwargs.pop(name, None))
        extra = kwargs.pop("additional_special_tokens", None)
        extra_v5 = kwargs.pop("extra_special_tokens", None)
        if extra is None:
            extra = extra_v5
        if isinstance(extra, dict):  # v5 "model specific" named extras: keep the tokens, drop the names
            extra = list(extra.values())
        if extra is not None and not isinstance(extra, (list, tuple)):
            raise TypeError(f"additional_special_tokens must be a list of tokens, got {type(extra).__name__}")
        self._additional_special_tokens: list[str | AddedToken] = [
            check_token("additional_special_tokens[i]", t) for t in (extra or [])
        ]
        # Bumped on every change, so subclasses can cache anything derived from the special tokens.
        self.special_tokens_version = 0

    # -- the named tokens --------------------------------------------------------------------------
    def _get_special(self, name: str) -> str | None:
        value = self._special_tokens_map[name]
        return None if value is None else str(value)

    def _set_special(self, name: str, value) -> None:
        self._special_tokens_map[name] = check_token(name, value)
        self.special_tokens_version += 1

    def _get_special_id(self, name: str) -> int | None:
        value = self._special_tokens_map[name]
        return None if value is None else self.convert_tokens_to_ids(str(value))

    def _set_special_id(self, name: str, value: int | None) -> None:
        if value is None:
            self._special_tokens_map[name] = None
            self.special_tokens_version += 1
            return
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name}_id must be an int, got {type(value).__name__}: {value!r}")
        self._special_tokens_map[name] = self.convert_ids_to_tokens(value)
        self.special_tokens_version += 1

    @property
    def additional_special_tokens(self) -> list[str] | None:
        """The extra special tokens as strings; None after ``additional_special_tokens = None`` (as in v4,
        which tells "explicitly unset" apart from "none given", [])."""
        if self.__dict__.get("_additional_unset"):
            return None
        return [str(t) for t in self._additional_special_tokens]

    @additional_special_tokens.setter
    def additional_special_tokens(self, value) -> None:
        if value is not None and not isinstance(value, (list, tuple)):
            raise TypeError(f"additional_special_tokens must be a list of tokens or None, got {type(value).__name__}: {value!r}")
        self._additional_special_tokens = [check_token("additional_special_tokens[i]", t) for t in (value or [])]
        self._additional_unset = value is None
        self.special_tokens_version += 1

    @property
    def additional_special_tokens_ids(self) -> list[int] | None:
        return self.convert_tokens_to_ids(self.additional_special_tokens)

    @additional_special_tokens_ids.setter
    def additional_special_tokens_ids(self, values) -> None:
        """v4: setting the ids sets the tokens they stand for (ids must be in the vocabulary)."""
        if values is None:
            self.additional_special_tokens = None
            return
        if not isinstance(values, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise TypeError(f"additional_special_tokens_ids must be a list of int ids, got {values!r}")
        size = len(self)
        bad = [v for v in values if not 0 <= v < size]
        if bad:
            raise ValueError(f"additional_special_tokens_ids {bad} are outside the vocabulary (ids 0..{size - 1})")
        self.additional_special_tokens = [self.convert_ids_to_tokens(v) for v in values]

    # v5 name for the same list
    extra_special_tokens = additional_special_tokens

    @property
    def pad_token_type_id(self) -> int:
        return 0

    # -- collections -------------------------------------------------------------------------------
    @property
    def special_tokens_map(self) -> dict[str, str | list[str]]:
        """The set special tokens as {attribute: token string}, v4 layout (additional ones as a list)."""
        out: dict[str, str | list[str]] = {
            name: str(value) for name, value in self._special_tokens_map.items() if value is not None
        }
        if self._additional_special_tokens:
            out["additional_special_tokens"] = self.additional_special_tokens
        return out

    @property
    def special_tokens_map_extended(self) -> dict:
        """Like `special_tokens_map`, but with AddedToken objects kept where they were given."""
        out: dict = {name: value for name, value in self._special_tokens_map.items() if value is not None}
        if self._additional_special_tokens:
            out["additional_special_tokens"] = list(self._additional_special_tokens)
        return out

    @property
    def all_special_tokens_extended(self) -> list[str | AddedToken]:
        seen, out = set(), []
        for value in [*self._special_tokens_map.values(), *self._additional_special_tokens]:
            if value is not None and str(value) not in seen:
                seen.add(str(value))
                out.append(value)
        return out

    @property
    def all_special_tokens(self) -> list[str]:
        return [str(t) for t in self.all_special_tokens_extended]

    @property
    def all_special_ids(self) -> list[int]:
        return self.convert_tokens_to_ids(self.all_special_tokens)


def _token_property(name: str) -> property:
    return property(
        lambda self: self._get_special(name),
        lambda self, value: self._set_special(name, value),
        doc=f"The {name.replace('_', ' ')} as a string, or None when the tokenizer has none.",
    )


def _id_property(name: str) -> property:
    return property(
        lambda self: self._get_special_id(name),
        lambda self, value: self._set_special_id(name, value),
        doc=f"The id of the {name.replace('_', ' ')}, or None when the tokenizer has none.",
    )


for _name in SPECIAL_TOKENS_ATTRIBUTES:
    setattr(SpecialTokensMixin, _name, _token_property(_name))
    setattr(SpecialTokensMixin, _name + "_id", _id_property(_name))
del _name
