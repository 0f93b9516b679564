"""Size: parameter counts, non-zeros, sparsity over prunable weights, bytes on disk.

Prunable weights (the denominator of every sparsity in edgeprune) are the weights of Conv and Linear
layers with ndim >= 2; biases and normalisation parameters are excluded.
"""

from __future__ import annotations

import os

import torch
from torch import nn

PRUNABLE_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.ConvTranspose2d)


def prunable_weights(model: nn.Module) -> dict[str, nn.Parameter]:
    """{parameter name: weight} for every Conv/Linear weight with ndim >= 2, in module order."""
    out = {}
    for mod_name, module in model.named_modules():
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
