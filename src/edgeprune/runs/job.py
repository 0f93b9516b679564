"""One candidate's life, the same for every method: prune → fine-tune (or train) → measure → record.

A :class:`Job` holds what every candidate of a run shares (the method and its prepared state, the input
model, the data, the training settings). :meth:`Job.train` prunes and trains one candidate in memory and
returns its record (one schema for every method) and the trained model; it writes nothing, so it runs the
same in the driver and in a Ray task. With a run directory (``store``), :meth:`Job.finish` saves the
model to ``candidates/ID.pt`` and appends the record.
"""

from __future__ import annotations

import copy
import dataclasses
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from edgeprune import models as model_lib
from edgeprune import tasks as tasks_lib
from edgeprune.data import Splits
from edgeprune.errors import EdgepruneError
from edgeprune.measure import size_metrics
from edgeprune.methods.base import Candidate, Decision, Method
from edgeprune.prune.gradual import GradualMasks, Schedule
from edgeprune.report.stats import pack
from edgeprune.runs.inputs import scratch_config
from edgeprune.runs.store import RunStore
from edgeprune.select import knob
from edgeprune.select.meter import Meter
from edgeprune.train import TrainConfig, TrainingDiverged, deterministic, fit
from edgeprune.utils.native import release_freed_memory


def measure(model: nn.Module, data, example: torch.Tensor, task: tasks_lib.Task | None = None) -> dict:
    """The task's metrics on validation and test (test once, on the final model) and the size of ``model``.

    Keys name the metric: ``val_acc`` / ``test_acc`` for classifiers, ``val_miou``, ``test_map50``... for other
    tasks, which also record ``metric`` (the primary metric), ``metric_higher`` (its direction) and
    ``test_<metric>_ci`` (a bootstrap interval over test examples). Classifiers keep the test images each model
    got right (``test_correct``: packed bits, see :func:`edgeprune.report.stats.pack`), so reports compare two
    models paired, on the same images.
    """
    task = task or tasks_lib.current()
    key = task.metric
    out = {f"val_{key}": task.primary(model, data.val)}
    if not isinstance(task, tasks_lib.Classification):
        out.update(metric=key, metric_higher=task.higher_is_better)
    if data.test is not None:
        stats = task.statistics(model, data.test)
        out.update({f"test_{k}": v for k, v in task.reduce(stats.values).items()}, test_n=stats.n)
        if isinstance(task, tasks_lib.Classification):
            out["test_correct"] = pack(stats.values.numpy())
        else:
            out[f"test_{key}_ci"] = list(task.interval(stats))
    return {**out, **size_metrics(model, example)}


def dense_record(model: nn.Module, data, example: torch.Tensor, task: tasks_lib.Task | None = None) -> dict:
    return {"id": "dense", "kind": "dense", "method": "dense", "status": "ok", **measure(model, data, example, task)}


LR_RETRIES = 2  # a diverged training runs again at most this many times...
LR_RETRY_FACTOR = 0.1  # ...each time at this fraction of the learning rate...
RETRY_CLIP_NORM = 1.0  # ...and with gradients clipped to this global norm (a mask that multiplies the output's
# scale, as GraSP's on a VGG without batch norm, gives gradients no learning rate can take unclipped)


@dataclass
class Job:
    method: Method
    state: object
    model: nn.Module  # the input model: teacher for KD, never modified
    data: object  # edgeprune.data.Data
    train_config: TrainConfig | None  # None: no fine-tune
    kd: bool
    example: torch.Tensor
    store: RunStore | None = None
    schedule: Schedule = dataclasses.field(default_factory=Schedule)  # masked candidates: oneshot | gradual
    task: tasks_lib.Task = dataclasses.field(default_factory=tasks_lib.Classification)
    # measures calibrated budgets; holds the input model's exports, so one per job (never sent to workers)
    _meter: Meter | None = dataclasses.field(default=None, init=False, repr=False, compare=False)

    def base_record(self, cand: Candidate) -> dict:
        setting = {k: v for k, v in cand.setting.items() if k != "sparsities"}
        record = {"id": cand.id, "kind": "candidate", "method": self.method.name, "budget": cand.budget,
                  "budget_name": getattr(cand.budget, "quantity", self.method.budget_name), "seed": cand.seed,
                  "setting": setting}
        if hasattr(cand.budget, "quantity"):  # a typed budget (edgeprune.measure.budget): its text too
            record["budget_text"] = str(cand.budget)
        return record

    def prune(self, cand: Candidate) -> Decision:
        if not self.method.calibrates(cand.budget):
            return self.method.prune(self.state, self.model, cand)
        # a measured budget the method meets through its own knob: bisected on copies pruned at each value
        if self._meter is None:
            self._meter = Meter(self.model, self.example)
        return knob.calibrate(lambda k: self.method.prune(self.state, self.model, dataclasses.replace(cand, knob=k)),
                              self._meter, cand.budget, self.method.knob_range,
                              what=self.method.name, knob_name=self.method.budget_name)

    def gradual(self, decision: Decision) -> GradualMasks | None:
        """The cubic schedule for a masked candidate that is fine-tuned (None: one shot). The fine-tune then
        starts from the input model's dense weights; the magnitude criterion is re-evaluated at each update."""
        if (self.schedule.kind != "gradual" or decision.masks is None or self.train_config is None
                or self.method.from_scratch):
            return None
        dense = self.model.state_dict()
        if any(k not in dense or dense[k].shape != v.shape for k, v in decision.model.state_dict().items()):
            return None  # the method changed the structure: there is no dense start to prune gradually
        decision.model.load_state_dict(dense)
        reselect = decision.info.get("criterion") == "magnitude"
        return GradualMasks(decision.masks, end=self.schedule.end, updates=self.schedule.updates, reselect=reselect)

    def train(self, cand: Candidate, progress: bool = False) -> tuple[dict, nn.Module | None]:
        """Prune, train and measure ``cand``: (record, trained model), or (failed record, None)."""
        record, decision = self.run(cand, progress)
        return record, decision.model if decision is not None else None

    def run(self, cand: Candidate, progress: bool = False) -> tuple[dict, Decision | None]:
        """:meth:`train`, keeping the method's whole decision (masks included); deterministic for a seed."""
        release_freed_memory()  # what the previous candidate left
        with deterministic(), tasks_lib.using(self.task):
            return self._run(cand, progress)

    def _run(self, cand: Candidate, progress: bool) -> tuple[dict, Decision | None]:
        record = self.base_record(cand)
        started = time.perf_counter()
        try:
            decision = self.prune(cand)
            record["decided"] = decision.info
            calibrated = self.method.calibrates(cand.budget)
            record["budget_achieved"] = decision.info["measured"] if calibrated else self.method.achieved(self.model, decision)
            model = decision.model
            record[f"val_{self.task.metric}_pruned"] = self.task.primary(model, self.data.val)
            pruning = self.gradual(decision)
            record["schedule"] = "gradual" if pruning is not None else "oneshot"
            if self.train_config is not None or "scratch" in decision.info:
                if hasattr(self.data.train, "reseed"):  # augmentation draws depend on the candidate only
                    self.data.train.reseed(cand.seed)
                result, pruning, retries = self._fit(cand, decision, pruning, progress)
                record.update(epochs_run=result.epochs_run, best_epoch=result.best_epoch)
                if retries:
                    record.update(lr=retries[-1]["lr"] * LR_RETRY_FACTOR, lr_retries=retries,
                                  clip_grad_norm=retries[-1]["clip_grad_norm"] or RETRY_CLIP_NORM)
                if pruning is not None:
                    decision.masks = {k: v.cpu() for k, v in pruning.masks.items()}
        except EdgepruneError as exc:
            return self.failed(cand, str(exc), 1, time.perf_counter() - started), None
        deploy = {k: v for k, v in decision.info.get("deploy", {}).items() if not isinstance(v, dict)}
        record.update(status="ok", **measure(model, self.data, self.example, self.task), **deploy,
                      seconds=time.perf_counter() - started)
        return record, decision

    def _fit(self, cand: Candidate, decision: Decision, pruning, progress: bool):
        """Fine-tune (or train) the candidate; when the loss diverges, again from the same start at a tenth of
        the learning rate with clipped gradients, at most :data:`LR_RETRIES` times (the record lists each divergence)."""
        scratch = decision.info.get("scratch")  # the plain alternative: trained from scratch, no teacher
        config = (scratch_config(self.model, scratch["epochs"]) if scratch else self.train_config).replace(seed=cand.seed)
        start = copy.deepcopy(decision.model.state_dict())
        retries: list[dict] = []
        while True:
            try:
                result = fit(decision.model, self.data.train, self.data.val, config,
                             teacher=self.model if self.kd and not scratch else None, masks=None if pruning else decision.masks,
                             pruning=pruning, progress=progress, description=cand.id)
                return result, pruning, retries
            except TrainingDiverged as exc:
                if len(retries) == LR_RETRIES:
                    raise
                retries.append({"lr": config.lr, "clip_grad_norm": config.clip_grad_norm, "diverged": str(exc)})
                config = config.replace(lr=config.lr * LR_RETRY_FACTOR, clip_grad_norm=config.clip_grad_norm or RETRY_CLIP_NORM)
                warnings.warn(f"candidate {cand.id}: {exc}; training again at lr={config.lr:g}, gradients clipped to norm "
                              f"{config.clip_grad_norm:g}", UserWarning, stacklevel=2)
                decision.model.load_state_dict(start)
                if pruning is not None:
                    pruning = self.gradual(decision)

    # -- the executors' contract (edgeprune.runs.executor) --------------------------------------------
    @staticmethod
    def portable(model: nn.Module) -> nn.Module:
        """A Ray task sends the whole module back: structured methods change its shapes."""
        return model

    def finish(self, cand: Candidate, record: dict, trained: nn.Module | None) -> dict:
        """Driver side: the model to ``candidates/ID.pt`` (atomic), then the record to results.jsonl."""
        if trained is not None and record.get("status") == "ok":
            rel = Path("candidates") / f"{record['id']}.pt"
            meta = {"record_id": record["id"], "method": self.method.name}
            if isinstance(self.data, Splits):  # a data set spec that `edgeprune export --dataset` can load again
                meta["dataset"] = self.data.name
            model_lib.save(trained, self.store.root / rel, meta=meta)
            record = {**record, "checkpoint": str(rel)}
        self.store.append(record)
        return record

    def failed(self, cand: Candidate, reason: str, attempts: int, seconds: float) -> dict:
        return {**self.base_record(cand), "status": "failed", "error": reason, "attempts": attempts, "seconds": seconds}

    def for_workers(self) -> "Job":
        return dataclasses.replace(self, store=None)

