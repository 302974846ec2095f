"""What every public model shares: construction from a config, weight init, embeddings plumbing, checkpoints."""
from __future__ import annotations

import os
from typing import Any, ClassVar

import torch
from torch import nn

from ..config.base import PretrainedConfig
from ..families import FAMILIES
from ..generation.mixin import GenerationMixin

__all__ = ["PreTrainedModel"]


class PreTrainedModel(nn.Module, GenerationMixin):
    config_class: ClassVar[type[PretrainedConfig]] = PretrainedConfig
    # Attribute holding the bare backbone inside head models ("bert" for BertFor*); "" for the backbone itself.
    base_model_prefix: ClassVar[str] = ""
    # Name of the family's key map in checkpoint.keymaps, read from the family record of ``config_class``.
    keymap_name: ClassVar[str] = ""
    # Our parameter names (fnmatch patterns) that may be absent from a checkpoint and are then freshly initialised
    # and reported; every other missing weight is an error (a config asking for more layers than were saved).
    new_weights_ok: ClassVar[tuple[str, ...]] = ()
    supports_gradient_checkpointing = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        record = FAMILIES.get(cls.config_class.model_type)
        if record is not None and record.keymap:
            cls.keymap_name = record.keymap

    def __init__(self, config: PretrainedConfig, *args: Any, **kwargs: Any):
        super().__init__()
        if not isinstance(config, PretrainedConfig):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}")
        self.config = config

    # ---- init ------------------------------------------------------------------------------------------------
    def post_init(self) -> None:
        self.apply(self._init_weights)
        self.tie_weights()

    def _init_weights(self, module: nn.Module) -> None:
        std = getattr(self.config, "initializer_range", 0.02)
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    # ---- embeddings --------------------------------------------------------------------------------------------
    @property
    def base_model(self) -> nn.Module:
        return getattr(self, self.base_model_prefix, self) if self.base_model_prefix else self

    def get_input_embeddings(self) -> nn.Embedding:
        return self.base_model.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.base_model.embeddings.word_embeddings = value
        self.tie_weights()

    def get_output_embeddings(self) -> nn.Linear | None:
        return None

    def set_output_embeddings(self, value: nn.Linear) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no output embeddings")

    def tie_weights(self) -> None:
        """Share the input embedding matrix with the output projection (config.tie_word_embeddings)."""
        out = self.get_output_embeddings()
        if out is not None and self.config.tie_word_embeddings:
            out.weight = self.get_input_embeddings().weight
            _sparse_lookup_gradient(self.base_model)

    def resize_token_embeddings(self, new_num_tokens: int | None = None, pad_to_multiple_of: int | None = None
                                ) -> nn.Embedding:
        old = self.get_input_embeddings()
        if new_num_tokens is None and pad_to_multiple_of is None:
            return old
        n = old.num_embeddings if new_num_tokens is None else new_num_tokens
        if pad_to_multiple_of:
            n = -(-n // pad_to_multiple_of) * pad_to_multiple_of
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"new_num_tokens must be a positive integer, got {new_num_tokens!r}")
        keep = min(n, old.num_embeddings)
        new = nn.Embedding(n, old.embedding_dim, padding_idx=old.padding_idx if (old.padding_idx or 0) < n else None,
                           device=old.weight.device, dtype=old.weight.dtype)
        self._init_weights(new)
        with torch.no_grad():
            new.weight[:keep] = old.weight[:keep]
        self.base_model.embeddings.word_embeddings = new
        out = self.get_output_embeddings()
        if out is not None:
            self._resize_output(out, n, keep)
        self.config.vocab_size = n
        self.tie_weights()
        return new

    def _resize_output(self, out: nn.Linear, n: int, keep: int) -> None:
        if not self.config.tie_word_embeddings:
            weight = out.weight.new_empty(n, out.in_features).normal_(0, getattr(self.config, "initializer_range", .02))
            weight[:keep] = out.weight.detach()[:keep]
            out.weight = nn.Parameter(weight)
        if out.bias is not None:
            bias = out.bias.new_zeros(n)
            bias[:keep] = out.bias.detach()[:keep]
            out.bias = nn.Parameter(bias)
        out.out_features = n

    # ---- conveniences ------------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def num_parameters(self, only_trainable: bool = False) -> int:
        params = {id(p): p for p in self.parameters() if p.requires_grad or not only_trainable}
        return sum(p.numel() for p in params.values())

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict | None = None) -> None:
        for m in self.modules():
            if hasattr(m, "gradient_checkpointing"):
                m.gradient_checkpointing = True

    def gradient_checkpointing_disable(self) -> None:
        for m in self.modules():
            if hasattr(m, "gradient_checkpointing"):
                m.gradient_checkpointing = False

    @property
    def is_gradient_checkpointing(self) -> bool:
        return any(getattr(m, "gradient_checkpointing", False) for m in self.modules())

    # ---- checkpoints -------------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *model_args: Any, **kwargs: Any):
        # The checkpoint layer (a lower one) is imported on first use: building a model from a config, the common
        # case in scripts and tests, then pays nothing for safetensors, the key maps and huggingface_hub.
        from ..checkpoint.pretrained import load_pretrained

        return load_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs)

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> None:
        from ..checkpoint.pretrained import save_pretrained

        save_pretrained(self, save_directory, **kwargs)


def _densify(weight: torch.Tensor) -> None:
    if weight.grad is not None and weight.grad.is_sparse:
        weight.grad = weight.grad.to_dense()


def _sparse_lookup_gradient(base: nn.Module) -> None:
    """Let a tied embedding's lookup send its gradient as sparse rows.

    The output projection gives the shared (vocab, hidden) matrix a dense gradient anyway; the lookup touches only
    the rows of the batch's tokens, so autograd adds those rows into it instead of zero-filling and adding a second
    full-size buffer (two passes over vocab x hidden floats per step). A hook turns a gradient that arrives sparse
    on its own (the lookup used without the head) into a dense one, so optimizers always see a dense ``.grad``.
    The nn.Embedding itself stays ``sparse=False``: DistributedDataParallel reads that flag to expect sparse grads.
    """
    embeddings = getattr(base, "embeddings", None)
    if not hasattr(embeddings, "sparse_lookup"):
        return
    embeddings.sparse_lookup = True
    w = embeddings.word_embeddings.weight
    hooks = getattr(w, "_post_accumulate_grad_hooks", None) or {}
    if w.requires_grad and _densify not in hooks.values():
        w.register_post_accumulate_grad_hook(_densify)
