"""``edgeprune vbp``: Variance-Based Pruning of MLP hidden neurons, with KD fine-tune, into a run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgeprune.cli import app
from edgeprune.cli.common import console, parse_float_list, parse_int_list, parse_kv, table
from edgeprune.errors import ConfigError, check_fraction
from edgeprune.methods.vbp import VbpConfig, run


@app.command()
def vbp(
    model: str = typer.Option(..., "--model", "-m", help="Model spec with MLP blocks: vit, hf-config:deit, hf-config:swin, hf-config:convnext, hf:<dir>."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Data set spec, e.g. mnist, cifar10, digits."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", "-c", help="Trained model (edgeprune checkpoint); without it a dense model is trained first (RUN/dense)."),
    ratio: float = typer.Option(0.5, help="Fraction of all MLP hidden neurons to prune, in [0, 1)."),
    ratios: Optional[str] = typer.Option(None, help="Several ratios, comma-separated (overrides --ratio), e.g. 0.1,0.3,0.5."),
    calib_batches: int = typer.Option(0, help="Calibration batches for the statistics (>= 0; 0 = one pass over the training split)."),
    calib_batch_size: int = typer.Option(64, help="Batch size of the calibration pass."),
    epochs: int = typer.Option(10, help="KD fine-tune epochs after pruning (>= 0; 0 = none)."),
    batch_size: int = typer.Option(32, help="Fine-tune batch size."),
    lr: float = typer.Option(1.5e-5, help="Fine-tune learning rate (AdamW, cosine)."),
    weight_decay: float = typer.Option(0.01, help="Fine-tune weight decay."),
    patience: Optional[int] = typer.Option(3, help="Early stopping: fine-tune epochs without validation improvement."),
    max_batches: Optional[int] = typer.Option(None, help="Cap on fine-tune batches per epoch (quick runs)."),
    no_compensation: bool = typer.Option(False, "--no-compensation", help="Do not fold the pruned neurons' means into the next bias."),
    selection: str = typer.Option("variance", help="variance (the paper) | magnitude | random."),
    per_layer: bool = typer.Option(False, "--per-layer", help="Prune the ratio in every block instead of ranking globally."),
    min_keep: int = typer.Option(1, help="Neurons every MLP block keeps at least."),
    dense_epochs: int = typer.Option(10, help="Epochs of dense training when no --checkpoint is given."),
    arg: Optional[list[str]] = typer.Option(None, "--arg", help="Model argument key=value for dense training (repeatable), e.g. --arg dim=64."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder holding the data sets; default $EDGEPRUNE_DATA or ./data."),
    limit: Optional[int] = typer.Option(None, help="Use at most this many training examples (quick runs)."),
    latency_batch: str = typer.Option("1", help="Batch sizes for latency, comma-separated."),
    latency_runs: int = typer.Option(30, help="Timed runs per latency measurement (> 0)."),
    onnx: bool = typer.Option(True, "--onnx/--no-onnx", help="Also time ONNX Runtime (export with edgeprune.export)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folder; default runs/vbp-MODEL-DATASET."),
    seed: int = typer.Option(0, help="Seed for the split, calibration order, fine-tune and random selection."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
):
    """Prune the lowest-variance MLP neurons, fold their means into the next bias, KD fine-tune, measure."""
    values = parse_float_list(ratios, "--ratios") if ratios is not None else [ratio]
    for v in values:
        check_fraction("ratio", v)
    if calib_batches < 0:
        raise ConfigError(f"--calib-batches must be >= 0 (0 = one pass over the training split), got {calib_batches}")
    if selection not in ("variance", "magnitude", "random"):
        raise ConfigError(f"--selection must be variance, magnitude or random, got {selection!r}")
    config = VbpConfig.build(
        model=model, dataset=dataset, checkpoint=str(checkpoint) if checkpoint else None,
        data_dir=str(data_dir) if data_dir else None, model_kwargs=parse_kv(arg), ratios=values,
        calib_batches=calib_batches, calib_batch_size=calib_batch_size, compensation=not no_compensation,
        selection=selection, per_layer=per_layer, min_keep=min_keep, epochs=epochs, batch_size=batch_size, lr=lr,
        weight_decay=weight_decay, patience=patience, max_batches=max_batches, dense_epochs=dense_epochs,
        seed=seed, limit=limit, latency_batches=parse_int_list(latency_batch, "--latency-batch"),
        latency_runs=latency_runs, onnx_latency=onnx,
    )
    out = out or Path("runs") / f"vbp-{model.replace(':', '-').replace('/', '-')}-{dataset.split(':')[0]}"
    records = run(config, out, progress=not quiet)
    rows = [
        [f"{r['ratio']:.2f}", f"{r['pruned_neurons']}/{r['total_neurons']}", f"-{r['params_reduction']:.1%}",
         f"-{r['macs_reduction']:.1%}", f"{r['retained_val_acc']:.2%}", f"{r['final_val_acc']:.2%}",
         f"{r['final_test_acc']:.2%}", f"{r.get('speedup_b' + str(config.latency_batches[0]), float('nan')):.2f}x"]
        for r in records
    ]
    console.print(table(
        f"VBP {model} on {dataset} (dense test {records[0]['dense_test_acc']:.2%})" if records else "VBP",
        ["ratio", "pruned", "params", "MACs", "retained val", "final val", "final test",
         f"speedup b{config.latency_batches[0]}"],
        rows,
    ))
    console.print(f"run folder: {out} (report.md, results.jsonl)")
