"""Size: parameter counts, non-zeros, sparsity over prunable weights, bytes on disk.

Prunable weights (the denominator of every sparsity in edgeprune) are the weights of Conv and Linear
layers with ndim >= 2; biases and normalisation parameters are excluded.
"""

from __future__ import annotations

import math
import os

import torch
from torch import nn

PRUNABLE_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.ConvTranspose2d)


def prunable_weights(model: nn.Module) -> dict[str, nn.Parameter]:
    """{parameter name: weight} for every Conv/Linear weight with ndim >= 2, in module order; torch's
    ``nn.MultiheadAttention`` adds its fused q/k/v ``in_proj_weight`` (a Linear's weight in all but name)."""
    out = {}
    for mod_name, module in model.named_modules():
        fused = getattr(module, "in_proj_weight", None) if isinstance(module, nn.MultiheadAttention) else None
        if isinstance(fused, torch.Tensor):
            out[f"{mod_name}.in_proj_weight" if mod_name else "in_proj_weight"] = fused
        if isinstance(module, PRUNABLE_TYPES):
            w = getattr(module, "weight", None)
            if isinstance(w, torch.Tensor) and w.ndim >= 2:
                out[f"{mod_name}.weight" if mod_name else "weight"] = w
    return out


def param_count(model: nn.Module) -> int:
    """All parameters (weights, biases, norms), shared parameters counted once."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def nonzeros(model: nn.Module) -> int:
    """Non-zero entries over all parameters."""
    return sum(int(torch.count_nonzero(p)) for p in {id(p): p for p in model.parameters()}.values())


def sparsity(model: nn.Module, per_layer: bool = False):
    """Fraction of zeros over prunable weights (or {name: fraction} with ``per_layer=True``)."""
    weights = prunable_weights(model)
    if per_layer:
        return {n: 1.0 - int(torch.count_nonzero(w)) / w.numel() for n, w in weights.items()}
    total = sum(w.numel() for w in weights.values())
    zeros = sum(w.numel() - int(torch.count_nonzero(w)) for w in weights.values())
    return zeros / total if total else 0.0


def checkpoint_bytes(path: str | os.PathLike) -> int:
    """Bytes of a file on disk (the saved FP32 checkpoint, an ONNX file, a compressed artifact)."""
    return os.path.getsize(path)


def _binary_entropy(p: float) -> float:
    return 0.0 if p <= 0.0 or p >= 1.0 else -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def sparse_bytes_bound(model: nn.Module, value_bits: int = 32) -> int:
    """Information bound of a sparse encoding: per prunable weight tensor n·H(density) bits for the pattern
    plus nnz·value_bits for the values; every other parameter stored dense at value_bits."""
    weights = prunable_weights(model)
    ids = {id(w) for w in weights.values()}
    bits = 0.0
    for w in weights.values():
        n, nnz = w.numel(), int(torch.count_nonzero(w))
        bits += n * _binary_entropy(nnz / n) + nnz * value_bits
    bits += sum(p.numel() for p in {id(p): p for p in model.parameters()}.values() if id(p) not in ids) * value_bits
    return int(bits // 8 + (bits % 8 > 0))
