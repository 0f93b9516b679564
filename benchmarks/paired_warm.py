"""How a speed-up timed in alternation compares with each model timed on its own, one call each in turn vs blocks.

    python benchmarks/paired_warm.py [--core 1] [--repeats 5]

A deployed model runs call after call, its weights warm in the caches. Timed in alternation with a larger
reference, one call each in turn, a small model starts every call with the caches full of the other's weights.
For each pair (a dense model and Torch-Pruning's uniform magnitude pruning of it, random weights: only speed is
measured), ONNX Runtime, one thread, one core, batch 1:

- "on its own": each file timed alone, 200 calls after 10 warm-up calls, the ratio of the fastest calls;
- "one call each in turn": 20 rounds of one call of each (edgeprune's paired timing before 2026-12-07);
- "blocks": 20 rounds in which each runs a block of at least 10 ms (``paired_latency`` now).

Each alternating estimate is the ratio of the fastest rounds (``measure.latency.speedup``), ``--repeats`` times.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import pin_to_core, save, timing_parser  # noqa: E402
from edgeprune.export.onnx import export_onnx  # noqa: E402
from edgeprune.export.ort_latency import _ort_call, ort_latency  # noqa: E402
from edgeprune.measure.latency import ALTERNATION_BLOCK_MS, speedup, time_rounds  # noqa: E402
from edgeprune.models import create  # noqa: E402
from structured import tp_prune  # noqa: E402

PAIRS = [("torchvision:mobilenet_v2", 1, 28, 0.5), ("torchvision:mobilenet_v2", 1, 28, 0.85), ("resnet20", 3, 32, 0.5),
         ("torchvision:resnet50", 3, 96, 0.5)]
ESTIMATES = {"one call each in turn": 0.0, "blocks": ALTERNATION_BLOCK_MS}


def alone(path: Path) -> float:
    return ort_latency(path, batch_size=1, runs=200, warmup=10, threads=1)["min_ms"]


def main(argv=None) -> None:
    parser = timing_parser(__doc__.splitlines()[0], "paired_warm", 5)
    args = parser.parse_args(argv)
    pin_to_core(parser, args)
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for spec, channels, size, ratio in PAIRS:
            shape = (channels, size, size)
            dense = create(spec, num_classes=10, in_channels=channels, image_size=size).eval()
            pruned = tp_prune(dense, torch.zeros(1, *shape), "magnitude", False, ratio, round_to=16)
            first, second = Path(folder) / "dense.onnx", Path(folder) / "pruned.onnx"
            export_onnx(dense, first, input_shape=shape)
            export_onnx(pruned, second, input_shape=shape)
            row = {"model": spec, "input": list(shape), "tp_ratio": ratio, "onnx_bytes": [first.stat().st_size, second.stat().st_size]}
            ms = [(alone(first), alone(second)) for _ in range(args.repeats)]
            row["alone_ms"] = [min(a for a, _ in ms), min(b for _, b in ms)]
            row["on its own"] = [a / b for a, b in ms]
            calls = {"first": _ort_call(first, 1, 1), "second": _ort_call(second, 1, 1)}
            for label, block in ESTIMATES.items():
                values, seconds = [], []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    times = time_rounds(calls, rounds=20, warmup=5, min_block_ms=block)
                    seconds.append(time.perf_counter() - t0)
                    values.append(speedup(times["first"], times["second"]))
                row[label] = values
                row[f"{label} seconds"] = statistics.fmean(seconds)
            rows.append(row)
            print(spec, ratio, {k: round(statistics.fmean(row[k]), 2) for k in ("on its own", *ESTIMATES)}, flush=True)
    lines = ["### A speed-up timed in alternation, warm or cold (`benchmarks/paired_warm.py`)", "",
             f"Dense model vs Torch-Pruning's uniform magnitude pruning of it (random weights), ONNX Runtime, one thread, "
             f"one core, batch 1; mean [min, max] over {args.repeats} timings of the speed-up. \"on its own\": each file "
             "timed alone (200 calls, fastest call). \"one call each in turn\": 20 rounds of one call each (edgeprune "
             f"before 2026-12-07). \"blocks\": 20 rounds of at least {ALTERNATION_BLOCK_MS:g} ms of each (`paired_latency` "
             "now). Seconds: one alternating timing.", "",
             "| model | input | TP ratio | dense / pruned ms alone | on its own | one call each in turn | blocks | s (one call / blocks) |",
             "|---|---|---:|---|---|---|---|---|"]

    def cell(values):
        return f"{statistics.fmean(values):.2f} [{min(values):.2f}, {max(values):.2f}]"

    for r in rows:
        lines.append(f"| {r['model']} | {'x'.join(map(str, r['input']))} | {r['tp_ratio']:g} | {r['alone_ms'][0]:.3f} / "
                     f"{r['alone_ms'][1]:.3f} | {cell(r['on its own'])} | {cell(r['one call each in turn'])} | "
                     f"{cell(r['blocks'])} | {r['one call each in turn seconds']:.2f} / {r['blocks seconds']:.2f} |")
    save(args.name, {"rows": rows, "settings": {"core": args.core, "repeats": args.repeats, "rounds": 20, "warmup": 5,
                                                 "block_ms": ALTERNATION_BLOCK_MS}}, "\n".join(lines))


if __name__ == "__main__":
    main()
