"""One seed of several ``tasks_vs_tp.py`` runs side by side: which fine-tune recipe or pruning setting moves ours and
Torch-Pruning, read on the validation split (the split a recipe is chosen on); test figures are shown for reading
only. An exploration on one seed, not a claim: a recipe it points to is then run on 3 seeds.

    python benchmarks/tasks_recipes.py --task detection --seed 0 --runs tasks_detection_d30,tasks_detection_d30_p0 \\
        --name tasks_detection_recipes
"""

from __future__ import annotations

import argparse
import json
import sys

from common import RESULTS, save

# the settings a run may change against the first one, and how a row names them
LABELS = {"miou": "mIoU", "map": "mAP@[.5:.95]", "map50": "mAP@.5"}
VARIED = {"ft_patience": "patience", "ft_lr_scale": "lr ×", "reconstruct": "reconstruction", "residual_range": "residual range",
          "finetune_epochs": "ft epochs", "criteria": "criteria", "strategies": "strategies"}


def row(name: str, seed: int, metric: str, test_metric: str) -> dict:
    path = RESULTS / f"{name}_s{seed}.json"
    if not path.exists():
        sys.exit(f"no results file results/{path.name}: run tasks_vs_tp.py --name {name} --seed {seed} first")
    result = json.loads(path.read_text())
    methods = result["methods"]
    tp = next((m for m in methods if m.startswith("TP")), None)
    side = result.get("side_by_side", {})

    def figures(label: str | None) -> dict | None:
        if label is None:
            return None
        m = methods[label]
        return {"val": m[f"val_{metric}"], "test": m[f"test_{test_metric}"], "macs": m["macs"],
                "epochs": m.get("epochs_run"), "speedup_b1": side.get(label, {}).get("speedup_b1")}

    return {"name": name, "settings": result["settings"], "dense": figures("dense"), "ours": figures("ours (chosen)"),
            "ours_candidate": methods["ours (chosen)"].get("candidate"), "tp": figures(tp), "tp_label": tp}


def shown(value) -> str:
    if value is None or isinstance(value, bool):
        return "on" if value else "off"
    return ",".join(f"{v:g}" for v in value) if isinstance(value, list) else str(value)


def differences(settings: dict, first: dict) -> str:
    changed = [f"{label} {shown(settings.get(k))}" for k, label in VARIED.items() if settings.get(k) != first.get(k)]
    return ", ".join(changed) or "as the first run"


def pct(value) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def times(value) -> str:
    return "–" if value is None else f"{value:.2f}×"


def mega(value) -> str:
    return "–" if value is None else f"{value / 1e6:.1f} M"


def section(task: str, rows: list[dict], seed: int, metric: str, test_metric: str) -> str:
    first = rows[0]["settings"]
    metric, test_metric = LABELS[metric], LABELS[test_metric]
    lines = [f"## {task}: runs of tasks_vs_tp.py side by side on seed {seed} (an exploration)", "",
             f"Every row is `tasks_vs_tp.py` on seed {seed} with one setting changed against the first row "
             f"({', '.join(f'{VARIED[k]} {shown(first.get(k))}' for k in VARIED if k in first)}). Validation {metric} is what a "
             f"recipe would be chosen on; test {test_metric} is for reading only. One seed: a difference here is a lead "
             "for a 3-seed run, not a result.", "",
             f"| run | changed | ours val {metric} | ours test {test_metric} | ours × b1 | ours MACs | ours epochs | "
             f"TP val {metric} | TP test {test_metric} | TP × b1 | TP MACs |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        o, t = r["ours"], r["tp"] or {}
        lines.append(f"| {r['name']} | {differences(r['settings'], first)} | {pct(o['val'])} | {pct(o['test'])} | "
                     f"{times(o['speedup_b1'])} | {mega(o['macs'])} | {o['epochs']} | {pct(t.get('val'))} | "
                     f"{pct(t.get('test'))} | {times(t.get('speedup_b1'))} | "
                     f"{mega(t.get('macs'))} |")
    dense = rows[0]["dense"]
    lines += ["", f"Dense model: val {metric} {pct(dense['val'])}, test {test_metric} {pct(dense['test'])}, "
              f"{mega(dense['macs'])} MACs."]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="detection", choices=["detection", "segmentation"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runs", required=True, help="tasks_vs_tp.py run names, comma-separated; the first is the reference")
    p.add_argument("--name", required=True, help="results/NAME.json and sections/NAME.md")
    args = p.parse_args()
    metric, test_metric = {"detection": ("map", "map50"), "segmentation": ("miou", "miou")}[args.task]
    rows = [row(name, args.seed, metric, test_metric) for name in args.runs.split(",")]
    save(args.name, {"task": args.task, "seed": args.seed, "metric": metric, "test_metric": test_metric,
                     "rows": rows}, section(args.task, rows, args.seed, metric, test_metric))


if __name__ == "__main__":
    main()
