"""``edgeprune demo``: one Mix-and-Match sweep with the global baselines on scikit-learn's digits (no download).

A LeNet-5 is trained on the bundled 8×8 digits, then ``edgeprune.sweep`` prunes it to 80 % sparsity with
two criteria × the ten strategies and the global magnitude / SNIP / GraSP baselines as candidates of the
same sweep, fine-tunes each, and reports one front over all of them. The headline is the chosen model with
its 95 % interval and paired comparisons (chosen vs input model, Mix-and-Match vs the best baseline):
the digits test set has 359 images, so most differences here are "no significant difference".

The masks are unstructured: the chosen model keeps every weight tensor's shape, so as a dense ONNX file it is
as large and as fast in ONNX Runtime as the input model. The headline says so with the files themselves
(RUN/onnx/: both models' ONNX and the chosen one as sparse ONNX) and a paired ONNX Runtime timing of the two.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import typer

from edgeprune import data as data_lib
from edgeprune import models as model_lib
from edgeprune.api import sweep
from edgeprune.cli import app
from edgeprune.cli.common import console
from edgeprune.cli.prune import print_result
from edgeprune.errors import ConfigError
from edgeprune.export.onnx import export_verified, input_shape_of
from edgeprune.export.ort_latency import paired_latency
from edgeprune.export.sparse_onnx import write_sparse
from edgeprune.report.tables import human_bytes
from edgeprune.runs.edge import input_checkpoint
from edgeprune.runs.input_model import trained_input
from edgeprune.train import default_config

BUDGET = 0.8
OPTIONS = {"criteria": ["magnitude", "product"], "baselines": ["magnitude", "snip", "grasp"], "calib_batches": 5}
PAIRED_RUNS = 200  # per file: a LeNet-5 runs in ~0.03 ms, so 200 alternating runs take well under a second


def run_demo(out: Path, epochs: int = 3, dense_epochs: int = 15, progress: bool = True):
    """The demo's sweep (resumable in ``out``); returns the SweepResult."""
    for name, value in (("--epochs", epochs), ("--dense-epochs", dense_epochs)):
        if value <= 0:
            raise ConfigError(f"{name} must be > 0, got {value}")
    splits = data_lib.load("digits")
    model = trained_input("lenet5", {}, splits, default_config("lenet5", epochs=dense_epochs), out, progress)
    return sweep(model, splits, method="mix_and_match", budgets=[BUDGET], seeds=1, out=out,
                 finetune={"epochs": epochs, "batch_size": 64}, progress=progress, **OPTIONS)


def headline(result) -> list[str]:
    """What the demo prints last: the chosen model and how sure we are, in plain words."""
    s = result.summary
    lines = [f"chosen: {result.chosen['id']} (origin: {s['chosen_origin']}), test accuracy {s['chosen_test']} (95 % interval, "
             f"{s['dense'].get('test_n', '?')} test images)"] if result.chosen else []
    if s.get("chosen_vs_dense"):
        lines.append(f"vs the input model: {s['chosen_vs_dense']['verdict']}")
    for c in s.get("mam_vs_baseline", []):
        if "verdict" in c:
            lines.append(f"at sparsity {c['budget']:g}, best Mix-and-Match vs best global baseline ({c['baseline']}): {c['verdict']}")
    return lines


def on_the_device(out: Path) -> str:
    """The input and the chosen model as ONNX files (OUT/onnx/input.onnx, chosen.onnx, chosen.sparse.onnx): their
    bytes and ONNX Runtime batch-1 latency (1 thread, the two files timed in alternation), in one sentence."""
    folder = out / "onnx"
    folder.mkdir(exist_ok=True)
    files = {}
    source = input_checkpoint(out)
    for name, checkpoint in (("input", source), ("chosen", out / "chosen.pt")):
        model = model_lib.load(checkpoint).eval()
        example = torch.randn(4, *input_shape_of(model), generator=torch.Generator().manual_seed(0))
        files[name] = Path(export_verified(model, folder / f"{name}.onnx", example)["path"])
    sparse = write_sparse(files["chosen"], folder / "chosen.sparse.onnx", example)
    timed = paired_latency(files["input"], files["chosen"], runs=PAIRED_RUNS)
    input_ms, chosen_ms = timed["first"]["median_ms"], timed["second"]["median_ms"]
    size = {name: human_bytes(path.stat().st_size) for name, path in files.items()}
    return (f"on the device (ONNX Runtime, batch 1, 1 thread; {folder}): input model {size['input']}, {input_ms:.3f} ms; "
            f"chosen model {size['chosen']}, {chosen_ms:.3f} ms ({timed['ratio']:.2f}x the input model's speed) — "
            f"its {100 * BUDGET:g} % zeros are unstructured, stored and multiplied like any other weight; "
            f"as sparse ONNX {human_bytes(sparse['bytes'])}. For a smaller, faster model remove whole channels: "
            f"edgeprune prune mix_and_match --model lenet5 --checkpoint {source} -O granularity=channel")


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="Run directory (re-running resumes it)."),
    epochs: int = typer.Option(3, help="Fine-tuning epochs per candidate (> 0)."),
    dense_epochs: int = typer.Option(15, help="Dense training epochs (> 0)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
):
    """Mix-and-Match and the global baselines on the bundled digits: one front, an honest headline."""
    torch.set_num_threads(1)  # a LeNet-5 on 8×8 images: per-op overhead dominates, one thread is fastest
    started = time.perf_counter()
    console.print(f"edgeprune demo: LeNet-5 on scikit-learn's digits (8×8, 10 classes) pruned to {100 * BUDGET:g} % "
                  "sparsity — Mix-and-Match (magnitude, product × ten strategies) and global magnitude / SNIP / GraSP, one front")
    result = run_demo(out, epochs, dense_epochs, progress=not quiet)
    print_result(result)
    for line in headline(result):
        console.print(line)
    if result.chosen:
        console.print(on_the_device(out))
    console.print(f"done in {time.perf_counter() - started:.0f} s")
