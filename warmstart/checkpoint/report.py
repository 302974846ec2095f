"""The loading report both non-PyTorch wings give: what fits, what is new, what is left over, and the errors.

transformers' rules, as strict as our PyTorch loader: a shape mismatch is an error unless
``ignore_mismatched_sizes`` (then the weight keeps its fresh value and is reported); a weight the model needs that
the checkpoint lacks is an error unless ``may_be_new`` says a checkpoint may lack it (a head's, or the pooler and
cross-attention a warm start adds); the rest is logged and returned as transformers' loading-info dict.
Framework-free: names and shapes only.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

__all__ = ["short_list", "loading_report"]

log = logging.getLogger("warmstart")


def short_list(names: list[str], n: int = 8) -> str:
    return ", ".join(names[:n]) + (f" ... (+{len(names) - n} more)" if len(names) > n else "")


def loading_report(source: str, model: str, wanted: Iterable[str], loaded: Iterable[str], unexpected: list[str],
                   mismatched: list[tuple[str, tuple, tuple]], *, may_be_new: Callable[[str], bool],
                   ignore_mismatched: bool, error: type[Exception], what: str = "weight") -> dict:
    """Check a fit and log it. ``wanted``: the model's names in order; ``loaded``: those the checkpoint fills;
    ``mismatched``: (name, checkpoint shape, model shape). Returns the loading-info dict."""
    if mismatched and not ignore_mismatched:
        shown = "; ".join(f"{k} is {g} in the checkpoint but {w} in the model" for k, g, w in mismatched)
        raise error(f"{source}: shape mismatch: {shown}. Check the config (vocab_size, hidden_size, num_labels...) "
                    "or pass ignore_mismatched_sizes=True to re-initialise these")
    loaded, bad = set(loaded), {k for k, _, _ in mismatched}
    missing = [k for k in wanted if k not in loaded and k not in bad]
    required = [k for k in missing if not may_be_new(k)]
    if required:
        raise error(f"{source} lacks {len(required)} {what}(s) that {model} needs: {short_list(required)}. Does "
                    "the config match the checkpoint (num_hidden_layers, position_embedding_type...)?")
    if missing:
        log.warning("%s: newly initialised %ss of %s (train them before use): %s", source, what, model,
                    short_list(missing))
    if unexpected:
        log.info("%s: checkpoint %ss not used by %s: %s", source, what, model, short_list(unexpected))
    for key, got, want in mismatched:
        log.warning("%s: %s re-initialised: shape %s in the checkpoint, %s in the model", source, key, got, want)
    return {"missing_keys": missing, "unexpected_keys": unexpected, "mismatched_keys": mismatched, "error_msgs": []}
