"""Tasks: what a model is for (:class:`Task`), the presets, a user's own, and the task of the work at hand.

``task=`` wherever edgeprune trains or evaluates: a preset name (``classification``, the default,
``segmentation``, ``detection``, ``regression``), a :class:`Task` (a subclass, or
``Custom(loss_fn, metric_fn)``), or a ``path/to/file.py:factory`` returning one. :func:`using` makes a
task the current one for the work inside it (what :func:`current` returns and how batches are checked).
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar

from edgeprune.errors import ConfigError, ModelError
from edgeprune.models import userfile
from edgeprune.tasks.agreement import Agreement, agreement
from edgeprune.tasks.base import Statistics, Task, output_tensors
from edgeprune.tasks.classification import Classification
from edgeprune.tasks.custom import Custom
from edgeprune.tasks.detection import Detection
from edgeprune.tasks.regression import Regression
from edgeprune.tasks.segmentation import Segmentation

PRESETS: dict[str, type[Task]] = {"classification": Classification, "segmentation": Segmentation,
                                  "detection": Detection, "regression": Regression}
DESCRIPTIONS = {
    "classification": "logits [batch, classes]; cross-entropy; top-1 accuracy (the default)",
    "segmentation": "per-pixel logits [batch, classes, h, w] and masks [batch, H, W]; per-pixel CE; mIoU, pixel accuracy",
    "detection": "torchvision's detection API (train: dict of losses; eval: boxes, scores, labels per image) and "
                 "targets [{boxes [N, 4] xyxy, labels [N] 1..K}]; COCO mAP@[.5:.95], mAP@.5",
    "regression": "float targets; MSE loss; MSE (lower is better) and MAE",
}


def metric_of(record: dict) -> tuple[str, bool]:
    """(primary metric name, higher is better) of a record (classification records name none: accuracy)."""
    return str(record.get("metric", "acc")), bool(record.get("metric_higher", True))


def val_value(record: dict, default: float = float("nan")) -> float:
    """A record's validation value of its primary metric."""
    return float(record.get(f"val_{metric_of(record)[0]}", default))


def score_of(record: dict) -> float:
    """The record's validation metric signed so that larger is better (for choosing among candidates)."""
    value = val_value(record)
    return value if metric_of(record)[1] else -value


def register(name: str, cls: type[Task], description: str) -> None:
    PRESETS[name] = cls
    DESCRIPTIONS[name] = description


_CURRENT: ContextVar[Task | None] = ContextVar("edgeprune_task", default=None)


def current() -> Task:
    """The task of the work at hand (set by :func:`using`); classification outside any."""
    task = _CURRENT.get()
    return task if task is not None else Classification()


@contextlib.contextmanager
def using(task: Task):
    """Make ``task`` the current task inside the block; batches are checked against it."""
    token = _CURRENT.set(task)
    try:
        with task.checking():
            yield task
    finally:
        _CURRENT.reset(token)


def _from_file(spec: str) -> Task:
    head, name = userfile.split(spec)
    module = userfile.import_file(head)
    factory = getattr(module, name, None)
    if factory is None:
        raise ConfigError(f"task file {head!r} has no {name!r}")
    task = factory() if not isinstance(factory, Task) else factory
    if not isinstance(task, Task):
        raise ModelError(f"task factory {spec!r} returned a {type(task).__name__}, not an edgeprune Task")
    return task


def get(task=None, data=None) -> Task:
    """The task ``task`` names; None: the data's own (``data.task``, e.g. ``mnist-seg``) or classification."""
    if isinstance(task, Task):
        return task
    if task is None:
        task = getattr(data, "task", None) or "classification"
    if isinstance(task, type) and issubclass(task, Task):
        return task()
    if not isinstance(task, str):
        raise ConfigError(f"task must be a preset name ({', '.join(PRESETS)}), a Task or 'file.py:factory', "
                          f"got {type(task).__name__}")
    if userfile.is_file_spec(task):
        return _from_file(task)
    if task.strip().lower() not in PRESETS:
        raise ConfigError(f"unknown task {task!r}; allowed: {', '.join(PRESETS)} or path/to/file.py:factory")
    return PRESETS[task.strip().lower()]()


__all__ = ["Task", "Statistics", "Classification", "Segmentation", "Detection", "Regression", "Custom", "PRESETS", "current",
           "using", "get", "register", "output_tensors", "Agreement", "agreement",
           "metric_of", "val_value", "score_of"]
