"""Int8 weight-only linear layers for decoding (``model.quantize("int8")``).

A decode step multiplies a few rows (batch x beams) by every weight matrix of the decoder and its vocabulary head:
it is bound by how fast the weights stream from memory. Stored as int8 with one float32 scale per output row
(symmetric: ``w ~= scale * q``, ``q`` in [-127, 127], ``scale = max|w_row| / 127``), they stream 4x fewer bytes.

The kernel is torch's own ``aten._weight_int8pack_mm`` (measured against the alternatives in
results/fast_modes/README.md): it reads int8 weights and bfloat16 inputs and accumulates in float32. Its float32
input path is a scalar loop 10-40x slower than float32 MKL, so inputs are rounded to bfloat16 for the product and
everything around the linear layers (norms, softmax, residuals) stays in the model's dtype; the per-row scale and
the bias are applied in float32 afterwards. Its cost grows with the rows: it beats packed float32 most at one row
(1.3-3.4x per product; the LM head up to 4-8 rows) and loses to a GEMM on dequantized weights above 8 rows, so
larger products (prefill, big batches) dequantize the matrix to bfloat16 and run oneDNN's GEMM where the CPU has
bf16 hardware (AMX / AVX512-BF16: faster than float32 there). Without it (AVX2) the kernel stays: it still beats
float32 up to about 8 rows, and for more rows it is slower than float32 (up to 2x at 64), said once.

The kernel needs ``in_features`` to be a multiple of 16 (others crash or give wrong results on AVX-512): such
layers stay float ``nn.Linear``. A quantized model is for inference: its parameters are frozen, training mode and
inputs that need a gradient are refused. ``save_pretrained`` writes the dequantized float weights under the usual
names (a state_dict hook: a plain transformers folder, whichever save path writes it; a tied head's weight is left
to the embeddings, as for a float model); loading it and quantizing again gives the same int8 weights.
"""
from __future__ import annotations

import warnings
from collections import Counter

import torch
import torch.nn.functional as F
from torch import nn

from ..families import is_causal
from ..hardware import cpu

__all__ = ["Int8Linear", "quantize_model", "quantize_weight", "MODES", "KERNEL_MAX_ROWS"]

MODES = ("int8",)
KERNEL_MAX_ROWS = 8  # above this many rows the int8 kernel loses to a GEMM on dequantized weights (AMX CPUs)
_K_MULTIPLE = 16  # the kernel's AVX-512 path needs in_features % 16 == 0
_warned: set[str] = set()


def _warn_once(key: str, text: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(text, stacklevel=3)


def quantize_weight(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 (out, in), float32 scales (out,)): symmetric per output row, ``weight ~= scales[:, None] * q``."""
    w = weight.detach().float()
    scales = w.abs().amax(dim=1).clamp_min(1e-12) / 127  # an all-zero row gets a tiny scale and zeros
    q = torch.round(w / scales[:, None]).clamp_(-127, 127).to(torch.int8)
    return q, scales


class Int8Linear(nn.Module):
    """``y = x @ (scales * weight_int8).T + bias``, for any leading shape of ``x``; see the module docstring."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("weight_int8", torch.zeros(out_features, in_features, dtype=torch.int8, device=device))
        self.register_buffer("scales", torch.ones(out_features, dtype=torch.float32, device=device))
        self.register_buffer("bias", torch.zeros(out_features, dtype=dtype, device=device) if bias else None)
        # The kernel's own scale argument is bfloat16 (a per-row scale rounded to 8 bits would bias whole rows);
        # it gets ones and the float32 scales are applied after.
        self.register_buffer("_unit", torch.ones(out_features, dtype=torch.bfloat16, device=device),
                             persistent=False)
        # True when the float weight was shared with another module (a tied LM head and its word embeddings,
        # tie_encoder_decoder): state_dict() then leaves the weight to that module, as for a float tied head.
        self.shared_weight = False
        self.train(False)
        self.register_state_dict_post_hook(_float_state_dict)
        self.register_load_state_dict_pre_hook(_quantize_on_load)

    @classmethod
    def from_linear(cls, linear: nn.Linear, shared_weight: bool = False) -> "Int8Linear":
        w = linear.weight
        new = cls(linear.in_features, linear.out_features, bias=linear.bias is not None, device=w.device,
                  dtype=w.dtype)
        q, scales = quantize_weight(w)
        new.weight_int8.copy_(q)
        new.scales.copy_(scales)
        if linear.bias is not None:
            new.bias.copy_(linear.bias.detach())
        new.shared_weight = shared_weight
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or x.requires_grad:
            raise _training_error(self, x)
        x2 = x.reshape(-1, self.in_features)  # (R, in)
        rows = x2.shape[0]
        if x2.is_cpu and (rows <= KERNEL_MAX_ROWS or not _BF16_GEMM):
            if rows > KERNEL_MAX_ROWS:
                _warn_once("rows", f"int8 weight-only: a product of {rows} rows on a CPU without bfloat16 "
                           f"hardware ({cpu().describe()}) runs slower than float32 (measured: up to 2x at 64 "
                           f"rows); int8 pays for decoding with batch x beams <= {KERNEL_MAX_ROWS}")
            y = torch.ops.aten._weight_int8pack_mm(x2.to(torch.bfloat16).contiguous(), self.weight_int8,
                                                   self._unit)  # (R, out)
        else:
            dt = torch.bfloat16 if x2.is_cpu else x.dtype
            y = F.linear(x2.to(dt), self.weight_int8.to(dt))
        y = torch.addcmul(self.bias, y, self.scales) if self.bias is not None else y * self.scales
        return y.to(x.dtype).view(*x.shape[:-1], self.out_features)

    def dequantize(self) -> nn.Linear:
        """An ordinary ``nn.Linear`` holding ``scales * weight_int8`` (float32 or the bias' dtype) and the bias."""
        dtype = self.bias.dtype if self.bias is not None else torch.float32
        lin = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None,
                        device=self.weight_int8.device, dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(self.weight_int8.float() * self.scales[:, None])
            if self.bias is not None:
                lin.bias.copy_(self.bias)
        return lin.requires_grad_(False).train(self.training)

    def _apply(self, fn, recurse: bool = True):
        # model.to(dtype) changes what the layer returns (the bias' dtype), never the precision of the scales.
        scales = self.scales
        super()._apply(fn, recurse)
        if self.scales.dtype != torch.float32:
            self.scales = scales.to(self.scales.device)
        if self._unit.dtype != torch.bfloat16:
            self._unit = self._unit.to(torch.bfloat16)
        return self

    def __setattr__(self, name: str, value) -> None:
        if name == "weight":  # tie_weights() on a quantized head would add a parameter that forward never reads
            raise ValueError("Int8Linear has no float weight to set or tie: dequantize() the layer first")
        super().__setattr__(name, value)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def _float_state_dict(module: Int8Linear, state: dict, prefix: str, local_metadata) -> None:
    """state_dict() under nn.Linear's names (``weight`` = scales * int8, ``bias``): every save path then writes the
    float model a quantized one stands for, a folder any loader reads."""
    q, scales = state.pop(prefix + "weight_int8"), state.pop(prefix + "scales")
    bias = state.pop(prefix + "bias", None)
    if not module.shared_weight:
        dtype = bias.dtype if bias is not None else torch.float32
        state[prefix + "weight"] = (q.float() * scales.float()[:, None]).to(dtype)
    if bias is not None:
        state[prefix + "bias"] = bias


def _quantize_on_load(module: Int8Linear, state: dict, prefix: str, *args) -> None:
    """load_state_dict() of a float state dict (``weight``) into the int8 layer quantizes it."""
    weight = state.pop(prefix + "weight", None)
    if weight is not None:
        state[prefix + "weight_int8"], state[prefix + "scales"] = quantize_weight(weight)
    elif module.shared_weight and prefix + "weight_int8" not in state:
        state[prefix + "weight_int8"], state[prefix + "scales"] = module.weight_int8, module.scales


def _training_error(layer: Int8Linear, x: torch.Tensor) -> ValueError:
    why = "training mode (model.train())" if layer.training else "an input that requires grad"
    return ValueError(f"Int8Linear ({layer.out_features}x{layer.in_features}) got {why}: an int8-quantized model "
                      "is for inference only; train the float model and quantize it afterwards")


# Decided once: the GEMM on dequantized weights beats float32 only with bf16 hardware (the module docstring).
_BF16_GEMM = cpu().bf16_native


def _decoding_part(model: nn.Module) -> nn.Module:
    """The module whose linears are quantized: an encoder-decoder's decoder (with its LM head), a causal LM whole."""
    config = model.config
    if getattr(config, "is_encoder_decoder", False):
        return model.get_decoder()
    if is_causal(config) and model.get_output_embeddings() is not None:
        return model
    raise ValueError(f"quantize('int8') speeds up decoding (a few rows per product); {type(model).__name__} does "
                     "not decode (not an EncoderDecoderModel or a causal LM with is_decoder=True): its products "
                     "have batch x length rows, where int8 weight-only is no faster than float32")


def quantize_model(model: nn.Module, mode: str) -> nn.Module:
    """Replace the decoding part's ``nn.Linear`` layers by ``Int8Linear`` in place (see the module docstring)."""
    if mode not in MODES:
        raise ValueError(f"quantize: unknown mode {mode!r}; supported: {', '.join(map(repr, MODES))}")
    if getattr(model, "quantization_mode", None) is not None:
        raise ValueError(f"quantize({mode!r}): {type(model).__name__} is already quantized "
                         f"({model.quantization_mode!r}); load the float model again to quantize it differently")
    part = _decoding_part(model)
    uses = Counter(id(p) for _, p in model.named_parameters(remove_duplicate=False))
    todo, kept = [], []
    for parent in part.modules():
        for name, child in parent.named_children():
            if type(child) is nn.Linear:
                (todo if child.in_features % _K_MULTIPLE == 0 else kept).append((parent, name, child))
    if not todo:
        raise ValueError(f"quantize({mode!r}): {type(model).__name__} has no linear layer the int8 kernel takes "
                         f"(in_features must be a multiple of {_K_MULTIPLE})")
    if kept:
        sizes = sorted({c.in_features for _, _, c in kept})
        _warn_once(f"kept{sizes}", f"quantize({mode!r}): {len(kept)} linear layers stay float (in_features "
                   f"{sizes}: the int8 kernel needs a multiple of {_K_MULTIPLE})")
    with torch.no_grad():
        for parent, name, child in todo:
            setattr(parent, name, Int8Linear.from_linear(child, shared_weight=uses[id(child.weight)] > 1))
    model.requires_grad_(False)
    model.eval()
    model.quantization_mode = mode
    return model
