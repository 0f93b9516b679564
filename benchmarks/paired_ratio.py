"""How a speed-up timed in alternation survives other work on the same core: the ratio of the two files' medians
(edgeprune's estimate before 2026-12-05) against the ratio of their fastest calls (`measure.latency.speedup`).

    python benchmarks/paired_ratio.py [--core 0] [--repeats 15] [--loads 0,2]

Two ONNX files of one conv net at two widths, timed as `paired_latency` does (ONNX Runtime, one thread, 20 rounds
of one call each, 5 warm-up calls), `--repeats` times per condition. A condition's load is that many processes
running torch matrix products (two threads each, a 2 ms pause every 20 products: the way a test suite or a
training run shares a core) pinned to the timer's core. Every estimate's mean, standard deviation and range.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import pin_to_core, save, timing_parser  # noqa: E402
from edgeprune.export.onnx import export_onnx  # noqa: E402
from edgeprune.export.ort_latency import paired_latency  # noqa: E402
from edgeprune.measure.latency import time_rounds  # noqa: E402

SHAPE = (3, 48, 48)
ESTIMATES = {
    "ratio of medians": lambda a, b: statistics.median(a) / statistics.median(b),
    "median of per-round ratios": lambda a, b: statistics.median(x / y for x, y in zip(a, b)),
    "ratio of fastest calls": lambda a, b: min(a) / min(b),
}


def conv_net(width: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(width, 2 * width, 3, padding=1, stride=2), nn.ReLU(),
                         nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(2 * width, 10)).eval()


def _load(core: int, stop: float) -> None:
    os.sched_setaffinity(0, {core})
    torch.set_num_threads(2)
    a = torch.randn(512, 512)
    while time.time() < stop:
        for _ in range(20):
            a = torch.tanh(a @ a)
        time.sleep(0.002)


def timed_pairs(first: Path, second: Path, repeats: int) -> list[tuple[list[float], list[float]]]:
    from edgeprune.export.ort_latency import _ort_call  # noqa: PLC0415  (the very call paired_latency times)

    calls = {"first": _ort_call(first, 1, 1), "second": _ort_call(second, 1, 1)}
    out = []
    for _ in range(repeats):
        times = time_rounds(calls, rounds=20, warmup=5)
        out.append((times["first"], times["second"]))
    return out


def main(argv=None) -> None:
    parser = timing_parser(__doc__.splitlines()[0], "paired_ratio", 15)
    parser.add_argument("--loads", default="0,2", help="competing processes per condition")
    parser.add_argument("--widths", default="32,20", help="the reference's and the candidate's width")
    args = parser.parse_args(argv)
    pin_to_core(parser, args)
    wide, narrow = (int(w) for w in args.widths.split(","))
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        first, second = Path(folder) / "reference.onnx", Path(folder) / "candidate.onnx"
        export_onnx(conv_net(wide), first, input_shape=SHAPE)
        export_onnx(conv_net(narrow), second, input_shape=SHAPE)
        paired_latency(first, second, runs=5)  # sessions and files warm
        for loads in (int(n) for n in args.loads.split(",")):
            stop = time.time() + 600
            ctx = multiprocessing.get_context("spawn")
            workers = [ctx.Process(target=_load, args=(args.core, stop), daemon=True) for _ in range(loads)]
            for w in workers:
                w.start()
            time.sleep(3 if loads else 0)
            pairs = timed_pairs(first, second, args.repeats)
            for w in workers:
                w.terminate()
            for name, estimate in ESTIMATES.items():
                values = [estimate(a, b) for a, b in pairs]
                rows.append({"load_processes": loads, "estimate": name, "values": values,
                             "mean": statistics.fmean(values), "sd": statistics.stdev(values),
                             "min": min(values), "max": max(values)})
                print(rows[-1]["load_processes"], name, f"{rows[-1]['mean']:.3f} ± {rows[-1]['sd']:.3f}",
                      f"[{rows[-1]['min']:.3f}, {rows[-1]['max']:.3f}]", flush=True)
            reference_ms = statistics.fmean(statistics.median(a) for a, _ in pairs)
            rows[-1]["reference_median_ms"] = reference_ms
    lines = ["### A speed-up timed beside other work (`benchmarks/paired_ratio.py`)", "",
             f"One conv net at widths {wide} and {narrow} (input {SHAPE}), ONNX Runtime, one thread, 20 alternating rounds "
             f"per timing, {args.repeats} timings per condition, all on one core; the load is that many processes of "
             "torch matrix products (two threads each) on the same core.", "",
             "| load processes | estimate | mean | sd | min | max |", "|---:|---|---:|---:|---:|---:|"]
    lines += [f"| {r['load_processes']} | {r['estimate']} | {r['mean']:.3f} | {r['sd']:.3f} | {r['min']:.3f} | {r['max']:.3f} |"
              for r in rows]
    save(args.name, {"rows": rows, "settings": {"core": args.core, "repeats": args.repeats, "widths": [wide, narrow],
                                                 "rounds": 20, "warmup": 5}}, "\n".join(lines))


if __name__ == "__main__":
    main()
