"""``edgeprune search`` (Mix-and-Match) and ``edgeprune report``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
import yaml

from edgeprune.cli import app
from edgeprune.cli.common import parse_kv, print_summary
from edgeprune.cli.prune import print_result
from edgeprune.errors import ConfigError
from edgeprune.runs import report as run_report
from edgeprune.runs.executor import make_executor
from edgeprune.runs.search import SearchConfig, render, run_search
from edgeprune.runs.store import RunStore
from edgeprune.runs.sweep import FORMAT, SweepResult


def load_recipe(path: Path) -> dict:
    """A YAML recipe (safe_load): a mapping of SearchConfig fields."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"recipe {str(path)!r} cannot be read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"recipe {str(path)!r} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"recipe {str(path)!r} must be a mapping of settings, got {type(data).__name__}")
    return data


def _split(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


@app.command()
def search(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model spec (required unless in the recipe)."),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Data set spec (default digits)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder holding the data sets."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Trained dense model; without it the dense model is trained first."),
    criteria: Optional[str] = typer.Option(None, help="Comma-separated: magnitude,gradient,product."),
    strategies: Optional[str] = typer.Option(None, help="Comma-separated subset of the ten strategies."),
    ranges: Optional[str] = typer.Option(None, help="rules | derived."),
    target_sparsity: Optional[float] = typer.Option(None, help="Calibrate every strategy to this global sparsity."),
    seeds: Optional[int] = typer.Option(None, help="Seeds per setting (> 0)."),
    epochs: Optional[int] = typer.Option(None, help="Fine-tuning epochs per candidate (> 0)."),
    dense_epochs: Optional[int] = typer.Option(None, help="Epochs of dense training when no checkpoint is given."),
    calib_batches: Optional[int] = typer.Option(None, help="Calibration batches for gradient scores (> 0)."),
    kd: Optional[bool] = typer.Option(None, "--kd/--no-kd", help="Distil from the dense model while fine-tuning."),
    int8: Optional[str] = typer.Option(None, "--int8", help="static | dynamic: also measure INT8 test accuracy in ONNX Runtime."),
    arg: Optional[list[str]] = typer.Option(None, "--arg", help="Model argument key=value (repeatable)."),
    recipe: Optional[Path] = typer.Option(None, "--recipe", help="YAML recipe with the same settings; flags override it."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory (re-running resumes it)."),
    executor: str = typer.Option("local", help="local | ray (each candidate a Ray task)."),
    ray_address: Optional[str] = typer.Option(None, help="Ray cluster to join (HOST:PORT, ray://HOST:PORT or auto); default: start a local Ray."),
    workers: Optional[int] = typer.Option(None, help="Candidates in flight at once with --executor ray (> 0); default: as many as the cluster fits."),
    cpus_per_candidate: Optional[int] = typer.Option(None, help="CPUs (torch threads) per candidate (> 0); default 1 with ray, torch's setting locally."),
    gpus_per_candidate: Optional[float] = typer.Option(None, help="GPUs per candidate (>= 0, fractions allowed with ray)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
):
    """Mix-and-Match search: ten strategies per criterion, matched baselines, Pareto report."""
    base = load_recipe(recipe) if recipe else {}
    if model is None and "model" not in base:
        raise ConfigError("--model is required (or a recipe with a 'model' key)")
    config = SearchConfig.build(
        base, model=model, dataset=dataset, data_dir=str(data_dir) if data_dir else None,
        checkpoint=str(checkpoint) if checkpoint else None, criteria=_split(criteria), strategies=_split(strategies),
        ranges=ranges, target_sparsity=target_sparsity, seeds=seeds, epochs=epochs, dense_epochs=dense_epochs,
        calib_batches=calib_batches, kd=kd, int8=int8, model_args=parse_kv(arg) or None,
    )
    runner = make_executor(executor, ray_address=ray_address, workers=workers,
                           cpus_per_candidate=cpus_per_candidate, gpus_per_candidate=gpus_per_candidate)
    run_dir = out or Path("runs") / f"search-{config.model.replace(':', '-').replace('/', '-')}-{config.dataset.split(':')[0]}"
    with runner:
        summary = run_search(config, run_dir, progress=not quiet, executor=runner)
    print_summary(summary, run_dir)


@app.command()
def report(run_dir: Path = typer.Argument(..., help="A run directory of `edgeprune prune` or `edgeprune search`.")):
    """Re-render a run's report (results.csv, plot, report.md, chosen.pt) from results.jsonl."""
    config = RunStore(run_dir).config()
    if config.get("format") == FORMAT:
        summary = run_report.render(run_dir)
        print_result(SweepResult(run_dir, [], summary["front"], summary["chosen"], summary))
    elif "criteria" in config:
        print_summary(render(run_dir), run_dir)
    else:
        raise ConfigError(f"{str(run_dir)!r} was made by `edgeprune vbp` or `edgeprune pai`, whose report.md is "
                          "written by the run itself; re-run that command to re-render it")
