"""Are recorded speed-ups honest? Each candidate's ``speedup_b1`` (its record) against an independent timing.

    EDGEPRUNE_DATA=../shared/data .venv/bin/python benchmarks/speedup_honesty.py [--runs 2000] [--models lenet5,resnet20,vgg11,vit]

For every model (random weights, 28 px MNIST shapes; ``finetune=0``: the point is the timing) it makes
structured candidates with ``edgeprune.prune`` (Mix-and-Match, ``granularity="channel"``, magnitude, one
strategy per call so every candidate's model is returned) under a relative latency and a MACs budget. Then
the candidate's and the input model's ONNX files are timed **independently** of edgeprune's timer: fresh
ONNX Runtime sessions built here, 1 thread, batch 1, ``--runs`` interleaved rounds (one call of each in
turn), medians. The relative error of the recorded speed-up against that one is the figure; the goal is
every candidate within 10 %. Run it on a quiet machine: the load average is stored with the result. A budget a
model cannot meet is listed under ``skipped``. About 20 minutes on 2 busy cores (mostly the calibrations; debug
with ``--runs 50 --latency-runs 5``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import edgeprune  # noqa: E402
from common import save, shared_data_dir  # noqa: E402
from edgeprune import data as data_lib  # noqa: E402
from edgeprune import models as model_lib  # noqa: E402
from edgeprune.errors import ConfigError  # noqa: E402
from edgeprune.export.onnx import export_onnx  # noqa: E402

MODELS = {"lenet5": {}, "resnet20": {}, "vgg11": {"width_mult": 0.25}, "vit": {}}
BUDGETS = ("latency<=70%", "macs<=50%")
STRATEGIES = ("balanced", "late_heavy")
GOAL = 0.10


def independent_speedup(dense: Path, candidate: Path, runs: int, warmup: int = 50) -> dict:
    """Fresh sessions (1 thread), one call of each in turn, ``runs`` rounds: medians and their ratio."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    calls = []
    for path in (dense, candidate):
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        declared = session.get_inputs()[0]
        x = np.random.default_rng(1).standard_normal((1, *declared.shape[1:])).astype(np.float32)
        calls.append(lambda s=session, f={declared.name: x}: s.run(None, f))
    for _ in range(warmup):
        for call in calls:
            call()
    times = [[], []]
    for _ in range(runs):
        for i, call in enumerate(calls):
            t0 = time.perf_counter()
            call()
            times[i].append((time.perf_counter() - t0) * 1e3)
    dense_ms, ms = statistics.median(times[0]), statistics.median(times[1])
    return {"dense_ms": dense_ms, "candidate_ms": ms, "speedup": dense_ms / ms}


def candidates(name: str, kwargs: dict, data, latency_runs: int, skipped: list) -> list[dict]:
    """One candidate per budget and strategy; a budget the model cannot meet goes to ``skipped``."""
    torch.manual_seed(0)
    model = model_lib.create(name, num_classes=10, in_channels=1, image_size=28, **kwargs).eval()
    out = []
    for budget in BUDGETS:
        for strategy in STRATEGIES:
            try:
                pruned = edgeprune.prune(model, data, "mix_and_match", budget, finetune=0, granularity="channel",
                                         criteria=["magnitude"], strategies=[strategy], baselines=[],
                                         latency_runs=latency_runs)
            except ConfigError as exc:
                skipped.append({"model": name, "budget": budget, "strategy": strategy, "error": str(exc)})
                print(f"skipped {name} {budget} {strategy}: {exc}")
                continue
            out.append({"model": name, "budget": budget, "strategy": strategy, "dense": model,
                        "pruned": pruned.model, "record": pruned.record})
    return out


def check(cand: dict, runs: int, folder: Path) -> dict:
    dense_path, path = folder / "dense.onnx", folder / "candidate.onnx"
    export_onnx(cand["dense"], dense_path, input_shape=(1, 28, 28))
    export_onnx(cand["pruned"], path, input_shape=(1, 28, 28))
    timed = independent_speedup(dense_path, path, runs)
    recorded = cand["record"]["speedup_b1"]
    return {"model": cand["model"], "budget": cand["budget"], "strategy": cand["strategy"],
            "recorded_speedup_b1": recorded, "recorded_spread_b1": cand["record"].get("speedup_spread_b1"),
            "recorded_ms_b1": cand["record"]["ort_latency_ms_b1"], **timed,
            "relative_error": recorded / timed["speedup"] - 1}


def section(rows: list[dict], args, load: list[float]) -> str:
    within = sum(abs(r["relative_error"]) <= GOAL for r in rows)
    out = ["## Recorded speed-ups against an independent timing (`speedup_honesty.py`)", "",
           f"Each candidate's `speedup_b1` as its record states it (paired with the input model, "
           f"`latency_runs={args.latency_runs}`) against the same two ONNX files timed again in fresh ONNX Runtime "
           f"sessions (1 thread, batch 1, {args.runs:,} interleaved rounds, medians). Load average before timing: "
           f"{load[0]:.2f}. **{within} of {len(rows)} within {GOAL:.0%}.**", "",
           "| model | budget | strategy | recorded × (p10–p90) | independent × | dense ms | candidate ms | error |",
           "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        spread = r["recorded_spread_b1"]
        shown = f"{r['recorded_speedup_b1']:.2f}" + (f" ({spread[0]:.2f}–{spread[1]:.2f})" if spread else "")
        out.append(f"| {r['model']} | `{r['budget']}` | {r['strategy']} | {shown} | {r['speedup']:.2f} | "
                   f"{r['dense_ms']:.3f} | {r['candidate_ms']:.3f} | {100 * r['relative_error']:+.1f} % |")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--runs", type=int, default=2000, help="independent interleaved rounds per candidate")
    p.add_argument("--latency-runs", type=int, default=20, help="edgeprune's latency_runs (its default: 20)")
    p.add_argument("--name", default="speedup_honesty", help="results/NAME.json and sections/NAME.md")
    args = p.parse_args()
    torch.set_num_threads(1)
    data = data_lib.load("mnist", root=shared_data_dir())
    skipped: list[dict] = []
    made = [c for name in args.models.split(",") for c in candidates(name, MODELS[name], data, args.latency_runs,
                                                                       skipped)]
    load = list(os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="speedup-honesty-") as folder:
        rows = [check(c, args.runs, Path(folder)) for c in made]
    for r in rows:
        print(f"{r['model']:9} {r['budget']:13} {r['strategy']:11} recorded {r['recorded_speedup_b1']:.2f}x "
              f"independent {r['speedup']:.2f}x error {100 * r['relative_error']:+.1f} %")
    result = {"settings": vars(args), "goal": GOAL, "load_average_before_timing": load, "candidates": rows, "skipped": skipped,
              "within_goal": sum(abs(r["relative_error"]) <= GOAL for r in rows)}
    print(save(args.name, result, section(rows, args, load)))


if __name__ == "__main__":
    main()
