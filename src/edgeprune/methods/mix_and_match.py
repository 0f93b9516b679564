"""Mix-and-Match pruning: one run, many pruned models, one Pareto front.

roles → scores (once per criterion) → ranges → ten strategies → per candidate: exact per-layer masks →
fine-tune (masks exact, optional KD) → measure → one record in RUN_DIR/results.jsonl. Then single-criterion
baselines (global magnitude / SNIP / GraSP / random) are pruned to the sparsity of the Mix-and-Match
candidates they are compared with, fine-tuned the same way, and the report is rendered.

Selection happens on the validation split; each final model's test accuracy is measured once.

This module holds the method: its configuration, the candidate plan and the in-memory training of one
candidate (:func:`train_candidate`, which writes nothing). The run around it (run directory, lock, plan file,
executors, report) is :mod:`edgeprune.runs.search`, which also provides :func:`~edgeprune.runs.search.run_search`.
A *context* below is a :class:`edgeprune.runs.search.SearchContext`.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Literal

import pydantic
import torch
from torch import nn

from edgeprune import ranges as ranges_lib
from edgeprune import strategies as strategies_lib
from edgeprune.config import MAX_BATCH_SIZE, MAX_BATCHES, MAX_EPOCHS, MAX_SEEDS, Config
from edgeprune.errors import EdgepruneError
from edgeprune.export import evaluate_int8
from edgeprune.measure import accuracy, sparsity
from edgeprune.measure import size_metrics as measure_sizes
from edgeprune.prune.masks import apply_masks
from edgeprune.report.choose import matched_settings
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
    seeds: int = pydantic.Field(1, gt=0, le=MAX_SEEDS)
    baselines: list[Literal["magnitude", "snip", "grasp", "random"]] = list(BASELINES)
    baseline_matches: int = pydantic.Field(2, ge=0)
    calib_batches: int = pydantic.Field(10, gt=0, le=MAX_BATCHES)
    calib_batch_size: int = pydantic.Field(32, gt=0, le=MAX_BATCH_SIZE)
    epochs: int = pydantic.Field(5, gt=0, le=MAX_EPOCHS)
    kd: bool = False
    finetune: dict = {}
    dense_epochs: int = pydantic.Field(10, gt=0, le=MAX_EPOCHS)
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


def int8_metrics(model: nn.Module, splits, mode: str | None) -> dict:
    """INT8 (and FP32) test accuracy measured in ONNX Runtime, when the configuration asks for it."""
    if mode is None:
        return {}
    r = evaluate_int8(model, splits, mode)
    return {"int8_acc": r["int8_acc_ort"], "fp32_acc_ort": r["fp32_acc_ort"], "int8_mode": mode, "int8_onnx_bytes": r["int8_onnx_bytes"]}


def size_metrics(model: nn.Module, splits) -> dict:
    return measure_sizes(model, torch.zeros(1, splits.in_channels, splits.image_size, splits.image_size))


def plan_mam(ctx) -> list[Candidate]:
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


def plan_baselines(ctx, records: list[dict]) -> list[Candidate]:
    """Each baseline at the sparsity of the Mix-and-Match settings it is compared with: the chosen one and
    the next best on the validation Pareto front (``baseline_matches`` in all)."""
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


def train_candidate(ctx, cand: Candidate, progress: bool = False) -> tuple[dict, nn.Module | None]:
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
        **size_metrics(model, splits),
        **int8_metrics(model, splits, cfg.int8),
        per_layer={n: round(s, 6) for n, s in sparsity(model, per_layer=True).items()},
        seconds=time.perf_counter() - started,
    )
    return record, model
