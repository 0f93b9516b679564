"""``edgeprune pai``: pruning at initialisation, Reconvene (structured) vs UPaI (unstructured), into a run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgeprune.cli import app
from edgeprune.cli.common import console, human_bytes, parse_int_list, parse_kv, table
from edgeprune.errors import ConfigError, check_fraction
from edgeprune.methods.reconvene import (
    GROUP_RULES,
    KEEP_RULES,
    REINIT_RULES,
    WIDTH_RULES,
    PaIConfig,
    check_score,
    run,
    summarize_records,
)


@app.command()
def pai(
    model: str = typer.Option(..., "--model", "-m", help="Model spec, e.g. vgg11, vgg16, resnet20, lenet5."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Data set spec, e.g. mnist, cifar10, digits."),
    sparsity: float = typer.Option(0.9, help="Global sparsity p of the PaI mask over Conv/Linear weights, in [0, 1)."),
    score: str = typer.Option("synflow", help="PaI criterion: synflow | snip | grasp | magnitude | random."),
    mode: str = typer.Option("both", help="reconvene | unstructured | both."),
    epochs: int = typer.Option(10, help="Training epochs from scratch (> 0), same for both models."),
    seeds: int = typer.Option(1, help="Number of seeds (0..K-1): initialisation, scores and training order."),
    batch_size: int = typer.Option(128, help="Training batch size (> 0)."),
    lr: Optional[float] = typer.Option(None, help="Learning rate (> 0); default by model family."),
    max_batches: Optional[int] = typer.Option(None, help="Cap on training batches per epoch (quick runs)."),
    weighted: bool = typer.Option(False, "--weighted", help="PSE: compare each conv layer with p (parameter-weighted average) instead of the unweighted mean of conv-layer sparsities."),
    keep: str = typer.Option("score_mass", help="Channels an insensitive layer keeps: score_mass (the --width rule, ranked by score) | zero_filters (drop only all-zero filters)."),
    group_rule: str = typer.Option("pooled", help="Residual groups: pooled (the members' weights together) | all (every member insensitive)."),
    width: str = typer.Option("sqrt", help="With --keep score_mass: sqrt (keep round(sqrt(d) x C) channels: chains of shrunken layers keep about d of their weights) | density (keep round(d x C))."),
    round_to: int = typer.Option(1, "--round-to", help="Round each pruned layer's kept channels up to a multiple of this (8 or 16 suit SIMD kernels)."),
    reinit: str = typer.Option("changed", help="Re-initialise: changed (layers whose shape changed) | all | none."),
    rounds: int = typer.Option(100, help="SynFlow rounds (exponential schedule)."),
    calib_batches: int = typer.Option(1, help="Calibration batches for snip/grasp (> 0)."),
    calib_batch_size: Optional[int] = typer.Option(None, help="Calibration batch size; default 10 per class."),
    arg: Optional[list[str]] = typer.Option(None, "--arg", help="Model argument key=value (repeatable)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder holding the data sets; default $EDGEPRUNE_DATA or ./data."),
    limit: Optional[int] = typer.Option(None, help="Use at most this many training examples (quick runs)."),
    latency_batch: str = typer.Option("1,32", help="Batch sizes for latency, comma-separated."),
    latency_runs: int = typer.Option(30, help="Timed runs per latency measurement (> 0)."),
    onnx: bool = typer.Option(True, "--onnx/--no-onnx", help="Export each trained model to ONNX (models/*.onnx) and time it in ONNX Runtime."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folder; default runs/pai-MODEL-DATASET-SCORE-P."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
):
    """Prune at initialisation (UPaI mask), turn insensitive conv layers into smaller dense ones (Reconvene), train both from scratch, compare."""
    check_fraction("--sparsity", sparsity)
    check_score(score)
    for name, value, allowed in (("--mode", mode, ("reconvene", "unstructured", "both")), ("--keep", keep, KEEP_RULES),
                                 ("--group-rule", group_rule, GROUP_RULES), ("--width", width, WIDTH_RULES),
                                 ("--reinit", reinit, REINIT_RULES)):
        if value not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    for name, value in (("--epochs", epochs), ("--seeds", seeds), ("--rounds", rounds), ("--calib-batches", calib_batches)):
        if value <= 0:
            raise ConfigError(f"{name} must be > 0, got {value}")
    train = {"epochs": epochs, "batch_size": batch_size}
    if lr is not None:
        train["lr"] = lr
    if max_batches is not None:
        train["max_batches"] = max_batches
    config = PaIConfig.build(
        model=model, dataset=dataset, sparsity=sparsity, score=score, mode=mode, seeds=seeds, weighted=weighted,
        keep=keep, group_rule=group_rule, width=width, round_to=round_to, reinit=reinit, synflow_rounds=rounds, calibration_batches=calib_batches,
        calibration_batch_size=calib_batch_size, limit=limit, model_kwargs=parse_kv(arg),
        latency_batches=parse_int_list(latency_batch, "--latency-batch"), latency_runs=latency_runs, onnx=onnx, train=train,
    )
    out = out or Path("runs") / f"pai-{model.replace(':', '-').replace('/', '-')}-{dataset.split(':')[0]}-{score}-{sparsity:g}"

    records = run(config, out, data_dir=data_dir, progress=not quiet)
    summary = summarize_records(records)
    names = {"unstructured": "UPaI", "reconvene": "Reconvene"}
    lat = f"latency_ms_b{config.latency_batches[0]}"
    rows = []
    for m, s in summary["modes"].items():
        rows.append([
            names[m], f"{s['test_acc']:.2%} ± {s['test_acc_std']:.2%}", f"{s['params']:,.0f}", f"{s['nonzeros']:,.0f}",
            human_bytes(s["dense_bytes"]),
            human_bytes(s["sparse_bytes"]) + ("" if s.get("sparse_bytes_kind") == "artifact" else " (est.)"),
            f"{s.get(lat, float('nan')):.3f}", f"{s['generation_seconds']:.2f}",
        ])
    console.print(table(
        f"{model} on {dataset}, p={sparsity:g}, {score}, {seeds} seed(s)",
        ["", "test acc", "params", "non-zeros", "dense file", "sparse form", f"latency b{config.latency_batches[0]} ms", "generation s"],
        rows,
    ))
    cmp = summary.get("comparison")
    if cmp:
        batch = config.latency_batches[0]
        speed = [f"{cmp[k]:.2f}x faster in {name} (batch {batch})"
                 for k, name in ((f"speedup_b{batch}", "PyTorch"), (f"onnx_speedup_b{batch}", "ONNX Runtime")) if k in cmp]
        console.print(
            f"Reconvene vs UPaI: accuracy {cmp['acc_diff'] * 100:+.2f} points, dense file {cmp['size_ratio']:.2f}x smaller, "
            f"sparse form {cmp['sparse_size_ratio']:.2f}x smaller" + "".join(", " + s for s in speed)
        )
    console.print(f"run folder: {out} (report.md, results.jsonl, accuracy_vs_size.png)")
