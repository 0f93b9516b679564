"""Top-1 accuracy of a model on a dataset or a DataLoader (eval mode, no gradients)."""

from __future__ import annotations

import torch
from torch import nn

from edgeprune.data.loaders import batches
from edgeprune.models import logits_of


def _device_of(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def predict_logits(model: nn.Module, dataset, batch_size: int = 256, max_batches: int | None = None):
    """Return (logits, labels) for ``dataset`` in order; restores the model's train/eval mode.

    ``dataset`` may be a DataLoader yielding ``(x, y)`` tensor batches: it is used as it is (its order and
    batch size; ``batch_size`` is ignored). Malformed batches or no batch at all: DataError.
    """
    was_training = model.training
    model.eval()
    device = _device_of(model)
    outs, labels = [], []
    try:
        for i, (x, y) in enumerate(batches(dataset, batch_size, "evaluation data")):
            if max_batches is not None and i >= max_batches:
                break
            outs.append(logits_of(model(x.to(device))).float().cpu())
            labels.append(y)
    finally:
        model.train(was_training)
    return torch.cat(outs), torch.cat(labels)


def accuracy(model: nn.Module, dataset, batch_size: int = 256, max_batches: int | None = None) -> float:
    """Top-1 accuracy in [0, 1] on a dataset or DataLoader (see :func:`predict_logits`)."""
    logits, labels = predict_logits(model, dataset, batch_size, max_batches)
    return float((logits.argmax(1) == labels).float().mean()) if len(labels) else float("nan")
