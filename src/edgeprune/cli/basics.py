"""Foundation commands: train, measure, models, datasets, tasks."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
import typer

from edgeprune import data as data_lib
from edgeprune import distributed
from edgeprune import models as model_lib
from edgeprune import tasks as tasks_lib
from edgeprune.cli import app
from edgeprune.cli.common import TASK_OPTION, console, human_bytes, parse_int_list, parse_kv, table
from edgeprune.data.splits import QUICK_LIMIT, QUICK_TEST_LIMIT
from edgeprune.deploy import task_metrics
from edgeprune.errors import check_at_most, check_positive
from edgeprune.measure import accuracy, checkpoint_bytes, latency, machine_info, macs, nonzeros, param_count, sparsity
from edgeprune.measure.latency import busy_warning
from edgeprune.methods.dense import train_dense
from edgeprune.report.metric import Metric, label_of
from edgeprune.train import default_config, quick_config

MAX_RUNS = 1_000_000  # timed latency runs per batch size
MEASURE_WARMUP = 20  # untimed calls first: allocator, kernels and caches settled
DATA_DIR = typer.Option(None, "--data-dir", help="Folder holding the data sets (mnist/, cifar tarballs); default $EDGEPRUNE_DATA or ./data.")


@app.command()
def models(
    list_: Optional[str] = typer.Option(None, "--list", help="List the names of one library: timm, torchvision "
                                        "(classification models) or hf-config (transformers image classifiers)."),
    pattern: str = typer.Option("*", "--pattern", help="Glob filter for --list, e.g. 'resnet*'."),
):
    """List the model specs edgeprune can build (or, with --list, every name a library builds)."""
    if list_ is None:
        console.print(table("models", ["spec", "description"], model_lib.list_models().items()))
        return
    names = model_lib.list_names(list_, pattern)
    for name in names:
        typer.echo(f"{list_}:{name}")
    console.print(f"{len(names)} {list_} models", style="dim")


@app.command()
def datasets():
    """List the data set specs edgeprune can load."""
    console.print(table("datasets", ["spec", "description"], data_lib.list_datasets().items()))


@app.command("tasks")
def tasks_command():
    """List the tasks `--task` takes (or path/to/file.py:factory for a task of your own)."""
    rows = [[name, f"{label_of(cls.metric)} ({'higher' if cls.higher_is_better else 'lower'} is better)",
             tasks_lib.DESCRIPTIONS.get(name, "")] for name, cls in tasks_lib.PRESETS.items()]
    console.print(table("tasks (--task NAME, or --task path/to/file.py:factory returning an edgeprune Task)",
                        ["task", "primary metric", "description"], rows))


@app.command()
def train(
    model: str = typer.Option(..., "--model", "-m", help="Model spec, e.g. lenet5, resnet20, vit, hf-config:deit."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Data set spec, e.g. digits, mnist, cifar10."),
    data_dir: Optional[Path] = DATA_DIR,
    epochs: int = typer.Option(10, help="Training epochs (> 0)."),
    batch_size: Optional[int] = typer.Option(None, help="Batch size (> 0); default by model family (128 CNNs, 64 transformers)."),
    lr: Optional[float] = typer.Option(None, help="Learning rate (> 0); default by model family."),
    optimizer: Optional[str] = typer.Option(None, help="sgd | adam | adamw; default by model family."),
    schedule: str = typer.Option("cosine", help="cosine | step | constant."),
    weight_decay: Optional[float] = typer.Option(None, help="Weight decay; default by model family."),
    patience: Optional[int] = typer.Option(None, help="Early stopping: epochs without validation improvement."),
    seed: int = typer.Option(0, help="Seed for initialisation, data order and the validation split."),
    val_fraction: float = typer.Option(0.1, help="Fraction of the training data held out for validation."),
    limit: Optional[int] = typer.Option(None, help="Use at most this many training examples (quick runs)."),
    arg: Optional[list[str]] = typer.Option(None, "--arg", help="Model argument key=value (repeatable), e.g. --arg dim=96."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder; default runs/train-MODEL-DATASET."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    quick: bool = typer.Option(False, "--quick", help="Try the command first: at most 1,000 training images "
                               "(stratified; or --limit if smaller), 10 batches per epoch; the figures are not the real ones."),
):
    """Train a model; write model.pt and metrics.json (test accuracy measured once, on the best-validation weights).

    Runs data-parallel under ``torchrun --nproc_per_node N -m edgeprune train …`` (rank 0 writes).
    """
    config = default_config(
        model, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, schedule=schedule,
        weight_decay=weight_decay, patience=patience, seed=seed,
    )
    if quick:
        config, limit = quick_config(config), min(limit or QUICK_LIMIT, QUICK_LIMIT)
    model_kwargs = parse_kv(arg)
    splits = data_lib.load(dataset, root=data_dir, val_fraction=val_fraction, seed=seed, limit=limit,
                           test_limit=QUICK_TEST_LIMIT if quick else None)
    out = out or Path("runs") / f"train-{model.replace(':', '-').replace('/', '-')}-{dataset.split(':')[0]}"
    with distributed.session():  # a process group under torchrun; nothing otherwise
        _, m = train_dense(model, splits, config, out, model_kwargs=model_kwargs, progress=not quiet)
        if not distributed.is_rank0():
            return
    if quick:
        console.print(f"quick run (--quick): {QUICK_LIMIT:,} training images at most, {config.max_batches} batches per "
                      "epoch — the figures are not the real ones")
    metric = Metric.of(m)
    console.print(
        table(
            f"{model} on {splits.name}",
            ["metric", "value"],
            [
                [f"val {metric.label} (best epoch)", f"{metric.text(m[metric.val])} (epoch {m['train']['best_epoch']})"],
                [f"test {metric.label}", metric.text(m[metric.test])],
                ["params", m["params"]],
                ["MACs / image", m["macs"]],
                ["seconds / epoch", round(m["train"]["seconds_per_epoch"], 2)],
                ["checkpoint", f"{out / 'model.pt'} ({human_bytes(m['checkpoint_bytes'])})"],
            ],
        )
    )


@app.command()
def measure(
    checkpoint: Path = typer.Argument(..., help="An edgeprune checkpoint (model.pt)."),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Also measure the task's metrics (test accuracy "
                                          "of a classifier) on this data set's test split."),
    data_dir: Optional[Path] = DATA_DIR,
    task: Optional[str] = TASK_OPTION,
    batch: str = typer.Option("1,32", help="Batch sizes for latency, comma-separated."),
    threads: int = typer.Option(1, help="CPU threads for latency (> 0). One by default: a tiny model timed on all "
                                "cores of a busy machine waits for descheduled threads at every layer."),
    runs: int = typer.Option(30, help="Timed runs per batch size after warm-up (> 0)."),
):
    """Print params, non-zeros, sparsity, MACs, bytes and latency of a checkpoint (and with --dataset the task's test
    metrics: a classifier's accuracy; mIoU, mAP, MSE... with the primary one's 95% interval).

    Latency: median [p10, p90] of --runs torch calls after 20 warm-up calls; one warning line when the machine
    looks busy (p90/p10 > 1.5 or the load average above the number of cores)."""
    batches = parse_int_list(batch, "--batch")
    check_at_most("--runs", check_positive("--runs", runs), MAX_RUNS)
    check_positive("--threads", threads)
    wanted = tasks_lib.get(task) if task is not None else None  # a bad --task: one line before any work
    model = model_lib.load(checkpoint)
    build = model.edgeprune_build
    shape = model_lib.input_shape(model)  # (C, H, W), or (C, L) for a 1-D model
    # the data set must fit the checkpoint before any measurement (a digits model on mnist: one line, not a crash)
    splits = data_lib.load(dataset, root=data_dir) if dataset else None
    chosen = tasks_lib.get(wanted, splits)
    if splits is not None:
        task_metrics.check_fits(model, splits, dataset, f"checkpoint {str(checkpoint)!r}", chosen)

    with tasks_lib.using(chosen):
        report = macs(model, torch.zeros(1, *shape))
        rows = [
            ["model", build["spec"]],
            ["params", param_count(model)],
            ["non-zeros", nonzeros(model)],
            ["sparsity (prunable weights)", f"{sparsity(model):.2%}"],
            ["MACs / image (dense)", report.dense],
            ["MACs / image (sparsity-effective)", report.effective],
            ["checkpoint bytes", f"{checkpoint_bytes(checkpoint):,} ({human_bytes(checkpoint_bytes(checkpoint))})"],
        ]
        timings = []
        for b in batches:
            lat = latency(model, shape, batch_size=b, runs=runs, warmup=MEASURE_WARMUP, threads=threads)
            timings.append(lat)
            rows.append([f"latency batch {b} (median, torch)", f"{lat['median_ms']:.3f} ms  [p10 {lat['p10_ms']:.3f}, p90 {lat['p90_ms']:.3f}]"])
        rows.append(["threads / CPU", f"{lat['threads']} / {machine_info()['cpu']}"])
        if splits is not None and task_metrics.is_classification(chosen):
            rows.append([f"test accuracy ({splits.name})", f"{accuracy(model, splits.test):.2%}"])
        elif splits is not None:
            metrics, interval = task_metrics.evaluate(chosen, model, splits.test)
            rows.append(["task", task_metrics.task_text(chosen, len(splits.test))])
            rows += task_metrics.metric_rows(chosen, metrics, f" ({splits.name})", interval)
    console.print(table(str(checkpoint), ["metric", "value"], rows))
    busy = busy_warning(timings)
    if busy:
        typer.echo(f"warning: {busy}", err=True)
