"""Mix-and-Match on MNIST: LeNet-300-100 at 98 % and LeNet-5 (Caffe) at 99 % sparsity, matched baselines.

    python benchmarks/mam_mnist.py [--models lenet300,lenet5] [--seeds 3] [--epochs 2]

Each model: dense training by the script (the search's own dense stage), then criteria × ten strategies
calibrated to the target sparsity (so every candidate sits at the anchor sparsity), seeds, and the four
global baselines matched to the chosen setting and the next front setting. Selection on validation (5 000
training images held out); test accuracy measured once per final model. Anchors: SNIP reports ~2.4 %
error for LeNet-300-100 at 98 % and ~1.1 % for LeNet-5-Caffe at 99 %; Han et al. 1.59 % for LeNet-300-100
at 92 %.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, save, shared_data_dir  # noqa: E402
from edgeprune.runs import RunStore  # noqa: E402
from edgeprune.runs.search import SearchConfig, run_search  # noqa: E402

SETTINGS = {
    # ranges wide enough to reach the anchors; the small classifier may be pruned too at these sparsities
    "lenet300": {"target": 0.98, "range_rules": {"linear": [0.95, 0.995], "small": [0.5, 0.95], "classifier_small": [0.5, 0.95]}},
    "lenet5": {"target": 0.99, "range_rules": {"linear": [0.95, 0.998], "conv": [[1.0, 0.6, 0.95]], "small": [0.3, 0.9], "classifier_small": [0.5, 0.95]}},
}


def _settings(records: list[dict]) -> list[dict]:
    from edgeprune.report import group_by_setting

    return group_by_setting([r for r in records if r["kind"] != "dense"])


def model_row(model: str, m: dict) -> str:
    """One table row from a model's stored records: setting means ± std over seeds."""
    from edgeprune.report.choose import choose

    records = m["records"]
    dense = next(r for r in records if r["kind"] == "dense")
    groups = _settings(records)
    mam = [g for g in groups if g["kind"] == "mam"]
    chosen = choose(mam, dense["val_acc"], m["config"]["choose_tolerance"])
    err = lambda g: f"{100 * (1 - g['test_acc']):.2f} ± {100 * g['test_acc_std']:.2f}"  # noqa: E731
    matched = [g for g in groups if g["kind"] == "baseline" and g["matched_to"] == f"mam-{chosen['criterion']}-{chosen['strategy']}"]
    best_base = max(matched, key=lambda g: g["test_acc"]) if matched else None
    drop_m = dense["test_acc"] - chosen["test_acc"]
    cells = [model, f"{100 * chosen['sparsity']:.2f}", f"{100 * (1 - dense['test_acc']):.2f}",
             f"{chosen['criterion']} · {chosen['strategy']}: {err(chosen)}"]
    if best_base:
        drop_b = dense["test_acc"] - best_base["test_acc"]
        red = f"{100 * (drop_b - drop_m) / drop_b:+.0f}%" if drop_b > 0 else "–"
        cells += [f"{best_base['criterion']}: {err(best_base)}", f"{100 * drop_m:.2f} vs {100 * drop_b:.2f} ({red})"]
    else:
        cells += ["–", "–"]
    per_crit = []
    for crit in sorted({g["criterion"] for g in mam}):
        best = max((g for g in mam if g["criterion"] == crit), key=lambda g: g["val_acc"])
        per_crit.append(f"{crit} {100 * (1 - best['test_acc']):.2f} ({best['strategy']})")
    cells += ["; ".join(per_crit), f"{m['seconds_per_candidate']:.1f}"]
    return "| " + " | ".join(cells) + " |"


HEADER = ["| model | sparsity % | dense test error % | chosen setting (by validation): test error % | best matched global baseline: test error % | drop M&M vs baseline, pp (reduction) | best setting per criterion (by validation): test error % | s / candidate |",
          "|---|---:|---:|---|---|---|---|---:|"]


def section(result: dict, args: dict) -> str:
    subset = f", {args['limit']:,} training images" if args.get("limit") else ""
    rows = [model_row(model, m) for model, m in result["models"].items()]
    return (f"### Mix-and-Match on MNIST: {args['models']} ({args['seeds']} seed(s), criteria {args['criteria']}, "
            f"{args['epochs']} fine-tune epochs{subset})\n\nAll candidates are calibrated to the target sparsity; seeds vary the "
            "fine-tuning data order (masks are deterministic). Errors are mean ± std over seeds.\n\n" + "\n".join(HEADER + rows))


def render(name: str) -> None:
    """Re-render sections/<name>.md from results/<name>.json."""
    import json

    from edgeprune.utils.io import write_text

    data = json.loads((RESULTS / f"{name}.json").read_text())
    write_text(RESULTS.parent / "sections" / f"{name}.md", section(data, data["settings"]) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="lenet300,lenet5")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=4, help="fine-tuning epochs per candidate")
    ap.add_argument("--dense-epochs", type=int, default=5)
    ap.add_argument("--finetune-lr", type=float, default=0.02, help="SGD lr of the fine-tunes (cosine)")
    ap.add_argument("--criteria", default="magnitude,gradient,product")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--limit", type=int, default=None, help="use this many MNIST training images (train + validation)")
    ap.add_argument("--out", default=str(RESULTS.parent / "runs"))
    ap.add_argument("--render", metavar="NAME", help="only re-render sections/NAME.md from results/NAME.json")
    args = ap.parse_args()
    if args.render:
        return render(args.render)
    torch.set_num_threads(args.threads)
    root = shared_data_dir()
    if root is None:
        sys.exit("MNIST not found: set EDGEPRUNE_DATA to a folder holding mnist/")
    result = {"models": {}}
    for model in args.models.split(","):
        s = SETTINGS[model]
        cfg = SearchConfig.build(
            model=model, dataset="mnist", data_dir=str(root), criteria=args.criteria.split(","),
            target_sparsity=s["target"], range_rules=s["range_rules"], seeds=args.seeds, epochs=args.epochs,
            dense_epochs=args.dense_epochs, val_fraction=0.1 if args.limit else 5000 / 60000, baseline_matches=2, calib_batches=10,
            finetune={"patience": 2, "lr": args.finetune_lr}, limit=args.limit,
        )
        run_dir = Path(args.out) / f"mam-{model}"
        t0 = time.perf_counter()
        summary = run_search(cfg, run_dir, progress=False)
        wall = time.perf_counter() - t0
        records = RunStore(run_dir).records()
        ok = [r for r in records if r.get("status") == "ok" and r["kind"] != "dense"]
        result["models"][model] = {
            "config": cfg.model_dump(), "wall_seconds": wall,
            "seconds_per_candidate": statistics.fmean(r["seconds"] for r in ok),
            "dense": summary["dense"], "chosen": summary["chosen"], "drop_reductions": summary["drop_reductions"],
            "hypervolume": summary["hypervolume"], "records": records,
        }
        print(model_row(model, result["models"][model]), flush=True)
    name = "mam_mnist_" + "_".join(args.models.split(","))
    save(name, {"settings": vars(args), **result}, section(result, vars(args)))


if __name__ == "__main__":
    main()
