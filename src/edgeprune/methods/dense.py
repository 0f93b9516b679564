"""Dense training: build a model for a dataset, train it with the one loop, measure it, save it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from edgeprune import distributed as dist_lib
from edgeprune import models as model_lib
from edgeprune import tasks as tasks_lib
from edgeprune.errors import ConfigError
from edgeprune.measure import machine_info, summarize
from edgeprune.train import TrainConfig, fit
from edgeprune.utils.io import ensure_dir, write_json


def check_model_args(model_kwargs: dict | None) -> None:
    """Model arguments may not set the sizes the data decides (classes, channels, image size)."""
    taken = [k for k in ("num_classes", "in_channels", "image_size") if k in (model_kwargs or {})]
    if taken:
        raise ConfigError(f"model argument {taken[0]!r} is taken from the data set; allowed: the model's own options")


def build_for(model_spec: str, splits, model_kwargs: dict | None = None):
    """The model ``model_spec`` shaped for ``splits`` (classes, channels, image size)."""
    check_model_args(model_kwargs)
    return model_lib.create(
        model_spec,
        num_classes=splits.num_classes,
        in_channels=splits.in_channels,
        image_size=splits.image_size,
        **(model_kwargs or {}),
    )


def train_dense(
    model_spec: str,
    splits,
    config: TrainConfig,
    out_dir: str | os.PathLike | None = None,
    *,
    model_kwargs: dict | None = None,
    progress: bool = True,
    latency_batches: tuple[int, ...] = (1,),
    task=None,
) -> tuple[object, dict]:
    """Train ``model_spec`` on ``splits``; returns (model, metrics). Writes model.pt + metrics.json to out_dir.

    ``task``: see :func:`edgeprune.tasks.get` (None: the data's own, else classification); the metrics name its
    primary metric (``val_acc``/``test_acc`` for classifiers, ``val_miou``/``test_miou``...). The test metric is
    measured once, after selection on validation. Under torchrun (DDP) every rank trains, but only rank 0
    measures and writes; the other ranks return their training result only.
    """
    task = tasks_lib.get(task, splits)
    with tasks_lib.using(task):
        return _train_dense(model_spec, splits, config, out_dir, model_kwargs, progress, latency_batches, task)


def _train_dense(model_spec, splits, config, out_dir, model_kwargs, progress, latency_batches, task):
    check_model_args(model_kwargs)  # before --out is created
    rank0 = dist_lib.is_rank0()
    if out_dir is not None and rank0:
        ensure_dir(out_dir)  # fail before training, not after
    torch.manual_seed(config.seed)  # the same seed gives the same initial weights
    model = build_for(model_spec, splits, model_kwargs)
    result = fit(model, splits.train, splits.val, config, progress=progress, description=f"train {model_spec}")
    key = task.metric
    if not rank0:
        return model, {"model": model_spec, f"val_{key}": result.best_val_acc, "train": result.as_dict(), "rank": dist_lib.rank()}
    test = {f"test_{k}": v for k, v in task.evaluate(model, splits.test, config.eval_batch_size).items()}
    input_shape = (splits.in_channels, splits.image_size, splits.image_size)
    metrics = {
        "model": model_spec,
        "model_kwargs": model_kwargs or {},
        "dataset": splits.name,
        **({"task": task.name, "metric": key, "metric_higher": task.higher_is_better}
           if not isinstance(task, tasks_lib.Classification) else {}),
        f"val_{key}": result.best_val_acc,
        **test,
        "train": result.as_dict(),
        "config": config.model_dump(),
        **summarize(model, input_shape, latency_batches=latency_batches),
        "machine": machine_info(),
        "world_size": dist_lib.world_size(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    if out_dir is not None:
        path = Path(out_dir) / "model.pt"
        meta = {k: metrics[k] for k in ("dataset", "task", "metric", f"val_{key}", f"test_{key}") if k in metrics}
        meta["config"] = config.model_dump()
        model_lib.save(model, path, meta=meta)
        metrics["checkpoint_bytes"] = path.stat().st_size
        write_json(Path(out_dir) / "metrics.json", metrics)
    return model, metrics

