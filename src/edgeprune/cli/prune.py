"""``edgeprune prune METHOD``: any registered method on any model, one run directory, one report."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgeprune import data as data_lib
from edgeprune import models as model_lib
from edgeprune.api import sweep
from edgeprune.cli import app
from edgeprune.cli.common import console, parse_float_list, parse_kv, table
from edgeprune.errors import CheckpointError, ConfigError
from edgeprune.methods.base import get_method, list_methods
from edgeprune.methods.dense import train_dense
from edgeprune.prune.gradual import schedule_of
from edgeprune.runs import inputs as inputs_lib
from edgeprune.train import default_config


def trained_input(spec: str, model_args: dict, checkpoint: Path | None, splits, dense_epochs: int, out: Path,
                  progress: bool):
    """The model to prune: the user's checkpoint, or ``spec`` trained on the data (kept in OUT/dense/)."""
    if checkpoint is not None:
        model = model_lib.load(checkpoint)
        build = model.edgeprune_build
        if (build.get("num_classes"), build.get("in_channels")) != (splits.num_classes, splits.in_channels):
            raise CheckpointError(
                f"checkpoint {str(checkpoint)!r} is for {build.get('num_classes')} classes / {build.get('in_channels')} "
                f"channels; data set {splits.name!r} has {splits.num_classes} / {splits.in_channels}")
        return model
    own = out / "dense" / "model.pt"
    if own.is_file():
        return model_lib.load(own)
    config = default_config(spec, epochs=dense_epochs)
    model, _ = train_dense(spec, splits, config, out / "dense", model_kwargs=model_args, progress=progress)
    return model


def print_result(result) -> None:
    rows = [[g["label"], f"{100 * g['removed']:.2f}", f"{100 * g['val_acc']:.2f}",
             "–" if g.get("test_acc") is None else f"{100 * g['test_acc']:.2f}"] for g in result.front]
    console.print(table("Front (validation accuracy vs non-zero weights removed)",
                        ["setting", "removed %", "val %", "test %"], rows))
    dense = result.summary["dense"]
    console.print(f"input model: val {100 * dense['val_acc']:.2f}%" +
                  (f", test {100 * dense['test_acc']:.2f}%" if "test_acc" in dense else ""))
    if result.chosen:
        console.print(f"chosen: [bold]{result.chosen['id']}[/bold] → {result.run_dir / 'chosen.pt'}")
    console.print(f"plot: {result.run_dir / 'front.png'}   report: {result.run_dir / 'report.md'}")


@app.command("prune")
def prune_command(
    method: str = typer.Argument(..., help="A method of `edgeprune methods`."),
    model: str = typer.Option(..., "--model", "-m", help="Model spec: zoo name, hf:, hf-config:, timm:, torchvision: or path/to/file.py:factory."),
    dataset: str = typer.Option("digits", "--dataset", "-d", help="Data set spec."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder holding the data sets."),
    budget: str = typer.Option(None, "--budget", "-b", help="Budget(s), comma-separated (the method's sparsity or ratio); default: the method's."),
    seeds: int = typer.Option(1, "--seeds", help="Seeds per budget (> 0)."),
    finetune: Optional[int] = typer.Option(None, "--finetune", help="Fine-tune (or, for reconvene, training) epochs; 0 = none; default: the method's."),
    kd: Optional[bool] = typer.Option(None, "--kd/--no-kd", help="Distil from the input model while fine-tuning (default: the method's)."),
    schedule: Optional[str] = typer.Option(None, "--schedule", help="Masked candidates: oneshot (prune, then fine-tune) or gradual (cubic schedule during fine-tuning); default: the measured default (docs/mix_and_match.md)."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Trained model; without it the model is trained first (--dense-epochs)."),
    dense_epochs: int = typer.Option(5, "--dense-epochs", help="Epochs of training when no checkpoint is given (> 0)."),
    arg: Optional[list[str]] = typer.Option(None, "--arg", help="Model argument key=value (repeatable)."),
    option: Optional[list[str]] = typer.Option(None, "--option", "-O", help="Method option key=value (repeatable), e.g. -O criteria=[magnitude]."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory (re-running resumes it)."),
    executor: str = typer.Option("local", help="local | ray."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
):
    """Prune a model with METHOD over budgets × seeds; front, report, plot and chosen.pt in the run directory."""
    plan = schedule_of(schedule)
    m = get_method(method, **parse_kv(option, "--option"))
    budgets = inputs_lib.budgets_of(m, parse_float_list(budget, "--budget") if budget else None)
    seed_list = inputs_lib.seeds_of(seeds)
    if dense_epochs <= 0:
        raise ConfigError(f"--dense-epochs must be > 0, got {dense_epochs}")
    model_args = parse_kv(arg)
    splits = data_lib.load(dataset, root=data_dir)
    probe = inputs_lib.resolve(model, splits, model_args=model_args)  # the spec builds and takes the data
    inputs_lib.train_config(m, probe.model, finetune)
    run_dir = out or Path("runs") / f"prune-{method}-{Path(model.split(':')[0]).stem}-{dataset.split(':')[0]}"
    trained = trained_input(model, model_args, checkpoint, splits, dense_epochs, run_dir, not quiet)
    result = sweep(trained, splits, method=method, budgets=budgets, seeds=seed_list, out=run_dir,
                   executor=executor, finetune=finetune, kd=kd, schedule=plan, progress=not quiet, **m.options.model_dump())
    print_result(result)


@app.command("methods")
def methods_command():
    """The registered methods and what their budget means."""
    rows = []
    for name in list_methods():
        m = get_method(name)
        lo, hi = m.budget_range
        rows.append([name, f"{m.budget_name} in [{lo:g}, {hi:g}), default {m.default_budget:g}", m.summary])
    console.print(table("Methods (edgeprune prune METHOD)", ["method", "budget", "what it does"], rows))
