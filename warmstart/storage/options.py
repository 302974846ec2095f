"""LoadOptions: the one set of keywords every ``from_pretrained`` takes to find a checkpoint (transformers' names).

Kept apart from ``hub`` (which imports huggingface_hub, slow to import) so configs and tokenizers can split their
keyword arguments without paying for it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["LoadOptions", "is_offline"]

_TRUE = {"1", "on", "yes", "true"}


@dataclass(frozen=True)
class LoadOptions:
    """Where and how to look for a checkpoint: transformers' hub keywords, shared by every ``from_pretrained``."""

    cache_dir: str | os.PathLike | None = None
    revision: str | None = None
    subfolder: str = ""
    local_files_only: bool = False
    force_download: bool = False
    token: str | bool | None = None
    proxies: dict | None = None

    # Keywords transformers accepts that change nothing here (our weights need no remote code, loading is always
    # memory-light, the device is chosen after loading): taken out of the keyword arguments and ignored.
    IGNORED = ("resume_download", "trust_remote_code", "low_cpu_mem_usage", "device_map", "use_safetensors",
               "_from_auto", "_commit_hash", "use_auth_token", "user_agent", "from_auto_class")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def pop_from(cls, kwargs: dict[str, Any]) -> "LoadOptions":
        """Take the loading options out of a ``from_pretrained`` keyword dict (the rest are config fields or
        model arguments)."""
        for name in cls.IGNORED:
            kwargs.pop(name, None)
        values = {name: kwargs.pop(name) for name in cls.names() if name in kwargs}
        if values.get("subfolder") is None:
            values.pop("subfolder", None)
        return cls(**values)

    @classmethod
    def peek(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The loading options among ``kwargs``, left in place (they travel on to a later from_pretrained)."""
        return {name: kwargs[name] for name in cls.names() if name in kwargs}

    @classmethod
    def of(cls, options: "LoadOptions | dict[str, Any] | None") -> "LoadOptions":
        if isinstance(options, LoadOptions):
            return options
        return cls.pop_from(dict(options or {}))

    def replace(self, **changes: Any) -> "LoadOptions":
        return LoadOptions(**{**{n: getattr(self, n) for n in self.names()}, **changes})

    @property
    def offline(self) -> bool:
        """True when nothing may touch the network: local_files_only, or the environment's offline switch."""
        return self.local_files_only or is_offline()


def is_offline() -> bool:
    """huggingface_hub's and transformers' offline switches, read now (not when huggingface_hub was imported)."""
    return any(os.environ.get(var, "").strip().lower() in _TRUE for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
