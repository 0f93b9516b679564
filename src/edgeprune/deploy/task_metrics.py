"""What ``measure`` and ``export`` report for a task other than classification, and whether a data set fits a model.

A classifier keeps its top-1 lines, measured as they always were. Any other task's metrics come from
``task.evaluate`` (in PyTorch, ONNX Runtime or ExecuTorch) and are labelled by :mod:`edgeprune.report.metric`,
the primary one first.
"""

from __future__ import annotations

import math

from torch.utils.data import DataLoader

from edgeprune import tasks as tasks_lib
from edgeprune.data.loaders import first_batch
from edgeprune.errors import ConfigError, DataError
from edgeprune.models import input_shape
from edgeprune.report.metric import Metric, label_of, number

CLASS_TASKS = ("classification", "segmentation", "detection")  # their models predict the data's classes


def is_classification(task: tasks_lib.Task) -> bool:
    return isinstance(task, tasks_lib.Classification)


def check_fits(model, splits, dataset: str, holder: str, task: tasks_lib.Task) -> None:
    """ConfigError (one line naming both sides) when ``splits`` do not fit ``model``: the shape of one input and,
    for a task whose model predicts classes, their number; DataError when the test split's targets are not the
    task's (masks for a classifier...). Before anything is measured or written."""
    build = model.edgeprune_build
    want, given = input_shape(model), tuple(int(d) for d in splits.input_shape)
    classes = task.name in CLASS_TASKS and splits.num_classes is not None and build.get("num_classes") is not None

    def side(n, shape):
        return (f"{n} classes of " if classes else "") + "x".join(map(str, shape)) + " inputs"

    if want != given or (classes and splits.num_classes != build["num_classes"]):
        raise ConfigError(f"data set {dataset!r} has {side(splits.num_classes, given)} but {holder} takes "
                          f"{side(build.get('num_classes'), want)} (task {task.name})")
    with tasks_lib.using(task):
        first_batch(splits.test, "test data", batch_size=2)


def images_in(part) -> int:
    """The number of examples of a split (a dataset, or a user's DataLoader over one)."""
    return len(part.dataset) if isinstance(part, DataLoader) else len(part)


def evaluate(task: tasks_lib.Task, model, data) -> tuple[dict[str, float], list[float]]:
    """(every metric of ``task`` on ``data``, the 95 % bootstrap interval of the primary one)."""
    stats = task.statistics(model, data)
    metrics = task.reduce(stats.values)
    if not math.isfinite(metrics[task.metric]):
        raise DataError(f"the {task.name} metric {task.metric!r} is {metrics[task.metric]} on the evaluation data; "
                        "expected a finite number")
    return metrics, list(task.interval(stats))


def task_text(task: tasks_lib.Task, images: int) -> str:
    """``segmentation (mIoU, higher is better) on 32 test images``."""
    return (f"{task.name} ({label_of(task.metric)}, {'higher' if task.higher_is_better else 'lower'} is better) "
            f"on {images:,} test images")


def ordered(task: tasks_lib.Task, metrics: dict[str, float]) -> list[str]:
    """The metric names, the primary one first."""
    return [task.metric] + [name for name in metrics if name != task.metric]


def value_text(name: str, value: float) -> str:
    return Metric(name).text(value)


def interval_text(name: str, interval) -> str:
    lo, hi = interval
    return f"[95% interval {number(name, lo)}, {number(name, hi)}{Metric(name).unit}]"


def metric_rows(task: tasks_lib.Task, metrics: dict[str, float], after: str, interval=None) -> list[list[str]]:
    """Table rows ``test <label><after>`` (``after``: `` (mnist-seg)``), the primary metric first, with its interval
    when given."""
    rows = []
    for name in ordered(task, metrics):
        text = value_text(name, metrics[name])
        if name == task.metric and interval is not None:
            text += "  " + interval_text(name, interval)
        rows.append([f"test {label_of(name)}{after}", text])
    return rows


def runtime_rows(task: tasks_lib.Task, measured: dict[str, dict], runtime: str) -> list[list[str]]:
    """One row per metric, its values in each of ``measured``'s variants (``FP32 / INT8``) side by side."""
    first = next(iter(measured.values()))
    variants = " / ".join(key.split("_")[0].upper() for key in measured)
    return [[f"test {label_of(name)} {variants} ({runtime})", " / ".join(value_text(name, m[name]) for m in measured.values())]
            for name in ordered(task, first)]


def evaluation_of(task: tasks_lib.Task, model, splits) -> str | None:
    """What ``export`` measures of the exported files on the test split: ``"accuracy"`` (a classifier's top-1, as
    always), ``"metrics"`` (the task's), or None (no data, or files holding part of the model only: a detector)."""
    if splits is None:
        return None
    if is_classification(task):
        return "accuracy"
    return "metrics" if task.deployable(model) is model else None


def record_of(task: tasks_lib.Task, splits) -> dict:
    """The head of export.json's ``metrics`` block: which task, metric and data."""
    return {"task": task.name, "metric": task.metric, "higher_is_better": task.higher_is_better,
            "dataset": splits.name, "split": "test", "images": images_in(splits.test)}
