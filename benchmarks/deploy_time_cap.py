"""The input model's deploy timing with and without the 15 s cap of a default call (``select.meter.DEPLOY_SECONDS``):
wall seconds the timing takes and the median it gives, per batch, one thread, capped and uncapped in turn.

    python benchmarks/deploy_time_cap.py --core 0 --repeats 2

Each timing is what ``Meter.dense_deploy`` runs: ``ort_latency`` with the meter's 20 runs and 10 warm-up calls, on the
file ``export_for_timing`` writes; "capped" adds ``max_seconds=DEPLOY_SECONDS``.
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
from edgeprune import models  # noqa: E402
from edgeprune.export.onnx import export_for_timing  # noqa: E402
from edgeprune.export.ort_latency import ort_latency  # noqa: E402
from edgeprune.select.meter import DEPLOY_SECONDS, LATENCY_BATCHES  # noqa: E402

MODELS = {"torchvision:maxvit_t": 224, "torchvision:resnet18": 224, "timm:mobilenetv3_small_100": 224}
RUNS, WARMUP = 20, 10  # the meter's


def main() -> None:
    parser = timing_parser(__doc__.splitlines()[0], "deploy_time_cap", 2)
    args = parser.parse_args()
    pin_to_core(parser, args)
    torch.set_num_threads(1)
    rows = []
    for spec, size in MODELS.items():
        model = models.create(spec, num_classes=10, in_channels=3, image_size=size).eval()
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.onnx"
            export_for_timing(model, path, input_shape=(3, size, size))
            for b in LATENCY_BATCHES:
                runs = {"uncapped": [], "capped": []}
                for _ in range(args.repeats):
                    for kind in runs:  # in turn: a busy moment slows both alike
                        start = time.perf_counter()
                        timed = ort_latency(path, batch_size=b, runs=RUNS, warmup=WARMUP, threads=1,
                                            max_seconds=DEPLOY_SECONDS if kind == "capped" else None)
                        runs[kind].append((time.perf_counter() - start, timed["median_ms"], timed["runs"]))
                row = {"model": spec, "image_size": size, "batch": b}
                for kind, rs in runs.items():
                    row[f"seconds_{kind}"] = statistics.median(r[0] for r in rs)
                    row[f"median_ms_{kind}"] = statistics.median(r[1] for r in rs)
                    row[f"rounds_{kind}"] = min(r[2] for r in rs)
                rows.append(row)
                print(row, flush=True)
    lines = ["### The input model's deploy timing, capped at 15 s: `deploy_time_cap` (`benchmarks/deploy_time_cap.py`)", "",
             f"ONNX Runtime, one thread, {RUNS} runs after {WARMUP} warm-up calls (the meter's), uncapped and capped in turn; "
             f"wall seconds of the timing and the median call it gives, median of {args.repeats}.", "",
             "| model | px | batch | seconds, uncapped | seconds, capped | rounds, capped | median ms, uncapped | median ms, capped |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['image_size']} | {r['batch']} | {r['seconds_uncapped']:.1f} | {r['seconds_capped']:.1f} | "
              f"{r['rounds_capped']} | {r['median_ms_uncapped']:.1f} | {r['median_ms_capped']:.1f} |" for r in rows]
    save(args.name, {"command": " ".join(["python", "benchmarks/deploy_time_cap.py", *sys.argv[1:]]), "repeats": args.repeats,
                     "rows": rows}, "\n".join(lines))


if __name__ == "__main__":
    main()
