"""Top-1 accuracy of a model on a dataset (eval mode, no gradients)."""

from __future__ import annotations

import torch
from torch import nn

from edgeprune.data import make_loader


def _device_of(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def predict_logits(model: nn.Module, dataset, batch_size: int = 256, max_batches: int | None = None):
    """Return (logits, labels) for ``dataset`` in order; restores the model's train/eval mode."""
    was_training = model.training
    model.eval()
    device = _device_of(model)
    outs, labels = [], []
    try:
        for i, (x, y) in enumerate(make_loader(dataset, batch_size)):
            if max_batches is not None and i >= max_batches:
                break
            outs.append(model(x.to(device)).float().cpu())
            labels.append(y)
    finally:
        model.train(was_training)
    return torch.cat(outs), torch.cat(labels)


def accuracy(model: nn.Module, dataset, batch_size: int = 256, max_batches: int | None = None) -> float:
    """Top-1 accuracy in [0, 1]."""
    logits, labels = predict_logits(model, dataset, batch_size, max_batches)
    return float((logits.argmax(1) == labels).float().mean()) if len(labels) else float("nan")
