"""The report of a Mix-and-Match run: results.csv, pareto.png, report.md, chosen.pt.

Everything is rendered from RUN_DIR/results.jsonl, so ``edgeprune report RUN_DIR`` reproduces it.

Drop reduction (the paper's "40 %" metric): for a Mix-and-Match setting M and the baselines matched to its
sparsity, drop = dense test accuracy − test accuracy; reduction = (drop_best_baseline − drop_M) /
drop_best_baseline, where the best baseline is the one with the smallest drop at that sparsity.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from edgeprune.errors import ConfigError
from edgeprune.report.choose import choose, front_of
from edgeprune.report.pareto import hypervolume
from edgeprune.report.plots import pareto_plot
from edgeprune.report.tables import group_by_setting, write_csv
from edgeprune.utils.io import write_json, write_text


def _pm(row: dict, key: str, scale: float = 100.0, digits: int = 2) -> str:
    if key not in row:
        return "–"
    std = row.get(f"{key}_std", 0.0)
    mean = f"{scale * row[key]:.{digits}f}"
    return mean + (f" ± {scale * std:.{digits}f}" if len(row.get("seeds", [])) > 1 else "")


def _label(row: dict) -> str:
    if row["kind"] == "mam":
        alias = f" (= {', '.join(row['aliases'])})" if row.get("aliases") else ""
        return f"{row['criterion']} · {row['strategy']}{alias}"
    return f"global {row['criterion']} @ {row['matched_to'].removeprefix('mam-')}"


def drop_reductions(groups: list[dict], dense_test: float, key: str = "test_acc") -> list[dict]:
    """Per Mix-and-Match setting with matched baselines; accuracies read from ``key`` (test_acc or int8_acc)."""
    rows = []
    by_id = {f"mam-{g['criterion']}-{g['strategy']}": g for g in groups if g["kind"] == "mam"}
    for mam_id, mam in by_id.items():
        bases = [g for g in groups if g["kind"] == "baseline" and g["matched_to"] == mam_id]
        if not bases:
            continue
        best = max(bases, key=lambda g: g[key])
        drop_m, drop_b = dense_test - mam[key], dense_test - best[key]
        rows.append({
            "setting": _label(mam), "sparsity": mam["sparsity"], "drop": drop_m,
            "best_baseline": best["criterion"], "baseline_sparsity": best["sparsity"], "baseline_drop": drop_b,
            "reduction": (drop_b - drop_m) / drop_b if drop_b > 0 else None, "accuracy": key,
        })
    return rows


def copy_chosen(run_dir: Path, record: dict) -> Path | None:
    """Copy the chosen candidate's checkpoint to RUN_DIR/chosen.pt."""
    if not record.get("checkpoint"):
        return None
    src = run_dir / record["checkpoint"]
    dst = run_dir / "chosen.pt"
    if src.exists():
        tmp = dst.with_suffix(".pt.tmp")
        shutil.copyfile(src, tmp)
        tmp.replace(dst)
        return dst
    return None


def render(run_dir: str | Path, config: dict, records: list[dict]) -> dict:
    """Write results.csv, pareto.png, report.md and chosen.pt into ``run_dir`` from the run's ``config``
    and ``records`` (RUN_DIR/config.json, results.jsonl); return a summary dict.

    :func:`edgeprune.runs.search.render` reads them from the run directory and calls this.
    """
    root = Path(run_dir)
    dense = next((r for r in records if r["kind"] == "dense"), None)
    if dense is None:
        raise ConfigError(f"{str(root)!r} has no finished dense record yet; run the search first")
    write_csv(root / "results.csv", records)
    groups = group_by_setting([r for r in records if r["kind"] != "dense"])
    mam = [g for g in groups if g["kind"] == "mam"]
    chosen = choose(mam, dense["val_acc"], config.get("choose_tolerance", 0.01))
    front = front_of(groups)
    pareto_plot(groups, front, dense["val_acc"], root / "pareto.png", chosen)

    dense_bytes, dense_macs = dense["bytes_estimate"], dense["effective_macs"]
    axes = {
        "sparsity": [(g["sparsity"], g["val_acc"]) for g in groups],
        "bytes saved": [(1 - g["bytes_estimate"] / dense_bytes, g["val_acc"]) for g in groups],
        "MACs saved": [(1 - g["effective_macs"] / dense_macs, g["val_acc"]) for g in groups],
    }
    hv = {name: hypervolume(pts) for name, pts in axes.items()}
    int8 = all("int8_acc" in g for g in groups) and bool(groups)
    drops = drop_reductions(groups, dense["test_acc"], "int8_acc" if int8 else "test_acc")
    chosen_record = None
    if chosen:
        chosen_record = next(r for r in records if r["id"] == chosen["ids"][0])
        copy_chosen(root, chosen_record)

    lines = [
        f"# Mix-and-Match report — {config['model']} on {config['dataset']}",
        "",
        f"Dense model: validation {100 * dense['val_acc']:.2f}%, test {100 * dense['test_acc']:.2f}%, "
        f"{dense['params']:,} parameters, {dense['macs']:,} MACs per image.",
        f"Candidates: {sum(r['kind'] == 'mam' for r in records)} Mix-and-Match, "
        f"{sum(r['kind'] == 'baseline' for r in records)} baselines, "
        f"{sum(r.get('status') == 'failed' for r in records)} failed; seeds per setting: {config['seeds']}.",
        "Selection uses validation accuracy; test accuracy is measured once per final model.",
        "",
    ]
    if chosen:
        lines += [
            "## Chosen model",
            "",
            f"**{_label(chosen)}** — sparsity {_pm(chosen, 'sparsity')}%, validation {_pm(chosen, 'val_acc')}%, "
            f"test {_pm(chosen, 'test_acc')}% (rule: the sparsest setting on the validation front within "
            f"{100 * config.get('choose_tolerance', 0.01):.1f} pp of dense). Checkpoint: `chosen.pt` "
            f"(candidate `{chosen['ids'][0]}`).",
            "",
        ]
    lines += ["## Pareto front (validation accuracy)", "", "![Pareto front](pareto.png)", "",
              "| axis | hypervolume |", "|---|---:|"]
    lines += [f"| {name} × validation accuracy | {value:.4f} |" for name, value in hv.items()]
    lines += ["", "Hypervolume: area dominated by the front above the reference point (0 saved, 0 accuracy); bytes "
              "and MACs are turned into the fraction saved relative to the dense model (estimated sparse bytes, "
              "sparsity-effective MACs).", ""]
    lines += ["| setting | sparsity % | val % | test % | est. bytes | eff. MACs |", "|---|---:|---:|---:|---:|---:|"]
    for g in front:
        lines.append(f"| {_label(g)} | {_pm(g, 'sparsity')} | {_pm(g, 'val_acc')} | {_pm(g, 'test_acc')} | "
                     f"{g['bytes_estimate']:,.0f} | {g['effective_macs']:,.0f} |")
    if drops:
        lines += ["", "## Accuracy drop vs the best single-criterion baseline at matched sparsity", "",
                  ("drop = dense FP32 test accuracy − INT8 test accuracy (ONNX Runtime, the paper's definition)" if int8 else
                   "drop = dense test accuracy − test accuracy (FP32; add --int8 for the paper's INT8 drop)")
                  + "; reduction = (baseline drop − Mix-and-Match drop) / baseline drop.", "",
                  "| setting | sparsity % | drop pp | best baseline (sparsity %) | baseline drop pp | reduction |", "|---|---:|---:|---|---:|---:|"]
        for d in drops:
            red = "–" if d["reduction"] is None else f"{100 * d['reduction']:.1f}%"
            lines.append(f"| {d['setting']} | {100 * d['sparsity']:.2f} | {100 * d['drop']:.2f} | {d['best_baseline']} "
                         f"({100 * d['baseline_sparsity']:.2f}) | {100 * d['baseline_drop']:.2f} | {red} |")
    int8_head = " INT8 test % | drop pp |" if int8 else ""
    lines += ["", "## All settings (mean ± std over seeds)", "",
              f"| setting | sparsity % | val after pruning % | val % | test % |{int8_head} non-zeros | eff. MACs | s / candidate |",
              "|---|---:|---:|---:|---:|" + ("---:|---:|" if int8 else "") + "---:|---:|---:|"]
    for g in sorted(groups, key=lambda g: (g["kind"] != "mam", g["criterion"], g["sparsity"])):
        int8_cells = f" {_pm(g, 'int8_acc')} | {100 * (dense['test_acc'] - g['int8_acc']):.2f} |" if int8 else ""
        lines.append(f"| {_label(g)} | {_pm(g, 'sparsity')} | {_pm(g, 'val_acc_pruned')} | {_pm(g, 'val_acc')} | "
                     f"{_pm(g, 'test_acc')} |{int8_cells} {g['nonzeros']:,.0f} | {g['effective_macs']:,.0f} | {g['seconds']:.1f} |")
    failed = [r for r in records if r.get("status") == "failed"]
    if failed:
        lines += ["", "## Failed candidates", ""] + [f"- `{r['id']}`: {r['error']}" for r in failed]
    write_text(root / "report.md", "\n".join(lines) + "\n")
    summary = {"dense": dense, "chosen": chosen_record, "hypervolume": hv, "drop_reductions": drops,
               "front": [{"setting": _label(g), "sparsity": g["sparsity"], "val_acc": g["val_acc"], "test_acc": g["test_acc"]} for g in front]}
    write_json(root / "summary.json", summary)
    return summary
