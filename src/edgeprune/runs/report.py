"""The report of a run directory of any method: results.csv, front.png, report.md, summary.json, chosen.pt.

Everything is rendered from RUN_DIR/results.jsonl, so ``edgeprune report RUN_DIR`` reproduces it.
Candidates that differ only by seed form one setting (mean ± std). The front is taken on validation
accuracy against the fraction of the input model's non-zero weights removed; the chosen setting is, on
that front, the most accurate one at the highest budget whose best setting is within ``tolerance`` of
the input model's validation accuracy (else the most accurate). Every candidate counts, whatever its
origin (a Mix-and-Match strategy or a global baseline trained in the same sweep). Test accuracy is
reported with its interval and paired comparisons (:mod:`edgeprune.report.compare`), never used to choose.
"""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path

from edgeprune.errors import ConfigError
from edgeprune.report import compare
from edgeprune.report.pareto import pareto_front
from edgeprune.report.plots import front_plot
from edgeprune.report.stats import verdict
from edgeprune.report.tables import write_csv
from edgeprune.runs.store import RunStore
from edgeprune.utils.io import write_json, write_text

NUMERIC = ("budget_achieved", "val_acc_pruned", "val_acc", "test_acc", "sparsity", "params", "nonzeros", "macs",
           "seconds")


def origin(row: dict) -> str:
    """Where a setting came from: the run's method, or the global baseline trained beside it."""
    baseline = row.get("setting", {}).get("baseline")
    return f"global {baseline}" if baseline else row["method"]


def label(row: dict) -> str:
    setting = ", ".join(f"{k}={v}" for k, v in row["setting"].items()
                        if k not in ("aliases", "baseline") and v not in (None, [], {}))
    return f"{origin(row)} @ {row['budget_name']} {row['budget']:g}" + (f" ({setting})" if setting else "")


def group(records: list[dict], dense: dict) -> list[dict]:
    """One row per setting (records equal but for the seed): mean and std of every numeric field."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        if r.get("kind") == "candidate" and r.get("status") == "ok":
            key = (r["method"], r["budget"], json.dumps(r.get("setting", {}), sort_keys=True))
            groups.setdefault(key, []).append(r)
    rows = []
    for members in groups.values():
        first = members[0]
        row = {k: first[k] for k in ("method", "budget", "budget_name", "setting")}
        row["ids"] = [m["id"] for m in members]
        row["seeds"] = sorted(m["seed"] for m in members)
        for key in NUMERIC:
            values = [m[key] for m in members if isinstance(m.get(key), (int, float))]
            if values:
                row[key] = statistics.fmean(values)
                row[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        row["removed"] = 1.0 - row["nonzeros"] / max(dense["nonzeros"], 1)
        row["origin"] = origin(row)
        row["label"] = label(row)
        row["test_ci"] = compare.interval(members) if "test_acc" in row else None
        rows.append(row)
    return rows


def choose(front: list[dict], dense_val: float, tolerance: float) -> dict | None:
    """The most accurate setting of the highest budget that stays within ``tolerance`` (else the most
    accurate). Budgets, not the achieved fractions, rank compression: settings of one budget all sit at
    it (calibrated to within 0.1 pp), and a 0.05 pp sparser candidate must not win over a more accurate one."""
    good = [g for g in front if g["val_acc"] >= dense_val - tolerance]
    if good:
        top = max(g["budget"] for g in good)
        return max((g for g in good if g["budget"] == top), key=lambda g: g["val_acc"])
    return max(front, key=lambda g: g["val_acc"]) if front else None


def _pm(row: dict, key: str, scale: float = 100.0) -> str:
    if key not in row:
        return "–"
    text = f"{scale * row[key]:.2f}"
    return text + (f" ± {scale * row[f'{key}_std']:.2f}" if len(row["seeds"]) > 1 else "")


def _test(row: dict) -> str:
    ci = row.get("test_ci")
    return _pm(row, "test_acc") + (f" [{100 * ci[0]:.2f}, {100 * ci[1]:.2f}]" if ci else "")


def _table(rows: list[dict]) -> list[str]:
    out = ["| setting | seeds | weights removed % | val after pruning % | val % | test % [95 % CI] | params | MACs |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for g in rows:
        out.append(f"| {g['label']} | {len(g['seeds'])} | {100 * g['removed']:.2f} | {_pm(g, 'val_acc_pruned')} | "
                   f"{_pm(g, 'val_acc')} | {_test(g)} | {g['params']:,.0f} | {g['macs']:,.0f} |")
    return out


def render(run_dir: str | Path, tolerance: float = 0.01) -> dict:
    """Write the report files of ``run_dir``; returns the summary (also written as summary.json)."""
    store = RunStore(run_dir)
    config = store.config()
    if "method" not in config:
        raise ConfigError(f"{str(store.root)!r} was not made by `edgeprune prune` / edgeprune.sweep (no method in config.json)")
    records = store.records(repair=False)
    dense = next((r for r in records if r.get("kind") == "dense"), None)
    if dense is None:
        raise ConfigError(f"{str(store.root)!r} has no finished dense record yet; run the sweep first")
    root = store.root
    write_csv(root / "results.csv", records)
    groups = group(records, dense)
    front = [groups[i] for i in pareto_front([(g["removed"], g["val_acc"]) for g in groups])]
    front.sort(key=lambda g: g["removed"])
    chosen = choose(front, dense["val_acc"], tolerance)
    chosen_record = next(r for r in records if r["id"] == chosen["ids"][0]) if chosen else None
    if chosen_record and chosen_record.get("checkpoint"):
        src = root / chosen_record["checkpoint"]
        if src.is_file():
            tmp = root / ".chosen.pt.tmp"
            shutil.copyfile(src, tmp)
            tmp.replace(root / "chosen.pt")
    front_plot(groups, front, dense["val_acc"], root / "front.png", chosen,
               title=f"{config['method']}: validation accuracy vs weights removed")
    failed = [r for r in records if r.get("status") == "failed"]
    lines = [
        f"# {config['method']} — {config['model']['name']} on {config['data']['name']}", "",
        f"Input model: validation {100 * dense['val_acc']:.2f}%"
        + (f", test {100 * dense['test_acc']:.2f}%" if "test_acc" in dense else "")
        + f", {dense['params']:,} parameters, {dense['nonzeros']:,} non-zero, {dense['macs']:,} MACs per image.",
        f"Candidates: {sum(r.get('kind') == 'candidate' for r in records)} finished, {len(failed)} failed; "
        f"budgets {', '.join(f'{b:g}' for b in config['budgets'])}; seeds {len(config['seeds'])}. "
        "Selection uses validation accuracy; test accuracy is measured once per final model.", "",
    ]
    by_id = {r["id"]: r for r in records}
    members = {g["label"]: [by_id[i] for i in g["ids"]] for g in groups}
    comparisons = compare.mam_vs_baselines(groups, members)
    chosen_vs_dense = compare.difference(members[chosen["label"]], [dense]) if chosen else None
    if chosen:
        lines += ["## Chosen model", "",
                  f"**{chosen['label']}** (origin: {chosen['origin']}): {100 * chosen['removed']:.2f}% of the non-zero "
                  f"weights removed, validation {_pm(chosen, 'val_acc')}%, test "
                  f"{compare.accuracy_text(members[chosen['label']])} (rule: on the validation front over every "
                  f"candidate, the most accurate setting of the highest budget within {100 * tolerance:.1f} pp of the "
                  f"input model, else the most accurate). Checkpoint: `chosen.pt` (candidate `{chosen['ids'][0]}`).", ""]
    lines += compare.comparison_lines(comparisons, chosen_vs_dense, chosen["label"] if chosen else None)
    lines += ["## Front (validation accuracy vs weights removed)", "", "![front](front.png)", ""] + _table(front)
    lines += ["", "## All settings (mean ± std over seeds)", ""] + _table(sorted(groups, key=lambda g: g["removed"]))
    if failed:
        lines += ["", "## Failed candidates", ""] + [f"- `{r['id']}`: {r['error']}" for r in failed]
    write_text(root / "report.md", "\n".join(lines) + "\n")
    summary = {"method": config["method"], "dense": {k: v for k, v in dense.items() if k != "test_correct"},
               "chosen": chosen_record and {k: v for k, v in chosen_record.items() if k != "test_correct"},
               "chosen_origin": chosen["origin"] if chosen else None,
               "chosen_test": compare.accuracy_text(members[chosen["label"]]) if chosen else None,
               "chosen_vs_dense": chosen_vs_dense.as_dict() | {"verdict": verdict(chosen_vs_dense, "the chosen model",
                                                                                   "the input model")}
               if chosen_vs_dense else None,
               "mam_vs_baseline": [{k: v for k, v in c.items() if k != "_d"}
                                   | ({"verdict": verdict(c["_d"], "Mix-and-Match", "the baseline")} if c["_d"] else {})
                                   for c in comparisons],
               "front": [{k: g[k] for k in ("label", "origin", "ids", "removed", "val_acc", "test_ci") if k in g}
                         | {"test_acc": g.get("test_acc")} for g in front]}
    write_json(root / "summary.json", summary)
    return summary
