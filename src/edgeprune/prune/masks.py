"""Unstructured pruning masks: {parameter name: bool tensor of the parameter's shape}.

A mask entry is True where the weight is kept. Masks stay exact during training because the training loop
zeroes the gradients of pruned weights before the optimizer step and re-applies the masks after it
(momentum and Adam's moments could otherwise move a pruned weight off zero).
"""

from __future__ import annotations

import torch
from torch import nn

Masks = dict[str, torch.Tensor]


def _params(model: nn.Module, masks: Masks):
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        if name not in params:
            raise KeyError(f"mask for unknown parameter {name!r}")
        yield params[name], mask


@torch.no_grad()
def apply_masks(model: nn.Module, masks: Masks) -> None:
    """Zero every pruned weight in place."""
    for param, mask in _params(model, masks):
        param.mul_(mask.to(device=param.device, dtype=param.dtype))


@torch.no_grad()
def mask_gradients(model: nn.Module, masks: Masks) -> None:
    """Zero the gradients of pruned weights (call after backward, before optimizer.step)."""
    for param, mask in _params(model, masks):
        if param.grad is not None:
            param.grad.mul_(mask.to(device=param.device, dtype=param.grad.dtype))
