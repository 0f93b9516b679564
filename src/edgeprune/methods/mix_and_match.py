"""Mix-and-Match pruning: one run, many pruned models, one Pareto front.

roles → scores (once per criterion) → ranges → ten strategies → per candidate: exact per-layer masks →
fine-tune (masks exact, optional KD) → measure → one record in RUN_DIR/results.jsonl. Then single-criterion
baselines (global magnitude / SNIP / GraSP / random) are pruned to the sparsity of the Mix-and-Match
candidates they are compared with, fine-tuned the same way, and the report is rendered.

Selection happens on the validation split; each final model's test accuracy is measured once.
"""

from __future__ import annotations

import copy
import dataclasses
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pydantic
import torch
from torch import nn

from edgeprune import data as data_lib
from edgeprune import models as model_lib
from edgeprune import ranges as ranges_lib
from edgeprune import roles as roles_lib
from edgeprune import scores as scores_lib
from edgeprune import strategies as strategies_lib
from edgeprune.config import Config
from edgeprune.errors import CheckpointError, ConfigError, EdgepruneError
from edgeprune.measure import accuracy, macs, nonzeros, param_count, sparse_bytes_bound, sparsity
from edgeprune.methods.dense import train_dense
from edgeprune.prune.masks import MaskBuilder, apply_masks
from edgeprune.runs.store import RunStore
from edgeprune.train import TrainConfig, default_config, fit

CRITERIA = ("magnitude", "gradient", "product")
BASELINES = ("magnitude", "snip", "grasp", "random")


class SearchConfig(Config):
    """A Mix-and-Match search; the same fields are the keys of a YAML recipe."""

    model: str
    dataset: str = "digits"
    data_dir: str | None = None
    model_args: dict = {}
    checkpoint: str | None = None
    criteria: list[Literal["magnitude", "gradient", "product"]] = list(CRITERIA)
    strategies: list[str] = list(strategies_lib.NAMES)
    ranges: Literal["rules", "derived"] = "rules"
    range_rules: dict = {}
    target_sparsity: float | None = pydantic.Field(None, ge=0, lt=1)
    seeds: int = pydantic.Field(1, gt=0)
    baselines: list[Literal["magnitude", "snip", "grasp", "random"]] = list(BASELINES)
    baseline_matches: int = pydantic.Field(2, ge=0)
    calib_batches: int = pydantic.Field(10, gt=0)
    calib_batch_size: int = pydantic.Field(32, gt=0)
    epochs: int = pydantic.Field(5, gt=0)
    kd: bool = False
    finetune: dict = {}
    dense_epochs: int = pydantic.Field(10, gt=0)
    dense: dict = {}
    val_fraction: float = pydantic.Field(0.1, gt=0, lt=1)
    limit: int | None = pydantic.Field(None, gt=0)
    choose_tolerance: float = pydantic.Field(0.01, ge=0, lt=1)
    int8: Literal["static", "dynamic"] | None = None  # also measure INT8 test accuracy in ONNX Runtime
    save_checkpoints: bool = True

    @pydantic.field_validator("strategies")
    @classmethod
    def _known_strategies(cls, value):
        unknown = [s for s in value if s not in strategies_lib.NAMES]
        if unknown:
            raise ValueError(f"unknown strategy {unknown[0]!r}; allowed: {', '.join(strategies_lib.NAMES)}")
        if not value:
            raise ValueError("name at least one strategy")
        return value

    @pydantic.field_validator("criteria")
    @classmethod
    def _some_criteria(cls, value):
        if not value:
            raise ValueError("name at least one criterion")
        return value

    def identity(self) -> dict:
        """The fields that change results: a run directory refuses a configuration that differs in them."""
        return self.model_dump(exclude={"data_dir", "save_checkpoints"})

    def finetune_config(self, seed: int) -> TrainConfig:
        base = default_config(self.model)
        defaults = {"lr": base.lr * 0.2, "patience": 3, "warmup_epochs": 0.0}
        return TrainConfig.build({**base.model_dump(), **defaults, **self.finetune}, epochs=self.epochs, seed=seed)

    def dense_config(self) -> TrainConfig:
        return default_config(self.model, **{**self.dense, "epochs": self.dense_epochs})


@dataclass
class Candidate:
    id: str
    kind: str  # "mam" | "baseline"
    criterion: str
    seed: int
    strategy: str | None = None
    aliases: list[str] = field(default_factory=list)
    sparsities: dict[str, float] | None = None  # per layer (mam)
    target: float | None = None  # global sparsity (baseline)
    matched_to: str | None = None


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
        **_size_metrics(model, splits),
        **_int8_metrics(model, splits, config.int8),
        "checkpoint": str(path if config.checkpoint else own.relative_to(store.root)),
    }
    return model, record


def _int8_metrics(model: nn.Module, splits, mode: str | None) -> dict:
    """INT8 (and FP32) test accuracy measured in ONNX Runtime, when the configuration asks for it."""
    if mode is None:
        return {}
    from edgeprune.export import evaluate_int8

    r = evaluate_int8(model, splits, mode)
    return {"int8_acc": r["int8_acc_ort"], "fp32_acc_ort": r["fp32_acc_ort"], "int8_mode": mode, "int8_onnx_bytes": r["int8_onnx_bytes"]}


def _size_metrics(model: nn.Module, splits) -> dict:
    report = macs(model, torch.zeros(1, splits.in_channels, splits.image_size, splits.image_size))
    return {
        "sparsity": sparsity(model),
        "params": param_count(model),
        "nonzeros": nonzeros(model),
        "macs": report.dense,
        "effective_macs": report.effective,
        "bytes_estimate": sparse_bytes_bound(model),
    }


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


def plan_mam(ctx: SearchContext) -> list[Candidate]:
    """criteria × distinct strategies × seeds; strategies with identical per-layer sparsities run once."""
    cfg = ctx.config
    if cfg.ranges == "rules":
        layer_ranges = ranges_lib.rules(ctx.roles, ranges_lib.RangeRules.build(cfg.range_rules))
    else:
        baseline_scores = {n: ctx.scores[n] for n in ("magnitude", "snip", "grasp")}
        layer_ranges = ranges_lib.derived(ctx.roles, baseline_scores, rules=ranges_lib.RangeRules.build(cfg.range_rules))
    built = strategies_lib.build_all(layer_ranges, ctx.roles, cfg.target_sparsity)
    built = {name: built[name] for name in cfg.strategies}
    groups = strategies_lib.duplicates(built)
    seen, plan = set(), []
    for name in cfg.strategies:
        if name in seen:
            continue
        aliases = [a for a in groups.get(name, []) if a in built]
        seen.update([name, *aliases])
        for criterion in cfg.criteria:
            for seed in range(cfg.seeds):
                plan.append(Candidate(f"mam-{criterion}-{name}-s{seed}", "mam", criterion, seed, name, aliases, built[name]))
    return plan


def plan_baselines(ctx: SearchContext, records: list[dict]) -> list[Candidate]:
    """Each baseline at the sparsity of the Mix-and-Match settings it is compared with: the chosen one and
    the next best on the validation Pareto front (``baseline_matches`` in all)."""
    from edgeprune.report.choose import matched_settings

    cfg = ctx.config
    plan = []
    for setting in matched_settings(records, ctx.dense_record, cfg.baseline_matches, cfg.choose_tolerance):
        tag = f"{setting['criterion']}-{setting['strategy']}"
        for baseline in cfg.baselines:
            for seed in range(cfg.seeds):
                plan.append(
                    Candidate(
                        f"base-{baseline}@{tag}-s{seed}", "baseline", baseline, seed,
                        target=setting["sparsity"], matched_to=f"mam-{tag}",
                    )
                )
    return plan


def base_record(cfg: SearchConfig, cand: Candidate) -> dict:
    """The fields that identify a candidate's record, finished or failed."""
    return {
        "id": cand.id, "kind": cand.kind, "criterion": cand.criterion, "strategy": cand.strategy,
        "aliases": cand.aliases, "seed": cand.seed, "matched_to": cand.matched_to,
        "target": cand.target if cand.kind == "baseline" else cfg.target_sparsity,
    }


def train_candidate(ctx: SearchContext, cand: Candidate, progress: bool = False) -> tuple[dict, nn.Module | None]:
    """Prune, fine-tune and measure one candidate in memory: (record, trained model or None if it failed).

    Writes nothing, so it runs the same in the driver and inside a Ray task. Status "failed" on divergence.
    """
    cfg, splits = ctx.config, ctx.splits
    builder = ctx.builder(cand.criterion)
    masks = builder.layerwise(cand.sparsities) if cand.kind == "mam" else builder.global_(cand.target)
    model = copy.deepcopy(ctx.dense)
    apply_masks(model, masks)
    if hasattr(splits.train, "reseed"):  # augmentation draws depend on the candidate, not on execution order
        splits.train.reseed(cand.seed)
    record = base_record(cfg, cand)
    started = time.perf_counter()
    try:
        record["val_acc_pruned"] = accuracy(model, splits.val)
        result = fit(
            model, splits.train, splits.val, cfg.finetune_config(cand.seed),
            teacher=ctx.dense if cfg.kd else None, masks=masks, progress=progress, description=cand.id,
        )
    except EdgepruneError as exc:
        return {**record, "status": "failed", "error": str(exc), "seconds": time.perf_counter() - started}, None
    record.update(
        status="ok",
        val_acc=result.best_val_acc,
        test_acc=accuracy(model, splits.test),
        epochs_run=result.epochs_run,
        best_epoch=result.best_epoch,
        **_size_metrics(model, splits),
        **_int8_metrics(model, splits, cfg.int8),
        per_layer={n: round(s, 6) for n, s in sparsity(model, per_layer=True).items()},
        seconds=time.perf_counter() - started,
    )
    return record, model


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
    from edgeprune.report.search_report import render
    from edgeprune.runs import status
    from edgeprune.runs.executor import LocalExecutor
    from edgeprune.runs.lock import RunLock

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


def copy_chosen(run_dir: Path, record: dict) -> Path | None:
    """Copy the chosen candidate's checkpoint to RUN_DIR/chosen.pt."""
    if not record.get("checkpoint"):
        return None
    src = run_dir / record["checkpoint"]
    dst = run_dir / "chosen.pt"
    if src.exists():
        tmp = dst.with_suffix(".pt.tmp")
        shutil.copyfile(src, tmp)
        tmp.replace(dst)
        return dst
    return None
