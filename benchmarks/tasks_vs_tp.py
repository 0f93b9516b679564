"""Pruning beyond classification: ours vs Torch-Pruning at the same measured ONNX Runtime latency (mnist-seg).

    python benchmarks/tasks_vs_tp.py --task segmentation --seed 0   # results/tasks_segmentation_s0.json
    python benchmarks/tasks_vs_tp.py --task segmentation --collect  # the seeds combined: results/tasks_segmentation.json
    python benchmarks/tasks_vs_tp.py --task segmentation --render   # sections/tasks_segmentation.md from it

One seed: a small U-Net of a user's own (defined here) trained dense by the script on a ``mnist-seg`` subset, then
at one latency budget (ONNX Runtime, 1 thread, relative to the dense model timed side by side, as ours measures):

* ours: ``edgeprune.prune(..., task=..., method="mix_and_match", granularity="channel", budget=...)``, the
  best candidate (criterion × strategy) by validation mIoU;
* Torch-Pruning's ``BasePruner`` (magnitude / Taylor importance × uniform / global ratio), output head kept,
  Taylor importance from the task's loss, its ratio bisected to the same measured latency (structured.py);
* the plain alternative: the same U-Net made narrower (the widest base width that meets the same measured
  latency), trained from scratch with the dense recipe.

Every pruned model gets the same fine-tune (epochs, optimiser, KD from the dense model through the task's
distillation). Test mIoU and pixel accuracy are measured once per final model, with the task's bootstrap
interval over test images; the latencies of all final models are measured again side by side at the end.
Each seed writes its own results file and re-collects the seeds done so far (mean and 95 % t-interval over
seeds, paired differences), so the section is current after every seed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import edgeprune  # noqa: E402
import edgeprune.methods.catalog  # noqa: E402, F401  (fills the method registry)
from common import RESULTS, SECTIONS, provenance, save, shared_data_dir  # noqa: E402
from edgeprune import data as data_lib  # noqa: E402
from edgeprune import tasks  # noqa: E402
from edgeprune.measure import macs, param_count  # noqa: E402
from edgeprune.measure.budget import parse  # noqa: E402
from edgeprune.methods.base import get_method  # noqa: E402
from edgeprune.report.stats import t_interval  # noqa: E402
from edgeprune.runs.inputs import train_config  # noqa: E402
from edgeprune.scores import calibration_batches  # noqa: E402
from edgeprune.train import default_config, fit  # noqa: E402
from edgeprune.utils.io import write_json, write_text  # noqa: E402
from structured import KEPT, TP_MAX_RATIO, calibrate_tp, export_all, latency_fits, side_by_side  # noqa: E402

GOAL_DROP_POINTS, GOAL_SPEEDUP = 1.0, 2.0  # issue 26: at most 1 mIoU point lost at 2x measured speed-up


def stage(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class UNet(nn.Module):
    """A small U-Net of a user's own: three encoder stages (widths w, 2w, 4w; max-pool between), a decoder of
    bilinear upsampling + skip concatenation, a 1x1 head over the classes."""

    def __init__(self, classes: int = 11, width: int = 16, in_channels: int = 1):
        super().__init__()
        w1, w2, w3 = width, 2 * width, 4 * width
        self.enc1, self.enc2, self.enc3 = stage(in_channels, w1), stage(w1, w2), stage(w2, w3)
        self.dec2, self.dec1 = stage(w3 + w2, w2), stage(w2 + w1, w1)
        self.head = nn.Conv2d(w1, classes, 1)

    def forward(self, x):
        a = self.enc1(x)
        b = self.enc2(F.max_pool2d(a, 2))
        c = self.enc3(F.max_pool2d(b, 2))
        d = self.dec2(torch.cat([F.interpolate(c, size=b.shape[-2:], mode="bilinear", align_corners=False), b], 1))
        return self.head(self.dec1(torch.cat([F.interpolate(d, size=a.shape[-2:], mode="bilinear", align_corners=False), a], 1)))


# what each task benchmark runs on: data spec, model, budget, the metrics shown (primary first)
SETUPS = {
    "segmentation": {"data": "mnist-seg", "model": UNet, "model_name": "U-Net (16/32/64, this script)",
                     "budget": "latency<=50%", "metrics": ("miou", "pixel_acc")},
}
LABELS = {"miou": "mIoU", "pixel_acc": "pixel acc"}


def name_of(task: str, name: str | None = None) -> str:
    return name or f"tasks_{task}"


def final_metrics(model: nn.Module, splits, task: tasks.Task, example: torch.Tensor, seed: int) -> dict:
    """Validation metric, and the test metrics measured once with the bootstrap interval of the primary one."""
    stats = task.statistics(model, splits.test)
    return {f"val_{task.metric}": task.primary(model, splits.val),
            **{f"test_{k}": v for k, v in task.reduce(stats.values).items()},
            f"test_{task.metric}_ci": list(task.interval(stats, seed=seed)), "test_n": stats.n,
            "params": param_count(model), "macs": macs(model, example).dense}


def tp_max_ratio(model: nn.Module, round_to: int) -> float:
    """The largest ratio at which Torch-Pruning keeps a multiple of ``round_to`` in the narrowest conv (it rounds
    kept widths down; a layer rounded to nothing is skipped, unpruned, which would make latency jump back up)."""
    narrowest = min(m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d) and m.out_channels > 11)
    return min(TP_MAX_RATIO, 1.0 - round_to / narrowest) if round_to > 1 else TP_MAX_RATIO


def widest_fitting(make, fits, low: int, high: int) -> tuple[int, bool]:
    """The largest base width in [low, high] whose model fits the measured budget, every width tried from the
    widest down (ONNX Runtime's latency is not monotone in width: widths off its channel block can be slower
    than wider ones); (low, False) when none fits."""
    for width in range(high, low - 1, -1):
        if fits(make(width)):
            return width, True
    return low, False


def run_seed(args) -> None:
    setup, task = SETUPS[args.task], tasks.get(args.task)
    torch.set_num_threads(1)
    root = shared_data_dir()
    if root is None:
        sys.exit("MNIST not found: set EDGEPRUNE_DATA")
    started = time.perf_counter()
    splits = data_lib.load(setup["data"], root=root, limit=args.limit, test_limit=args.test_limit, seed=args.seed)
    shape = tuple(splits.input_shape)
    example = torch.zeros(1, *shape)
    make = setup["model"]

    def make_model(width: int = args.width) -> nn.Module:
        return make(classes=splits.num_classes, width=width, in_channels=shape[0])

    dense_cfg = default_config("cnn", epochs=args.dense_epochs, batch_size=args.batch_size, optimizer=args.optimizer,
                               lr=args.lr, weight_decay=args.weight_decay, seed=args.seed)
    torch.manual_seed(args.seed)
    dense = make_model()
    trained = fit(dense, splits.train, splits.val, dense_cfg, task=task, description="dense")
    dense.eval()
    methods = {"dense": {**final_metrics(dense, splits, task, example, args.seed), "history": trained.history,
                         "seconds": trained.seconds, "seconds_per_epoch": trained.seconds_per_epoch}}
    print(f"dense: {methods['dense']}", flush=True)
    budget = parse(args.budget or setup["budget"])

    # the one fine-tune recipe of every pruned model: the method's (a fifth of the dense learning rate, no warm-up,
    # patience 3) with the dense run's optimiser and batch size; KD from the dense model
    recipe = train_config(get_method("mix_and_match", granularity="channel"), dense,
                          {"epochs": args.epochs, "optimizer": args.optimizer, "lr": args.lr * 0.2,
                           "weight_decay": args.weight_decay, "batch_size": args.batch_size}).replace(seed=args.seed)

    t0 = time.perf_counter()
    ours = edgeprune.prune(dense, splits, task=task, method="mix_and_match", granularity="channel", budget=budget,
                           finetune=recipe, seed=args.seed, criteria=args.criteria.split(","),
                           strategies=args.strategies.split(","), calib_batches=4, round_to=args.round_to, progress=True)
    limit_ms = next(r["decided"]["limit"] for r in ours.candidates if r.get("status") == "ok")
    keys = [f"val_{task.metric}", f"val_{task.metric}_pruned", *(f"test_{k}" for k in setup["metrics"]),
            f"test_{task.metric}_ci", "params", "macs", "budget_achieved", "speedup_b1", "epochs_run", "seconds"]
    candidates = [{"id": r["id"], "status": r.get("status"), **{k: r.get(k) for k in keys}} for r in ours.candidates]
    chosen = next(c for c in candidates if c["id"] == ours.record["id"])
    methods["ours (chosen)"] = {**chosen, "candidate": chosen["id"]}
    print(f"ours: {len(candidates)} candidates, {time.perf_counter() - t0:.0f}s, limit {limit_ms:.3f} ms, chosen "
          f"{chosen['id']}", flush=True)

    finals = {"dense": dense, "ours (chosen)": ours.model}
    with tasks.using(task):
        batches = calibration_batches(splits.train, 4, 32)
    fits = latency_fits(dense, shape, budget, limit_ms)
    tp_max = tp_max_ratio(dense, args.round_to)
    for importance, scope in (v.split("_") for v in args.tp.split(",")):
        label = f"TP {importance} {scope}"
        t0 = time.perf_counter()
        model, ratio, met = calibrate_tp(dense, example, importance, scope == "global", fits, batches,
                                         round_to=args.round_to if args.round_to > 1 else None, task=task,
                                         max_ratio=tp_max, layer_cap=tp_max)
        pruned_val = task.primary(model, splits.val)
        result = fit(model, splits.train, splits.val, recipe, teacher=dense, task=task, description=label)
        model.eval()
        methods[label] = {"ratio": ratio, "budget_met": met, f"val_{task.metric}_pruned": pruned_val,
                          **final_metrics(model, splits, task, example, args.seed), "epochs_run": result.epochs_run,
                          "max_ratio": tp_max,
                          "seconds_per_epoch": result.seconds_per_epoch, "seconds": time.perf_counter() - t0}
        finals[label] = model
        print(label, methods[label], flush=True)

    # the plain alternative: the widest narrower U-Net at the same measured latency, trained from scratch
    t0 = time.perf_counter()
    width, met = widest_fitting(make_model, fits, 2, args.width - 1)
    torch.manual_seed(args.seed)
    small = make_model(width)
    result = fit(small, splits.train, splits.val, dense_cfg, task=task, description=f"scratch w{width}")
    small.eval()
    label = "scratch (narrower)"
    methods[label] = {"width": width, "budget_met": met, **final_metrics(small, splits, task, example, args.seed),
                      "history": result.history, "seconds_per_epoch": result.seconds_per_epoch,
                      "seconds": time.perf_counter() - t0}
    finals[label] = small
    print(label, methods[label], flush=True)

    name = f"{name_of(args.task, args.name)}_s{args.seed}"
    paths = export_all(finals, KEPT / name, shape)
    device = side_by_side(paths)
    result = {
        "task": args.task, "metric": task.metric, "model": setup["model_name"], "budget": str(budget), "limit_ms": limit_ms,
        "settings": settings_of(args),
        "data": {"spec": setup["data"], "train": len(splits.train), "val": len(splits.val), "test": len(splits.test),
                 "input_shape": list(shape), "classes": splits.num_classes},
        "methods": methods, "ours_candidates": candidates, "side_by_side": device,
        "onnx_files": {label: path.name for label, path in paths.items()},
        "seconds": time.perf_counter() - started,
    }
    write_json(RESULTS / f"{name}.json", {**provenance(), **result})
    print(f"seed {args.seed} done in {result['seconds'] / 60:.1f} min", flush=True)
    collect(args.task, args.name)


def settings_of(args) -> dict:
    return {"seeds": [args.seed], "train_val_images": args.limit, "test_images": args.test_limit, "width": args.width,
            "dense_epochs": args.dense_epochs, "finetune_epochs": args.epochs, "optimizer": args.optimizer, "lr": args.lr,
            "weight_decay": args.weight_decay, "batch_size": args.batch_size, "criteria": args.criteria,
            "strategies": args.strategies, "tp": args.tp, "round_to": args.round_to, "threads": 1,
            "budget": args.budget}


def collect(task_name: str, name: str | None = None) -> None:
    """The seeds done so far combined: per method the mean test metrics and speed-ups, a 95 % t-interval over
    seeds (two seeds or more), and paired differences over seeds (each seed has its own dense model and data)."""
    name = name_of(task_name, name)
    runs = [json.loads(p.read_text()) for p in sorted(RESULTS.glob(f"{name}_s[0-9]*.json"))]
    if not runs:
        sys.exit(f"--collect: no results/{name}_sK.json yet")
    same = {k: v for k, v in runs[0]["settings"].items() if k != "seeds"}
    for run in runs[1:]:
        other = {k: v for k, v in run["settings"].items() if k != "seeds"}
        if other != same:
            sys.exit(f"--collect: the seeds of {name} ran with different settings: {same} vs {other}")
    metric = runs[0]["metric"]
    primary = f"test_{metric}"

    def interval(values):
        return dict(zip(("mean", "lo", "hi"), t_interval(values))) if len(values) > 1 else {
            "mean": values[0], "lo": None, "hi": None}

    table = {}
    for method in runs[0]["methods"]:
        rows = [run["methods"][method] for run in runs]
        table[method] = {
            "per_seed": {k: [r[k] for r in rows] for k in (primary, f"{primary}_ci", f"val_{metric}") if k in rows[0]},
            **{f"test_{k}": interval([r[f"test_{k}"] for r in rows]) for k in SETUPS[task_name]["metrics"]},
            "drop_vs_dense": interval([run["methods"]["dense"][primary] - r[primary] for run, r in zip(runs, rows)]),
            "params": statistics.fmean(r["params"] for r in rows), "macs": statistics.fmean(r["macs"] for r in rows),
            "speedup_b1": statistics.fmean(run["side_by_side"][method]["speedup_b1"] for run in runs),
            "speedup_b32": statistics.fmean(run["side_by_side"][method]["speedup_b32"] for run in runs),
            "over_budget_seeds": sum(r.get("budget_met") is False for r in rows),
            **({"width": [r["width"] for r in rows]} if "width" in rows[0] else {}),
        }
    tps = [m for m in table if m.startswith("TP ")]
    best_tp = max(tps, key=lambda m: table[m][primary]["mean"])
    ours_minus_best_tp = interval([run["methods"]["ours (chosen)"][primary] - run["methods"][best_tp][primary]
                                   for run in runs])
    ours_minus_scratch = interval([run["methods"]["ours (chosen)"][primary] - run["methods"]["scratch (narrower)"][primary]
                                   for run in runs])
    candidates = {}
    for run in runs:
        chosen = run["methods"]["ours (chosen)"]["candidate"]
        for c in run["ours_candidates"]:
            row = candidates.setdefault(c["id"].rsplit("-s", 1)[0], {"val": [], "test": [], "params": [], "chosen": 0})
            row["val"].append(c[f"val_{metric}"])
            row["test"].append(c[primary])
            row["params"].append(c["params"])
            row["chosen"] += c["id"] == chosen
    timing = {"seed_minutes": [run["seconds"] / 60 for run in runs],
              "dense_seconds_per_epoch": [run["methods"]["dense"]["seconds_per_epoch"] for run in runs],
              "tp_finetune_seconds_per_epoch": [statistics.fmean(run["methods"][m]["seconds_per_epoch"] for m in tps)
                                                for run in runs],
              "load_average_at_save": [run["load_average_at_save"][0] for run in runs]}
    result = {"task": task_name, "metric": metric, "model": runs[0]["model"], "budget": runs[0]["budget"],
              "seeds": [run["settings"]["seeds"][0] for run in runs], "settings": same, "data": runs[0]["data"],
              "revisions": [run["git_revision"] for run in runs], "methods": table, "best_tp": best_tp,
              "ours_minus_best_tp": ours_minus_best_tp, "ours_minus_scratch": ours_minus_scratch,
              "ours_candidates": candidates, "tp_max_ratio": runs[0]["methods"][tps[0]]["max_ratio"],
              "dense_curves": [[h[f"val_{metric}"] for h in run["methods"]["dense"]["history"]] for run in runs],
              "timing": timing}
    save(name, result, render(result))
    print(render(result))


def points(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def with_interval(entry: dict, signed: bool = False) -> str:
    fmt = "{:+.2f}" if signed else "{:.2f}"
    text = fmt.format(100 * entry["mean"])
    return text if entry["lo"] is None else f"{text} [{fmt.format(100 * entry['lo'])}, {fmt.format(100 * entry['hi'])}]"


def render(result: dict) -> str:
    """The README section from the collected results."""
    st, methods, metric = result["settings"], result["methods"], result["metric"]
    label, n = LABELS.get(metric, metric), len(result["seeds"])
    primary = f"test_{metric}"
    data = result["data"]
    lines = [f"### Pruning beyond classification: {result['task']} on mnist-seg, ours vs Torch-Pruning at "
             f"`{result['budget']}` ({n} seed{'s' if n > 1 else ''})", "",
             f"{result['model']} trained dense by `benchmarks/tasks_vs_tp.py` on {data['train']:,} train / "
             f"{data['val']:,} val canvases ({'x'.join(map(str, data['input_shape']))}, {data['classes']} classes incl. "
             f"background), {st['dense_epochs']} epochs ({st['optimizer']}, lr {st['lr']:g}, batch {st['batch_size']}); "
             f"test on {data['test']:,} test canvases (from MNIST test digits). Every pruned model: {st['finetune_epochs']} "
             f"fine-tune epochs with KD from the dense model (lr {st['lr'] * 0.2:g}, patience 3). Ours: criteria "
             f"{st['criteria']} × strategies {st['strategies']}, the best by validation {label}. Torch-Pruning: BasePruner, "
             f"ratio bisected to the same measured latency (at most {100 * result['tp_max_ratio']:g} %: it rounds kept widths "
             f"down to multiples of {st['round_to']} and skips a layer rounded to nothing; no layer loses more). Scratch: the widest narrower U-Net (base width "
             f"{', '.join(map(str, methods['scratch (narrower)']['width']))} per seed instead of {st['width']}) meeting the same "
             f"latency, trained with the dense recipe. Kept widths multiples of {st['round_to']} (ours and Torch-Pruning). "
             f"Test {label} in points: mean over seeds with its 95 % t-interval; speed-ups are ONNX Runtime (1 thread) ratios "
             "measured side by side at the end of each seed, averaged over seeds.", "",
             f"| method | × b1 | × b32 | params | MACs (M) | test {label} | drop vs dense | test pixel acc |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for method, m in methods.items():
        over = f" (over budget on {m['over_budget_seeds']} seed(s))" if m["over_budget_seeds"] else ""
        drop = "–" if method == "dense" else with_interval(m["drop_vs_dense"], signed=True)
        pixel = m.get("test_pixel_acc")
        lines.append(f"| {method}{over} | {m['speedup_b1']:.2f} | {m['speedup_b32']:.2f} | {m['params']:,.0f} | "
                     f"{m['macs'] / 1e6:.1f} | {with_interval(m[primary])} | {drop} | "
                     f"{with_interval(pixel) if pixel else '–'} |")
    lines += ["", "Per seed, test " + label + " with its bootstrap interval over test images (95 %, "
              "resampling canvases):", "", "| method | " + " | ".join(f"seed {s}" for s in result["seeds"]) + " |",
              "|---|" + "---:|" * n]
    for method, m in methods.items():
        cells = [f"{points(v)} [{points(ci[0])}, {points(ci[1])}]" for v, ci in
                 zip(m["per_seed"][primary], m["per_seed"][f"{primary}_ci"])]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    tps = [m for m in methods if m.startswith("TP ")]

    def kept(method: str) -> int:
        return round(100 * methods[method]["macs"] / methods["dense"]["macs"])

    lines += ["", verdict(result), "", f"Read with care: the pruned models get {st['finetune_epochs']} fine-tune epochs, the "
              f"narrower U-Net {st['dense_epochs']} epochs from scratch (the run is sized for about 25 minutes a seed on 2 "
              "shared cores). ONNX Runtime's latency on this CPU is far from monotone in the widths (widths "
              "off its 16-channel block can be slower than wider ones): to meet the budget, ours keeps "
              f"{kept('ours (chosen)')} % of the dense MACs, Torch-Pruning {min(map(kept, tps))}–{max(map(kept, tps))} %, "
              f"scratch {kept('scratch (narrower)')} %; the measured speed-ups are noisy under the shared load.", "",
              *candidate_lines(result), "", timing_line(result)]
    return "\n".join(lines)


def candidate_lines(result: dict) -> list[str]:
    """Ours' candidates (criterion × strategy), means over seeds: what validation chose among."""
    label = LABELS.get(result["metric"], result["metric"])
    rows = result.get("ours_candidates", {})
    lines = ["Ours' candidates, means over seeds (validation chooses; test shown for reading only):", "",
             f"| candidate | val {label} | test {label} | params | chosen |", "|---|---:|---:|---:|---:|"]
    for cid, c in rows.items():
        lines.append(f"| {cid} | {100 * statistics.fmean(c['val']):.2f} | {100 * statistics.fmean(c['test']):.2f} | "
                     f"{statistics.fmean(c['params']):,.0f} | {c['chosen']} |")
    if len({tuple(c["params"]) for c in rows.values()}) == 1:
        lines += ["", "Every candidate has the same widths: at multiples of 8 the strategies' layer fractions round to "
                  "the same network; only the criterion (which channels stay) differs."]
    return lines


def verdict(result: dict) -> str:
    """One plain sentence on the two questions: ours vs Torch-Pruning's best, and the issue's goal."""
    methods, n, label = result["methods"], len(result["seeds"]), LABELS.get(result["metric"], result["metric"])
    ours, diff, best = methods["ours (chosen)"], result["ours_minus_best_tp"], result["best_tp"]
    if methods[best].get("over_budget_seeds"):
        best += f", over budget on {methods[best]['over_budget_seeds']} of {n} seeds"
    if diff["lo"] is None:
        versus = (f"with one seed so far, ours is {100 * diff['mean']:+.2f} {label} points against Torch-Pruning's best "
                  f"({best}), with no interval over seeds yet")
    elif diff["hi"] < 0:
        versus = (f"ours is worse than Torch-Pruning's best ({best}) by {-100 * diff['mean']:.2f} {label} points, "
                  f"beyond the interval ({with_interval(diff, signed=True)})")
    elif diff["lo"] > 0:
        versus = (f"ours beats Torch-Pruning's best ({best}) by {100 * diff['mean']:.2f} {label} points, beyond the "
                  f"interval ({with_interval(diff, signed=True)})")
    else:
        versus = (f"ours is within the interval of Torch-Pruning's best ({best}): ours − TP = "
                  f"{with_interval(diff, signed=True)} points, so ours ≥ TP's best cannot be refuted, nor can the reverse")
    drop, speed = ours["drop_vs_dense"]["mean"], ours["speedup_b1"]
    met = 100 * drop <= GOAL_DROP_POINTS and speed >= GOAL_SPEEDUP
    reasons = []
    if 100 * drop > GOAL_DROP_POINTS:
        reasons.append(f"the drop is {100 * drop:.2f} points (> {GOAL_DROP_POINTS:g})")
    if speed < GOAL_SPEEDUP:
        reasons.append(f"the measured speed-up is {speed:.2f}× (< {GOAL_SPEEDUP:g}×)")
    goal = (f"the issue's goal (≤ {GOAL_DROP_POINTS:g} {label} point lost at {GOAL_SPEEDUP:g}× measured speed-up, mean of "
            f"3 seeds) is {'met' if met else 'NOT met'}: ours {'loses' if drop >= 0 else 'gains'} {abs(100 * drop):.2f} points "
            f"at {speed:.2f}× (batch 1)"
            + ("" if met else f" — {' and '.join(reasons)}") + ("" if n >= 3 else f"; only {n} of 3 seeds so far"))
    return f"**Verdict.** At this speed-up, {versus}; {goal}."


def timing_line(result: dict) -> str:
    t = result["timing"]
    step = max(1, len(result["dense_curves"][0]) // 5)  # about five points per curve, the last epoch included
    curves = "; ".join(" → ".join(f"{100 * v:.1f}" for v in c[step - 1::step]) for c in result["dense_curves"])
    return (f"Time per seed {', '.join(f'{m:.0f}' for m in t['seed_minutes'])} min (2 shared cores, load average "
            f"{', '.join(f'{v:.1f}' for v in t['load_average_at_save'])} at save); one dense epoch "
            f"{', '.join(f'{s:.0f}' for s in t['dense_seconds_per_epoch'])} s, one fine-tune epoch of a pruned model "
            f"{', '.join(f'{s:.0f}' for s in t['tp_finetune_seconds_per_epoch'])} s. Dense validation "
            f"{LABELS.get(result['metric'], result['metric'])} every {step} epochs, per seed: {curves}.")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--task", default="segmentation", choices=sorted(SETUPS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--budget", help="default: the task's (segmentation latency<=50%%)")
    p.add_argument("--limit", type=int, default=2000, help="train+val canvases")
    p.add_argument("--test-limit", type=int, default=1000, help="test canvases")
    p.add_argument("--width", type=int, default=16, help="the dense U-Net's base width (w, 2w, 4w)")
    p.add_argument("--dense-epochs", type=int, default=20)
    p.add_argument("--epochs", type=int, default=3, help="fine-tune epochs (ours and Torch-Pruning alike)")
    p.add_argument("--optimizer", default="adam")
    p.add_argument("--lr", type=float, default=3e-3, help="dense learning rate (fine-tune: a fifth of it)")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--criteria", default="magnitude,product")
    p.add_argument("--strategies", default="balanced,late_heavy")
    p.add_argument("--tp", default="magnitude_uniform,magnitude_global,taylor_uniform,taylor_global",
                   help="Torch-Pruning variants: importance_scope, comma-separated")
    p.add_argument("--round-to", type=int, default=8, help="kept widths are multiples of it (ours and Torch-Pruning)")
    p.add_argument("--name", help="results/NAME_sK.json, NAME.json and sections/NAME.md (default: tasks_TASK)")
    p.add_argument("--collect", action="store_true", help="combine the seeds' result files")
    p.add_argument("--render", action="store_true", help="rewrite the section from the collected results")
    args = p.parse_args()
    if args.collect:
        return collect(args.task, args.name)
    if args.render:
        name = name_of(args.task, args.name)
        write_text(SECTIONS / f"{name}.md", render(json.loads((RESULTS / f"{name}.json").read_text())) + "\n")
        return None
    return run_seed(args)


if __name__ == "__main__":
    main()
