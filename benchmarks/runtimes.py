"""Every runtime, FP32 and INT8, on the structured benchmark's models and their dense inputs (issue 31, item 5).

    python benchmarks/runtimes.py [--models resnet20,vgg16,vit] [--limit 4000] [--dense-epochs 2] [--rounds 3] [--runs 10] [--quick]
    python benchmarks/runtimes.py --render    # the section and plot again from results/runtimes.json

Models (MNIST, ``--limit`` train+val images, the whole 10,000-image test split; one seed): ResNet-20, VGG-16 at 1/2
width and the zoo ViT, each trained ``--dense-epochs`` (the recipe of ``executorch_vs_ort.py``), and a pruned
version: structured pruning at ``--budget`` (MACs) with the criterion and strategy the structured benchmark chose
for that model (``results/structured_*_seeds.json``; its latency-bisected, block-dropping, long fine-tunes are too
slow to reproduce here), then ``--ft-epochs`` of fine-tuning, through ``edgeprune.prune``.

Every model goes through ``edgeprune.export`` once: each runtime's FP32 file and static INT8 file (calibrated on 16
training batches), each checked against PyTorch and scored on the test split in its own runtime. Then the files of
a dense/pruned pair, every runtime and precision, are timed side by side in interleaved rounds at batch 1 and
batch 32 (one thread, ``edgeprune.export.compare_latency``). ExecuTorch files take batches up to 32 (dynamic batch);
LiteRT programs have a fixed batch, so a second pair of batch-32 ``.tflite`` files (FP32 and INT8, same calibration)
is converted for the batch-32 timing.

A runtime is one entry of ``RUNTIMES``; one whose package does not import is skipped, and the JSON says why.
Results: results/runtimes.json, sections/runtimes.md and plots/runtimes.png. It supersedes the runtime comparison of
``executorch_vs_ort.py`` (whose LeNet-5 rows, delegate operators and sparse-ONNX part it does not redo).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import edgeprune  # noqa: E402
from common import RESULTS, ROOT, save, shared_data_dir  # noqa: E402
from edgeprune import data  # noqa: E402
from edgeprune.export import compare_latency  # noqa: E402
from edgeprune.export.executorch import calibration_batches  # noqa: E402
from edgeprune.export.litert import export_litert  # noqa: E402
from edgeprune.measure import macs  # noqa: E402
from edgeprune.measure.latency import BUSY_SPREAD, busy_warning, spread  # noqa: E402
from executorch_vs_ort import log, train  # noqa: E402

NAME = "runtimes"
MODELS = {"resnet20": {}, "vgg16": {"width_mult": 0.5}, "vit": {}}
# (criterion, strategy) of "ours (chosen)" in results/structured_{resnet20_ft8_b40,vgg16_r16_ft6_b30,vit_ft16_b40}.json
CHOSEN = {"resnet20": ("product", "balanced"), "vgg16": ("magnitude", "balanced"), "vit": ("product", "late_heavy")}
PRECISIONS = ("fp32", "int8")
VARIANTS = ("dense", "pruned")
BATCHES = (1, 32)
UNDERTRAINED = 0.9  # FP32 test top-1 below this: quantization noise flips the small logit margins of a barely trained model
PLOT = ROOT / "plots" / f"{NAME}.png"


@dataclass(frozen=True)
class Runtime:
    package: str  # the runtime is skipped when this does not import
    format: str  # edgeprune.export(formats=...) writes its files
    files: dict[str, str]  # precision -> the file written, timed by compare_latency (its suffix names the runtime)
    accuracy: dict[str, str]  # precision -> key of Exported.accuracy (test top-1 measured in the runtime)
    fixed_batch: bool = False  # its programs take one batch size: batch-32 files are converted for the b32 timing


RUNTIMES = {
    "ONNX Runtime": Runtime("onnxruntime", "onnx", {"fp32": "model.onnx", "int8": "model.int8.onnx"},
                            {"fp32": "fp32_ort", "int8": "int8_ort"}),
    "ExecuTorch": Runtime("executorch", "executorch", {"fp32": "model.pte", "int8": "model.int8.pte"},
                          {"fp32": "fp32_executorch", "int8": "int8_executorch"}),
    "OpenVINO": Runtime("openvino", "openvino", {"fp32": "model.xml", "int8": "model.int8.xml"},
                        {"fp32": "fp32_openvino", "int8": "int8_openvino"}),
    "LiteRT": Runtime("litert_torch", "litert", {"fp32": "model.tflite", "int8": "model.int8.tflite"},
                      {"fp32": "fp32_litert", "int8": "int8_litert"}, fixed_batch=True),
}


def importable() -> tuple[dict[str, Runtime], dict[str, str]]:
    """(the runtimes whose package imports, {runtime: why it was skipped})."""
    usable, skipped = {}, {}
    for name, runtime in RUNTIMES.items():
        try:
            importlib.import_module(runtime.package)
            usable[name] = runtime
        except ImportError as exc:
            skipped[name] = f"{runtime.package} is not importable ({str(exc).splitlines()[0][:120]})"
    return usable, skipped


def prune(spec: str, dense, splits, args):
    criterion, strategy = CHOSEN[spec]
    pruned = edgeprune.prune(dense, splits, method="structured", budget=args.budget, finetune=args.ft_epochs,
                             seed=args.seed, criteria=[criterion], strategies=[strategy], deploy_metrics=False)
    log(f"{spec} pruned ({criterion}, {strategy}, {args.budget}): val {pruned.record.get('val_acc', float('nan')):.4f}")
    return pruned.model.eval()


def artifact_bytes(path: Path) -> int:
    """The file and, for OpenVINO IR, its weights beside it."""
    return sum(p.stat().st_size for p in (path, path.with_suffix(".bin")) if p.exists())


def export_rows(label: str, variant: str, model, splits, runtimes: dict[str, Runtime], folder: Path, args) -> list[dict]:
    """One row per runtime and precision: the file, its bytes and test top-1 in the runtime (``edgeprune.export``)."""
    t0 = time.perf_counter()
    formats = tuple(dict.fromkeys(r.format for r in runtimes.values()))
    done = edgeprune.export(model, folder, formats=formats, int8="static", data=splits, et_batch="dynamic",
                            max_batch=max(BATCHES), latency=False, calib_batches=args.calib_batches)
    example = torch.zeros(1, splits.in_channels, splits.image_size, splits.image_size)
    common = {"model": label, "variant": variant, "macs": int(macs(model, example).dense),
              "torch_acc": done.accuracy["fp32_torch"], "test_images": done.accuracy["images"]}
    rows = [{**common, "runtime": name, "precision": p, "file": str(folder / r.files[p]),
             "bytes": artifact_bytes(folder / r.files[p]), "acc": done.accuracy[r.accuracy[p]]}
            for name, r in runtimes.items() for p in PRECISIONS]
    for row in rows:
        if runtimes[row["runtime"]].fixed_batch:
            row[f"file_b{max(BATCHES)}"] = str(batch_program(model, splits, folder, row["precision"], args))
    log(f"{label} {variant}: exported {len(rows)} files ({time.perf_counter() - t0:.0f} s); "
        + ", ".join(f"{r['runtime']} {r['precision']} {r['acc']:.4f}" for r in rows))
    return rows


def batch_program(model, splits, folder: Path, precision: str, args) -> Path:
    """A LiteRT program of batch 32 (its files of ``edgeprune.export`` take batch 1), FP32 or static INT8 calibrated
    as those are; parity checked like them."""
    batch = max(BATCHES)
    x = next(iter(data.make_loader(splits.test, batch)))[0]
    path = folder / f"model{'.int8' if precision == 'int8' else ''}.b{batch}.tflite"
    calibration = calibration_batches(splits.train, args.calib_batches, 32) if precision == "int8" else None
    export_litert(model, path, x, batch=batch, int8=precision == "int8", calibration=calibration)
    return path


def time_rows(rows: list[dict], args) -> None:
    """Latency of every file of a model pair, side by side in interleaved rounds, at each batch size."""
    for batch in BATCHES:
        paths = {f"{r['variant']}|{r['runtime']}|{r['precision']}": r.get(f"file_b{batch}", r["file"]) for r in rows}
        load = os.getloadavg()
        timed = compare_latency(paths, batch=batch, rounds=args.rounds, runs=args.runs, threads=1)
        for row, key in zip(rows, paths):
            row[f"ms_b{batch}"] = timed[key]["median_ms"]
            row[f"rounds_ms_b{batch}"] = timed[key]["rounds_ms"]
            row[f"load_b{batch}"] = list(load)


def add_ratios(rows: list[dict]) -> None:
    """Per pruned row: speed-up over its dense row (same runtime and precision), ÷ the MAC ratio; per INT8 row: the
    accuracy change from FP32 in percentage points."""
    by_key = {(r["variant"], r["runtime"], r["precision"]): r for r in rows}
    for r in rows:
        if r["variant"] == "pruned":
            dense = by_key["dense", r["runtime"], r["precision"]]
            r["mac_ratio"] = dense["macs"] / r["macs"]
            for b in BATCHES:
                r[f"speedup_b{b}"] = dense[f"ms_b{b}"] / r[f"ms_b{b}"]
                r[f"speedup_per_mac_b{b}"] = r[f"speedup_b{b}"] / r["mac_ratio"]
        if r["precision"] == "int8":
            r["int8_minus_fp32_pp"] = 100 * (r["acc"] - by_key[r["variant"], r["runtime"], "fp32"]["acc"])


def parse_epochs(setting: str | int) -> int | dict[str, int]:
    """``--dense-epochs``: one number for every model, or ``resnet20=8,vit=30`` (a model left out: 2)."""
    text = str(setting)
    return int(text) if "=" not in text else {k: int(v) for k, v in (item.split("=") for item in text.split(","))}


def epochs_of(setting: str | int, spec: str) -> int:
    epochs = parse_epochs(setting)
    return epochs if isinstance(epochs, int) else epochs.get(spec, 2)


def measure_model(spec: str, splits, runtimes: dict[str, Runtime], workdir: Path, args) -> list[dict]:
    torch.set_num_threads(1)
    label = f"{spec}{'/2' if MODELS[spec] else ''}"
    dense = train(spec, MODELS[spec], splits, epochs_of(args.dense_epochs, spec), args.seed).eval()
    pruned = prune(spec, dense, splits, args)
    rows = [row for variant, model in zip(VARIANTS, (dense, pruned))
            for row in export_rows(label, variant, model, splits, runtimes, workdir / f"{spec}-{variant}", args)]
    time_rows(rows, args)
    add_ratios(rows)
    for r in rows:
        for key in [k for k in r if k.startswith("file")]:
            del r[key]  # a temporary path
    return rows


def fastest(rows: list[dict], batch: int, precision: bool = True) -> str:
    best = min(rows, key=lambda r: r[f"ms_b{batch}"])
    return f"{best['runtime']}{' ' + best['precision'].upper() if precision else ''} ({best[f'ms_b{batch}']:.3f} ms)"


def verdict(rows: list[dict]) -> list[str]:
    lines = []
    for model in dict.fromkeys(r["model"] for r in rows):
        for variant in VARIANTS:
            mine = [r for r in rows if r["model"] == model and r["variant"] == variant]
            fp32 = [r for r in mine if r["precision"] == "fp32"]
            lines.append(f"- {model} {variant}: fastest at batch 1 {fastest(mine, 1)}, at batch 32 {fastest(mine, 32)}; "
                         f"FP32 only: {fastest(fp32, 1, False)} / {fastest(fp32, 32, False)}.")
    losses = [r for r in rows if r.get("int8_minus_fp32_pp", 0) < -0.5]
    int8 = [r for r in rows if r["precision"] == "int8"]
    if losses:
        lines.append("- INT8 loses more than 0.5 pp of test top-1 in: " + "; ".join(
            f"{r['model']} {r['variant']} {r['runtime']} ({r['int8_minus_fp32_pp']:+.2f} pp)" for r in losses)
            + f". The other {len(int8) - len(losses)} INT8 files are within 0.5 pp of their FP32 file.")
    else:
        lines.append(f"- INT8 is within 0.5 pp of FP32 in all {len(int8)} INT8 files "
                     f"(worst {min(r['int8_minus_fp32_pp'] for r in int8):+.2f} pp).")
    weak = dict.fromkeys(f"{r['model']} {r['variant']} ({r['torch_acc']:.1%})" for r in rows if r["torch_acc"] < UNDERTRAINED)
    if weak:
        lines.append(f"- Undertrained at these settings (FP32 top-1 below {UNDERTRAINED:.0%}): {', '.join(weak)}. Their "
                     "latencies and sizes stand; their INT8 − FP32 says little about a trained model of the same shape.")
    return lines


def ms(row: dict, batch: int, digits: int) -> str:
    """The median, marked when its round medians disagree (p90/p10 above the timer's busy threshold)."""
    s = spread(row[f"rounds_ms_b{batch}"])
    return f"{row[f'ms_b{batch}']:.{digits}f}" + ("†" if s["p90_ms"] > BUSY_SPREAD * s["p10_ms"] else "")


def dense_epochs_text(settings: dict) -> str:
    epochs = parse_epochs(settings["dense_epochs"])
    return str(epochs) if isinstance(epochs, int) else ", ".join(f"{k} {v}" for k, v in epochs.items())


def section(result: dict) -> str:
    s, rows = result["settings"], result["rows"]
    ft = f"{s['ft_epochs']} fine-tune epoch(s)"
    lines = [
        f"## Runtimes: {', '.join(dict.fromkeys(r['runtime'] for r in rows))} — FP32 and INT8",
        "",
        f"`benchmarks/runtimes.py`: MNIST ({s['limit']:,} train+val images, {rows[0]['test_images']:,} test), "
        f"{dense_epochs_text(s)} dense epoch(s); pruned = structured `{s['budget']}` with the structured benchmark's chosen "
        f"criterion and strategy per model + {ft} (not its latency-budgeted, long fine-tuned models); one seed. "
        "INT8: static, calibrated on training images. Accuracy: test top-1 measured in the runtime itself. Latency: one "
        f"thread, medians of {s['rounds']} interleaved rounds × {s['runs']} calls, the files of a dense/pruned pair in "
        "every runtime side by side. Speed-up: pruned over dense in the same runtime and precision (÷ MAC ratio: "
        "1.0 = the whole theoretical gain).",
        "",
        "| model | runtime | precision | kB | ms b1 | ms b32 | speed-up b1 / b32 (÷ MACs) | top-1 | INT8 − FP32 |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        speedup = (f"{r['speedup_b1']:.2f}× / {r['speedup_b32']:.2f}× ({r['speedup_per_mac_b1']:.2f} / "
                   f"{r['speedup_per_mac_b32']:.2f})" if "speedup_b1" in r else "")
        delta = f"{r['int8_minus_fp32_pp']:+.2f} pp" if "int8_minus_fp32_pp" in r else ""
        lines.append(f"| {r['model']} {r['variant']} ({r['macs'] / 1e6:.1f} M MACs) | {r['runtime']} | "
                     f"{r['precision'].upper()} | {r['bytes'] / 1e3:,.0f} | {ms(r, 1, 3)} | {ms(r, 32, 2)} | "
                     f"{speedup} | {r['acc']:.2%} | {delta} |")
    lines += ["", f"† its round medians differ by more than {BUSY_SPREAD:g}× (p90/p10): disturbed by the other job, "
                  "and so are the speed-ups computed from it.",
              "", f"![{NAME}](plots/{NAME}.png)", "", "Verdict:", "", *verdict(rows)]
    if result["skipped"]:
        lines += ["", "Skipped: " + "; ".join(f"{k}: {v}" for k, v in result["skipped"].items()) + "."]
    lines += ["", f"Load average (1, 5, 15 min) at the start {fmt_load(result['load_start'])}, at the end "
                  f"{fmt_load(result['load_end'])}; core 0 was shared with another job."]
    if result["busy_warning"]:
        lines.append(f"Timer's warning: {result['busy_warning']}.")
    lines.append(f"Whole run {result['seconds'] / 60:.1f} min" + ("." if result["complete"] else
                 f"; **partial**: only {', '.join(dict.fromkeys(r['model'] for r in rows))} finished."))
    return "\n".join(lines)


def fmt_load(load: list[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in load)


def plot(rows: list[dict], path: Path) -> None:
    """Batch-1 latency: one panel per model, a group of bars per runtime (dense/pruned × FP32/INT8)."""
    import matplotlib  # noqa: PLC0415  (only to draw)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    models = list(dict.fromkeys(r["model"] for r in rows))
    runtimes = list(dict.fromkeys(r["runtime"] for r in rows))
    bars = [(v, p) for v in VARIANTS for p in PRECISIONS]
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.8), dpi=120, squeeze=False)
    ms = {(r["model"], r["runtime"], r["variant"], r["precision"]): r["ms_b1"] for r in rows}
    width = 0.8 / len(bars)
    for ax, model in zip(axes[0], models):
        for i, (variant, precision) in enumerate(bars):
            xs = [j + (i - (len(bars) - 1) / 2) * width for j in range(len(runtimes))]
            ax.bar(xs, [ms[model, rt, variant, precision] for rt in runtimes], width,
                   label=f"{variant} {precision.upper()}", color=f"C{VARIANTS.index(variant)}",
                   alpha=1.0 if precision == "fp32" else 0.55, hatch="" if precision == "fp32" else "//")
        ax.set_xticks(range(len(runtimes)), runtimes)
        ax.set_title(model)
        ax.set_ylabel("ms per image, batch 1, 1 thread")
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="lower center", ncol=len(bars), fontsize=8)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    path.parent.mkdir(exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def timing_warning(rows: list[dict]) -> str | None:
    spreads = [spread(r[f"rounds_ms_b{b}"]) for r in rows for b in BATCHES]
    return busy_warning(spreads, load=max(r[f"load_b{b}"][0] for r in rows for b in BATCHES))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated, of " + ", ".join(MODELS))
    ap.add_argument("--limit", type=int, default=4000, help="MNIST train+val images")
    ap.add_argument("--dense-epochs", default="2", help="one number, or per model: resnet20=8,vgg16=8,vit=30")
    ap.add_argument("--ft-epochs", type=int, default=1)
    ap.add_argument("--budget", default="macs<=50%")
    ap.add_argument("--calib-batches", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved latency rounds")
    ap.add_argument("--runs", type=int, default=10, help="timed calls per file and round")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny settings, results not saved")
    ap.add_argument("--render", action="store_true", help="rewrite the section and plot from results/runtimes.json")
    args = ap.parse_args()
    if args.render:
        result = json.loads((RESULTS / f"{NAME}.json").read_text())  # keeps the run's own provenance
        plot(result["rows"], PLOT)
        save(NAME, result, section(result))
        return
    if args.quick:
        args.limit, args.dense_epochs, args.rounds, args.runs, args.calib_batches = 1000, 1, 1, 3, 2
    specs = args.models.split(",")
    if unknown := [s for s in specs if s not in MODELS]:
        sys.exit(f"unknown model(s) {', '.join(unknown)}; allowed: {', '.join(MODELS)}")
    root = shared_data_dir()
    if root is None:
        sys.exit("MNIST not found: set EDGEPRUNE_DATA to a folder holding mnist/")
    runtimes, skipped = importable()
    for name, why in skipped.items():
        log(f"skipping {name}: {why}")
    start, load_start, rows = time.perf_counter(), list(os.getloadavg()), []

    def result(complete: bool) -> dict:
        return {"settings": vars(args), "complete": complete, "runtimes": list(runtimes), "skipped": skipped,
                "rows": rows, "load_start": load_start, "load_end": list(os.getloadavg()),
                "busy_warning": timing_warning(rows), "seconds": time.perf_counter() - start}

    def checkpoint(complete: bool = False) -> None:
        plot(rows, Path(tmp) / f"{NAME}.png" if args.quick else PLOT)
        if not args.quick:
            save(NAME, result(complete), section(result(complete)))

    with tempfile.TemporaryDirectory(prefix="edgeprune-runtimes-") as tmp:
        splits = data.load("mnist", root=root, seed=args.seed, limit=args.limit, test_limit=1000 if args.quick else None)
        for spec in specs:
            rows += measure_model(spec, splits, runtimes, Path(tmp), args)
            checkpoint()
        checkpoint(complete=True)
    print(section(result(True)))
    if args.quick:
        log("quick run: results not saved")


if __name__ == "__main__":
    main()
