"""Mix-and-Match vs the best global baseline at matched sparsity, one-shot vs gradual, with intervals.

    python benchmarks/honest_mnist.py --model lenet300 --budget 0.98 --seeds 1 --epochs 20 --schedules oneshot,gradual

One ``edgeprune.sweep`` of mix_and_match per schedule: the criteria × ten strategies calibrated to the
budget, and the global baselines (magnitude, SNIP, GraSP) as candidates of the same sweep — so every
candidate sits at the same sparsity, gets the same fine-tune (epochs, cosine LR, no early stopping, best
validation epoch kept) and the same seeds. Selection on validation (6 000 training images held out), test
accuracy once per final model, on the same 10 000 MNIST test images: every comparison is paired (paired
bootstrap over the images, McNemar's exact p; with several seeds also a t-interval over seeds).
Run one process per schedule to use two cores, or one Mix-and-Match process (``--without-baselines --no-save``)
beside one ``--separate-baselines`` process; the same command again (all candidates done) collects.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import edgeprune  # noqa: E402
from common import RESULTS, save, shared_data_dir  # noqa: E402
from edgeprune import data as data_lib  # noqa: E402
from edgeprune import models as model_lib  # noqa: E402
from edgeprune.report import compare, stats  # noqa: E402
from edgeprune.runs.results import group  # noqa: E402
from edgeprune.train import default_config, fit  # noqa: E402

# ranges wide enough to reach the anchors (as benchmarks/mam_mnist.py); the small classifier may be pruned too
RANGES = {
    "lenet300": {"linear": [0.95, 0.995], "small": [0.5, 0.95], "classifier_small": [0.5, 0.95]},
    "lenet5": {"linear": [0.95, 0.998], "conv": [[1.0, 0.6, 0.95]], "small": [0.3, 0.9], "classifier_small": [0.5, 0.95]},
}


def dense_model(name: str, splits, epochs: int, out: Path, limit: int | None = None, tag: str = ""):
    path = out / f"dense-{name}-{epochs}ep{f'-n{limit}' if limit else ''}{tag}.pt"
    if path.is_file():
        return model_lib.load(path)
    torch.manual_seed(0)
    model = model_lib.create(name, num_classes=10, in_channels=1, image_size=28)
    fit(model, splits.train, splits.val, default_config(name, epochs=epochs), progress=False)
    model_lib.save(model, path)
    return model


def _read(run_dir: Path) -> list[dict]:
    path = run_dir / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def by_label(run_dir: Path):
    """Records of a schedule: the Mix-and-Match sweep's, plus those of baseline sweeps run beside it
    (``--separate-baselines``: one sweep per global method, relabelled as the baseline candidates of the
    Mix-and-Match sweep they stand for: same budget, fine-tune, seeds, dense model and test images)."""
    records = _read(run_dir)
    extras = sorted(run_dir.parent.glob(run_dir.name + "-global-*"))
    if extras:  # the separate sweeps stand for the baselines
        records = [r for r in records if "baseline" not in r.get("setting", {})]
    for extra in extras:
        for r in _read(extra):
            if r["kind"] == "candidate":
                records.append({**r, "method": "mix_and_match", "setting": {"baseline": r["method"]}})
    dense = next(r for r in records if r["kind"] == "dense")
    rows = group(records, dense)
    ids = {r["id"]: r for r in records}
    return dense, rows, {g["label"]: [ids[i] for i in g["ids"]] for g in rows}


def summarize(run_dir: Path, keep: set[str] | None = None) -> dict:
    """Best Mix-and-Match vs best baseline of one schedule; ``keep``: the settings both schedules finished."""
    dense, rows, members = by_label(run_dir)
    if keep is not None:
        rows = [g for g in rows if g["label"] in keep]
    comp = compare.mam_vs_baselines(rows, members)[0]
    d = comp.pop("_d")
    mam = next(g for g in rows if g["label"] == comp["mam"])
    base = next(g for g in rows if g["label"] == comp["baseline"])
    return {
        "dense_test": compare.accuracy_text([dense]), "mam": comp["mam"], "baseline": comp["baseline"],
        "mam_test": comp["mam_test"], "baseline_test": comp["baseline_test"], "mam_minus_baseline": d.as_dict(),
        "verdict": stats.verdict(d, "Mix-and-Match", "the baseline"),
        "mam_vs_dense": compare.difference(members[comp["mam"]], [dense]).as_dict(),
        "baseline_vs_dense": compare.difference(members[comp["baseline"]], [dense]).as_dict(),
        "sparsity": {"mam": mam["removed"], "baseline": base["removed"]},
        "epochs_run": {g["label"]: [m.get("epochs_run") for m in members[g["label"]]] for g in rows},
        "settings": [{"label": g["label"], "val_acc": g["val_acc"], "test": compare.accuracy_text(members[g["label"]]),
                      "removed": g["removed"], "epochs_run": [m.get("epochs_run") for m in members[g["label"]]]}
                     for g in rows],
    }


def across(one: Path, two: Path) -> dict:
    """Paired gradual − oneshot of the same setting (same seeds, same test images)."""
    _, _, a = by_label(two)
    _, _, b = by_label(one)
    out = {}
    for label in sorted(set(a) & set(b)):
        d = compare.difference(a[label], b[label])
        if d is not None:
            out[label] = d.as_dict() | {"verdict": stats.verdict(d, "gradual", "one-shot")}
    return out


def pp(d: dict) -> str:
    return f"{100 * d['diff']:+.2f} [{100 * d['lo']:+.2f}, {100 * d['hi']:+.2f}]"


def section(result: dict) -> str:
    a = result["settings"]
    lines = [f"### Mix-and-Match vs global baselines on MNIST, one-shot vs gradual ({a['model']} at {100 * a['budget']:g} % "
             f"sparsity, {a['seeds']} seed(s))", "",
             (f"Dense model trained {a['dense_epochs']} epochs on a stratified subset of {a['limit']:,} MNIST training "
              "images (train + validation). " if a.get("limit") else "") +
             ("Training images randomly shifted by up to ±2 px (dense training and every fine-tune; validation and "
              "test images as they are). " if a.get("augment") else "") +
             f"One `edgeprune.sweep` per schedule: {a['criteria']} × strategies (duplicates merged) calibrated to the "
             f"budget, plus the global baselines {a['baselines']} in the same sweep; every candidate fine-tuned "
             f"**up to {a['epochs']} epochs** (SGD, cosine from lr {a['lr']:g}, early stopping after {a['patience']} epochs "
             f"without validation gain, best validation epoch kept; gradual: cubic schedule over the first "
             f"{100 * a['gradual_end']:g} % of the steps, selection and early stopping only after it; epochs run: "
             f"{result['epochs_text']}). Best of each kind chosen "
             "on validation; test accuracy on the 10 000 MNIST test images with its 95 % interval; differences paired "
             "on those images (pp, 95 % CI). Settings compared (finished under every schedule): "
             + ", ".join(sorted({lab.split("strategy=")[-1].rstrip(")") if "strategy=" in lab else lab.split(" @")[0]
                                 for lab in result["compared"]})) + ".", "",
             "| schedule | fine-tune | dense test % | best Mix-and-Match (by val) | test % [CI] | best global baseline (by val) "
             "| test % [CI] | MaM − baseline, pp [CI] | MaM − dense, pp [CI] |", "|---|---|---|---|---|---|---|---|---|"]
    for sched, s in result["schedules"].items():
        lines.append(f"| {sched} | {a['epochs']} ep | {s['dense_test']} | {s['mam']} | {s['mam_test']} | {s['baseline']} | "
                     f"{s['baseline_test']} | {pp(s['mam_minus_baseline'])} | {pp(s['mam_vs_dense'])} |")
    lines += [""] + [f"- {sched}: {s['verdict']}." for sched, s in result["schedules"].items()]
    if result.get("gradual_minus_oneshot"):
        lines += ["", "Gradual − one-shot, same setting, paired (pp [95 % CI]):", ""]
        lines += [f"- {label}: {pp(d)}{' (no significant difference)' if not d['significant'] else ''}"
                  for label, d in result["gradual_minus_oneshot"].items()]
    lines += ["", "The older Mix-and-Match tables further down (`mam_mnist_*`) used 4 fine-tune epochs and no intervals; "
              "their \"drop reduction\" is superseded by the paired differences here."]
    if a.get("note"):
        lines += ["", f"_How it ran: {a['note']}_"]
    return "\n".join(lines)


def summary() -> tuple[dict, str]:
    """Every committed ``honest_mnist_*`` result in one table: who wins where, at which fine-tune budget."""
    rows = []
    for path in sorted(RESULTS.glob("honest_mnist_*.json")):
        if path.stem == "honest_mnist_summary":
            continue
        d = json.loads(path.read_text())
        a = d["settings"]
        for sched, v in d["schedules"].items():
            diff = v["mam_minus_baseline"]
            verdict = ("no significant difference" if not diff["significant"]
                       else "Mix-and-Match better" if diff["diff"] > 0 else "baseline better")
            rows.append({"result": path.stem, "revision": d["git_revision"], "model": a["model"],
                         "sparsity": a["budget"], "schedule": sched, "epochs": a["epochs"], "seeds": a["seeds"],
                         "images": a.get("limit") or 60000,
                         "augment": bool(a.get("augment")), "dense": v["dense_test"], "mam": v["mam_test"],
                         "baseline": v["baseline"], "baseline_test": v["baseline_test"],
                         "diff_pp": [round(100 * diff[k], 2) for k in ("diff", "lo", "hi")], "verdict": verdict})
    rows.sort(key=lambda r: (-r["seeds"], -r["epochs"], r["model"]))
    lines = ["### Who wins where: Mix-and-Match vs the best global baseline at matched sparsity (all `honest_mnist` runs)",
             "",
             "One row per committed `honest_mnist_*` result and schedule, longest fine-tune and most seeds first "
             "(3 seeds: the interval is the wider of a paired bootstrap over the 10 000 test images and a t-interval "
             "over seeds; 1 seed: paired bootstrap). MNIST train+val images as stated (10 000 test images always). "
             "The short fine-tunes are kept to show how the verdict changes with the budget.", "",
             "| model | sparsity | schedule | fine-tune | seeds | shifts | train+val images | dense test | Mix-and-Match test | "
             "best global baseline | baseline test | MaM − baseline, pp [95 % CI] | verdict | result |",
             "|---|---:|---|---:|---:|---|---:|---|---|---|---|---|---|---|"]
    for r in rows:
        d, lo, hi = r["diff_pp"]
        lines.append(f"| {r['model']} | {100 * r['sparsity']:g} % | {r['schedule']} | up to {r['epochs']} ep | "
                     f"{r['seeds']} | {'±2 px' if r.get('augment') else 'none'} | {r['images']:,} | {r['dense']} | {r['mam'].replace(' over 3 seeds', '')} | "
                     f"{r['baseline']} | {r['baseline_test'].replace(' over 3 seeds', '')} | {d:+.2f} [{lo:+.2f}, {hi:+.2f}] | "
                     f"{r['verdict']} | `{r['result']}` |")
    converged = [r for r in rows if r["seeds"] >= 3 and r["epochs"] >= 12]
    wins = sum(r["verdict"] == "Mix-and-Match better" for r in converged)
    losses = sum(r["verdict"] == "baseline better" for r in converged)
    def where(verdict):
        found = [f"{r['model']} {r['schedule']} {r['epochs']} ep × {r['seeds']} seed(s)" for r in rows if r["verdict"] == verdict]
        return "; ".join(found) or "nowhere"

    lines += ["", f"With 3 seeds and 12 or more fine-tune epochs ({len(converged)} rows: "
              f"{', '.join(sorted({r['model'] for r in converged}))}), Mix-and-Match is significantly better in {wins}, "
              f"the baseline in {losses}, the rest show no significant difference. Over all rows, Mix-and-Match is "
              f"significantly better in: {where('Mix-and-Match better')}; the baseline in: {where('baseline better')}."]
    return {"rows": rows}, "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="lenet300")
    ap.add_argument("--budget", type=float, default=0.98)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=20, help="fine-tune epochs of every candidate")
    ap.add_argument("--dense-epochs", type=int, default=10)
    ap.add_argument("--lr", type=float, default=0.02, help="fine-tune SGD lr (cosine)")
    ap.add_argument("--patience", type=int, default=3, help="early stopping: epochs without validation gain")
    ap.add_argument("--criteria", default="magnitude")
    ap.add_argument("--strategies", default="all")
    ap.add_argument("--baselines", default="magnitude,snip,grasp")
    ap.add_argument("--schedules", default="oneshot,gradual")
    ap.add_argument("--gradual-end", type=float, default=0.6)
    ap.add_argument("--augment", action="store_true",
                    help="random ±2 px shifts of the training images (dense training and every fine-tune alike)")
    ap.add_argument("--limit", type=int, help="MNIST train+val images (a stratified subset; test stays 10 000)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/runs/honest")
    ap.add_argument("--no-save", action="store_true", help="run the sweeps only (another process collects)")
    ap.add_argument("--collect", action="store_true", help="only summarize the finished run directories")
    ap.add_argument("--name", default=None, help="results/NAME.json (default honest_mnist_MODEL)")
    ap.add_argument("--note", default="", help="how the collected sweeps were run (shown under the table)")
    ap.add_argument("--separate-baselines", action="store_true",
                    help="run each global baseline as its own sweep beside the Mix-and-Match one (a second process)")
    ap.add_argument("--without-baselines", action="store_true",
                    help="the Mix-and-Match sweep alone (its baselines run in a --separate-baselines process)")
    ap.add_argument("--summary", action="store_true", help="only write the table of every committed honest_mnist result")
    args = ap.parse_args()
    if args.summary:
        result, text = summary()
        save("honest_mnist_summary", result, text)
        print(text)
        return
    torch.set_num_threads(args.threads)
    root = shared_data_dir()
    if root is None:
        sys.exit("MNIST not found: set EDGEPRUNE_DATA to a folder holding mnist/")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    splits = data_lib.load("mnist", root=root, limit=args.limit, augment=args.augment)
    tag = "-aug" if args.augment else ""
    model = dense_model(args.model, splits, args.dense_epochs, out, args.limit, tag)
    options = {"criteria": args.criteria.split(","), "baselines": [] if args.without_baselines else args.baselines.split(",")}
    if args.model in RANGES:  # other models get the default role ranges
        options["range_rules"] = RANGES[args.model]
    if args.strategies != "all":
        options["strategies"] = args.strategies.split(",")
    result = {"schedules": {}}
    dirs = {}
    for sched in args.schedules.split(","):
        dirs[sched] = out / f"{args.model}-b{args.budget:g}-{sched}-{args.epochs}ep{f'-n{args.limit}' if args.limit else ''}{tag}"
        t0 = time.perf_counter()
        if args.separate_baselines and not args.collect:
            for name in args.baselines.split(","):
                edgeprune.sweep(model, splits, method=name, budgets=[args.budget], seeds=args.seeds,
                                out=Path(f"{dirs[sched]}-global-{name}"), progress=False,
                                finetune={"epochs": args.epochs, "lr": args.lr, "patience": args.patience},
                                schedule={"kind": sched, "end": args.gradual_end})
        elif not args.collect:
            edgeprune.sweep(model, splits, method="mix_and_match", budgets=[args.budget], seeds=args.seeds, out=dirs[sched],
                            finetune={"epochs": args.epochs, "lr": args.lr, "patience": args.patience}, progress=False,
                            schedule={"kind": sched, "end": args.gradual_end}, **options)
        print(f"{sched}: {time.perf_counter() - t0:.0f} s", flush=True)
    if args.no_save:
        return
    # settings finished under every schedule (a sweep stopped early is compared on the common ones only)
    keep = set.intersection(*(set(by_label(d)[2]) for d in dirs.values()))
    for sched, d in dirs.items():
        result["schedules"][sched] = summarize(d, keep)
    result["compared"] = sorted(keep)
    runs = {s: [e for v in r["epochs_run"].values() for e in v if e] for s, r in result["schedules"].items()}
    result["epochs_text"] = "; ".join(f"{s} {min(v)}–{max(v)}" for s, v in runs.items() if v)
    if {"oneshot", "gradual"} <= set(dirs):
        result["gradual_minus_oneshot"] = across(dirs["oneshot"], dirs["gradual"])
    result["settings"] = {**vars(args), "out": None, "collect": None, "name": None}
    name = args.name or f"honest_mnist_{args.model}"
    if "--out" in sys.argv:  # the run directories' location is this machine's, not part of the result
        sys.argv[sys.argv.index("--out") + 1] = "RUN_ROOT"
    save(name, result, section(result))
    print(section(result))
    print(f"wrote {RESULTS / (name + '.json')}")


if __name__ == "__main__":
    main()
