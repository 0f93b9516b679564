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
from edgeprune import data as data_lib
from edgeprune import models as model_lib
from edgeprune import tasks as tasks_lib
from edgeprune.data.splits import QUICK_LIMIT, QUICK_TEST_LIMIT
from edgeprune.deploy import Exported, export
from edgeprune.errors import ConfigError
from edgeprune.methods.base import get_method, list_methods
from edgeprune.prune.gradual import schedule_of
from edgeprune.prune.masks import Masks
from edgeprune.runs import inputs as inputs_lib
from edgeprune.runs.execution import candidate_progress
from edgeprune.runs.job import Job, dense_record
from edgeprune.runs.sweep import SweepResult, make_plan, print_plan, quick_method, run_sweep
from edgeprune.train import quick_config


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


def _quick(method, data, quick: bool):
    """(method, data) of a quick run: calibration capped, a data set spec cut to QUICK_LIMIT train+val and
    QUICK_TEST_LIMIT test images (stratified, seeded); data the caller built is used as it is (only the batch
    cap applies to it)."""
    if not quick:
        return method, data
    return quick_method(method), (data_lib.load(data, limit=QUICK_LIMIT, test_limit=QUICK_TEST_LIMIT) if isinstance(data, str) else data)


def _train(method, model, finetune, quick: bool):
    train = inputs_lib.train_config(method, model, finetune)
    return quick_config(train) if quick and train is not None else train


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
    plan = schedule_of(schedule)
    m, data = _quick(get_method(method, **options), data, quick)
    value = m.check_budget(m.default_budget if budget is None else budget)
    inputs = inputs_lib.resolve(model, data, task=task, example_input=example_input)
    with tasks_lib.using(inputs.task):
        m.check(inputs.model, inputs.example)
        train = _train(m, inputs.model, finetune, quick)
        return _prune(m, inputs, value, train, m.kd if kd is None else bool(kd), seed, plan, progress, quick, method)


def _prune(m, inputs, value, train, distil: bool, seed: int, plan, progress: bool, quick: bool, method: str) -> Pruned:
    state = m.prepare(inputs.model, inputs.data, inputs.example)
    job = Job(m, state, inputs.model, inputs.data, train, distil, inputs.example, schedule=plan, task=inputs.task)
    cands = m.candidates(state, [value], [int(seed)])
    if progress:
        print_plan(make_plan(m, inputs, [value], [int(seed)], cands, train, distil, quick=quick))
    results = []
    with candidate_progress(progress, m.name, cands, cands, bar=False) as shown:
        for cand in cands:
            results.append(job.run(cand, progress))
            shown.finished(results[-1][0])
    ok = [(r, d) for r, d in results if d is not None]
    if not ok:
        raise ConfigError(f"every candidate of {method!r} at budget {value:g} failed: {results[0][0]['error']}")
    record, decision = max(ok, key=lambda rd: tasks_lib.score_of(rd[0]))
    return Pruned(decision.model, m.name, value, record,
                  dense_record(inputs.model, inputs.data, inputs.example, inputs.task), decision.masks,
                  [r for r, _ in results])


def sweep(model, data, method: str = "mix_and_match", budgets=None, seeds=1, out=None, *, executor="local",
          task=None, finetune=None, kd: bool | None = None, schedule=None, example_input=None, progress: bool = True,
          edge_report: bool = False, quick: bool = False, dry_run: bool = False,
          **options) -> SweepResult | dict:
    """Every candidate of ``method`` over ``budgets`` × ``seeds`` in the run directory ``out`` (resumable).

    Returns the records, the validation front and the chosen candidate (its model: ``out/chosen.pt``).
    ``executor``: "local", "ray" or an executor object; ``schedule``: as for :func:`prune`. ``edge_report``:
    the report also gets the chosen and the input model's ONNX / ExecuTorch bytes and batch-1 latency
    (``render(..., edge=True)``; seconds per run). Everything is checked before ``out`` is written.
    ``progress``: the plan (candidates, epochs, batches per epoch, estimated time) is printed before the first
    candidate is trained, and one line per finished candidate (stderr). ``quick``: a data set spec is cut to
    a stratified, seeded subset of at most 1,000 train+val and 1,000 test images, every training stage to 10 batches per epoch,
    calibration to 2 batches, ONNX latency to 5 runs — to see a call through in minutes; the run config and
    report say so. ``dry_run``: print the plan and return it (a dict); nothing is trained or written.
    ``task``: as for :func:`prune`; records then name its metric (``val_miou``, ``test_map50``...).
    """
    if out is None:
        raise ConfigError("sweep needs out= (the run directory)")
    plan = schedule_of(schedule)
    m, data = _quick(get_method(method, **options), data, quick)
    values, seed_list = inputs_lib.budgets_of(m, budgets), inputs_lib.seeds_of(seeds)
    inputs = inputs_lib.resolve(model, data, task=task, example_input=example_input)
    with tasks_lib.using(inputs.task):
        m.check(inputs.model, inputs.example)
        train = _train(m, inputs.model, finetune, quick)
        return run_sweep(m, inputs, values, seed_list, out, train=train, kd=m.kd if kd is None else bool(kd),
                         executor=executor, progress=progress, schedule=plan, edge_report=edge_report, quick=quick,
                         dry_run=dry_run)


def save(pruned: Pruned | nn.Module, path: str | os.PathLike) -> Path:
    """Write a pruned model (or any module) with its structure, so :func:`load` rebuilds narrower layers."""
    if isinstance(pruned, Pruned):
        metric = tasks_lib.metric_of(pruned.record)[0]
        meta = {"method": pruned.method, "budget": float(pruned.budget), "budget_text": f"{pruned.budget}",
                **{k: pruned.record[k] for k in (f"val_{metric}", f"test_{metric}", "sparsity", "params") if k in pruned.record}}
        return model_lib.save(pruned.model, path, meta=meta)
    if isinstance(pruned, nn.Module):
        return model_lib.save(pruned, path)
    raise ConfigError(f"save takes a Pruned result or a torch.nn.Module, got {type(pruned).__name__}")


def load(path: str | os.PathLike, model=None) -> nn.Module:
    """The model saved at ``path`` (``weights_only`` loading); ``model=`` a fresh instance of the user's class
    (or a factory) for models without a spec; removed channels and neurons are re-applied to it."""
    return model_lib.load(path, model=model)


__all__ = ["prune", "sweep", "save", "load", "export", "list_methods", "Pruned", "SweepResult", "Exported"]
