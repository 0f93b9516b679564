"""What a model is for: the one place that knows how to train, distil and evaluate it.

A :class:`Task` takes a batch ``(x, y)`` apart, turns (model, x, y) into a training loss, distils a student
from a teacher's outputs, and evaluates a model on data as a dict of metrics with one *primary* metric and
its direction. Every stage (scores with gradients, fine-tuning, selection, the front, intervals, reports)
asks the task instead of assuming logits, cross-entropy and top-1.

Evaluation goes through per-example *statistics* that :meth:`Task.reduce` turns into metrics, so one
bootstrap over examples (:meth:`Task.interval`) gives an interval for any metric, mIoU and mAP included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from edgeprune.data.loaders import batches, targets_checked_by
from edgeprune.errors import DataError, ModelError

INTERVAL_RESAMPLES = 1000


@dataclass
class Statistics:
    """Per-example statistics of one model on one data set: ``values`` indexable by example, ``n`` examples."""

    values: object
    n: int


def device_of(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def output_tensors(output) -> list[torch.Tensor]:
    """Every floating-point tensor of an output (tensors, dicts, lists, tuples, objects with ``logits``)."""
    if isinstance(output, torch.Tensor):
        return [output] if output.is_floating_point() else []
    if isinstance(output, dict):
        return [t for v in output.values() for t in output_tensors(v)]
    if isinstance(output, (list, tuple)):
        return [t for v in output for t in output_tensors(v)]
    logits = getattr(output, "logits", None)
    return output_tensors(logits) if logits is not None else []


class Task:
    """Base class of every task; a subclass overrides what differs from a plain ``loss(model(x), y)``."""

    name = "task"
    metric = "score"  # the primary metric: records carry val_<metric> and test_<metric>
    label = "score"  # how reports and plots name it
    higher_is_better = True
    resamples = INTERVAL_RESAMPLES
    own_target_check = True  # False: batches are checked as class labels (the data layer's own check)

    # -- batches ----------------------------------------------------------------------------------
    def check_target(self, x: torch.Tensor, y, what: str):
        """``y`` of a batch checked against ``x`` (DataError naming what does not fit); returns it as used."""
        return y

    def checking(self):
        """A block inside which batches are checked against this task."""
        return targets_checked_by(self.check_target if self.own_target_check else None)

    def to_device(self, y, device: torch.device):
        return y.to(device, non_blocking=True) if isinstance(y, torch.Tensor) else y

    def batch_size(self, y) -> int:
        return len(y)

    # -- training ---------------------------------------------------------------------------------
    def loss(self, output, y) -> torch.Tensor:
        raise NotImplementedError

    def train_loss(self, model: nn.Module, x: torch.Tensor, y) -> tuple[torch.Tensor, object]:
        """(loss, output) of ``model`` in its current mode on one batch."""
        output = model(x)
        return self.loss(output, y), output

    def distil(self, student, teacher, y, alpha: float, temperature: float) -> torch.Tensor:
        """alpha · task loss + (1 − alpha) · a distance between student and teacher outputs."""
        raise NotImplementedError

    def distil_loss(self, model: nn.Module, teacher: nn.Module, x: torch.Tensor, y, alpha: float,
                    temperature: float) -> tuple[torch.Tensor, object]:
        output = model(x)
        with torch.no_grad():
            target = teacher(x)
        return self.distil(output, target, y, alpha, temperature), output

    def targets_from(self, output, x: torch.Tensor):
        """Targets of the batch ``x`` read off a model's ``output`` (data without labels is labelled by the input
        model: :mod:`edgeprune.tasks.agreement`)."""
        raise ModelError(f"the {self.name} task cannot label data from the model's outputs; pass labelled data")

    def check_loss(self, loss) -> torch.Tensor:
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
            raise ModelError(f"the {self.name} loss returned {shape}; expected a scalar tensor")
        return loss.reshape(())

    # -- evaluation -------------------------------------------------------------------------------
    def example_statistics(self, output, y) -> object:
        """Per-example statistics of one batch (concatenated by :meth:`statistics`)."""
        raise NotImplementedError

    def join(self, parts: list) -> object:
        return torch.cat(parts)

    def reduce(self, values, index: np.ndarray | None = None) -> dict[str, float]:
        """Metrics over the examples at ``index`` (all when None); the primary one under :attr:`metric`."""
        raise NotImplementedError

    def predict(self, model: nn.Module, x: torch.Tensor):
        return model(x)

    @torch.no_grad()
    def statistics(self, model: nn.Module, data, batch_size: int = 256, max_batches: int | None = None) -> Statistics:
        was_training = model.training
        model.eval()
        device = device_of(model)
        parts = []
        try:
            with self.checking():
                for i, (x, y) in enumerate(batches(data, batch_size, "evaluation data")):
                    if max_batches is not None and i >= max_batches:
                        break
                    parts.append(self.example_statistics(self.predict(model, x.to(device)), self.to_device(y, device)))
        finally:
            model.train(was_training)
        values = self.join(parts)
        return Statistics(values, len(values))

    def evaluate(self, model: nn.Module, data, batch_size: int = 256, max_batches: int | None = None) -> dict[str, float]:
        metrics = self.reduce(self.statistics(model, data, batch_size, max_batches).values)
        value = metrics[self.metric]
        if not math.isfinite(value):
            raise DataError(f"the {self.name} metric {self.metric!r} is {value} on the evaluation data; expected a finite number")
        return metrics

    def primary(self, model: nn.Module, data, batch_size: int = 256, max_batches: int | None = None) -> float:
        return float(self.evaluate(model, data, batch_size, max_batches)[self.metric])

    def interval(self, stats: Statistics, seed: int = 0) -> tuple[float, float]:
        """95 % percentile bootstrap interval of the primary metric, resampling examples."""
        if stats.n == 0:
            return (math.nan, math.nan)
        rng = np.random.default_rng(seed)
        values = [self.reduce(stats.values, rng.integers(0, stats.n, stats.n))[self.metric] for _ in range(self.resamples)]
        lo, hi = np.percentile(values, [2.5, 97.5])
        return float(lo), float(hi)

    def better(self, a: float, b: float) -> bool:
        """Is ``a`` a better primary metric value than ``b``?"""
        return a > b if self.higher_is_better else a < b

    def worst(self) -> float:
        return -math.inf if self.higher_is_better else math.inf

    def scored_outputs(self, output) -> list[torch.Tensor]:
        """The output tensors a data-free score (SynFlow) sums: every floating-point output by default."""
        return output_tensors(output)

    def deployable(self, model: nn.Module) -> nn.Module:
        """The module a runtime runs (exported, timed, checked for parity): the model itself by default; a
        detector's dense part before its decoding and NMS."""
        return model

    # -- the model --------------------------------------------------------------------------------
    def check_output(self, model: nn.Module, output, example: torch.Tensor, data) -> None:
        """A one-line ModelError when ``output`` (of ``model`` on ``example``, eval mode) does not fit the task."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(metric={self.metric!r})"
