"""The PyTorch wing's public model classes: one thin module per family, found through the family records.

Names resolve lazily (``warmstart.models.BertModel`` imports only ``models/bert.py``), and the modules are the ones
the family records name, so adding a family adds no line here.
"""
from __future__ import annotations

import importlib

from ..families import FAMILIES

# Modules with public classes that no family record names (the Auto classes, the shared base class).
_SHARED = ("warmstart.models.auto", "warmstart.models.base")


def _declared() -> dict[str, str]:
    """Class name -> module, for every PyTorch class a family record names."""
    out = {}
    for record in FAMILIES.values():
        for path in record.classes.get("pt", {}).values():
            module, _, name = path.partition(":")
            out[name] = module
    return out


def modules() -> list[str]:
    """Every module of this wing with public classes: the families' own, then the shared ones."""
    return sorted(set(_declared().values())) + list(_SHARED)


def __getattr__(name: str):
    module = _declared().get(name)
    candidates = [module] if module else modules()
    for candidate in candidates:
        mod = importlib.import_module(candidate)
        if name in getattr(mod, "__all__", ()):
            value = getattr(mod, name)
            globals()[name] = value
            return value
    raise AttributeError(f"module 'warmstart.models' has no attribute {name!r}")


def __dir__():
    return sorted(set(_declared()) | {n for m in modules() for n in getattr(importlib.import_module(m), "__all__", ())})
