"""The old ``edgeprune search`` pipeline: one Mix-and-Match run in a run directory, resumable.

The method itself (configuration, plan, one candidate's training) is :mod:`edgeprune.methods.mix_and_match`;
this module is the run around it: the run directory (:class:`~edgeprune.runs.store.RunStore`), its lock and
plan file, the executors (local or Ray) and the report (:mod:`edgeprune.report.search_report`).

    from edgeprune.runs.search import SearchConfig, run_search
    summary = run_search(SearchConfig(model="lenet5", dataset="digits"), "runs/lenet")
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from edgeprune import data as data_lib
from edgeprune import models as model_lib
from edgeprune import roles as roles_lib
from edgeprune import scores as scores_lib
from edgeprune.errors import CheckpointError, ConfigError
from edgeprune.measure import accuracy
from edgeprune.methods.dense import train_dense
from edgeprune.methods.mix_and_match import (
    BASELINES,
    CRITERIA,
    Candidate,
    SearchConfig,
    base_record,
    int8_metrics,
    plan_baselines,
    plan_mam,
    size_metrics,
    train_candidate,
)
from edgeprune.prune.masks import MaskBuilder
from edgeprune.report import search_report
from edgeprune.runs import status
from edgeprune.runs.executor import LocalExecutor
from edgeprune.runs.lock import RunLock
from edgeprune.runs.store import RunStore

__all__ = [
    "BASELINES", "CRITERIA", "Candidate", "SearchConfig", "SearchContext", "build_context", "load_dense", "render",
    "run_candidate", "run_search", "save_candidate", "train_candidate",
]


@dataclass
class SearchContext:
    """Everything a candidate needs; built once per run."""

    config: SearchConfig
    splits: object
    dense: nn.Module
    dense_record: dict
    roles: object
    scores: dict[str, dict[str, torch.Tensor]]  # criterion -> {param: score}, computed once
    builders: dict[str, MaskBuilder]
    store: RunStore | None  # None in a Ray worker's copy: only the driver writes the run directory

    def builder(self, criterion: str) -> MaskBuilder:
        """The mask builder of ``criterion``, made from the shared scores on first use."""
        if criterion not in self.builders:
            self.builders[criterion] = MaskBuilder(self.scores[criterion])
        return self.builders[criterion]

    def for_workers(self) -> "SearchContext":
        """What a Ray task needs (config, data, dense model, scores); builders are rebuilt there, no store."""
        return dataclasses.replace(self, roles=None, builders={}, store=None)

    # -- the executors' job contract (edgeprune.runs.executor) ------------------------------------------
    def train(self, cand: "Candidate") -> tuple[dict, nn.Module | None]:
        return train_candidate(self, cand)

    @staticmethod
    def portable(model: nn.Module) -> dict:
        """A Ray task sends back the weights only: masks do not change shapes."""
        return {k: v.detach().cpu() for k, v in model.state_dict().items()}

    def finish(self, cand: "Candidate", record: dict, trained) -> dict:
        """Driver side: write the candidate's checkpoint (if it trained), then append its record."""
        if trained is not None and record.get("status") == "ok":
            record = save_candidate(self, record, trained)
        self.store.append(record)
        return record

    def failed(self, cand: "Candidate", reason: str, attempts: int, seconds: float) -> dict:
        return {**base_record(self.config, cand), "status": "failed", "error": reason, "attempts": attempts,
                "seconds": seconds}


def load_dense(config: SearchConfig, splits, store: RunStore, progress: bool) -> tuple[nn.Module, dict]:
    """The user's checkpoint, the run's own dense model from an earlier run, or a freshly trained one."""
    own = store.root / "dense" / "model.pt"
    path = Path(config.checkpoint) if config.checkpoint else own
    if path.exists():
        model = model_lib.load(path)
        build = model.edgeprune_build
        if build["num_classes"] != splits.num_classes or build["in_channels"] != splits.in_channels:
            raise CheckpointError(
                f"checkpoint {str(path)!r} is a {build['spec']} for {build['num_classes']} classes / {build['in_channels']} channels; "
                f"data set {splits.name!r} has {splits.num_classes} / {splits.in_channels}"
            )
        if config.checkpoint and build["spec"].split(":")[-1] != config.model.split(":")[-1]:
            raise CheckpointError(f"checkpoint {str(path)!r} holds model {build['spec']!r}, not {config.model!r}")
    elif config.checkpoint:
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    else:
        model, _ = train_dense(
            config.model, splits, config.dense_config(), store.root / "dense",
            model_kwargs=config.model_args, progress=progress,
        )
    record = {
        "id": "dense",
        "kind": "dense",
        "val_acc": accuracy(model, splits.val),
        "test_acc": accuracy(model, splits.test),
        **size_metrics(model, splits),
        **int8_metrics(model, splits, config.int8),
        "checkpoint": str(path if config.checkpoint else own.relative_to(store.root)),
    }
    return model, record


def build_context(config: SearchConfig, out_dir: str | Path, progress: bool = True) -> SearchContext:
    splits = data_lib.load(config.dataset, root=config.data_dir, val_fraction=config.val_fraction, limit=config.limit)
    store = RunStore(out_dir).open(config.identity())
    dense, dense_record = load_dense(config, splits, store, progress)
    example = torch.zeros(2, splits.in_channels, splits.image_size, splits.image_size)
    roles = roles_lib.classify(dense, example)
    if not roles.prunable():
        raise ConfigError(f"model {config.model!r} has no prunable layer (conv or linear weight)")
    calib = scores_lib.calibration_batches(splits.train, config.calib_batches, config.calib_batch_size, seed=0)
    names = sorted(set(config.criteria) | set(config.baselines) | ({"magnitude", "snip", "grasp"} if config.ranges == "derived" else set()))
    scores = {n: scores_lib.compute(n, dense, None if n in ("magnitude", "random") else calib, seed=0) for n in names}
    builders = {n: MaskBuilder(s) for n, s in scores.items()}
    return SearchContext(config, splits, dense, dense_record, roles, scores, builders, store)


def save_candidate(ctx: SearchContext, record: dict, trained: nn.Module | dict) -> dict:
    """Driver side: write the trained model (a module, or its state_dict from a Ray task) atomically to
    RUN_DIR/candidates/ID.pt; returns the record with its ``checkpoint``. No-op without save_checkpoints."""
    if not ctx.config.save_checkpoints:
        return record
    model = trained
    if isinstance(trained, dict):
        model = copy.deepcopy(ctx.dense)
        model.load_state_dict(trained)
    rel = Path("candidates") / f"{record['id']}.pt"
    model_lib.save(model, ctx.store.root / rel, meta={"record_id": record["id"], "dataset": ctx.splits.name})
    return {**record, "checkpoint": str(rel)}


def run_candidate(ctx: SearchContext, cand: Candidate, progress: bool = False) -> dict:
    """Prune, fine-tune, measure and save one candidate; returns its record (status "failed" on divergence)."""
    record, model = train_candidate(ctx, cand, progress)
    return record if model is None else save_candidate(ctx, record, model)


def run_search(config: SearchConfig, out_dir: str | Path, *, progress: bool = True, executor=None) -> dict:
    """Run (or resume) a search in ``out_dir``; returns the report summary. Finished candidates are skipped.

    The run directory is locked for the duration (RUN_DIR/.lock); the plan is written to RUN_DIR/plan.json
    as it is made (see ``edgeprune status``). ``executor`` defaults to a :class:`LocalExecutor`; one made here
    is closed here, one passed in is left to the caller.
    """
    own = executor is None
    executor = executor or LocalExecutor()
    try:
        with RunLock(out_dir) as lock:
            lock.sweep_temp_files()  # half-written artifacts of a killed run
            RunStore(out_dir).open(config.identity())  # refuse another configuration before writing anything
            status.start_session(out_dir, executor=getattr(executor, "name", type(executor).__name__))
            status.write_plan(out_dir, "dense", ["dense"])
            ctx = build_context(config, out_dir, progress)
            store = ctx.store
            if "dense" not in store.finished_ids():
                store.append(ctx.dense_record)
            mam = plan_mam(ctx)
            status.write_plan(store.root, "mam", [c.id for c in mam])
            if status.read_plan(store.root)["kinds"].get("baseline", {}).get("ids") is None:
                expected = len(config.baselines) * config.baseline_matches * config.seeds
                status.write_plan(store.root, "baseline", None, expected=expected)
            executor.run(ctx, mam, progress=progress, title="Mix-and-Match candidates")
            baselines = plan_baselines(ctx, store.records())
            status.write_plan(store.root, "baseline", [c.id for c in baselines])
            executor.run(ctx, baselines, progress=progress, title="matched baselines")
            return render(store.root)
    finally:
        if own:
            executor.close()


def render(run_dir: str | Path) -> dict:
    """Write the report of the run in ``run_dir`` (results.csv, pareto.png, report.md, chosen.pt); return its summary."""
    store = RunStore(run_dir)
    return search_report.render(store.root, store.config(), store.records())
