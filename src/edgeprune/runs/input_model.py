"""The model a sweep of a model spec prunes when no checkpoint of it is given: the spec trained on the data first
(kept in OUT/dense/ and reused by a re-run with the same settings). The run directory is checked before the
input model is trained into it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from edgeprune import models as model_lib
from edgeprune import tasks as tasks_lib
from edgeprune.errors import ConfigError
from edgeprune.methods.dense import train_dense
from edgeprune.runs.request import Request
from edgeprune.runs.sweep import check_run_dir, estimate_line, make_plan, print_plan, stage_plan, sweep_identity
from edgeprune.train import TrainConfig, default_config, log_line, quick_config
from edgeprune.utils.io import read_json


def check_input_training(model, epochs: int | None, checkpoint) -> None:
    """``train_input`` / ``checkpoint`` name how to get a spec's trained model; they need ``model`` to be a spec."""
    if epochs is None and checkpoint is None:
        return
    if not isinstance(model, str):
        raise ConfigError(f"train_input and checkpoint need model to be a model spec, got a {type(model).__name__}")
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs <= 0):
        raise ConfigError(f"train_input (--dense-epochs) must be an epoch count > 0, got {epochs!r}")


def trained_input(spec: str, model_args: dict, splits, dense: TrainConfig, out: Path, progress: bool,
                  task: tasks_lib.Task | None = None):
    """``spec`` trained on the data for ``task``, kept in OUT/dense/ (reused when an earlier run trained it the same)."""
    task = task or tasks_lib.Classification()
    own_task = None if isinstance(task, tasks_lib.Classification) else task.name  # classifiers' metrics.json name none
    own = out / "dense" / "model.pt"
    if own.is_file():  # trained by an earlier run of this command into the same --out
        made = read_json(out / "dense" / "metrics.json")
        now = {"model": spec, "model_kwargs": model_args, "dataset": splits.name, "task": own_task, "epochs": dense.epochs,
               "max_batches": dense.max_batches}  # a quick run's input model is not a full run's
        then = {**{k: made.get(k) for k in now}, **{k: made.get("config", {}).get(k) for k in ("epochs", "max_batches")}}
        for key in now:
            if then[key] != now[key]:
                raise ConfigError(f"{str(own)!r} was trained with {key} {then[key]!r}, not {now[key]!r}; "
                                  "use another --out or delete its dense/ folder")
        return model_lib.load(own)
    model, _ = train_dense(spec, splits, dense, out / "dense", model_kwargs=model_args, progress=progress, task=task)
    return model


def needs_training(out: Path) -> bool:
    return not (out / "dense" / "model.pt").is_file()


def input_of(request: Request, spec: str, out: Path, *, model_args: dict | None, epochs: int, progress: bool,
             dry_run: bool):
    """``request``'s inputs with ``spec`` trained in place of its untrained build (the same architecture, so nothing
    is checked again); ``dry_run``: the plan (a dict), printed, with nothing trained or written."""
    m, probe, model_args = request.method, request.inputs, model_args or {}
    check_run_dir(out, sweep_identity(m, request.budgets, request.seeds, request.train, request.kd, request.schedule,
                                      request.quick))  # another method's folder is refused before training into it
    dense_config = default_config(spec, epochs=epochs)
    dense_config = quick_config(dense_config) if request.quick else dense_config
    first = needs_training(out)
    dense = stage_plan(probe.model, probe.data, dense_config) if first and (progress or dry_run) else None
    if dry_run:
        chosen = probe if first else dataclasses.replace(probe, model=trained_input(
            spec, model_args, probe.data, dense_config, out, False, probe.task))
        cands = m.candidates(m.prepare(chosen.model, chosen.data, chosen.example), request.budgets, request.seeds)
        plan = make_plan(m, chosen, request.budgets, request.seeds, cands, request.train, request.kd, dense=dense,
                         quick=request.quick)
        print_plan(plan)
        return {**plan, "dry_run": True}
    if dense is not None:
        log_line(f"plan: {m.name} — first the input model {spec} on {probe.data.name}: dense training "
                 f"{dense['epochs']} epoch(s) × {dense['batches_per_epoch']} batches of {dense['batch_size']}; "
                 "the candidates' plan follows")
        log_line(estimate_line({"estimate_seconds": dense["seconds"], "dense": dense}).replace("in total", "for it"))
    trained = trained_input(spec, model_args, probe.data, dense_config, out, progress, probe.task)
    return dataclasses.replace(probe, model=trained)
