"""What every public model shares: construction from a config, weight init, embeddings plumbing, checkpoints."""
from __future__ import annotations

import logging
import os
from typing import Any, ClassVar

import torch
from torch import nn

from ..config.base import PretrainedConfig
from ..families import FAMILIES
from ..generation.mixin import GenerationMixin

__all__ = ["PreTrainedModel"]

# v4's per-forward hints (padding without a mask) go here, once per model.
padding_log = logging.getLogger("warmstart.models")


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
    # The forward argument that carries the model's input (v4: generation and pipelines read it).
    main_input_name: ClassVar[str] = "input_ids"
    # "int8" once quantize() replaced the decoding linears by int8 ones; None for a float model.
    quantization_mode: str | None = None

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
        if self.config.pruned_heads:
            # A pruned checkpoint's config lists its pruned heads: the layers are built that small, so it loads.
            self.prune_heads(self.config.pruned_heads)

    # ---- head pruning (Michel et al. 2019, "Are Sixteen Heads Really Better than One?") ------------------------
    def prune_heads(self, heads_to_prune: dict[int, list[int]]) -> None:
        """Remove self-attention heads: ``{layer: [head, ...]}`` in the layer's original head numbering.

        The heads are recorded in ``config.pruned_heads`` (accumulating over calls, and saved with the model) and
        their rows of the q/k/v projection and columns of the output projection are dropped, so the layer computes
        what it computed before with those heads' outputs zeroed (``head_mask`` 0), at lower cost. Pruning a head
        again is a no-op.
        """
        if not isinstance(heads_to_prune, dict):
            raise TypeError(f"heads_to_prune must be a dict of layer index -> list of head indices, got "
                            f"{type(heads_to_prune).__name__}")
        layers = self._prunable_layers()
        for layer, heads in heads_to_prune.items():
            if not isinstance(layer, int) or not 0 <= layer < len(layers):
                raise ValueError(f"prune_heads: layer {layer!r} does not exist (the model has {len(layers)} layers)")
            layers[layer].prune(heads)
            merged = set(self.config.pruned_heads.get(layer, [])) | {int(h) for h in heads}
            self.config.pruned_heads[layer] = sorted(merged)

    def _prunable_layers(self) -> list:
        """Each layer's self-attention, in order (the shared stack's ``encoder.layer``)."""
        stack = getattr(self.base_model, "encoder", None)
        if not hasattr(stack, "layer"):
            raise NotImplementedError(f"{type(self).__name__} has no attention layers of its own to prune; prune its "
                                      "parts (e.g. model.encoder.prune_heads(...), model.decoder.prune_heads(...))")
        return [block.attn for block in stack.layer]

    def warn_if_padding_and_no_attention_mask(self, input_ids: torch.Tensor | None,
                                              attention_mask: torch.Tensor | None) -> None:
        """v4's warning: input_ids that look padded (pad_token_id in the first or last column) and no
        attention_mask, so padding is attended to. Given once per model, under the ``warmstart.models`` logger;
        after that the check (a device sync) is skipped."""
        if (attention_mask is not None or input_ids is None or self.config.pad_token_id is None
                or getattr(self, "_warned_padding_no_mask", False)):
            return
        if torch.jit.is_tracing() or torch.compiler.is_compiling():
            return
        if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.shape[1] == 0:
            return  # not ids the backbone accepts: its own check reports them
        if not bool((input_ids[:, [-1, 0]] == self.config.pad_token_id).any()):
            return
        self._warned_padding_no_mask = True
        c = self.config
        text = ("input_ids contain pad_token_id (%s) in their first or last column but no attention_mask was passed, "
                "so padding positions are attended to: pass the tokenizer's attention_mask" % c.pad_token_id)
        ids = {"bos_token_id": c.bos_token_id, "eos_token_id": c.eos_token_id, "sep_token_id": c.sep_token_id}
        same = [n for n, v in ids.items() if v is not None and v == c.pad_token_id]
        if same:
            text += (f". pad_token_id equals {' and '.join(same)}: ignore this if the input is not padded")
        padding_log.warning(text)

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

    def resize_token_embeddings(self, new_num_tokens: int | None = None, pad_to_multiple_of: int | None = None,
                                mean_resizing: bool = True) -> nn.Embedding:
        """Grow or shrink the token table (and an untied output projection) to ``new_num_tokens`` rows.

        As v4.46: with ``mean_resizing`` (the default) added rows are drawn around the old rows' mean, from a normal
        with their covariance scaled by 1e-9 (the mean itself when that covariance is not positive-definite), so the
        new tokens do not shift the next-token distribution (Hewitt 2021, "Initializing new word embeddings for
        pretrained language models"); an untied output bias gets the old biases' mean. ``mean_resizing=False``
        draws them from the init distribution instead.
        """
        old = self.get_input_embeddings()
        if pad_to_multiple_of is not None and (not isinstance(pad_to_multiple_of, int)
                                               or isinstance(pad_to_multiple_of, bool) or pad_to_multiple_of < 1):
            raise ValueError(f"pad_to_multiple_of must be a positive integer, got {pad_to_multiple_of!r}")
        if new_num_tokens is None and pad_to_multiple_of is None:
            return old
        n = old.num_embeddings if new_num_tokens is None else new_num_tokens
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"new_num_tokens must be a positive integer, got {new_num_tokens!r}")
        if pad_to_multiple_of:
            n = -(-n // pad_to_multiple_of) * pad_to_multiple_of
        if n == old.num_embeddings:
            return old
        keep = min(n, old.num_embeddings)
        new = nn.Embedding(n, old.embedding_dim, padding_idx=old.padding_idx if (old.padding_idx or 0) < n else None,
                           device=old.weight.device, dtype=old.weight.dtype)
        self._init_weights(new)
        with torch.no_grad():
            new.weight[:keep] = old.weight[:keep]
            if mean_resizing and n > keep:
                new.weight[keep:] = _rows_around_mean(old.weight, n - keep)
        new.weight.requires_grad_(old.weight.requires_grad)
        self.base_model.embeddings.word_embeddings = new
        out = self.get_output_embeddings()
        if out is not None:
            self._resize_output(out, n, keep, mean_resizing)
        self.config.vocab_size = n
        self.tie_weights()
        return new

    def _resize_output(self, out: nn.Linear, n: int, keep: int, mean_resizing: bool = True) -> None:
        grows = n > keep
        with torch.no_grad():
            if not self.config.tie_word_embeddings:
                weight = out.weight.new_empty(n, out.in_features).normal_(
                    0, getattr(self.config, "initializer_range", .02))
                weight[:keep] = out.weight[:keep]
                if mean_resizing and grows:
                    weight[keep:] = _rows_around_mean(out.weight, n - keep)
                out.weight = nn.Parameter(weight, requires_grad=out.weight.requires_grad)
            if out.bias is not None:
                bias = out.bias.new_zeros(n)
                bias[:keep] = out.bias[:keep]
                # v4 pads a tied projection's bias with zeros and gives an untied one the old biases' mean.
                if mean_resizing and grows and not self.config.tie_word_embeddings:
                    bias[keep:] = out.bias.float().mean().to(bias.dtype)
                out.bias = nn.Parameter(bias, requires_grad=out.bias.requires_grad)
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

        # A quantized model saves as the float model it stands for: Int8Linear.state_dict() gives scales * int8
        # under the usual *.weight names (warmstart.nn.quantize), so this and every other save path need no branch.
        save_pretrained(self, save_directory, **kwargs)

    # ---- fast modes --------------------------------------------------------------------------------------------
    def quantize(self, mode: str = "int8") -> "PreTrainedModel":
        """Int8 weight-only decoding: the ``nn.Linear`` layers of the decoder and its LM head (an
        EncoderDecoderModel's decoder; a causal LM's every linear) become ``Int8Linear`` (int8 weights, one float32
        scale per output row); the embeddings, norms and the encoder stay as they are, a tied head's embedding
        table untouched. In place, for inference only (parameters frozen, eval mode); returns the model. A model
        that does not decode (an encoder, a classifier) is refused. See ``warmstart.nn.quantize``."""
        from ..nn.quantize import quantize_model

        return quantize_model(self, mode)


def _rows_around_mean(old: torch.Tensor, count: int) -> torch.Tensor:
    """``count`` rows from N(mean, 1e-9 * covariance) of ``old``'s rows (v4.46's mean_resizing), or the mean
    repeated when the covariance is not positive-definite (fewer rows than columns, for instance)."""
    rows = old.detach().float()
    mean = rows.mean(dim=0)
    centred = rows - mean
    covariance = centred.T @ centred / rows.shape[0]  # (C, C)
    factor, info = torch.linalg.cholesky_ex(covariance)
    if int(info) != 0:  # not positive-definite: no distribution to draw from
        return mean.expand(count, -1).to(old.dtype)
    noise = torch.randn(count, rows.shape[1], device=rows.device)
    return (mean + (noise @ factor.T) * 1e-9 ** 0.5).to(old.dtype)  # covariance scaled by 1e-9


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
