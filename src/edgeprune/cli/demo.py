"""``edgeprune demo``: the built-in demo on scikit-learn's bundled digits (no download)."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeprune import data as data_lib
from edgeprune.cli import app
from edgeprune.cli.common import console, table
from edgeprune.methods.dense import train_dense
from edgeprune.train import default_config


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="Run folder."),
    epochs: int = typer.Option(15, help="Dense training epochs (> 0)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
):
    """Train a small CNN on the bundled digits data and measure it."""
    splits = data_lib.load("digits", seed=0)
    config = default_config("lenet5", epochs=epochs, batch_size=64, lr=0.05, seed=0)
    _, m = train_dense("lenet5", splits, config, out / "dense", progress=not quiet)
    console.print(
        table(
            "edgeprune demo: LeNet-5 on digits",
            ["metric", "value"],
            [
                ["val accuracy", f"{m['val_acc']:.2%}"],
                ["test accuracy", f"{m['test_acc']:.2%}"],
                ["params", m["params"]],
                ["MACs / image", m["macs"]],
                ["latency batch 1", f"{m['latency_ms_b1']:.3f} ms"],
            ],
        )
    )
    console.print(f"checkpoint: {out / 'dense' / 'model.pt'}")
