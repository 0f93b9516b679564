"""Per-weight importance scores for unstructured pruning (higher score = more important = kept first).

    scores = edgeprune.scores.compute("product", model, batches)      # {param name: float32 CPU tensor}
    masks = edgeprune.prune.masks.layerwise_masks(scores, sparsities)

``compute`` is pure: it returns new tensors and leaves the model's weights, buffers, modes, ``.grad``
fields and the global RNG as they were. It caches nothing; a caller that needs one criterion's scores for
many strategies computes them once and keeps them. A new criterion is one function decorated with
:func:`edgeprune.scores.registry.criterion` in ``weights.py`` or ``pai.py``.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader

from edgeprune.data.loaders import check_batch, take
from edgeprune.errors import ConfigError, ModelError
from edgeprune.measure import prunable_weights
from edgeprune.scores import pai, weights  # noqa: F401  (importing registers the criteria)
from edgeprune.scores.registry import CRITERIA, REGISTRY, criterion
from edgeprune.scores.weights import Batch, LossFn, Scores

__all__ = ["CRITERIA", "calibration_batches", "compute", "criterion", "Scores"]


def compute(
    criterion: str,
    model: nn.Module,
    batches: Sequence[Batch] | None = None,
    *,
    loss_fn: LossFn | None = None,
    seed: int = 0,
    **options,
) -> Scores:
    """Scores of every prunable weight (Conv/Linear weights, ndim >= 2) of ``model`` under ``criterion``.

    Args:
        criterion: a key of :data:`CRITERIA` (magnitude, gradient, product, random, snip, grasp,
            grasp_abs, synflow).
        model: any module with at least one prunable weight; float32 or float64.
        batches: calibration ``(x, y)`` batches, required by the data-driven criteria (see
            :func:`calibration_batches`); SynFlow only reads the input shape from them.
        loss_fn: ``loss_fn(logits, y) -> scalar``; cross-entropy by default.
        seed: seeds ``random`` and the dropout draws of train-mode scoring.
        options: criterion options, e.g. ``mode="eval"`` (data-driven), ``temperature`` (GraSP),
            ``input_shape``, ``sparsity``, ``rounds``, ``dtype`` (SynFlow).

    Returns:
        ``{param name: float32 CPU tensor of the weight's shape}`` in ``prunable_weights`` order.
    """
    entry = REGISTRY.get(criterion) if isinstance(criterion, str) else None
    if entry is None:
        raise ConfigError(f"unknown score criterion {criterion!r}; allowed: {', '.join(CRITERIA)}")
    unknown = [k for k in options if k not in entry.options]
    if unknown:
        raise ConfigError(
            f"unknown option {unknown[0]!r} for criterion {criterion!r}; allowed: {', '.join(entry.options) or 'none'}"
        )
    if not prunable_weights(model):
        raise ConfigError(f"model {type(model).__name__} has no prunable layer (Conv/Linear weight with ndim >= 2)")
    if batches is not None:
        batches = list(batches)
    if entry.needs_data and not batches:
        raise ConfigError(
            f"criterion {criterion!r} needs calibration batches (e.g. scores.calibration_batches(splits.train, 10))"
        )
    scores = entry.fn(model, batches, loss_fn=loss_fn, seed=int(seed), **options)
    for name, score in scores.items():
        if score.is_floating_point() and bool(torch.isnan(score).any()):
            raise ModelError(f"criterion {criterion!r} gives NaN scores for {name} on this model")
    return scores


def calibration_batches(dataset, num_batches: int, batch_size: int = 32, seed: int = 0) -> list[Batch]:
    """``num_batches`` seeded, shuffled ``(x, y)`` batches of ``batch_size`` from a TRAINING dataset.

    Pass the training split (``splits.train``; a ``Splits`` bundle is accepted and its ``train`` is used),
    never validation or test data, which stay for selection and the final measurement. Augmentation is
    switched off. Examples are drawn without replacement; only when the dataset is smaller than
    ``num_batches * batch_size`` does a new shuffled pass begin, so every batch is full.

    A DataLoader (or a bundle whose ``train`` is one) gives its first ``num_batches`` batches as it yields
    them (a new pass begins if it has fewer): its order, batch size and augmentation; ``batch_size`` is not
    used, and a shuffling generator of its own is re-seeded with ``seed`` so the batches repeat. Batches that are not ``(x, y)`` tensor pairs, or no batch at all: DataError.
    """
    if num_batches is None or int(num_batches) <= 0:
        raise ConfigError(f"num_batches must be > 0, got {num_batches!r}")
    if batch_size is None or int(batch_size) <= 0:
        raise ConfigError(f"batch_size must be > 0, got {batch_size!r}")
    dataset = getattr(dataset, "train", dataset)
    if isinstance(dataset, DataLoader):
        if dataset.generator is not None:
            dataset.generator.manual_seed(int(seed))
        return take(dataset, int(num_batches), "calibration data")
    if hasattr(dataset, "with_augment"):
        dataset = dataset.with_augment(False)
    n = len(dataset)
    if n == 0:
        raise ConfigError("calibration dataset is empty")
    needed = int(num_batches) * int(batch_size)
    generator = torch.Generator().manual_seed(int(seed))
    order = torch.cat([torch.randperm(n, generator=generator) for _ in range(-(-needed // n))])[:needed]
    batches = []
    for chunk in order.split(int(batch_size)):
        idx = chunk.tolist()
        if hasattr(dataset, "__getitems__"):
            x, y = dataset.__getitems__(idx)
        else:
            items = [dataset[i] for i in idx]
            x = torch.stack([torch.as_tensor(a) for a, _ in items])
            y = torch.stack([torch.as_tensor(b) for _, b in items])  # class labels, masks or regression targets
        batches.append(check_batch((x, y if isinstance(y, (torch.Tensor, list)) else torch.as_tensor(y)), "calibration data"))
    return batches
