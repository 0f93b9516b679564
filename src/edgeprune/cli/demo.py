"""``edgeprune demo``: a whole Mix-and-Match search on scikit-learn's bundled digits (no download)."""

from __future__ import annotations

import time
from pathlib import Path

import torch
import typer

from edgeprune.cli import app
from edgeprune.cli.common import console, print_summary
from edgeprune.runs.search import SearchConfig, run_search


def demo_config(epochs: int = 3, dense_epochs: int = 15, seeds: int = 1):
    return SearchConfig.build(
        model="lenet5", dataset="digits", dense_epochs=dense_epochs, epochs=epochs, seeds=seeds,
        calib_batches=5, baseline_matches=2, dense={"batch_size": 64}, finetune={"batch_size": 64},
    )


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="Run directory (re-running resumes it)."),
    epochs: int = typer.Option(3, help="Fine-tuning epochs per candidate (> 0)."),
    dense_epochs: int = typer.Option(15, help="Dense training epochs (> 0)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
):
    """Mix-and-Match on the bundled digits: dense LeNet-5, 3 criteria × 10 strategies, matched baselines, Pareto report."""
    torch.set_num_threads(1)  # a LeNet-5 on 8×8 images: per-op overhead dominates, one thread is fastest
    started = time.perf_counter()
    console.print("edgeprune demo: Mix-and-Match pruning of LeNet-5 on scikit-learn's digits (8×8, 10 classes)")
    summary = run_search(demo_config(epochs, dense_epochs), out, progress=not quiet)
    print_summary(summary, out)
    console.print(f"done in {time.perf_counter() - started:.0f} s")
