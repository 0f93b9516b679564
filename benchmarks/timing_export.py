"""The file a latency bisection times (torch's TorchScript exporter) against the shipped file (the dynamo exporter):
export seconds and ONNX Runtime's paired speed ratio (1 thread, batch 1, alternating calls) per model.

    python benchmarks/timing_export.py --runs 60
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import save  # noqa: E402
from edgeprune import models, tasks  # noqa: E402
from edgeprune.export.onnx import export_for_timing, export_onnx  # noqa: E402
from edgeprune.export.ort_latency import paired_latency  # noqa: E402

MODELS = [("resnet20", 10, 1, 32, None), ("torchvision:mobilenet_v3_small", 10, 3, 64, None),
          ("yolo:yolov8n", 11, 1, 128, "detection")]


def seconds(export, model, path, shape) -> float:
    start = time.perf_counter()
    export(model, path, input_shape=shape)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for spec, classes, channels, size, task in MODELS:
        model = models.create(spec, num_classes=classes, in_channels=channels, image_size=size).eval()
        shape = (channels, size, size)
        with tempfile.TemporaryDirectory() as folder, tasks.using(tasks.get(task or "classification")):
            shipped, timing = Path(folder) / "shipped.onnx", Path(folder) / "timing.onnx"
            row = {"model": spec, "input": list(shape),
                   "shipped_export_s": round(seconds(export_onnx, model, shipped, shape), 2),
                   "timing_export_s": round(seconds(export_for_timing, model, timing, shape), 2)}
            timed = paired_latency(shipped, timing, batch_size=1, runs=args.runs, threads=1)
        row.update(ratio=round(timed["ratio"], 3), ratio_p10=round(timed["ratio_p10"], 3), ratio_p90=round(timed["ratio_p90"], 3))
        rows.append(row)
        print(row, flush=True)
    lines = ["## The file a latency bisection times vs the shipped file", "",
             f"`benchmarks/timing_export.py`, ONNX Runtime 1 thread, batch 1, {args.runs} alternating rounds; ratio = "
             "shipped file's median / timing file's (1.0: equally fast), with the p10–p90 of per-round ratios.", "",
             "| model | input | dynamo export s | TorchScript export s | ratio | p10–p90 |", "|---|---|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| `{r['model']}` | {'x'.join(map(str, r['input']))} | {r['shipped_export_s']} | {r['timing_export_s']} | "
                     f"{r['ratio']} | {r['ratio_p10']}–{r['ratio_p90']} |")
    save("timing_export", {"runs": args.runs, "rows": rows}, "\n".join(lines))


if __name__ == "__main__":
    main()
