"""Latency tables (issue 29): how well a table predicts held-out pruned models, on the host and on a "slow device"
(the runner in a separate process pinned to one core), and how much faster it makes calibration to a latency budget.

    python benchmarks/latency_table.py --part error                      # ResNet-20, VGG-16/2, MobileNetV2, ViT (MNIST)
    python benchmarks/latency_table.py --part error --device pinned      # the same through cmd:taskset -c 0 ...
    python benchmarks/latency_table.py --part error --runtime executorch --models resnet20,vgg16_half   # ExecuTorch
    python benchmarks/latency_table.py --part speed                      # ten strategies, table vs bisection, one run
    python benchmarks/latency_table.py --part devices                    # calibrated on one device, timed on another
    python benchmarks/latency_table.py --part warm                       # raw data: tables timed in turn and warm

``error``: each model's table is built from scratch (a fresh cache) on the device; its error is on the held-out pruned
copies (the strategies at random shifts) that :func:`edgeprune.select.latency_table.build` times whole in the same call.
``speed``: structured Mix-and-Match's ten strategies calibrated to ``latency<=60%`` with ``finetune=0`` on
torchvision's MobileNetV2 at 64 px, first with the table (built inside the timed call, fresh cache) and then with the
bisection on whole-model timings (``latency_table=False``), side by side in one process; each calibrated model's
measured latency is the calibration's own confirming timing.
``devices``: MobileNetV2 at 64 px calibrated to ``latency<=50%`` (balanced and latency_aware, ``finetune=0``) once on
this machine at one thread and once on a device running ONNX Runtime at two threads (another configuration of the
same machine, whose per-operator overhead weighs more); every calibrated model then timed on both, beside the input
model (relative latency = the input model's fastest call over the candidate's, 30 alternating rounds).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import edgeprune.methods.catalog  # noqa: E402, F401  (the method registry)
from common import save  # noqa: E402
from edgeprune import models, strategies  # noqa: E402
from edgeprune.devices import CommandDevice, HostDevice  # noqa: E402
from edgeprune.measure.budget import parse  # noqa: E402
from edgeprune.measure.latency import ALTERNATION_BLOCK_MS  # noqa: E402
from edgeprune.methods import structured_mam  # noqa: E402
from edgeprune.methods.base import get_method  # noqa: E402
from edgeprune.select import latency_table  # noqa: E402

MODELS = {  # name -> (spec, model args, channels, image size): MNIST-sized inputs
    "resnet20": ("resnet20", {}, 1, 28),
    "vgg16_half": ("vgg16", {"width_mult": 0.5}, 1, 28),
    "mobilenet_v2": ("torchvision:mobilenet_v2", {}, 1, 28),
    "vit": ("vit", {}, 1, 28),
}
PINNED = "cmd:taskset -c 0 {python} {runner} --shape {shape} --batch {batch} --threads 1 --rounds {rounds} --warmup {warmup} {models}"


def state_for(spec: str, args: dict, channels: int, size: int, **options):
    model = models.create(spec, num_classes=10, in_channels=channels, image_size=size, **args).eval()
    opts = get_method("structured", criteria=["magnitude"], deploy_metrics=False, **options).options
    return structured_mam.prepare(model, None, torch.zeros(2, channels, size, size), opts)


def error_part(device_name: str, runtime: str = "onnxruntime", names=tuple(MODELS)) -> dict:
    device = HostDevice(threads=1) if device_name == "host" else CommandDevice(PINNED[len("cmd:"):], name="pinned")
    rows = {}
    for name, (spec, args, channels, size) in ((n, MODELS[n]) for n in names):
        os.environ["EDGEPRUNE_CACHE"] = tempfile.mkdtemp(prefix="bench-table-")  # built from scratch
        state = state_for(spec, args, channels, size)
        budget = parse("latency<=50%")
        t0 = time.perf_counter()
        candidates = structured_mam._table_candidates(state, budget)
        table = latency_table.build(structured_mam._split_model(state), state.example, device, state.structure,
                                    candidates, runtime=runtime)
        rows[name] = {"seconds": time.perf_counter() - t0, "layers": len(table.layers), "c0": table.c0, "k": table.k,
                      "reference_ms": table.reference_ms, **table.error}
        print(name, device_name, {k: v for k, v in rows[name].items() if k != "held_out"}, flush=True)
    return rows


def speed_part(model_key: str, budget_text: str) -> dict:
    spec, args, channels, size = model_key
    budget = parse(budget_text)
    out = {}
    for arm, use_table in (("table", True), ("bisection", False)):
        os.environ["EDGEPRUNE_CACHE"] = tempfile.mkdtemp(prefix="bench-table-")
        state = state_for(spec, args, channels, size, latency_table=use_table)
        names = list(strategies.names_for(state.roles))
        t0 = time.perf_counter()
        structured_mam.strategy_vectors(state, names, budget)
        seconds = time.perf_counter() - t0
        found = [state.calibrated[(str(budget), n, 0)] for n in names]
        out[arm] = {"seconds": seconds, "strategies": names, "limit": found[0]["limit"],
                    "measured": [f["measured"] for f in found], "shift": [f["shift"] for f in found],
                    "met": sum(f["measured"] <= f["limit"] for f in found)}
        print(arm, round(seconds, 1), "s;", out[arm]["met"], "of", len(names), "met", flush=True)
    out["speedup"] = out["bisection"]["seconds"] / out["table"]["seconds"]
    return out


def devices_part(budget_text: str) -> dict:
    from edgeprune import devices  # noqa: PLC0415
    from edgeprune.export.onnx import export_onnx  # noqa: PLC0415

    os.environ["EDGEPRUNE_DEVICES"] = str(Path(tempfile.mkdtemp(prefix="bench-devices-")) / "devices.json")
    os.environ["EDGEPRUNE_CACHE"] = tempfile.mkdtemp(prefix="bench-table-")
    devices.add("two", "host", threads=2)
    timers = {"host": HostDevice(threads=1), "two": devices.get("two")}
    spec, args, channels, size = "torchvision:mobilenet_v2", {}, 3, 64
    shape = (channels, size, size)
    folder = Path(tempfile.mkdtemp(prefix="bench-devices-files-"))
    rows = []
    for calibrated_on in ("host", "two"):
        state = state_for(spec, args, channels, size)  # no data: latency_aware ranks by relative magnitude
        if calibrated_on == "host":
            export_onnx(state.model, folder / "dense.onnx", input_shape=shape)
        budget = parse(budget_text if calibrated_on == "host" else f"{budget_text}@two")
        vectors = structured_mam.strategy_vectors(state, ["balanced", structured_mam.LATENCY_AWARE], budget)
        for name, vector in vectors.items():
            small, _ = structured_mam.pruned_copy(state, state.model, vector, budget)
            path = folder / f"{calibrated_on}-{name}.onnx"
            export_onnx(small, path, input_shape=shape)
            timed = {on: 1.0 / t.paired(folder / "dense.onnx", path, shape, runs=30)["ratio"] for on, t in timers.items()}
            calibrated = state.calibrated[(str(budget), name, 0)]
            rows.append({"calibrated_on": calibrated_on, "strategy": name, "relative_on": timed,
                         "limit": float(parse(budget_text)), "calibration_measured_ms": calibrated["measured"],
                         "calibration_limit_ms": calibrated["limit"]})
            print(rows[-1], flush=True)
    return {"model": [spec, args, channels, size], "rows": rows}


def warm_part(names=tuple(MODELS)) -> dict:
    """Raw data for a table that predicts warm whole-model timings: each model's table built twice on this machine, its
    one-layer files and whole models timed one call each in turn (``in_turn``) and warm in blocks (``warm``); per whole
    model (the input model, then the candidates), both tables' layer sums, both timings and the parameter count."""
    device = HostDevice(threads=1)
    rows = {}
    for name in names:
        spec, args, channels, size = MODELS[name]
        os.environ["EDGEPRUNE_CACHE"] = tempfile.mkdtemp(prefix="bench-table-")
        state = state_for(spec, args, channels, size)
        candidates = structured_mam._table_candidates(state, parse("latency<=50%"))
        split = structured_mam._split_model(state)
        whole = [split, *candidates]
        widths = [latency_table.widths_of(m, state.example) for m in whole]
        row = {"params": [sum(p.numel() for p in m.parameters()) for m in whole]}
        for mode, block in (("in_turn", 0.0), ("warm", ALTERNATION_BLOCK_MS)):
            t0 = time.perf_counter()
            table = latency_table.build(split, state.example, device, state.structure, candidates,
                                        layer_block_ms=block, model_block_ms=block)
            row[f"sum_{mode}"] = [table.layer_sum(w) for w in widths]
            row[f"measured_{mode}"] = [point[1] for point in table.error["points"]]
            row[f"error_{mode}"] = table.error["median_abs_pct"]
            row[f"seconds_{mode}"] = time.perf_counter() - t0
        rows[name] = row
        print(name, {k: v for k, v in row.items() if not isinstance(v, list)}, flush=True)
    return rows


def fit_variants(row: dict) -> dict:
    """Held-out median and largest error (%) against the warm whole-model timings of additive models fitted (least
    squares of the relative error) on the input model and the first half of the candidates, as the table's own fit:
    ``in_turn`` (today's table: ``c0 + k * sum of layers timed in turn``), ``warm`` (layers timed warm), ``both`` (``c0 +
    a * warm sum + b * (in-turn sum - warm sum)``: what a layer costs when its weights are not in the caches, weighed by
    the fit) and ``by_size`` (that difference scaled by the model's parameters over the input model's: a small model's
    weights stay in the caches)."""
    y = np.array(row["measured_warm"])
    turn, warm, params = (np.array(row[k], dtype=float) for k in ("sum_in_turn", "sum_warm", "params"))
    one, n = np.ones_like(y), len(y) - (len(y) - 1) // 2
    designs = {"in_turn": [one, turn], "warm": [one, warm], "both": [one, warm, turn - warm],
               "by_size": [one, warm, (turn - warm) * params / params[0]]}
    out = {}
    for name, columns in designs.items():
        x = np.stack(columns, axis=1)
        coef, *_ = np.linalg.lstsq(x[:n] / y[:n, None], np.ones(n), rcond=None)
        errors = np.abs(x[n:] @ coef - y[n:]) / y[n:] * 100
        out[name] = {"median_abs_pct": float(np.median(errors)), "max_abs_pct": float(errors.max()),
                     "coefficients": coef.tolist()}
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["error", "speed", "devices", "warm"], required=True)
    parser.add_argument("--device", choices=["host", "pinned"], default="host")
    parser.add_argument("--budget", default="latency<=60%")
    parser.add_argument("--runtime", default="onnxruntime", choices=["onnxruntime", "executorch", "openvino", "litert"],
                        help="--part error: the runtime the tables are timed in")
    parser.add_argument("--models", default=",".join(MODELS), help=f"--part error: of {', '.join(MODELS)}")
    args = parser.parse_args(argv)
    if set(args.models.split(",")) - set(MODELS):
        parser.error(f"--models: unknown {sorted(set(args.models.split(',')) - set(MODELS))}; allowed: {', '.join(MODELS)}")
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    if args.part == "error":
        rows = error_part(args.device, args.runtime, args.models.split(","))
        suffix = "" if args.runtime == "onnxruntime" else f"_{args.runtime}"
        flags = "" if args.runtime == "onnxruntime" else f" --runtime {args.runtime} --models {args.models}"
        lines = [f"### Latency table error on `{args.device}`{'' if not suffix else f' in {args.runtime}'} "
                 f"(`benchmarks/latency_table.py --part error --device {args.device}{flags}`)", "",
                 "Held-out pruned copies (the strategies at random shifts, ranges kept or widened) timed whole in the "
                 "same runner call as the fit; error = |predicted - measured| / measured.", "",
                 "| model | layers | input model ms | fit c0 ms | fit k | fitted on | held out | median error | max error | build s |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name, r in rows.items():
            lines.append(f"| {name} | {r['layers']} | {r['reference_ms']:.3f} | {r['c0']:.3f} | {r['k']:.2f} | "
                         f"{r['fitted_on']} | {len(r['held_out'])} | {r['median_abs_pct']:.1f} % | {r['max_abs_pct']:.1f} % | "
                         f"{r['seconds']:.0f} |")
        save(f"latency_table_error_{args.device}{suffix}", {"device": args.device, "runtime": args.runtime,
                                                            "pinned_command": PINNED if args.device == "pinned" else None,
                                                   "models": {k: list(v) for k, v in MODELS.items()}, "rows": rows},
             "\n".join(lines))
    elif args.part == "warm":
        rows = warm_part(args.models.split(","))
        lines = ["### Tables timed in turn and warm (`benchmarks/latency_table.py --part warm`)", "",
                 "Each model's table built twice, layers and whole models timed one call each in turn, then warm in "
                 "blocks of 10 ms; median held-out error of each table against its own whole-model timings.", "",
                 "| model | whole models | in turn: median error | warm: median error | input model ms in turn / warm |",
                 "|---|---:|---:|---:|---|"]
        for name, r in rows.items():
            r["fits"] = fit_variants(r)
            lines.append(f"| {name} | {len(r['params'])} | {r['error_in_turn']:.1f} % | {r['error_warm']:.1f} % | "
                         f"{r['measured_in_turn'][0]:.3f} / {r['measured_warm'][0]:.3f} |")
        lines += ["", "Against the warm whole-model timings, held-out median (largest) error of fits on the layer sums "
                  "(`fit_variants`):", "", "| model | in-turn layers | warm layers | both | both, by size |",
                  "|---|---:|---:|---:|---:|"]
        for name, r in rows.items():
            cells = [f"{f['median_abs_pct']:.1f} % ({f['max_abs_pct']:.1f} %)" for f in r["fits"].values()]
            lines.append(f"| {name} | {' | '.join(cells)} |")
        save("latency_table_warm", {"models": {k: list(v) for k, v in MODELS.items()}, "rows": rows}, "\n".join(lines))
    elif args.part == "devices":
        budget = "latency<=50%"
        r = devices_part(budget)
        lines = ["### Calibrated on one device, timed on another (`benchmarks/latency_table.py --part devices`)", "",
                 f"torchvision MobileNetV2 at 3x64x64 calibrated to `{budget}` (`finetune=0`) on this machine at one "
                 "thread (`host`) and on a device running ONNX Runtime at two threads (`two`); every model then timed "
                 "beside the input model on both (candidate / input: the ratio of the fastest calls of 30 alternating "
                 "rounds, `Device.paired`).", "",
                 "| calibrated on | strategy | calibration's confirming timing, ms (limit) | relative latency on host | "
                 "on two | limit |", "|---|---|---:|---:|---:|---:|"]
        for row in r["rows"]:
            on, limit = row["relative_on"], row.get("calibration_limit_ms")
            lines.append(f"| {row['calibrated_on']} | {row['strategy']} | {row['calibration_measured_ms']:.4f}"
                         f"{f' ({limit:.4f})' if limit else ''} | {on['host']:.1%} | {on['two']:.1%} | {row['limit']:.0%} |")
        save("latency_table_devices", {"budget": budget, **r}, "\n".join(lines))
    else:
        key = ("torchvision:mobilenet_v2", {}, 3, 64)
        r = speed_part(key, args.budget)
        lines = [f"### Calibrating ten strategies to `{args.budget}` (`benchmarks/latency_table.py --part speed`)", "",
                 "Structured Mix-and-Match, torchvision MobileNetV2 at 3x64x64, `finetune=0`, one process, one thread, "
                 "the two arms one after the other; the table arm includes building the table (fresh cache).", "",
                 "| calibration | seconds | strategies meeting the budget (confirming timing) | measured ms (min-max) | limit ms |",
                 "|---|---:|---:|---|---:|"]
        for arm in ("bisection", "table"):
            a = r[arm]
            lines.append(f"| {arm} | {a['seconds']:.0f} | {a['met']} of {len(a['strategies'])} | "
                         f"{min(a['measured']):.3f}-{max(a['measured']):.3f} | {a['limit']:.3f} |")
        lines += ["", f"Speed-up of the table: **{r['speedup']:.1f}x**."]
        save("latency_table_speed", {"budget": args.budget, "model": list(key), **r}, "\n".join(lines))


if __name__ == "__main__":
    main()
