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

from edgeprune.methods.mix_and_match import SearchConfig, run_search  # noqa: E402
from edgeprune.search import RunStore  # noqa: E402

SETTINGS = {
    # ranges wide enough to reach the anchors; the small classifier may be pruned too at these sparsities
    "lenet300": {"target": 0.98, "range_rules": {"linear": [0.95, 0.995], "small": [0.5, 0.95], "classifier_small": [0.5, 0.95]}},
    "lenet5": {"target": 0.99, "range_rules": {"linear": [0.95, 0.998], "conv": [[1.0, 0.6, 0.95]], "small": [0.3, 0.9], "classifier_small": [0.5, 0.95]}},
}


def _drop_cell(d: dict) -> str:
    reduction = "–" if d["reduction"] is None else f"{100 * d['reduction']:+.0f}%"
    return f"{d['best_baseline']} {100 * d['baseline_drop']:.2f} vs {100 * d['drop']:.2f} pp ({reduction})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="lenet300,lenet5")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=4, help="fine-tuning epochs per candidate")
    ap.add_argument("--dense-epochs", type=int, default=5)
    ap.add_argument("--finetune-lr", type=float, default=0.02, help="SGD lr of the fine-tunes (cosine); the dense lr is 0.02")
    ap.add_argument("--criteria", default="magnitude,gradient,product")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--limit", type=int, default=None, help="use this many MNIST training images (train + validation)")
    ap.add_argument("--out", default=str(RESULTS.parent / "runs"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = shared_data_dir()
    if root is None:
        sys.exit("MNIST not found: set EDGEPRUNE_DATA to a folder holding mnist/")
    result, lines = {"models": {}}, []
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
        mam = [r for r in ok if r["kind"] == "mam"]
        best = max(summary["front"], key=lambda f: f["val_acc"]) if summary["front"] else None
        per_cand = statistics.fmean(r["seconds"] for r in ok)
        result["models"][model] = {
            "config": cfg.model_dump(), "wall_seconds": wall, "seconds_per_candidate": per_cand,
            "dense": summary["dense"], "chosen": summary["chosen"], "drop_reductions": summary["drop_reductions"],
            "hypervolume": summary["hypervolume"], "records": records,
        }
        dense_err = 100 * (1 - summary["dense"]["test_acc"])
        mam_err = [100 * (1 - r["test_acc"]) for r in mam]
        chosen = summary["chosen"]
        lines.append(f"| {model} | {100 * s['target']:.0f} | {dense_err:.2f} | {min(mam_err):.2f} / {statistics.fmean(mam_err):.2f} | "
                     + (f"{100 * (1 - chosen['test_acc']):.2f} ({chosen['id']}) | " if chosen else "– | ")
                     + "; ".join(_drop_cell(d) for d in summary["drop_reductions"])
                     + f" | {per_cand:.1f} |")
        print(lines[-1], flush=True)
    table = ["| model | sparsity % | dense test error % | Mix-and-Match test error % (best / mean) | chosen (by validation) error % | drop: best baseline vs M&M at matched sparsity (reduction) | s / candidate |",
             "|---|---:|---:|---:|---|---|---:|", *lines]
    name = "mam_mnist_" + "_".join(args.models.split(","))
    subset = f", {args.limit:,} training images" if args.limit else ""
    save(name, {"settings": vars(args), **result},
         f"### Mix-and-Match on MNIST: {args.models} ({args.seeds} seed(s), criteria {args.criteria}, {args.epochs} fine-tune epochs{subset})\n\n"
         + "\n".join(table))


if __name__ == "__main__":
    main()
