"""The public API: one call shape for every method.

    pruned = edgeprune.prune(model, (train_loader, val_loader, test_loader), method="vbp", budget=0.5)
    result = edgeprune.sweep(model, data, method="mix_and_match", budgets=[0.8, 0.9], seeds=3, out="runs/mam")
    edgeprune.save(pruned, "small.pt");  model = edgeprune.load("small.pt", model=MyNet())
    edgeprune.export(pruned, "deploy/", formats=("onnx", "executorch"), int8="static", data="digits")

``model`` is any ``nn.Module`` (or a model spec: zoo name, ``hf:``, ``hf-config:``, ``timm:``,
``torchvision:``, ``path/to/file.py:factory``); ``data`` is ``(train, val[, test])`` DataLoaders, an
``edgeprune.data.Data`` or a dataset spec (``digits``, ``mnist``, ``imagefolder:PATH``...).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

import edgeprune.methods.catalog  # noqa: F401  (fills the method registry)
from edgeprune import models as model_lib
from edgeprune import tasks as tasks_lib
from edgeprune.deploy import Exported, export
from edgeprune.errors import ConfigError
from edgeprune.methods.base import list_methods
from edgeprune.prune.masks import Masks
from edgeprune.runs import input_model as input_lib
from edgeprune.runs import request as request_lib
from edgeprune.runs.execution import candidate_progress
from edgeprune.runs.executor import executor_of
from edgeprune.runs.inputs import check_device
from edgeprune.runs.job import Job, dense_record
from edgeprune.runs.sweep import SweepResult, make_plan, print_plan, run_sweep


@dataclass
class Pruned:
    """One pruned (and fine-tuned) model in memory, with what it measured and what the method decided."""

    model: nn.Module
    method: str
    budget: float
    record: dict  # the candidate's record: accuracies, sparsity, params, MACs, budget_achieved...
    dense: dict  # the same measurements of the input model
    masks: Masks | None = None  # unstructured methods: the exact keep-masks
    candidates: list[dict] = field(default_factory=list)  # every candidate tried (the best is ``record``)

    @property
    def decided(self) -> dict:
        return self.record.get("decided", {})


def prune(model, data, method: str = "mix_and_match", budget=None, finetune=None, *, task=None, kd: bool | None = None,
          seed: int = 0, schedule=None, example_input=None, progress: bool = False, quick: bool = False,
          **options) -> Pruned:
    """Prune ``model`` with ``method`` at ``budget`` and fine-tune it; nothing is written, ``model`` is untouched.

    When the method makes several candidates for one budget (Mix-and-Match: criteria × strategies), each is
    fine-tuned and the best on validation is returned. ``finetune``: None (the method's default epochs), 0
    (none), an epoch count, a dict of TrainConfig fields or a TrainConfig. ``schedule``: "oneshot" (masks
    applied before fine-tuning) or "gradual" (cubic schedule during the first 60 % of the fine-tune, Zhu &
    Gupta; or a dict with kind, end, updates) for masked candidates; None: ``prune.gradual.DEFAULT``. ``options`` are the method's own.
    ``progress``: print the plan (candidates, epochs, batches, estimated time) first, then a line per candidate.
    ``quick``: see :func:`sweep`. ``task``: what the model is for (:mod:`edgeprune.tasks`): "classification"
    (the default), "segmentation", "detection", "regression", a Task (``tasks.Custom(loss_fn, metric_fn)``) or
    "file.py:factory"; None takes the data's own (``mnist-seg``...) or classification. The best candidate is
    the best on the task's validation metric, in its direction.
    """
    request = request_lib.resolve_request(model, data, method, options, budgets=budget, seeds=[int(seed)], task=task,
                                          finetune=finetune, kd=kd, schedule=schedule, example_input=example_input,
                                          quick=quick)
    with tasks_lib.using(request.inputs.task):
        return _prune(request, progress, method)


def _prune(request: request_lib.Request, progress: bool, method: str) -> Pruned:
    m, inputs, train, distil, (value,) = request.method, request.inputs, request.train, request.kd, request.budgets
    state = m.prepare(inputs.model, inputs.data, inputs.example)
    job = Job(m, state, inputs.model, inputs.data, train, distil, inputs.example, schedule=request.schedule,
              task=inputs.task)
    cands = m.candidates(state, [value], request.seeds)
    if progress:
        print_plan(make_plan(m, inputs, [value], request.seeds, cands, train, distil, quick=request.quick))
    records, best = [], None  # only the best candidate's model is kept: 33 copies of a ViT-B are 14 GB
    with candidate_progress(progress, m.name, cands, cands, bar=False) as shown:
        for cand in cands:
            record, decision = job.run(cand, progress)
            records.append(record)
            shown.finished(record)
            if decision is not None and (best is None or tasks_lib.score_of(record) > tasks_lib.score_of(best[0])):
                best = record, decision
            del decision
    if best is None:
        raise ConfigError(f"every candidate of {method!r} at budget {value:g} failed: {records[0]['error']}")
    record, decision = best
    return Pruned(decision.model, m.name, record["budget"], record,  # a default budget may have been lowered
                  dense_record(inputs.model, inputs.data, inputs.example, inputs.task), decision.masks, records)


def sweep(model, data, method: str = "mix_and_match", budgets=None, seeds=1, out=None, *, executor="local",
          task=None, finetune=None, kd: bool | None = None, schedule=None, example_input=None, progress: bool = True,
          edge_report: bool | str = False, quick: bool = False, dry_run: bool = False, model_args: dict | None = None,
          data_dir=None, train_input: int | None = None, checkpoint=None, **options) -> SweepResult | dict:
    """Every candidate of ``method`` over ``budgets`` × ``seeds`` in the run directory ``out`` (resumable).

    Returns the records, the validation front and the chosen candidate (its model: ``out/chosen.pt``).
    ``executor``: "local", "ray", a dict of :func:`~edgeprune.runs.executor.make_executor`'s keywords
    (``{"kind": "ray", "workers": 4}``) or an executor object; ``schedule``: as for :func:`prune`. ``edge_report``:
    the report also gets the input model, the chosen one and its INT8 form in every installed runtime: bytes,
    batch-1 latency, test accuracy (``render(..., edge=True)``; under a minute per run); a device (a saved name, ``ssh://...``, ``cmd:...``): timed there
    too. Everything is checked before ``out`` is written.
    ``progress``: the plan (candidates, epochs, batches per epoch, estimated time) is printed before the first
    candidate is trained, and one line per finished candidate (stderr). ``quick``: a data set spec is cut to
    a stratified, seeded subset of at most 1,000 train+val and 1,000 test images, every training stage to 10 batches per epoch,
    calibration to 2 batches, ONNX latency to 5 runs — to see a call through in minutes; the run config and
    report say so. ``dry_run``: print the plan and return it (a dict); nothing is trained or written.
    ``task``: as for :func:`prune`; records then name its metric (``val_miou``, ``test_map50``...).
    A model spec is built with ``model_args`` for the data (a data set spec is looked up under ``data_dir``);
    ``train_input=EPOCHS`` trains it on the data first (into ``out/dense/``, reused by a re-run with the same
    settings); ``checkpoint=PATH``: a trained edgeprune checkpoint of that spec is pruned instead (`edgeprune prune`).
    """
    if out is None:
        raise ConfigError("sweep needs out= (the run directory)")
    out = Path(out)
    input_lib.check_input_training(model, train_input, checkpoint)
    request = request_lib.resolve_request(model, data, method, options, budgets=budgets, seeds=seeds, task=task,
                                          finetune=finetune, kd=kd, schedule=schedule, example_input=example_input,
                                          quick=quick, model_args=model_args, data_dir=data_dir, checkpoint=checkpoint)
    if isinstance(edge_report, str) and edge_report != "host":
        check_device(edge_report)
    runner, own = executor_of(executor)
    try:
        with tasks_lib.using(request.inputs.task):
            inputs = request.inputs
            if train_input is not None and checkpoint is None:
                inputs = input_lib.input_of(request, model, out, model_args=model_args, epochs=train_input,
                                            progress=progress, dry_run=dry_run)
                if isinstance(inputs, dict):  # the dry run's plan
                    return inputs
            return run_sweep(request.method, inputs, request.budgets, request.seeds, out, train=request.train,
                             kd=request.kd, executor=runner, progress=progress, schedule=request.schedule,
                             edge_report=edge_report, quick=request.quick, dry_run=dry_run)
    finally:
        if own:
            runner.close()


def save(pruned: Pruned | nn.Module, path: str | os.PathLike) -> Path:
    """Write a pruned model (or any module) with its structure, so :func:`load` rebuilds narrower layers."""
    if isinstance(pruned, Pruned):
        metric = tasks_lib.metric_of(pruned.record)[0]
        meta = {"method": pruned.method, "budget": float(pruned.budget), "budget_text": f"{pruned.budget}",
                **{k: pruned.record[k] for k in (f"val_{metric}", f"test_{metric}", "sparsity", "params") if k in pruned.record}}
        return model_lib.save(pruned.model, path, meta=meta)
    if isinstance(pruned, nn.Module):
        return model_lib.save(model_lib.unwrapped(pruned), path)
    raise ConfigError(f"save takes a Pruned result or a torch.nn.Module, got {type(pruned).__name__}")


def load(path: str | os.PathLike, model=None) -> nn.Module:
    """The model saved at ``path`` (``weights_only`` loading); ``model=`` a fresh instance of the user's class
    (or a factory) for models without a spec; removed channels and neurons are re-applied to it."""
    return model_lib.load(path, model=model)


__all__ = ["prune", "sweep", "save", "load", "export", "list_methods", "Pruned", "SweepResult", "Exported"]
