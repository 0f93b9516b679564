"""Structured Mix-and-Match vs Torch-Pruning's BasePruner at the same measured ONNX Runtime latency (MNIST).

    python benchmarks/structured.py --model resnet20 [--budget latency<=50%] [--limit 6000] [--epochs 2]
    python benchmarks/structured.py --model vgg16 --arg width_mult=0.5
    python benchmarks/structured.py --model resnet20 --seed 1       # one result file per seed (..._s1.json)
    python benchmarks/structured.py --model resnet20 --collect       # the seeds combined (..._seeds.json)
    python benchmarks/structured.py --curve NAME_A,NAME_B --name CURVE  # collected budgets as one curve + plot

Kept widths are multiples of this CPU's channel block by default (``--round-to auto``, ours and Torch-Pruning
alike). ResNet-20 at 28 px cannot reach 2x that way (its first stage is one block wide): ``--round-to 1``.

One trained model (dense training by the script on a stratified MNIST subset), then:

* ours: ``edgeprune.prune(..., method="mix_and_match", granularity="channel", budget=BUDGET)``: every
  strategy calibrated by bisection to the latency budget measured in ONNX Runtime, criteria × strategies
  fine-tuned with KD from the dense model; the best by validation is "ours (chosen)".
* Torch-Pruning ``BasePruner`` with GroupMagnitudeImportance and GroupTaylorImportance, uniform (per-layer)
  and global ratio, classifier ignored, its one pruning ratio bisected on the same measured latency (a
  relative budget timed side by side with the dense model, as ours); the
  same fine-tune recipe (epochs, optimiser, KD) through ``edgeprune.train.fit``.

Finally every model's ONNX Runtime latency (1 thread, batch 1 and 32) is measured again side by side in
interleaved rounds (medians), so the speed-ups are ratios from one run. Test accuracy is measured once per
final model; selection uses validation only.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy
import torch
import torch_pruning as tp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import edgeprune  # noqa: E402
from common import RESULTS, ROOT, SECTIONS, provenance, save, shared_data_dir  # noqa: E402
from edgeprune import data as data_lib  # noqa: E402
from edgeprune import roles, tasks  # noqa: E402
from edgeprune.export.et_latency import compare  # noqa: E402
from edgeprune.export.onnx import export_onnx  # noqa: E402
from edgeprune.export.ort_latency import channel_block, ort_latency, paired_latency  # noqa: E402
from edgeprune.measure import accuracy, macs, param_count  # noqa: E402
from edgeprune.measure.budget import parse  # noqa: E402
from edgeprune.measure.latency import speedup  # noqa: E402
from edgeprune.methods.base import get_method  # noqa: E402
from edgeprune.methods.dense import train_dense  # noqa: E402
from edgeprune.report.stats import t_interval  # noqa: E402
from edgeprune.runs.inputs import train_config  # noqa: E402
from edgeprune.scores import calibration_batches  # noqa: E402
from edgeprune.select.meter import CONFIRM_FACTOR, CONFIRM_TIMINGS  # noqa: E402
from edgeprune.train import default_config, fit  # noqa: E402
from edgeprune.utils.io import write_json, write_text  # noqa: E402

CONFIRM_RUNS = 100  # timing rounds of the second timing before Torch-Pruning's largest ratio is declared over budget
TP_MAX_RATIO = 0.85  # above this, groups of 8 channels would lose all and Torch-Pruning skips them
KEPT = ROOT / "out"  # the final models' ONNX files, one folder per run (not committed)


def onnx_latency(model, shape, batch: int, runs: int = 20) -> float:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.onnx"
        export_onnx(model, path, input_shape=shape)
        return ort_latency(path, batch_size=batch, runs=runs, threads=1)["median_ms"]


def tp_prune(dense, example, importance: str, global_pruning: bool, ratio: float, batches=None, round_to=None, task=None,
             layer_cap: float = 0.95):
    """Torch-Pruning's BasePruner on a copy of ``dense``; the task's output layers (the roles table's "classifier"
    role: every output head) are kept whole and its training loss drives the Taylor importance. ``layer_cap``: the
    most any one layer may lose (Torch-Pruning's max_pruning_ratio). Its dependency graph is traced on what a
    runtime runs (the task's deployable part: a detector's backbone and heads, before box decoding and NMS), which
    shares its modules with the copy: pruned in place, the whole copy is the pruned model."""
    task = task or tasks.current()
    model = copy.deepcopy(dense).eval()
    imp = tp.importance.GroupMagnitudeImportance(p=2) if importance == "magnitude" else tp.importance.GroupTaylorImportance()
    with tasks.using(task):
        head_names = {e.module_name for e in roles.classify(model, example).by_role("classifier")}
    outputs = [m for n, m in model.named_modules() if n in head_names]
    # attention with a fused qkv (the zoo ViT): Torch-Pruning's ViT recipe, head dims pruned alike in every head
    heads = {m.qkv: m.num_heads for m in model.modules() if isinstance(getattr(m, "qkv", None), torch.nn.Linear)
             and isinstance(getattr(m, "num_heads", None), int)}
    pruner = tp.pruner.BasePruner(task.deployable(model), example, importance=imp, pruning_ratio=ratio,
                                  global_pruning=global_pruning, ignored_layers=outputs, max_pruning_ratio=layer_cap,
                                  round_to=round_to, num_heads=heads, prune_head_dims=True, prune_num_heads=False)
    if importance == "taylor":
        model.zero_grad()
        for x, y in batches:
            task.train_loss(model, x, y)[0].backward()
    pruner.step()
    model.zero_grad(set_to_none=True)
    return model


def latency_fits(dense, shape, budget, limit_ms: float):
    """Does a model fit the budget, measured as ours measures it: a relative budget side by side with the
    dense model (``paired_latency``), an absolute one as is."""
    folder = tempfile.TemporaryDirectory()
    dense_path = Path(folder.name) / "dense.onnx"
    export_onnx(dense, dense_path, input_shape=shape)

    def fits(model, runs: int = 20, confirm: bool = False) -> bool:
        """``confirm``: as ours confirms its choice (Meter.value(confirm=True)): every one of CONFIRM_TIMINGS timings
        of CONFIRM_FACTOR times the runs fits."""
        if confirm:
            return all(fits(model, runs * CONFIRM_FACTOR) for _ in range(CONFIRM_TIMINGS))
        if not budget.relative:
            return onnx_latency(model, shape, budget.batch, runs) <= limit_ms
        with tempfile.TemporaryDirectory() as work:
            path = Path(work) / "m.onnx"
            export_onnx(model, path, input_shape=shape)
            timed = paired_latency(dense_path, path, budget.batch, runs=runs)
        return 1.0 / timed["ratio"] <= float(budget)

    fits.folder = folder  # the dense export lives as long as the function
    return fits


def calibrate_tp(dense, example, importance, global_pruning, fits, batches, steps=6, round_to=None, task=None,
                 max_ratio=TP_MAX_RATIO, layer_cap=0.95):
    """The smallest pruning ratio in [0, max_ratio] whose measured latency fits (bisection, like ours). The largest
    ratio is declared over the budget only after a second, longer timing agrees: a single short timing under load
    once refused a Torch-Pruning model that ran 6.3x faster than the dense one for a 4x budget, which left it at
    the largest ratio instead of the smallest that fits. A ratio that fits is confirmed as ours confirms its choice
    (longer timings, every one fitting) before the bisection keeps it: a single timing under load once let in a
    model that ran 3.3x faster for a 4x budget, and moving up halfway to the largest ratio after a failed
    confirmation overshot to 8x."""
    lo, hi = 0.0, max_ratio
    top = tp_prune(dense, example, importance, global_pruning, hi, batches, round_to, task, layer_cap)
    if not fits(top) and not fits(top, runs=CONFIRM_RUNS):
        return top, hi, False
    best = top
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        model = tp_prune(dense, example, importance, global_pruning, mid, batches, round_to, task, layer_cap)
        if fits(model) and fits(model, confirm=True):  # accepted only as ours accepts its choice
            hi, best = mid, model
        else:
            lo = mid
    return best, hi, True


def export_all(named: dict, folder: Path, shape) -> dict:
    """Every model's ONNX file in ``folder`` (kept, so ``--remeasure`` can time them again later)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for i, (name, model) in enumerate(named.items()):
        paths[name] = folder / f"{i}.onnx"
        export_onnx(model, paths[name], input_shape=shape)
    return paths


def side_by_side(paths: dict, rounds: int = 20, runs: int = 1) -> dict:
    """ORT latency (batch 1 and 32, one thread) of every ONNX file, all timed in interleaved rounds as calibrations
    time a candidate beside the input model (each file warm in a block of at least 10 ms per round:
    ``et_latency.compare``): the median of the round medians, and the speed-up over the first (the dense model) as
    the ratio of the fastest rounds (``measure.latency.speedup``), the estimate every budget was calibrated with."""
    device = {n: {"onnx_bytes": Path(p).stat().st_size} for n, p in paths.items()}
    base = next(iter(paths))
    for b in (1, 32):
        timed = compare(paths, b, rounds=rounds, runs=runs, threads=1)
        for name, t in timed.items():
            device[name][f"ms_b{b}"] = t["median_ms"]
            device[name][f"speedup_b{b}"] = speedup(timed[base]["rounds_ms"], t["rounds_ms"])
    return device


def per_mac(result: dict) -> float:
    chosen = next(c for c in result["ours"]["candidates"] if c["id"] == result["ours"]["chosen"])
    return result["side_by_side"]["ours (chosen)"]["speedup_b1"] / (result["dense"]["macs"] / chosen["macs"])


def remeasure(name: str, rounds: int) -> None:
    """Time a finished run's kept ONNX files again (on a quiet machine), replacing its latencies; the run's own
    provenance stays, the re-measurement's is stored beside it."""
    path = RESULTS / f"{name}.json"
    if not path.exists():
        sys.exit(f"--remeasure: no result file results/{name}.json")
    result = json.loads(path.read_text())
    files = {label: KEPT / name / f for label, f in result.get("onnx_files", {}).items()}
    missing = [str(f) for f in files.values() if not f.exists()] or ([] if files else ["(none recorded)"])
    if missing:
        sys.exit(f"--remeasure: {name} has no kept ONNX files to time: {', '.join(missing)}")
    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]
    result["side_by_side"] = side_by_side(files, rounds=rounds)
    result["speedup_per_mac_saved_chosen"] = per_mac(result)
    info = provenance()
    result["remeasured"] = {"command": info["command"], "git_revision": info["git_revision"], "date": info["date"],
                            "rounds": rounds, "load_average": [load_before, os.getloadavg()[0]]}
    write_json(path, result)
    write_text(SECTIONS / f"{name}.md", render(result) + "\n")
    print(render(result))


def collect(name: str) -> None:
    """Combine the per-seed result files of one setting: mean test accuracy and speed-ups per method, and ours
    minus each Torch-Pruning variant as a paired difference over seeds (same dense model and data per seed) with
    its 95 % t-interval."""
    runs = [json.loads(p.read_text()) for p in [RESULTS / f"{name}.json", *sorted(RESULTS.glob(f"{name}_s[0-9]*.json"))]
            if p.exists()]
    if len(runs) < 2:
        sys.exit(f"--collect needs at least two seeds of {name}, found {len(runs)}")
    def setting(run):  # (files written before --round-to existed ran with 1)
        return {k: v for k, v in {"round_to": 1, **run["settings"]}.items() if k not in ("seeds", "note")}
    same = setting(runs[0])
    for run in runs[1:]:
        other = setting(run)
        if other != same:
            sys.exit(f"--collect: the seeds of {name} ran with different settings: {same} vs {other}")
    seeds = [run["settings"]["seeds"][0] for run in runs]
    methods = ["dense", "ours (chosen)", *runs[0]["torch_pruning"]]

    def strategy_of(candidate_id: str) -> str:  # mam-<criterion>-<strategy>[-dK]-b<budget>-s<seed>
        return candidate_id.split("-")[2]

    # each of our strategies by itself: its candidate of best validation (over criteria) per seed
    strategies = sorted({strategy_of(c["id"]) for run in runs for c in run["ours"]["candidates"]})
    ours_rows = [f"ours: {s} (best criterion)" for s in strategies] if len(strategies) > 1 else []
    methods[2:2] = ours_rows

    def candidate(run, method):
        if method == "ours (chosen)":
            return next(c for c in run["ours"]["candidates"] if c["id"] == run["ours"]["chosen"])
        name = method[len("ours: "):].split(" ")[0]
        return max((c for c in run["ours"]["candidates"] if strategy_of(c["id"]) == name), key=lambda c: c["val_acc"])

    def value(run, method, key="test_acc"):
        if method == "dense":
            return run["dense"][key]
        if method.startswith("ours"):
            return candidate(run, method)[key]
        return run["torch_pruning"][method][key]

    def timed(run, method, key):  # side by side where it was measured so; else the candidate's own paired timing
        if method in run["side_by_side"]:
            return run["side_by_side"][method][key]
        own = candidate(run, method)
        return {"speedup_b1": own["speedup_b1"], "speedup_b32": own["speedup_b32"], "onnx_bytes": own["onnx_bytes"]}[key]


    table = {}
    for method in methods:
        accs = [value(run, method) for run in runs]
        row = {"test_acc": accs, "mean": statistics.fmean(accs), "sd": statistics.stdev(accs),
               "speedup_b1": statistics.fmean(timed(run, method, "speedup_b1") for run in runs),
               "speedup_b32": statistics.fmean(timed(run, method, "speedup_b32") for run in runs),
               "onnx_kb": statistics.fmean(timed(run, method, "onnx_bytes") for run in runs) / 1e3,
               "mac_ratio": statistics.fmean(run["dense"]["macs"] / value(run, method, "macs") for run in runs)}
        if not method.startswith(("dense", "ours")):
            row["over_budget_seeds"] = sum(not run["torch_pruning"][method]["budget_met"] for run in runs)
            diff, lo, hi = t_interval([value(run, "ours (chosen)") - value(run, method) for run in runs])
            row["ours_minus"] = {"mean": diff, "lo": lo, "hi": hi}
        table[method] = row
    def tp_best(run) -> str:  # Torch-Pruning's variant of best validation among those that met the budget
        met = {n: b for n, b in run["torch_pruning"].items() if b["budget_met"]} or run["torch_pruning"]
        return max(met, key=lambda n: met[n]["val_acc"])

    versus = {}
    for method in ["ours (chosen)", *ours_rows]:
        diff, lo, hi = t_interval([value(run, method) - value(run, tp_best(run)) for run in runs])
        versus[method] = {"mean": diff, "lo": lo, "hi": hi}
    drop = t_interval([value(run, "dense") - value(run, "ours (chosen)") for run in runs])
    # batch-1 latency against MACs over every model of every seed: the intercept is the per-inference cost
    # no channel removal touches, which caps the speed-up (and the speed-up per MAC saved)
    points = [(m, run["side_by_side"][n]["ms_b1"]) for run in runs for n, m in [
        ("dense", run["dense"]["macs"]), ("ours (chosen)", next(c["macs"] for c in run["ours"]["candidates"]
                                                                  if c["id"] == run["ours"]["chosen"])),
        *((n, b["macs"]) for n, b in run["torch_pruning"].items())]]
    slope, fixed = numpy.polyfit([m / 1e6 for m, _ in points], [ms for _, ms in points], 1)
    dense_ms = statistics.fmean(run["side_by_side"]["dense"]["ms_b1"] for run in runs)
    per_mac = [run["speedup_per_mac_saved_chosen"] for run in runs]
    # the load while the latencies were taken: at the re-measurement if there was one, else at save
    loads = [run["remeasured"]["load_average"][1] if "remeasured" in run else run["load_average_at_save"][0]
             for run in runs]
    remeasured = sum("remeasured" in run for run in runs)
    s0 = runs[0]["settings"]
    result = {"name": name, "seeds": seeds, "settings": same, "revisions": [run["git_revision"] for run in runs],
              "methods": table, "ours_drop_vs_dense": dict(zip(("mean", "lo", "hi"), drop)),
              "ours_minus_tp_best": versus, "tp_best_per_seed": [tp_best(run) for run in runs],
              "speedup_per_mac_saved_chosen": per_mac,
              "latency_fit_b1": {"fixed_ms": fixed, "ms_per_million_macs": slope, "models": len(points),
                                 "dense_ms": dense_ms}}
    lines = [f"### Structured pruning at a measured latency budget, {len(runs)} seeds: {runs[0]['model']} "
             f"{runs[0]['model_args'] or ''} on MNIST, {s0['dense_epochs']} dense + {s0['finetune_epochs']} fine-tune epochs"
             f"{ours_extras(s0)}",
             "",
             f"Budget `{runs[0]['budget']}` (ONNX Runtime, 1 thread), seeds {', '.join(map(str, seeds))} (each seed: its own "
             f"MNIST subset of {s0['mnist_train_val_images']:,} train+val images, dense model and fine-tunes); dense "
             f"training {s0['dense_epochs']} epochs, fine-tune {s0['finetune_epochs']} epoch(s) with KD for every pruned "
             "model. Test accuracy on the full 10,000-image MNIST test set, mean ± sd over seeds; speed-ups are "
             "means of the per-seed side-by-side ratios. \"ours − TP\": the paired difference over seeds with its 95 % "
             "t-interval.",
             "",
             "| model | test % (mean ± sd) | per seed | MACs ÷ | × b1 | × b32 | ONNX kB | ours − TP (pp, 95 % CI) |",
             "|---|---:|---|---:|---:|---:|---:|---|"]
    for method, row in table.items():
        d = row.get("ours_minus")
        ci = f"{100 * d['mean']:+.2f} [{100 * d['lo']:+.2f}, {100 * d['hi']:+.2f}]" if d else ""
        over = row.get("over_budget_seeds")
        label = f"{method} (over budget on {over} of {len(runs)} seeds at ratio {TP_MAX_RATIO}, the largest tried)" if over else method
        lines.append(f"| {label} | {100 * row['mean']:.2f} ± {100 * row['sd']:.2f} | "
                     f"{' / '.join(f'{100 * a:.2f}' for a in row['test_acc'])} | {row['mac_ratio']:.2f} | "
                     f"{row['speedup_b1']:.2f} | "
                     f"{row['speedup_b32']:.2f} | {row['onnx_kb']:,.1f} | {ci} |")
    if ours_rows:
        lines += ["", "Rows \"ours: STRATEGY\" are each strategy's candidate of best validation (over criteria) per seed; "
                  "their speed-ups and bytes are the candidate's own, measured beside the input model during the run, "
                  "not in the side-by-side rounds at the end."]
    lines += ["", "Against Torch-Pruning's best variant of each seed (best validation among those meeting the budget: "
              f"{', '.join(tp_best(run) for run in runs)}), paired over seeds:", "",
              "| ours | minus TP's best (pp, 95 % CI) |", "|---|---|"]
    lines += [f"| {m} | {100 * v['mean']:+.2f} [{100 * v['lo']:+.2f}, {100 * v['hi']:+.2f}] |" for m, v in versus.items()]
    if "drop_blocks" in s0:
        lines += ["", *depth_table(runs)]
    lines += ["", f"Ours vs dense: {100 * drop[0]:.2f} pp drop [95 % CI {100 * drop[1]:.2f}, {100 * drop[2]:.2f}]. "
              f"Speed-up per MAC saved (ours, chosen, batch 1): {' / '.join(f'{v:.2f}' for v in per_mac)}. "
              f"Batch-1 latency against MACs over all {len(points)} models: {fixed:.3f} ms + {slope:.4f} ms per million "
              f"MACs (least squares); " + (
                  f"the fixed part is {100 * fixed / dense_ms:.0f} % of the dense model's {dense_ms:.3f} ms, so no "
                  f"channel removal can make this model more than {dense_ms / fixed:.1f}x faster at batch 1, and "
                  "speed-up per MAC saved falls as MACs go. " if fixed > 0 else
                  "no fixed part: latency grew faster than MACs, and a speed-up per MAC above 1 means the larger "
                  "models were slowed more by other jobs on the machine (load average "
                  f"{min(loads):.1f}–{max(loads):.1f}), so the batch-1 speed-ups overstate. ") +
              (f"Latencies of {remeasured} of {len(runs)} seeds re-measured later on their kept ONNX files "
               f"(`--remeasure`, load average {min(loads):.1f}–{max(loads):.1f}). " if remeasured else "") +
              f"Per-seed runs: `results/{name}.json`, `results/{name}_s*.json` (revisions "
              f"{', '.join(sorted({r[:7] for r in result['revisions']}))})."]
    save(f"{name}_seeds", result, "\n".join(lines))
    print("\n".join(lines))


def curve(names: list[str], name: str) -> None:
    """Several collected budgets of one model (same data, dense models and seeds) as one accuracy-latency curve:
    a table of ours minus each Torch-Pruning variant at every budget and a plot, ``plots/NAME.png``. Settings
    of one budget that ran other Torch-Pruning variants add rows; ours is plotted from the first of them."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = []
    for n in names:
        path = RESULTS / f"{n}_seeds.json"
        if not path.exists():
            sys.exit(f"--curve: no collected results/{n}_seeds.json (run --collect first)")
        points.append((json.loads((RESULTS / f"{n}.json").read_text())["budget"], n, json.loads(path.read_text())))
    dense = [p["methods"]["dense"]["test_acc"] for _, _, p in points]
    if any(d != dense[0] for d in dense) or len({tuple(p["seeds"]) for _, _, p in points}) > 1:
        sys.exit(f"--curve: {', '.join(names)} do not share their seeds' dense models")
    points.sort(key=lambda p: -float(parse(p[0])))  # loosest budget first
    lines = [f"### Ours vs Torch-Pruning along the latency curve: {name}", "",
             f"Every budget's {len(dense[0])} seeds share one dense model per seed ({100 * statistics.fmean(dense[0]):.2f} % "
             "test); each row is one collected setting (tables above). \"ours − TP\": paired difference over seeds, "
             "95 % t-interval; speed-ups are means of side-by-side ratios.", "",
             "| budget | ours % | × b1 (ours) | TP variant | TP % | × b1 (TP) | ours − TP (pp, 95 % CI) |",
             "|---|---:|---:|---|---:|---:|---|"]
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=120)
    ax.axhline(100 * statistics.fmean(dense[0]), ls="--", color="green", label="dense")
    first = {}  # one budget may have several settings (other Torch-Pruning variants): ours from the first
    for budget, _, p in points:
        first.setdefault(budget, p)
    ours = [p["methods"]["ours (chosen)"] for p in first.values()]
    ax.errorbar([o["speedup_b1"] for o in ours], [100 * o["mean"] for o in ours], [100 * o["sd"] for o in ours],
                marker="D", color="black", capsize=3, label="ours (chosen)")
    variants = sorted({m for _, _, p in points for m in p["methods"] if m.startswith("TP ")})
    for variant, marker in zip(variants, "osv^<>"):
        rows = [(b, p["methods"][variant]) for b, _, p in points  # over-budget models are in the table only
                if variant in p["methods"] and not p["methods"][variant].get("over_budget_seeds")]
        if rows:
            ax.errorbar([r["speedup_b1"] for _, r in rows], [100 * r["mean"] for _, r in rows],
                        [100 * r["sd"] for _, r in rows], marker=marker, ls=":", capsize=3, label=variant)
    for budget, _, p in points:
        o = p["methods"]["ours (chosen)"]
        for variant in variants:
            if variant in p["methods"]:
                t, d = p["methods"][variant], p["methods"][variant]["ours_minus"]
                over = f" (over budget on {t['over_budget_seeds']} of {len(p['seeds'])} seeds)" if t.get("over_budget_seeds") else ""
                lines.append(f"| `{budget}` | {100 * o['mean']:.2f} | {o['speedup_b1']:.2f} | {variant}{over} | "
                             f"{100 * t['mean']:.2f} | {t['speedup_b1']:.2f} | {100 * d['mean']:+.2f} "
                             f"[{100 * d['lo']:+.2f}, {100 * d['hi']:+.2f}] |")
    ax.set_xlabel("ONNX Runtime speed-up over dense, batch 1 (1 thread)")
    ax.set_ylabel("test top-1 (%), mean ± sd over seeds")
    ax.set_title(name)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    (ROOT / "plots").mkdir(exist_ok=True)
    fig.savefig(ROOT / "plots" / f"{name}.png")
    plt.close(fig)
    lines += ["", f"![{name}](plots/{name}.png)", "", "Settings: " + "; ".join(f"`{b}`: `{n}`" for b, n, _ in points) + "."]
    save(name, {"settings": names, "budgets": [b for b, _, _ in points], "rows": lines[6:-4]}, "\n".join(lines))
    print("\n".join(lines))


def depth_table(runs: list) -> list[str]:
    """Our candidates by the number of residual blocks they lost: accuracy, MACs and the speed-ups measured
    during the run (each candidate on its own, not side by side), and how often validation chose them."""
    by_depth: dict[int, list] = {}
    for run in runs:
        for c in run["ours"]["candidates"]:
            if c.get("test_acc") is not None:
                by_depth.setdefault(len(c.get("dropped_blocks") or []), []).append((run, c))
    lines = ["Our candidates by blocks removed (means over seeds; speed-ups as measured during the run, each "
             "candidate alone):", "",
             "| blocks removed | candidates | val % | test % | MACs ÷ | × b1 | × b32 | speed-up per MAC (b1) | chosen |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for depth, items in sorted(by_depth.items()):
        def mean(f, items=items):
            return statistics.fmean(f(run, c) for run, c in items)
        mac_ratio = mean(lambda run, c: run["dense"]["macs"] / c["macs"])
        chosen = sum(run["ours"]["chosen"] == c["id"] for run, c in items)
        lines.append(f"| {depth} | {len(items)} | {100 * mean(lambda r, c: c['val_acc']):.2f} | "
                     f"{100 * mean(lambda r, c: c['test_acc']):.2f} | {mac_ratio:.2f} | "
                     f"{mean(lambda r, c: c['speedup_b1']):.2f} | {mean(lambda r, c: c['speedup_b32']):.2f} | "
                     f"{mean(lambda r, c: c['speedup_b1'] * c['macs'] / r['dense']['macs']):.2f} | {chosen} |")
    return lines


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="resnet20")
    p.add_argument("--arg", action="append", default=[], help="model argument key=value")
    p.add_argument("--budget", default="latency<=50%")
    p.add_argument("--limit", type=int, default=6000, help="MNIST train+val images")
    p.add_argument("--dense-epochs", type=int, default=2)
    p.add_argument("--epochs", type=int, default=1, help="fine-tune epochs (ours and Torch-Pruning alike)")
    p.add_argument("--criteria", default="magnitude,product")
    p.add_argument("--strategies", default="balanced,late_heavy,early_heavy,param_prop")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tp", default="magnitude_uniform,magnitude_global,taylor_uniform,taylor_global",
                   help="Torch-Pruning variants: importance_scope, comma-separated")
    p.add_argument("--drop-blocks", default="0",
                   help="ours: numbers of residual blocks removed before channels, comma-separated (each its own candidates)")
    p.add_argument("--round-to", default="auto",
                   help="kept widths are multiples of it (ours and Torch-Pruning); auto: this CPU's channel_block()")
    p.add_argument("--tp-round-to", help="Torch-Pruning's kept-width multiple, if not --round-to (e.g. 1 where aligned "
                   "widths cannot reach the budget without removing blocks, which Torch-Pruning does not)")
    p.add_argument("--reconstruct", action="store_true",
                   help="ours re-fits each thinned layer to the input model's outputs before fine-tuning (reconstruct=True)")
    p.add_argument("--name", help="results/NAME.json (default: structured_MODEL[_ARGS][_rN]; _sK added for seed K)")
    p.add_argument("--render", action="store_true", help="rewrite sections/NAME.md from results/NAME.json")
    p.add_argument("--collect", action="store_true", help="combine the seeds' result files of this setting")
    p.add_argument("--curve", help="NAME1,NAME2,...: collected budgets of one model as one curve, saved as --name")
    p.add_argument("--remeasure", action="store_true",
                   help="time the kept ONNX files of results/NAME.json (one seed: add _sK) again, side by side")
    p.add_argument("--rounds", type=int, default=20, help="interleaved timing rounds of --remeasure")
    args = p.parse_args()
    auto = args.round_to == "auto"  # ours: edgeprune's own "auto", finer where a depth cannot reach the budget
    args.round_to = channel_block() if auto else int(args.round_to)
    tp_round_to = args.round_to if args.tp_round_to is None else int(args.tp_round_to)
    kwargs = {k: float(v) if "." in v else int(v) for k, v in (a.split("=", 1) for a in args.arg)}
    name = f"structured_{args.model}" + ("_" + "_".join(f"{k}{v}" for k, v in kwargs.items()) if kwargs else "")
    name += f"_r{args.round_to}" if args.round_to > 1 else ""
    name = args.name or name
    if args.collect:
        return collect(name)
    if args.curve:
        return curve(args.curve.split(","), name)
    if args.remeasure:
        return remeasure(name + (f"_s{args.seed}" if args.seed else ""), args.rounds)
    if args.render:
        write_text(SECTIONS / f"{name}.md", render(json.loads((RESULTS / f"{name}.json").read_text())) + "\n")
        return None
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    root = shared_data_dir()
    if root is None:
        sys.exit("MNIST not found: set EDGEPRUNE_DATA")
    started = time.perf_counter()
    splits = data_lib.load("mnist", root=root, limit=args.limit, seed=args.seed)
    shape = (1, 28, 28)
    example = torch.zeros(1, *shape)
    with tempfile.TemporaryDirectory() as work:
        dense, _ = train_dense(args.model, splits, default_config(args.model, epochs=args.dense_epochs), Path(work),
                               model_kwargs=kwargs, progress=False)
    dense.eval()
    dense_test = accuracy(dense, splits.test)
    budget = parse(args.budget)
    print(f"dense: test {dense_test:.4f}, {time.perf_counter() - started:.0f}s", flush=True)

    # ours
    t0 = time.perf_counter()
    ours = edgeprune.prune(dense, splits, method="mix_and_match", budget=budget, finetune=args.epochs, seed=args.seed,
                           granularity="channel", criteria=args.criteria.split(","),
                           strategies=args.strategies.split(","), calib_batches=4, round_to="auto" if auto else args.round_to,
                           drop_blocks=[int(v) for v in args.drop_blocks.split(",")], reconstruct=args.reconstruct)
    ours_seconds = time.perf_counter() - t0
    limit_ms = next(r["decided"]["limit"] for r in ours.candidates if r.get("status") == "ok")
    print(f"ours: {len(ours.candidates)} candidates, {ours_seconds:.0f}s, limit {limit_ms:.3f} ms", flush=True)

    # Torch-Pruning, same latency, same fine-tune recipe
    recipe = train_config(get_method("mix_and_match", granularity="channel"), dense, args.epochs)
    batches = calibration_batches(splits.train, 4, 32)
    baselines, finals = {}, {"dense": dense, "ours (chosen)": ours.model}
    fits = latency_fits(dense, shape, budget, limit_ms)
    for importance, scope in (v.split("_") for v in args.tp.split(",")):
        global_pruning = scope == "global"
        label = f"TP {importance} {scope}"
        t0 = time.perf_counter()
        model, ratio, met = calibrate_tp(dense, example, importance, global_pruning, fits, batches,
                                         round_to=tp_round_to if tp_round_to > 1 else None)
        pruned_val = accuracy(model, splits.val)
        fit(model, splits.train, splits.val, recipe.replace(seed=args.seed), teacher=dense, progress=False)
        baselines[label] = {"ratio": ratio, "budget_met": met, "val_acc_pruned": pruned_val,
                           "val_acc": accuracy(model, splits.val), "test_acc": accuracy(model, splits.test),
                           "params": param_count(model), "macs": macs(model, example).dense,
                           "seconds": time.perf_counter() - t0}
        finals[label] = model
        print(label, baselines[label], flush=True)

    name += f"_s{args.seed}" if args.seed else ""  # seed 0 keeps the first file's name
    paths = export_all(finals, KEPT / name, shape)
    device = side_by_side(paths)
    dense_macs = macs(dense, example).dense
    result = {
        "model": args.model, "model_args": kwargs, "budget": str(budget), "limit_ms": limit_ms,
        "settings": {"mnist_train_val_images": args.limit, "dense_epochs": args.dense_epochs,
                     "finetune_epochs": args.epochs, "seeds": [args.seed], "criteria": args.criteria,
                     "strategies": args.strategies, "threads": 1, "round_to": args.round_to, "tp": args.tp,
                     **({"tp_round_to": tp_round_to} if tp_round_to != args.round_to else {}),
                     **({"ours_round_to": "auto"} if auto else {}),
                     **({"drop_blocks": args.drop_blocks} if args.drop_blocks != "0" else {}),
                     **({"reconstruct": True} if args.reconstruct else {}),
                     "note": "one seed per invocation; --collect combines the seeds"},
        "dense": {"test_acc": dense_test, "val_acc": accuracy(dense, splits.val), "params": param_count(dense),
                  "macs": dense_macs},
        "ours": {"chosen": ours.record["id"], "seconds": ours_seconds, "candidates": [
            {k: r.get(k) for k in ("id", "val_acc_pruned", "val_acc", "test_acc", "params", "macs", "budget_achieved",
                                   "ort_latency_ms_b1", "ort_latency_ms_b32", "speedup_b1", "speedup_b32",
                                   "onnx_bytes", "onnx_bytes_int8")} | {
                "dropped_blocks": r.get("decided", {}).get("dropped_blocks", [])} for r in ours.candidates]},
        "torch_pruning": baselines,
        "side_by_side": device,
        "onnx_files": {label: path.name for label, path in paths.items()},
        "seconds": time.perf_counter() - started,
    }
    result["speedup_per_mac_saved_chosen"] = per_mac(result)
    save(name, result, render(result))
    print(render(result))


def ours_extras(settings: dict) -> str:
    """What ours did beyond thinning channels, for a section's title."""
    blocks = f", ours also removes {settings['drop_blocks']} residual blocks" if "drop_blocks" in settings else ""
    return blocks + (", ours re-fits each thinned layer by least squares" if settings.get("reconstruct") else "")


def render(result: dict) -> str:
    """The README section of one seed's run, from its result JSON."""
    st, dense, device = result["settings"], result["dense"], result["side_by_side"]
    chosen = next(c for c in result["ours"]["candidates"] if c["id"] == result["ours"]["chosen"])
    rows = [("dense", dense), ("ours (chosen)", chosen)] + [
        (n if b["budget_met"] else f"{n} (over budget at ratio {b['ratio']:g}, the largest tried)", b)
        for n, b in result["torch_pruning"].items()]
    lines = [f"### Structured pruning at a measured latency budget: {result['model']} {result['model_args'] or ''} "
             f"on MNIST, seed {st['seeds'][0]}, {st['dense_epochs']} dense + {st['finetune_epochs']} fine-tune epochs"
             f"{'' if st.get('round_to', 1) == 1 else ', widths multiples of ' + str(st['round_to'])}"
             f"{' (ours finer where a number of removed blocks cannot reach the budget)' if 'ours_round_to' in st else ''}"
             f"{', Torch-Pruning widths multiples of ' + str(st['tp_round_to']) if 'tp_round_to' in st else ''}"
             f"{ours_extras(st)}",
             "",
             f"Budget `{result['budget']}` (ONNX Runtime, 1 thread: {result['limit_ms']:.3f} ms); MNIST subset of "
             f"{st['mnist_train_val_images']:,} train+val images, dense training {st['dense_epochs']} epochs, fine-tune "
             f"{st['finetune_epochs']} epoch(s) with KD for every pruned model, seed {st['seeds'][0]}. Ours: criteria "
             f"{st['criteria']} × strategies {st['strategies']}, chosen by validation. Torch-Pruning: BasePruner, ratio "
             "bisected to the same latency. Latency re-measured side by side (interleaved rounds, medians); test "
             "accuracy on the full 10,000-image MNIST test set.",
             "",
             "| model | val % | test % | params | MACs | ms b1 | × b1 | ms b32 | × b32 | ONNX kB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for label, r in rows:
        d = device[label.split(" (over budget")[0]]
        lines.append(f"| {label} | {100 * r['val_acc']:.2f} | {100 * r['test_acc']:.2f} | {r['params']:,} | "
                     f"{r['macs']:,} | {d['ms_b1']:.3f} | {d['speedup_b1']:.2f} | {d['ms_b32']:.2f} | "
                     f"{d['speedup_b32']:.2f} | {d['onnx_bytes'] / 1e3:,.1f} |")
    again = result.get("remeasured")
    lines += ["", f"Speed-up per MAC saved (ours, chosen, batch 1): {result['speedup_per_mac_saved_chosen']:.2f}. "
              f"Total run time {result['seconds'] / 60:.1f} min." + (
                  f" Latencies re-measured on the kept ONNX files ({again['rounds']} rounds, {again['date'][:10]}, "
                  f"load average {again['load_average'][0]:.1f} before, {again['load_average'][1]:.1f} after)."
                  if again else "")]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
