"""A user's own task from two plain callables: ``loss_fn(output, y) -> scalar`` and ``metric_fn(outputs, ys)``.

``metric_fn`` is called once per evaluation with the outputs and targets of the whole data set, stacked the
way the model and the loader batch them (tensors stacked on dim 0; lists of per-example dicts as lists), and
returns a float (the primary metric) or a dict of floats that holds the primary metric. The default
distillation adds the mean squared distance between student and teacher output tensors.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from edgeprune.errors import ConfigError, ModelError
from edgeprune.tasks.base import Task, output_tensors


class _Item:
    """One example's part of a per-example list (a detection target dict, say): stacked back into a list."""

    def __init__(self, value):
        self.value = value


def split_examples(tree, n: int) -> list:
    """A batched output or target as ``n`` per-example parts."""
    if isinstance(tree, torch.Tensor):
        return list(tree.detach().cpu().unbind(0)) if tree.ndim and tree.shape[0] == n else [tree.detach().cpu()] * n
    if isinstance(tree, dict):
        parts = {k: split_examples(v, n) for k, v in tree.items()}
        return [{k: parts[k][i] for k in tree} for i in range(n)]
    if isinstance(tree, (list, tuple)) and len(tree) == n and all(isinstance(v, dict) for v in tree):
        return [_Item({k: (v.detach().cpu() if isinstance(v, torch.Tensor) else v) for k, v in d.items()}) for d in tree]
    if isinstance(tree, (list, tuple)):
        parts = [split_examples(v, n) for v in tree]
        return [type(tree)(p[i] for p in parts) if isinstance(tree, tuple) else [p[i] for p in parts] for i in range(n)]
    return [tree] * n


def stack_examples(items: list):
    """The inverse of :func:`split_examples` over any selection of examples."""
    first = items[0]
    if isinstance(first, _Item):
        return [item.value for item in items]
    if isinstance(first, torch.Tensor):
        return torch.stack(items)
    if isinstance(first, dict):
        return {k: stack_examples([item[k] for item in items]) for k in first}
    if isinstance(first, (list, tuple)):
        parts = [stack_examples([item[i] for item in items]) for i in range(len(first))]
        return tuple(parts) if isinstance(first, tuple) else parts
    return list(items)


class Custom(Task):
    def __init__(self, loss_fn: Callable, metric_fn: Callable, *, name: str = "custom", metric: str = "metric",
                 higher_is_better: bool = True, label: str | None = None):
        for what, fn in (("loss_fn", loss_fn), ("metric_fn", metric_fn)):
            if not callable(fn):
                raise ConfigError(f"{what} must be a callable, got {type(fn).__name__}")
        if not isinstance(metric, str) or not metric.isidentifier():
            raise ConfigError(f"metric must be a name (an identifier such as 'f1'), got {metric!r}")
        self.loss_fn, self.metric_fn = loss_fn, metric_fn
        self.name, self.metric, self.higher_is_better = str(name), metric, bool(higher_is_better)
        self.label = label or metric

    def loss(self, output, y):
        return self.check_loss(self.loss_fn(output, y))

    def distil(self, student, teacher, y, alpha, temperature):
        pairs = list(zip(output_tensors(student), output_tensors(teacher)))
        match = sum(F.mse_loss(s.float(), t.float()) for s, t in pairs if s.shape == t.shape) if pairs else 0.0
        return alpha * self.loss(student, y) + (1.0 - alpha) * match

    def example_statistics(self, output, y):
        n = self.batch_size(y)
        return list(zip(split_examples(output, n), split_examples(y, n)))

    def join(self, parts):
        return [pair for part in parts for pair in part]

    def reduce(self, values, index=None):
        chosen = values if index is None else [values[int(i)] for i in np.asarray(index)]
        if not chosen:
            return {self.metric: math.nan}
        value = self.metric_fn(stack_examples([o for o, _ in chosen]), stack_examples([y for _, y in chosen]))
        metrics = value if isinstance(value, dict) else {self.metric: value}
        if self.metric not in metrics:
            raise ModelError(f"metric_fn returned {sorted(metrics)}; expected a float or a dict with {self.metric!r}")
        out = {}
        for key, v in metrics.items():
            try:
                out[str(key)] = float(v)
            except (TypeError, ValueError):
                raise ModelError(f"metric_fn returned {key}={type(v).__name__}; expected numbers") from None
        return out
