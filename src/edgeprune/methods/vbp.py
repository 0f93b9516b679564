"""Variance-Based Pruning (Berisha et al., ICCV 2025): prune MLP hidden neurons of a trained network.

One pass of calibration data gives every MLP hidden neuron's post-activation mean and variance (the
input of ``mlp_out``); the lowest-variance neurons of the whole network are removed, their means are
folded into ``mlp_out``'s bias (mean-shift compensation), and the pruned model is fine-tuned with
knowledge distillation from the unpruned one. MLP blocks are found by layer roles, never by names.

    pruned, stats = edgeprune.methods.vbp.prune(model, calib_loader, 0.5)

The pruning itself (blocks, statistics, :func:`prune`) is :mod:`edgeprune.methods.vbp_core`, re-exported
here. :func:`run` is the whole method with a run directory (dense model, statistics, one record per ratio,
report and plot); ``edgeprune vbp`` calls it.
"""

from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path
from typing import Literal, Mapping

import pydantic
import torch
from torch import nn

from edgeprune import data as data_lib
from edgeprune import models as model_lib
from edgeprune.config import Config
from edgeprune.errors import ConfigError, EdgepruneError
from edgeprune.export.ort_latency import exported_latency
from edgeprune.measure import accuracy, latency, machine_info, macs, param_count
from edgeprune.methods.dense import build_for, train_dense
from edgeprune.methods.vbp_core import (
    DEFAULT_MIN_KEEP,
    BlockStats,
    VbpStats,
    _expected_input,
    collect_statistics,
    example_input_for,
    find_mlp_blocks,
    prune,
    prune_with_statistics,
)
from edgeprune.report.vbp_report import write_report
from edgeprune.scores.activations import describe_shape_mismatch
from edgeprune.train import TrainConfig, default_config, fit
from edgeprune.utils.io import append_jsonl, atomic_path, ensure_dir, read_jsonl, write_json

__all__ = [
    "DEFAULT_MIN_KEEP", "BlockStats", "VbpConfig", "VbpStats", "check_input_fits", "collect_statistics",
    "example_input_for", "finetune_kd", "find_mlp_blocks", "measure_cost", "onnx_latency", "prune",
    "prune_with_statistics", "reductions", "run",
]


# --------------------------------------------------------------------------------------------------
# the method with a run directory


class VbpConfig(Config):
    """Settings of :func:`run` (and ``edgeprune vbp``). Fine-tune defaults follow the paper."""

    model: str
    dataset: str
    checkpoint: str | None = None
    data_dir: str | None = None
    model_kwargs: dict = {}
    ratios: list[float] = pydantic.Field(default_factory=lambda: [0.5], min_length=1)
    calib_batches: int = pydantic.Field(0, ge=0)  # 0 = one pass over the training split
    calib_batch_size: int = pydantic.Field(64, gt=0)
    compensation: bool = True
    selection: Literal["variance", "magnitude", "random"] = "variance"
    per_layer: bool = False
    min_keep: int = pydantic.Field(DEFAULT_MIN_KEEP, ge=1)
    # fine-tune (paper: AdamW, lr 1.5e-5, cosine, wd 0.01, batch 32, 10 epochs, KD from the unpruned model)
    epochs: int = pydantic.Field(10, ge=0)  # 0 = no fine-tune
    batch_size: int = pydantic.Field(32, gt=0)
    lr: float = pydantic.Field(1.5e-5, gt=0)
    weight_decay: float = pydantic.Field(0.01, ge=0)
    patience: int | None = pydantic.Field(3, gt=0)
    kd_alpha: float = pydantic.Field(0.5, ge=0, le=1)
    kd_temperature: float = pydantic.Field(4.0, gt=0)
    max_batches: int | None = pydantic.Field(None, gt=0)  # per fine-tune epoch, for quick runs
    # dense model (only without checkpoint)
    dense_epochs: int = pydantic.Field(10, gt=0)
    dense_batch_size: int = pydantic.Field(128, gt=0)
    dense_lr: float | None = pydantic.Field(None, gt=0)
    # data and measurement
    seed: int = 0
    val_fraction: float = pydantic.Field(0.1, gt=0, lt=1)
    limit: int | None = pydantic.Field(None, gt=0)
    latency_batches: list[int] = pydantic.Field(default_factory=lambda: [1], min_length=1)
    latency_runs: int = pydantic.Field(30, gt=0)
    onnx_latency: bool = True  # also time ONNX Runtime when edgeprune.export is available

    @pydantic.field_validator("ratios")
    @classmethod
    def _ratios_in_range(cls, values: list[float]) -> list[float]:
        for v in values:
            if not 0.0 <= v < 1.0:
                raise ValueError(f"every ratio must be in [0, 1), got {v}")
        return sorted(set(values))

    @pydantic.field_validator("latency_batches")
    @classmethod
    def _positive_batches(cls, values: list[int]) -> list[int]:
        if any(v <= 0 for v in values):
            raise ValueError("latency batch sizes must be > 0")
        return values


# settings that may differ between invocations on the same run directory (adding ratios resumes)
_RESUMABLE_KEYS = {"ratios", "latency_runs", "onnx_latency", "data_dir"}


def measure_cost(model: nn.Module, input_shape: tuple, *, latency_batches=(1,), runs: int = 30,
                 onnx: bool = True) -> dict:
    """Params, MACs per image and median latency (torch; ONNX Runtime too with ``onnx``) per batch size."""
    out = {"params": param_count(model), "macs": macs(model, torch.zeros(1, *input_shape)).dense}
    for b in latency_batches:
        out[f"latency_ms_b{b}"] = latency(model, input_shape, batch_size=b, runs=runs)["median_ms"]
    if onnx:
        out.update(onnx_latency(model, input_shape, latency_batches=latency_batches, runs=runs))
    return out


def onnx_latency(model: nn.Module, input_shape: tuple, *, latency_batches=(1,), runs: int = 30) -> dict:
    """ONNX Runtime latency per batch size (``ort_latency_ms_b<k>``); ``ort_error`` when the model cannot be
    exported."""
    try:
        timings = exported_latency(model, tuple(input_shape), latency_batches, runs)
    except EdgepruneError as exc:
        return {"ort_error": str(exc)}
    return {f"ort_latency_ms_b{b}": ms for b, ms in timings.items()}


def reductions(before: dict, after: dict) -> dict:
    """Params/MACs reductions, MAC ratio, and per latency key the speedup and speedup / MAC ratio."""
    out = {
        "params_reduction": 1.0 - after["params"] / before["params"],
        "macs_reduction": 1.0 - after["macs"] / before["macs"],
    }
    mac_ratio = before["macs"] / after["macs"]
    out["mac_ratio"] = mac_ratio
    for key in before:
        if "latency_ms_b" in key and key in after:
            prefix = "ort_" if key.startswith("ort_") else ""
            b = key.rsplit("_b", 1)[1]
            speedup = before[key] / after[key]
            out[f"{prefix}speedup_b{b}"] = speedup
            out[f"{prefix}speedup_over_mac_ratio_b{b}"] = speedup / mac_ratio
    return out


def _check_run_dir(out: Path, cfg: VbpConfig) -> None:
    path = out / "config.json"
    if not path.exists():
        return
    try:
        old = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        raise ConfigError(f"{str(path)!r} is not readable JSON; remove it or use another --out") from None
    new = cfg.model_dump()
    diff = sorted(k for k in set(old) | set(new) if k not in _RESUMABLE_KEYS and old.get(k) != new.get(k))
    if diff:
        raise ConfigError(
            f"run directory {str(out)!r} holds a VBP run with other settings ({', '.join(diff)}); "
            f"use another --out or the same settings to resume"
        )


def _finished(out: Path) -> dict[float, dict]:
    """Finished ratios; a torn last line (a crash) is repaired and that ratio runs again."""
    return {round(float(rec["ratio"]), 6): rec for rec in read_jsonl(out / "results.jsonl")}


def _preflight(cfg: VbpConfig, splits) -> nn.Module | None:
    """Fail before anything is written or trained: the checkpoint loads and fits the data, and the model
    has MLP blocks. Returns the checkpoint's model (None when a dense model will be trained)."""
    if cfg.checkpoint is None:
        model = build_for(cfg.model, splits, cfg.model_kwargs)
        find_mlp_blocks(model, example_input_for(model))
        return None
    model = model_lib.load(cfg.checkpoint)
    build = model.edgeprune_build
    if build["num_classes"] != splits.num_classes:
        raise ConfigError(f"checkpoint {cfg.checkpoint!r} has {build['num_classes']} classes but data set "
                          f"{cfg.dataset!r} has {splits.num_classes}")
    check_input_fits(model, splits.val)
    find_mlp_blocks(model, example_input_for(model))
    return model


def _dense_model(cfg: VbpConfig, splits, out: Path, checkpoint_model: nn.Module | None,
                 progress: bool) -> tuple[nn.Module, dict]:
    """The unpruned model: the checkpoint, a dense model trained earlier in this run, or train one now."""
    dense_dir = out / "dense"
    if checkpoint_model is not None:
        info_path = dense_dir / "metrics.json"
        if info_path.exists():
            return checkpoint_model, json.loads(info_path.read_text())
        info = {"source": "checkpoint", "checkpoint": cfg.checkpoint,
                "val_acc": accuracy(checkpoint_model, splits.val),
                "test_acc": accuracy(checkpoint_model, splits.test)}  # the dense model is a final model: test once
        write_json(info_path, info)
        return checkpoint_model, info
    if (dense_dir / "model.pt").exists() and (dense_dir / "metrics.json").exists():
        return model_lib.load(dense_dir / "model.pt"), json.loads((dense_dir / "metrics.json").read_text())
    train_cfg = default_config(cfg.model, epochs=cfg.dense_epochs, batch_size=cfg.dense_batch_size,
                               lr=cfg.dense_lr, seed=cfg.seed)
    model, metrics = train_dense(cfg.model, splits, train_cfg, dense_dir, model_kwargs=cfg.model_kwargs,
                                 progress=progress, latency_batches=tuple(cfg.latency_batches))
    return model, {"source": "trained", **metrics}


@torch.no_grad()
def check_input_fits(model: nn.Module, dataset) -> None:
    """DataError (expected vs got shape) when ``dataset``'s images do not fit ``model``."""
    x = dataset[0][0].unsqueeze(0)
    was_training = model.training
    model.eval()
    try:
        model(x)
    except (RuntimeError, ValueError) as exc:  # HF models raise ValueError for wrong channels
        raise describe_shape_mismatch(tuple(x.shape), _expected_input(model), exc) from None
    finally:
        model.train(was_training)


def _finetune_config(cfg: VbpConfig):
    return TrainConfig.build(
        optimizer="adamw", lr=cfg.lr, weight_decay=cfg.weight_decay, schedule="cosine", epochs=cfg.epochs,
        batch_size=cfg.batch_size, patience=cfg.patience, seed=cfg.seed, kd_alpha=cfg.kd_alpha,
        kd_temperature=cfg.kd_temperature, max_batches=cfg.max_batches,
    )


def finetune_kd(pruned: nn.Module, teacher: nn.Module, splits, config, *, val_retained: float | None = None,
                progress: bool = False, description: str = "VBP fine-tune") -> tuple[dict, float, bool]:
    """KD fine-tune ``pruned`` in place from ``teacher`` with the one loop (best validation epoch kept).

    When ``val_retained`` (the pruned model's validation accuracy before training) is at least the best
    fine-tuned validation accuracy, the untrained weights are restored: selection is on validation.
    Returns (training record, final validation accuracy, whether the fine-tuned weights were kept).
    """
    before = copy.deepcopy(pruned.state_dict()) if val_retained is not None else None
    result = fit(pruned, splits.train, splits.val, config, teacher=teacher, progress=progress, description=description)
    if val_retained is not None and result.best_val_acc < val_retained:
        pruned.load_state_dict(before)
        return result.as_dict(), val_retained, False
    return result.as_dict(), result.best_val_acc, True


def _load_statistics(path: Path, blocks: Mapping[str, tuple[str, str]]) -> dict[str, BlockStats] | None:
    """Statistics saved by an earlier invocation of the same run (None if absent or for other blocks)."""
    if not path.exists():
        return None
    saved = torch.load(path, map_location="cpu", weights_only=True)["blocks"]
    if list(saved) != list(blocks):
        return None
    return {n: BlockStats(s["mlp_in"], s["mlp_out"], s["mean"], s["var"], int(s["count"])) for n, s in saved.items()}


def _save_statistics(path: Path, statistics: Mapping[str, BlockStats], seconds: float) -> None:
    blocks = {n: {"mlp_in": b.mlp_in, "mlp_out": b.mlp_out, "mean": b.mean, "var": b.var, "count": b.count}
              for n, b in statistics.items()}
    payload = {"blocks": blocks, "seconds": float(seconds)}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def run(cfg: VbpConfig, out_dir: str | os.PathLike, *, progress: bool = True) -> list[dict]:
    """VBP end to end into ``out_dir``: dense model, statistics once, then per ratio prune, measure,
    KD fine-tune, measure, save. Finished ratios (in results.jsonl) are skipped; returns all records."""
    out = Path(out_dir)
    _check_run_dir(out, cfg)
    splits = data_lib.load(cfg.dataset, root=cfg.data_dir, val_fraction=cfg.val_fraction, seed=cfg.seed,
                           limit=cfg.limit)
    checkpoint_model = _preflight(cfg, splits)
    ensure_dir(out)
    write_json(out / "config.json", cfg.model_dump())
    dense, dense_info = _dense_model(cfg, splits, out, checkpoint_model, progress)
    dense.eval()
    input_shape = (splits.in_channels, splits.image_size, splits.image_size)

    calib = data_lib.make_loader(splits.train.with_augment(False), cfg.calib_batch_size, shuffle=True, seed=cfg.seed)
    blocks = find_mlp_blocks(dense, example_input_for(dense, calib))
    stats_path = out / "statistics.pt"
    statistics = _load_statistics(stats_path, blocks)
    if statistics is None:
        t0 = time.perf_counter()
        statistics = collect_statistics(dense, calib, blocks=blocks, calib_batches=cfg.calib_batches, progress=progress)
        _save_statistics(stats_path, statistics, time.perf_counter() - t0)
    stats_seconds = torch.load(stats_path, map_location="cpu", weights_only=True)["seconds"]

    cost_path = out / "dense" / "cost.json"
    if cost_path.exists():
        before = json.loads(cost_path.read_text())
    else:
        before = measure_cost(dense, input_shape, latency_batches=cfg.latency_batches,
                              runs=cfg.latency_runs, onnx=cfg.onnx_latency)
        write_json(cost_path, before)

    done = _finished(out)
    records = []
    for ratio in cfg.ratios:
        key = round(ratio, 6)
        if key in done:
            records.append(done[key])
            continue
        t0 = time.perf_counter()
        pruned, vstats = prune_with_statistics(
            dense, statistics, ratio, compensation=cfg.compensation, selection=cfg.selection,
            per_layer=cfg.per_layer, min_keep=cfg.min_keep, seed=cfg.seed,
        )
        prune_seconds = time.perf_counter() - t0
        val_retained = accuracy(pruned, splits.val)
        test_retained = accuracy(pruned, splits.test)  # the training-free result is itself a final model
        after = measure_cost(pruned, input_shape, latency_batches=cfg.latency_batches,
                             runs=cfg.latency_runs, onnx=cfg.onnx_latency)
        finetune, val_final, finetune_kept = None, val_retained, False
        if cfg.epochs > 0:
            finetune, val_final, finetune_kept = finetune_kd(
                pruned, dense, splits, _finetune_config(cfg), val_retained=val_retained, progress=progress,
                description=f"VBP fine-tune {ratio:.0%}")
        test_final = accuracy(pruned, splits.test) if finetune_kept else test_retained
        ratio_dir = ensure_dir(out / f"ratio-{ratio:.3f}")
        model_lib.save(pruned, ratio_dir / "model.pt",
                       meta={"method": "vbp", "ratio": ratio, "val_acc": val_final, "test_acc": test_final})
        record = {
            "ratio": ratio,
            "seed": cfg.seed,
            **{k: v for k, v in vstats.summary().items() if k != "ratio"},
            "dense_val_acc": dense_info["val_acc"],
            "dense_test_acc": dense_info["test_acc"],
            "retained_val_acc": val_retained,
            "retained_test_acc": test_retained,
            "retained_rel_val": val_retained / dense_info["val_acc"],
            "retained_rel_test": test_retained / dense_info["test_acc"],
            "final_val_acc": val_final,
            "final_test_acc": test_final,
            "final_rel_val": val_final / dense_info["val_acc"],
            "final_rel_test": test_final / dense_info["test_acc"],
            "finetuned": finetune_kept,
            **{f"{k}_before": v for k, v in before.items()},
            **{f"{k}_after": v for k, v in after.items()},
            **reductions(before, after),
            "statistics_seconds": stats_seconds,
            "calibration_samples": next(iter(statistics.values())).count,
            "prune_seconds": prune_seconds,
            "finetune": finetune,
            "checkpoint": str(ratio_dir / "model.pt"),
            "machine": machine_info(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        append_jsonl(out / "results.jsonl", record)
        records.append(record)
    write_report(out, cfg, dense_info, records)
    return records
