"""Reconvene: structured pruning at initialisation (Eccles, Wong, Varghese, CCGrid 2024).

Pipeline (one pass, before any training):

1. **UPaI** — a PaI criterion (magnitude, random, SNIP, GraSP, SynFlow) scores every Conv/Linear weight of
   the freshly initialised model; one GLOBAL threshold keeps the top (1 − p) fraction
   (:func:`pai_masks`).
2. **Pruning Sensitivity Evaluator** (:func:`evaluate_sensitivity`) — each conv layer's sparsity is
   compared with the global average: by default the unweighted mean of the conv layers' sparsities (or,
   ``weighted=True``, the parameter-weighted one, i.e. ``p``). Layers pruned harder are *insensitive*.
3. **Resilient Layer Rectifier** (:func:`rectify`) — insensitive layers lose output channels physically
   (torch-pruning dependency graph, :mod:`edgeprune.prune.channels`): ``max(1, round(√density × C_out))``
   channels (``width="sqrt"``, the default; ``"density"``: ``round(density × C_out)``) ranked by their
   per-filter score mass survive (``keep="score_mass"``), or only the all-zero filters go
   (``keep="zero_filters"``, lossless). Consumers lose the matching inputs. Layers coupled
   through a residual sum are one *group*: the group's pooled sparsity (all members' weights together)
   is compared with the average (``group_rule="pooled"``; ``"all"`` needs every member insensitive), and
   the group keeps the width rule's channels of its pooled density, ranked by the members' summed score
   mass.
   Every layer whose shape changed is re-initialised; sensitive layers keep their unstructured masks,
   sliced where their inputs were removed.
4. Train from scratch with :func:`edgeprune.train.fit` (``masks=`` keeps the remaining masks exact), next
   to the UPaI counterpart at the same ``p`` (:func:`run`).

:func:`generate` is steps 1–3 in one call. Steps 2–3 live in :mod:`edgeprune.prune.rectify` (re-exported
here); the run folder's report in :mod:`edgeprune.report.reconvene_report`.
"""

from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path
from typing import Callable, Literal

import pydantic
import torch
from torch import nn

from edgeprune import data as data_lib
from edgeprune import models as model_lib
from edgeprune import scores as scores_lib
from edgeprune.config import Config
from edgeprune.errors import ConfigError, check_fraction
from edgeprune.export import sparse
from edgeprune.export.ort_latency import exported_latency
from edgeprune.measure import accuracy, machine_info, summarize
from edgeprune.measure.size import prunable_weights
from edgeprune.prune.masks import Masks, apply_masks, global_masks
from edgeprune.prune.rectify import (  # noqa: F401  (re-exported: the pipeline's pieces in one namespace)
    CONV_TYPES,
    GROUP_RULES,
    KEEP_RULES,
    REINIT_RULES,
    WIDTH_RULES,
    Sensitivity,
    check_options,
    default_reinit,
    evaluate_sensitivity,
    rectify,
)
from edgeprune.report.reconvene_report import summarize_records, write_report  # noqa: F401
from edgeprune.scores import calibration_batches
from edgeprune.train import default_config, fit
from edgeprune.utils.io import append_jsonl, ensure_dir, read_jsonl, write_json

#: "unstructured" = UPaI (a global unstructured mask); "reconvene" = UPaI + PSE + RLR, channels removed
MODES = ("reconvene", "unstructured")

PAI_SCORES = ("synflow", "snip", "grasp", "magnitude", "random")
#: criteria that need calibration batches
DATA_SCORES = ("snip", "grasp")


def check_score(score: str) -> str:
    """ConfigError unless ``score`` is one of :data:`PAI_SCORES`."""
    if score not in PAI_SCORES:
        raise ConfigError(f"unknown score {score!r}; allowed: {', '.join(PAI_SCORES)}")
    return score



# ---------------------------------------------------------------------------------------------------
# UPaI: scores and one global mask
# ---------------------------------------------------------------------------------------------------


def pai_masks(
    model: nn.Module,
    example_input: torch.Tensor,
    sparsity: float,
    score: str = "synflow",
    batches=None,
    *,
    seed: int = 0,
    score_options: dict | None = None,
    progress: bool = False,
) -> tuple[dict[str, torch.Tensor], Masks]:
    """(scores, global keep-masks at ``sparsity``) of ``model`` under the PaI criterion ``score``.

    SynFlow runs iteratively towards ``sparsity`` (100 rounds on the exponential schedule unless
    ``score_options={"rounds": n}``) on an all-ones input of ``example_input``'s shape. The model is not
    modified.
    """
    sparsity = check_fraction("sparsity", sparsity)
    check_score(score)
    options = dict(score_options or {})
    if score == "synflow":
        options.setdefault("sparsity", sparsity)
        options.setdefault("input_shape", tuple(example_input.shape[1:]))
    if "progress" in scores_lib.REGISTRY[score].options:  # SynFlow's bar over its rounds
        options.setdefault("progress", progress)
    if score in DATA_SCORES and not batches:
        raise ConfigError(f"score {score!r} needs calibration batches (batches=scores.calibration_batches(train, 1, 100))")
    scores = scores_lib.compute(score, model, batches, seed=seed, **options)
    return scores, global_masks(scores, sparsity)


# ---------------------------------------------------------------------------------------------------
# generate = UPaI + PSE + RLR
# ---------------------------------------------------------------------------------------------------


def _weights_summary(model: nn.Module, masks: Masks) -> dict:
    weights = prunable_weights(model)
    total = sum(w.numel() for w in weights.values())
    kept = sum(int(masks[n].count_nonzero()) if n in masks else w.numel() for n, w in weights.items())
    return {"prunable_weights": int(total), "kept_weights": int(kept)}


def generate(
    model: nn.Module,
    example_input: torch.Tensor,
    sparsity: float,
    score: str = "synflow",
    batches=None,
    *,
    weighted: bool = False,
    keep: str = "score_mass",
    group_rule: str = "pooled",
    width: str = "sqrt",
    round_to: int = 1,
    reinit: str = "changed",
    seed: int = 0,
    score_options: dict | None = None,
    reinit_fn: Callable[[nn.Module], None] = default_reinit,
) -> tuple[nn.Module, Masks, dict]:
    """Reconvene on an initialised ``model``: returns ``(pruned_model, masks, info)``; ``model`` is untouched.

    ``pruned_model`` is a physically smaller copy, ready to train with ``fit(..., masks=masks)``.
    ``info`` (JSON-able): ``insensitive`` layers, ``structured`` layers (channels removed), per-layer
    ``layers`` rows (UPaI sparsity, verdict, channels before/after, weights before/after), residual
    ``groups`` and what was decided for each, ``removed`` original indices per touched module,
    ``upai`` (kept/total prunable weights of the UPaI mask), ``reconvene`` (the same after rectification,
    over the smaller model), ``seconds`` (scores, rectify, total = the generation time).
    """
    sparsity = check_fraction("sparsity", sparsity)
    check_score(score)
    check_options(keep, group_rule, width, round_to, reinit)
    if not any(isinstance(m, CONV_TYPES) for m in model.modules()):
        raise ConfigError(
            f"model {type(model).__name__} has no convolution layer for Reconvene's structured step; "
            "run the unstructured PaI only (--mode unstructured)"
        )
    t0 = time.perf_counter()
    scores, masks = pai_masks(model, example_input, sparsity, score, batches, seed=seed, score_options=score_options)
    t_scores = time.perf_counter() - t0
    pruned = copy.deepcopy(model)
    pruned, new_masks, info = rectify(pruned, example_input, masks, scores, weighted=weighted, keep=keep,
                                      group_rule=group_rule, width=width, round_to=round_to, reinit=reinit,
                                      reinit_fn=reinit_fn)
    total = time.perf_counter() - t0
    info = {
        "sparsity": sparsity,
        "score": score,
        "seed": seed,
        **info,
        "upai": _weights_summary(model, masks),
        "reconvene": _weights_summary(pruned, new_masks),
        "seconds": {"scores": t_scores, "rectify": info["rectify_seconds"], "total": total},
        "generation_seconds": total,
    }
    return pruned, new_masks, info


# ---------------------------------------------------------------------------------------------------
# The comparison run: UPaI vs Reconvene, trained from scratch, measured (report: edgeprune.report.reconvene_report)
# ---------------------------------------------------------------------------------------------------

class PaIConfig(Config):
    """Settings of :func:`run` (the ``edgeprune pai`` command)."""

    model: str
    dataset: str
    sparsity: float = pydantic.Field(ge=0, lt=1)
    score: Literal["synflow", "snip", "grasp", "magnitude", "random"] = "synflow"
    mode: Literal["reconvene", "unstructured", "both"] = "both"
    seeds: int = pydantic.Field(1, gt=0)
    weighted: bool = False
    keep: Literal["score_mass", "zero_filters"] = "score_mass"
    group_rule: Literal["pooled", "all"] = "pooled"
    width: Literal["density", "sqrt"] = "sqrt"
    round_to: int = pydantic.Field(1, ge=1)  # kept channels rounded up to a multiple of this
    reinit: Literal["changed", "all", "none"] = "changed"
    synflow_rounds: int = pydantic.Field(100, gt=0)
    calibration_batches: int = pydantic.Field(1, gt=0)
    calibration_batch_size: int | None = pydantic.Field(None, gt=0)  # default: 10 examples per class
    limit: int | None = pydantic.Field(None, gt=0)
    val_fraction: float = pydantic.Field(0.1, gt=0, lt=1)
    model_kwargs: dict = pydantic.Field(default_factory=dict)
    latency_batches: list[int] = pydantic.Field(default_factory=lambda: [1, 32])
    latency_runs: int = pydantic.Field(30, gt=0)
    sparse_artifact: bool = True  # write the compressed sparse artifact (edgeprune.export.sparse)
    onnx: bool = True  # export each trained model to ONNX (parity-checked) and time it in ONNX Runtime
    train: dict = pydantic.Field(default_factory=dict)  # TrainConfig fields; defaults by model family

    @property
    def modes(self) -> list[str]:
        return list(MODES) if self.mode == "both" else [self.mode]

    def train_config(self, seed: int):
        return default_config(self.model, **{**self.train, "seed": seed})


def _sparse_bytes(model: nn.Module, path: Path, meta: dict, write: bool) -> tuple[int, str]:
    """Bytes of the compressed sparse form: the real ``.epz`` artifact, or a labelled estimate.

    The estimate (with ``write=False``) stores every
    parameter as a bitmap (n/8 bytes) plus its non-zero FP32 values (4 bytes each).
    """
    if write:
        described = sparse.save(model, path, meta=meta)
        return int(described["bytes"]), "artifact"
    est = 0
    for p in {id(p): p for p in model.parameters()}.values():
        est += int(torch.count_nonzero(p)) * 4 + math.ceil(p.numel() / 8)
    return est, "estimate"


def _read_records(path: Path) -> list[dict]:
    """The finished records; a torn last line (an interrupted run) is repaired and that run redone."""
    return read_jsonl(path)


def _check_run_dir(out: Path, config: PaIConfig) -> None:
    """A run directory holds one configuration: refuse to mix results of another into it."""
    existing = out / "config.json"
    if existing.exists():
        try:
            old = json.loads(existing.read_text())
        except json.JSONDecodeError:
            old = None
        new = json.loads(config.model_dump_json())
        if isinstance(old, dict):  # a setting added after that run was written ran with its default
            fields = type(config).model_fields
            old = {**{k: v for k, v in new.items() if k not in old and k in fields
                      and v == fields[k].get_default(call_default_factory=True)}, **old}
        if old != new:
            raise ConfigError(f"run directory {str(out)!r} holds results of another configuration; use another --out")


def _channels(model: nn.Module) -> dict[str, int]:
    return {n: int(m.weight.shape[0]) for n, m in model.named_modules() if n and isinstance(m, CONV_TYPES)}


def run(config: PaIConfig, out_dir, *, data_dir=None, progress: bool = True) -> list[dict]:
    """Generate, train and measure UPaI and/or Reconvene models for ``config.seeds`` seeds.

    Writes ``config.json``, one ``results.jsonl`` record per (mode, seed), the models (``models/``),
    ``report.md`` and ``accuracy_vs_size.png`` to ``out_dir``. Finished (mode, seed) items are skipped
    when the same command runs again. Returns all records.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output folder {str(out)!r} is a file")
    if out.exists():
        _check_run_dir(out, config)
    config.train_config(0)  # validate the training settings before any work
    splits = data_lib.load(config.dataset, root=data_dir, val_fraction=config.val_fraction, seed=0, limit=config.limit)
    shape = (splits.in_channels, splits.image_size, splits.image_size)
    example = torch.zeros(1, *shape)

    def build(seed: int) -> nn.Module:
        torch.manual_seed(seed)
        return model_lib.create(config.model, num_classes=splits.num_classes, in_channels=splits.in_channels,
                                image_size=splits.image_size, **config.model_kwargs)

    probe = build(0)
    if "reconvene" in config.modes and not any(isinstance(m, CONV_TYPES) for m in probe.modules()):
        raise ConfigError(
            f"model {config.model!r} has no convolution layer for Reconvene's structured step; "
            "use --mode unstructured"
        )
    del probe
    results = out / "results.jsonl"
    done = {(r.get("mode"), r.get("seed")) for r in _read_records(results)}

    def start() -> None:  # the run folder appears only once the first model is generated (bad input leaves nothing)
        ensure_dir(out / "models")
        write_json(out / "config.json", json.loads(config.model_dump_json()))
    calib_size = config.calibration_batch_size or 10 * splits.num_classes

    for seed in range(config.seeds):
        todo = [m for m in config.modes if (m, seed) not in done]
        if not todo:
            continue
        model = build(seed)
        batches = (calibration_batches(splits.train, config.calibration_batches, calib_size, seed)
                   if config.score in DATA_SCORES else None)
        options = {"rounds": config.synflow_rounds} if config.score == "synflow" else None
        t0 = time.perf_counter()
        scores, masks = pai_masks(model, example, config.sparsity, config.score, batches, seed=seed,
                                  score_options=options, progress=progress)
        score_seconds = time.perf_counter() - t0
        for mode in todo:
            extra: dict = {}
            candidate = copy.deepcopy(model)
            if mode == "reconvene":
                candidate, train_masks, info = rectify(candidate, example, masks, scores, weighted=config.weighted,
                                                      keep=config.keep, group_rule=config.group_rule, width=config.width,
                                                      round_to=config.round_to,
                                                      reinit=config.reinit)
                generation = score_seconds + info["rectify_seconds"]
                before = _channels(model)
                extra = {
                    "average_sparsity": info["average_sparsity"],
                    "insensitive": info["insensitive"],
                    "structured": info["structured"],
                    "channels": {n: [before[n], c] for n, c in _channels(candidate).items()},
                    "layers": info["layers"],
                    "groups": info["groups"],
                }
            else:
                train_masks, generation = masks, score_seconds
                apply_masks(candidate, train_masks)
            start()
            tcfg = config.train_config(seed)
            result = fit(candidate, splits.train, splits.val, tcfg, masks=train_masks, progress=progress,
                         description=f"{mode} s{seed}")
            test_acc = accuracy(candidate, splits.test, tcfg.eval_batch_size)
            meta = {"mode": mode, "seed": seed, "sparsity": config.sparsity, "score": config.score,
                    "val_acc": result.best_val_acc, "test_acc": test_acc}
            path = model_lib.save(candidate, out / "models" / f"{mode}-seed{seed}.pt", meta=meta)
            sparse_bytes, sparse_kind = _sparse_bytes(candidate, out / "models" / f"{mode}-seed{seed}.epz", meta,
                                                      config.sparse_artifact)
            measured = summarize(candidate, shape, latency_batches=tuple(config.latency_batches),
                                 latency_runs=config.latency_runs)
            if config.onnx:
                timings = exported_latency(candidate, shape, config.latency_batches, config.latency_runs,
                                           path=out / "models" / f"{mode}-seed{seed}.onnx")
                measured.update({f"onnx_latency_ms_b{b}": ms for b, ms in timings.items()})
            record = {
                "mode": mode,
                "seed": seed,
                "model": config.model,
                "dataset": splits.name,
                "score": config.score,
                "sparsity": config.sparsity,
                "val_acc": result.best_val_acc,
                "test_acc": test_acc,
                **measured,
                "dense_bytes": path.stat().st_size,
                "sparse_bytes": sparse_bytes,
                "sparse_bytes_kind": sparse_kind,
                "generation_seconds": generation,
                "score_seconds": score_seconds,
                "train_seconds": result.seconds,
                "seconds_per_epoch": result.seconds_per_epoch,
                "epochs_run": result.epochs_run,
                "best_epoch": result.best_epoch,
                "masked_weights": int(sum(m.numel() - int(m.count_nonzero()) for m in train_masks.values())),
                **extra,
                "machine": machine_info(),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }
            append_jsonl(results, record)
    records = _read_records(results)
    if records:
        write_report(out, config, records)
    return records


