"""A latency budget in each runtime, met by measurement (issue 31): ``edgeprune.prune(..., budget="latency<=P%@RUNTIME")``
on ResNet-20 trained on MNIST, then the chosen model and the input model timed again side by side in that runtime.

    python benchmarks/edge_budgets.py [--budget 60] [--runtimes onnx,executorch,openvino,litert] [--rounds 7]

For every runtime: the structured method (magnitude criterion, balanced strategy, one fine-tune epoch) calibrates its
widths to the budget by timing candidates in that runtime (a relative budget: each candidate beside the input model);
then both models are exported FP32 to the runtime's file (``edgeprune.export``) and timed again in ``--rounds``
interleaved rounds at batch 1, one thread (``edgeprune.export.compare_latency``). The budget is met when the re-timed
ratio (chosen / input model) is at most P %. Results: results/edge_budgets.json and sections/edge_budgets.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import edgeprune  # noqa: E402
from common import save, shared_data_dir  # noqa: E402
from edgeprune import data  # noqa: E402
from edgeprune.export import compare_latency  # noqa: E402
from edgeprune.measure import accuracy, macs  # noqa: E402
from executorch_vs_ort import log, train  # noqa: E402

NAME = "edge_budgets"
FILES = {"onnx": "model.onnx", "executorch": "model.pte", "openvino": "model.xml", "litert": "model.tflite"}
LABELS = {"onnx": "ONNX Runtime", "executorch": "ExecuTorch", "openvino": "OpenVINO", "litert": "LiteRT"}


def exported(model, splits, runtime: str, folder: Path) -> Path:
    formats = ("onnx", runtime) if runtime == "openvino" else (runtime,)  # OpenVINO's IR comes from the ONNX file
    edgeprune.export(model, folder, formats=formats, data=splits, latency=False)
    return folder / FILES[runtime]


def one_runtime(runtime: str, dense, splits, example, args, workdir: Path) -> dict:
    t0 = time.perf_counter()
    budget = f"latency<={args.budget}%" + ("" if runtime == "onnx" else f"@{runtime}")  # ONNX Runtime: the default
    pruned = edgeprune.prune(dense, splits, method="structured", budget=budget, finetune=1, seed=0,
                             criteria=["magnitude"], strategies=["balanced"], deploy_metrics=False)
    prune_seconds = time.perf_counter() - t0
    paths = {"dense": exported(dense, splits, runtime, workdir / f"{runtime}-dense"),
             "chosen": exported(pruned.model.eval(), splits, runtime, workdir / f"{runtime}-chosen")}
    timed = compare_latency({k: str(v) for k, v in paths.items()}, batch=1, rounds=args.rounds, runs=args.runs, threads=1)
    ratio = timed["chosen"]["median_ms"] / timed["dense"]["median_ms"]
    row = {"runtime": runtime, "budget": budget, "decided": pruned.record.get("decided", {}),
           "macs_ratio": macs(pruned.model, example).dense / macs(dense, example).dense,
           "val_acc": pruned.record.get("val_acc"), "test_acc": pruned.record.get("test_acc"),
           "dense_ms": timed["dense"]["median_ms"], "chosen_ms": timed["chosen"]["median_ms"],
           "dense_rounds_ms": timed["dense"]["rounds_ms"], "chosen_rounds_ms": timed["chosen"]["rounds_ms"],
           "ratio": ratio, "met": ratio <= args.budget / 100, "prune_seconds": prune_seconds,
           "seconds": time.perf_counter() - t0}
    log(f"{budget}: re-timed {100 * ratio:.1f} % ({row['chosen_ms']:.3f} / {row['dense_ms']:.3f} ms), "
        f"MACs x{row['macs_ratio']:.2f}, {'met' if row['met'] else 'MISSED'} ({row['seconds']:.0f} s)")
    return row


def section(result: dict) -> str:
    s = result["settings"]
    lines = [f"## Latency budgets in every runtime, met by measurement: `{NAME}`", "",
             f"`benchmarks/{NAME}.py`: ResNet-20 trained {s['dense_epochs']} epochs on {s['limit']:,} MNIST images "
             f"(test top-1 {100 * result['dense_test_acc']:.2f} %), then `edgeprune.prune(..., method=\"structured\", "
             f"budget=\"latency<={s['budget']}%@RUNTIME\")` (magnitude, balanced, 1 fine-tune epoch) for each runtime. "
             "The chosen model and the input model are then exported FP32 to that runtime's file and timed again "
             f"side by side ({s['rounds']} interleaved rounds × {s['runs']} calls, batch 1, one thread).", "",
             "| runtime | budget | input model ms | chosen ms | re-timed ratio | MACs ratio | test top-1 | met |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in result["rows"]:
        test = f"{100 * r['test_acc']:.2f} %" if r.get("test_acc") is not None else "–"
        lines.append(f"| {LABELS[r['runtime']]} | `{r['budget']}` | {r['dense_ms']:.3f} | {r['chosen_ms']:.3f} | "
                     f"{100 * r['ratio']:.1f} % | {r['macs_ratio']:.2f} | {test} | {'yes' if r['met'] else '**no**'} |")
    met = sum(r["met"] for r in result["rows"])
    lines += ["", f"{met} of {len(result['rows'])} budgets met by the re-timing. Load average at the start "
              f"{result['load_start'][0]:.2f}, at the end {result['load_end'][0]:.2f}. Whole run "
              f"{result['seconds'] / 60:.1f} min."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=60, help="percent of the input model's latency")
    ap.add_argument("--runtimes", default=",".join(FILES), help="comma-separated, of " + ", ".join(FILES))
    ap.add_argument("--limit", type=int, default=4000, help="MNIST train+val images")
    ap.add_argument("--dense-epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    runtimes = args.runtimes.split(",")
    if unknown := [r for r in runtimes if r not in FILES]:
        sys.exit(f"unknown runtime(s) {', '.join(unknown)}; allowed: {', '.join(FILES)}")
    if not 0 < args.budget < 100:
        sys.exit(f"--budget {args.budget}: a percent between 1 and 99")
    root = shared_data_dir()
    if root is None:
        sys.exit("MNIST not found: set EDGEPRUNE_DATA to a folder holding mnist/")
    torch.set_num_threads(1)
    start, load_start = time.perf_counter(), list(os.getloadavg())
    splits = data.load("mnist", root=root, seed=0, limit=args.limit)
    dense = train("resnet20", {}, splits, args.dense_epochs, 0).eval()
    example = torch.zeros(1, splits.in_channels, splits.image_size, splits.image_size)
    dense_test = accuracy(dense, splits.test)
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgeprune-edge-budgets-") as tmp:
        for runtime in runtimes:
            rows.append(one_runtime(runtime, dense, splits, example, args, Path(tmp)))
            result = {"settings": vars(args), "dense_test_acc": dense_test, "rows": rows,
                      "load_start": load_start, "load_end": list(os.getloadavg()),
                      "seconds": time.perf_counter() - start}
            save(NAME, result, section(result))
    print(section(result))


if __name__ == "__main__":
    main()
