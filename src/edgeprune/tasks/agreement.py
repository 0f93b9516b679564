"""Data without labels: the input model labels it, and a pruned model is scored by how well it agrees.

:func:`agreement` wraps a task so that its primary metric is read against the input model's own predictions
(``agree``: top-1 agreement for classification; ``agree_miou``, ``agree_mse``... otherwise) and distillation uses the
teacher's outputs only (the weight of the task loss is 0: the labels are the teacher's, not the truth).
"""

from __future__ import annotations

import torch
from torch import nn

from edgeprune.tasks.base import Task


class Agreement(Task):
    """``inner`` with labels taken from the input model (see the module docstring); everything else is ``inner``'s."""

    def __init__(self, inner: Task):
        self.inner = inner
        self.name = inner.name
        self.metric = "agree" if inner.metric == "acc" else f"agree_{inner.metric}"
        self.label = f"agreement with the input model ({inner.label})"
        self.higher_is_better = inner.higher_is_better
        self.own_target_check = inner.own_target_check
        self.resamples = inner.resamples

    def reduce(self, values, index=None):
        metrics = dict(self.inner.reduce(values, index))
        return {self.metric: metrics.pop(self.inner.metric), **metrics}

    def distil(self, student, teacher, y, alpha, temperature):
        return self.inner.distil(student, teacher, y, 0.0, temperature)

    # the rest is the inner task's
    def check_target(self, x, y, what):
        return self.inner.check_target(x, y, what)

    def to_device(self, y, device):
        return self.inner.to_device(y, device)

    def batch_size(self, y):
        return self.inner.batch_size(y)

    def loss(self, output, y):
        return self.inner.loss(output, y)

    def train_loss(self, model: nn.Module, x: torch.Tensor, y):
        return self.inner.train_loss(model, x, y)

    def targets_from(self, output, x):
        return self.inner.targets_from(output, x)

    def example_statistics(self, output, y):
        return self.inner.example_statistics(output, y)

    def join(self, parts):
        return self.inner.join(parts)

    def predict(self, model, x):
        return self.inner.predict(model, x)

    def scored_outputs(self, output):
        return self.inner.scored_outputs(output)

    def deployable(self, model):
        return self.inner.deployable(model)

    def check_output(self, model, output, example, data):
        self.inner.check_output(model, output, example, data)

    def __repr__(self) -> str:
        return f"Agreement({self.inner!r})"


def agreement(task: Task) -> Task:
    return task if isinstance(task, Agreement) else Agreement(task)
