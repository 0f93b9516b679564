"""The report of a run directory of any method: results.csv, front.png, report.md, summary.json, chosen.pt.

Everything is rendered from RUN_DIR/results.jsonl, so ``edgeprune report RUN_DIR`` reproduces it.
Candidates that differ only by seed form one setting (mean ± std). The front is taken on validation
accuracy against the fraction of the input model's non-zero weights removed; the chosen setting is, on
that front, the most accurate one at the highest budget whose best setting is within ``tolerance`` of
the input model's validation accuracy (else the most accurate). Every candidate counts, whatever its
origin (a Mix-and-Match strategy or a global baseline trained in the same sweep). Test accuracy is
reported with its interval and paired comparisons (:mod:`edgeprune.report.compare`), never used to choose.

Records of another task name their metric (``val_miou``, ``test_mse``...; :mod:`edgeprune.report.metric`):
the front, the rule and the words then follow that metric in its direction (lower-is-better metrics: the
lowest wins), its tolerance is absolute for metrics in [0, 1] and relative to the input model's value for the
others, and test values carry the records' bootstrap intervals.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from edgeprune.data.splits import QUICK_LIMIT, QUICK_TEST_LIMIT
from edgeprune.errors import ConfigError, DamagedFileError, EdgepruneError
from edgeprune.export.runtimes import BY_KEY
from edgeprune.measure.budget import Budget
from edgeprune.measure.budget import parse as parse_budget
from edgeprune.report import compare
from edgeprune.report.metric import ACCURACY, Metric
from edgeprune.report.pareto import pareto_front
from edgeprune.report.plots import deploy_plot, edge_plot, front_plot
from edgeprune.report.stats import verdict
from edgeprune.report.tables import write_csv
from edgeprune.runs import edge as edge_lib
from edgeprune.runs.lock import check_not_running
from edgeprune.runs.results import check_records, choose, group, other_tests
from edgeprune.runs.store import RunStore
from edgeprune.select.meter import speedup_warning
from edgeprune.train import QUICK_MAX_BATCHES
from edgeprune.utils.io import atomic_path, write_json, write_text


def _pm(row: dict, key: str, metric: Metric = ACCURACY) -> str:
    if key not in row:
        return "–"
    text = metric.number(row[key])
    return text + (f" ± {metric.number(row[f'{key}_std'])}" if len(row["seeds"]) > 1 else "")


def _test(row: dict, metric: Metric) -> str:
    ci = row.get("test_ci")
    return _pm(row, metric.test, metric) + (f" [{metric.number(ci[0])}, {metric.number(ci[1])}]" if ci else "")


def _table(rows: list[dict], metric: Metric = ACCURACY) -> list[str]:
    out = [f"| setting | seeds | weights removed % | {metric.column('val', ' after pruning')} | {metric.column('val')} | "
           f"{metric.column('test')} [95 % CI] | params | MACs |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for g in rows:
        out.append(f"| {g['label']} | {len(g['seeds'])} | {100 * g['removed']:.2f} | {_pm(g, metric.pruned, metric)} | "
                   f"{_pm(g, metric.val, metric)} | {_test(g, metric)} | {g['params']:,.0f} | {g['macs']:,.0f} |")
    return out


QUICK_HEADLINE = (f"**This was a quick run (`--quick`)**: a subset of at most {QUICK_LIMIT:,} training and "
                  f"{QUICK_TEST_LIMIT:,} test images, at most "
                  f"{QUICK_MAX_BATCHES} batches per epoch, fewer calibration batches. Its figures are not the real "
                  "ones; run the command without --quick (into another --out) for them.")


def render(run_dir: str | Path, tolerance: float = 0.01, edge: bool = False, device: str | None = None) -> dict:
    """Write the report files of ``run_dir``; returns the summary (also written as summary.json).

    ``edge``: add the chosen and the input model's ONNX / ExecuTorch bytes and batch-1 latency (edge.png,
    summary["edge"]; measured once per chosen.pt, cached in edge.json: :mod:`edgeprune.runs.edge`); ``device``:
    both also timed on that device (:mod:`edgeprune.devices`).
    Refused while another process's sweep holds the run directory's lock (it is still writing it)."""
    store = RunStore(run_dir)
    config = _checked_config(store)
    check_not_running(store.root, "report on")
    records = check_records(store)
    dense = next((r for r in records if r.get("kind") == "dense"), None)
    if dense is None:
        raise ConfigError(f"{str(store.root)!r} has no finished dense record yet; run the sweep first")
    root = store.root
    write_csv(root / "results.csv", records)
    metric = Metric.of(dense)
    groups = group(records, dense, metric)
    front = [groups[i] for i in pareto_front([(g["removed"], metric.score(g[metric.val])) for g in groups])]
    front.sort(key=lambda g: g["removed"])
    chosen = choose(front, dense[metric.val], tolerance, metric)
    chosen_record = next(r for r in records if r["id"] == chosen["ids"][0]) if chosen else None
    _copy_chosen(root, chosen_record)
    front_plot(groups, front, dense[metric.val], root / "front.png", chosen,
               title=f"{config['method']}: {metric.phrase} vs weights removed", metric=metric)
    deploy_lines = _deploy_section(root, records, groups, dense, metric)
    edge_lines, edge_summary = _edge_section(root, device) if edge and chosen else ([], None)
    failed = [r for r in records if r.get("status") == "failed"]
    lines = _headline(config, records, dense, failed, metric)
    by_id = {r["id"]: r for r in records}
    members = {g["label"]: [by_id[i] for i in g["ids"]] for g in groups}
    comparisons = compare.mam_vs_baselines(groups, members, metric)
    chosen_vs_dense = _chosen_against_dense(members[chosen["label"]], dense, metric) if chosen else None
    if chosen:
        lines += ["## Chosen model", "", _chosen_text(chosen, members[chosen["label"]], metric, tolerance), ""]
        kept = (chosen_record or {}).get("decided", {}).get("skipped") or []
        lines += ["Parts of the model structured pruning could not thin:", "", *(f"- {note}" for note in kept), ""] if kept else []
    if metric.named:
        lines += compare.task_comparison_lines(comparisons, chosen_vs_dense, chosen["label"] if chosen else None, metric)
    else:
        lines += compare.comparison_lines(comparisons, chosen_vs_dense, chosen["label"] if chosen else None)
    scratch = compare.pruned_vs_scratch(groups, members, metric)
    lines += compare.scratch_lines(scratch, structured=config["method"] == "structured")
    lines += [f"## Front ({metric.phrase} vs weights removed)", "", "![front](front.png)", ""] + _table(front, metric)
    lines += ["", "## All settings (mean ± std over seeds)", ""] + _table(sorted(groups, key=lambda g: g["removed"]), metric)
    lines += deploy_lines + edge_lines
    if failed:
        lines += ["", "## Failed candidates", ""] + [f"- `{r['id']}`: {r['error']}" for r in failed]
    write_text(root / "report.md", "\n".join(lines) + "\n")
    summary = _summary(config, dense, chosen, chosen_record, members, chosen_vs_dense, comparisons, front, metric)
    if scratch:
        summary["pruned_vs_scratch"] = scratch
    if edge_summary is not None:
        summary["edge"] = edge_summary
    write_json(root / "summary.json", summary)
    return summary


_CONFIG = {"method": str, "model": dict, "data": dict, "budgets": list, "seeds": list}


def _checked_config(store: RunStore) -> dict:
    """The run's config.json, checked to be a sweep's and to hold the fields the report reads."""
    config = store.config()
    if "method" not in config:
        raise ConfigError(f"{str(store.root)!r} was not made by `edgeprune prune` / edgeprune.sweep (no method in config.json)")
    for key, kind in _CONFIG.items():
        if not isinstance(config.get(key), kind):
            raise DamagedFileError(f"run config {str(store.config_path)!r} has {key}={config.get(key)!r}; expected a "
                                   f"{kind.__name__} (was the file edited?)")
    return config


def _copy_chosen(root: Path, chosen_record: dict | None) -> None:
    """The chosen candidate's checkpoint as RUN/chosen.pt (when it kept one)."""
    if chosen_record and isinstance(chosen_record.get("checkpoint"), str):
        src = root / chosen_record["checkpoint"]
        if src.is_file():
            with atomic_path(root / "chosen.pt") as tmp:
                shutil.copyfile(src, tmp)


def _headline(config: dict, records: list[dict], dense: dict, failed: list[dict], metric: Metric) -> list[str]:
    """The title, the quick-run warning, the input model's figures and the candidates' count."""
    # the candidates' budgets: a method may have lowered a default budget the model cannot reach
    budgets = list(dict.fromkeys(r["budget"] for r in records if r.get("kind") == "candidate")) or config["budgets"]
    return [
        f"# {config['method']} — {config['model'].get('name')} on {config['data'].get('name')}", "",
        *([QUICK_HEADLINE, ""] if config.get("quick") else []),
        f"Input model: {metric.words('validation')} {metric.text(dense[metric.val])}"
        + (f", {metric.words('test')} {metric.text(dense[metric.test])}" if metric.test in dense else "")
        + f", {dense['params']:,} parameters, {dense['nonzeros']:,} non-zero, {dense['macs']:,} MACs per image.",
        f"Candidates: {sum(r.get('kind') == 'candidate' for r in records)} finished, {len(failed)} failed; "
        f"budgets {', '.join(b if isinstance(b, str) else f'{b:g}' for b in budgets)}; seeds {len(config['seeds'])}. "
        + ("Selection uses validation accuracy; test accuracy is measured once per final model." if not metric.named else
           f"Selection uses {metric.phrase} ({metric.direction}); " + (
               f"test {metric.label} is measured once per final model." if config["data"].get("test") else
               f"the data has no test split{UNLABELLED if config['data'].get('labels') else ''}.")),
        "",
    ]


UNLABELLED = (": its labels are the input model's own predictions (data without labels), so the figures say how "
              "closely each model agrees with it, not how often it is right")


def _chosen_against_dense(members: list[dict], dense: dict, metric: Metric):
    """The chosen setting against the input model: by intervals (a named metric) or paired on the test images."""
    if metric.named:
        return compare.by_intervals(members, [dense], metric, "the chosen model", "the input model")
    return compare.difference(members, [dense])


def _summary(config, dense, chosen, chosen_record, members, chosen_vs_dense, comparisons, front, metric) -> dict:
    """summary.json: the input and the chosen model, the comparisons and the front."""
    return {"method": config["method"],
            **({"metric": metric.name, "metric_label": metric.label, "metric_higher": metric.higher}
               if metric.named else {}),
            "dense": {k: v for k, v in dense.items() if k != "test_correct"},
            "chosen": chosen_record and {k: v for k, v in chosen_record.items() if k != "test_correct"},
            "chosen_origin": chosen["origin"] if chosen else None,
            "chosen_test": compare.setting_text(members[chosen["label"]], metric) if chosen else None,
            "chosen_vs_dense": _chosen_vs_dense(chosen_vs_dense, metric),
            "mam_vs_baseline": [{k: v for k, v in c.items() if k != "_d"}
                                | ({"verdict": verdict(c["_d"], "Mix-and-Match", "the baseline")} if c["_d"] else {})
                                for c in comparisons],
            "front": [{k: g[k] for k in ("label", "origin", "ids", "removed", metric.val, "test_ci") if k in g}
                      | {metric.test: g.get(metric.test)} for g in front]}


def _chosen_text(chosen: dict, members: list[dict], metric: Metric, tolerance: float) -> str:
    head = (f"**{chosen['label']}** (origin: {chosen['origin']}): {100 * chosen['removed']:.2f}% of the non-zero "
            "weights removed, ")
    tail = f" Checkpoint: `chosen.pt` (candidate `{chosen['ids'][0]}`)."
    if not metric.named:
        return (head + f"validation {_pm(chosen, 'val_acc')}%, test "
                f"{compare.accuracy_text(members)} (rule: on the validation front over every "
                f"candidate, the most accurate setting of the highest budget within {100 * tolerance:.1f} pp of the "
                "input model, else the most accurate)." + tail)
    others = "".join(f", test {Metric(name).label} {Metric(name).text(value)}" for name, value in other_tests(metric, chosen))
    return (head + f"{metric.phrase} {_pm(chosen, metric.val, metric)}{metric.unit}, test {metric.label} "
            f"{compare.setting_text(members, metric)}{others} (rule: on the validation front over every candidate, "
            f"the best {metric.phrase} ({metric.direction}) of the highest budget within "
            f"{metric.tolerance_text(tolerance)} of the input model's, else the best)." + tail)


def _chosen_vs_dense(found, metric: Metric) -> dict | None:
    if found is None or metric.named:
        return found
    return found.as_dict() | {"verdict": verdict(found, "the chosen model", "the input model")}


def _deploy_section(root: Path, records: list[dict], groups: list[dict], dense: dict,
                    metric: Metric = ACCURACY) -> list[str]:
    """deploy.png and a table when candidates were measured on the device (structured methods)."""
    measured = [g for g in groups if "ort_latency_ms_b1" in g]
    if not measured:
        return []
    base = next((r["decided"]["deploy"]["dense"] for r in records
                 if isinstance(r.get("decided", {}).get("deploy", {}).get("dense"), dict)), {})
    plotted, limits = plotted_latency(measured, base, records)
    deploy_plot(plotted, {**base, metric.val: dense[metric.val]}, root / "deploy.png", limits,
                title=f"{metric.phrase} on the device", metric=metric)
    out = ["", "## On the device (ONNX Runtime, 1 thread; ONNX file bytes)", "", "![deploy](deploy.png)", "",
           f"| setting | {metric.column('val')} | {metric.column('test')} | ms b1 | speed-up b1 | ms b32 | speed-up b32 | "
           "ONNX kB | INT8 kB | MACs |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    if base:
        test = metric.number(dense[metric.test]) if metric.test in dense else "–"
        out.append(f"| input model | {metric.number(dense[metric.val])} | {test} | "
                   f"{base['ort_latency_ms_b1']:.3f} | 1.00 | {base['ort_latency_ms_b32']:.2f} | 1.00 | "
                   f"{base['onnx_bytes'] / 1e3:,.1f} | {base['onnx_bytes_int8'] / 1e3:,.1f} | {dense['macs']:,} |")
    for g in sorted(measured, key=lambda g: g["ort_latency_ms_b1"]):
        out.append(f"| {g['label']} | {_pm(g, metric.val, metric)} | {_pm(g, metric.test, metric)} | {g['ort_latency_ms_b1']:.3f} | "
                   f"{g['speedup_b1']:.2f} | {g['ort_latency_ms_b32']:.2f} | {g['speedup_b32']:.2f} | "
                   f"{g['onnx_bytes'] / 1e3:,.1f} | {g['onnx_bytes_int8'] / 1e3:,.1f} | {g['macs']:,.0f} |")
    out += ["", "Speed-ups: each candidate timed beside the input model's ONNX file in one paired measurement "
            "(`latency_runs` rounds, each file run warm for at least 10 ms per turn), the ratio of their fastest rounds."]
    short = [(g["label"], speedup_warning(g, dense["macs"])) for g in measured]
    out += [""] * any(w for _, w in short) + [f"- Less than half the speed-up its MACs promise: {name}: {warning}"
                                             for name, warning in short if warning]
    return out


def _speedup_text(result: dict, key: str) -> str:
    """``2.10 (1.95–2.31)``: a paired speed-up and the p10–p90 of its per-round ratios; "–" when not measured."""
    if key not in result:
        return "–"
    low_high = result.get(f"{key}_spread")
    return f"{result[key]:.2f}" + (f" ({low_high[0]:.2f}–{low_high[1]:.2f})" if low_high else "")


def plotted_latency(measured: list[dict], base: dict, records: list[dict]) -> tuple[list[dict], dict]:
    """(groups, limits) as deploy.png draws them. With a relative batch-1 latency budget (``latency<=50%``) every
    candidate sits at the input model's ms / its paired ``speedup_b1`` and the line at the budget's fraction of
    that ms: one scale, so a candidate is left of the line exactly when its paired ratio meets the budget (its
    own ms and the recorded limit were timed at different moments). Otherwise the measured ms and limits."""
    limits, relative = {}, None
    for r in records:
        decided = r.get("decided", {}) if r.get("kind") == "candidate" else {}
        if not isinstance(decided.get("limit"), (int, float)):
            continue
        limits[r["budget_name"]] = decided["limit"]
        budget = _typed_budget(decided.get("budget"))
        if budget is not None and budget.kind == "latency" and budget.relative and budget.quantity == "ort_latency_ms_b1":
            relative = float(budget)
    reference = base.get("ort_latency_ms_b1")
    if relative is None or not reference:
        return measured, limits
    limits["ort_latency_ms_b1"] = relative * reference
    return [{**g, "ort_latency_ms_b1": reference / g["speedup_b1"]} if g.get("speedup_b1") else g
            for g in measured], limits


def _typed_budget(text) -> Budget | None:
    try:
        budget = parse_budget(text) if isinstance(text, str) else None
    except ConfigError:
        return None
    return budget if isinstance(budget, Budget) else None


EDGE_TITLE = "## Chosen model in every installed runtime (batch 1, 1 thread)"


def _edge_section(root: Path, device: str | None = None) -> tuple[list[str], dict]:
    """edge.png and a table of the input model, the chosen one and its INT8 form in every installed runtime; one
    line per model or runtime that could not be measured, and per runtime not installed."""
    head = ["", EDGE_TITLE, ""]
    try:
        result = edge_lib.measure(root, device=device)
    except EdgepruneError as exc:
        return head + [f"Not measured: {exc}"], {"error": str(exc)}
    models, runtimes = result["models"], result["runtimes"]
    measured = {n: m for n, m in models.items() if any(f"{k}_ms_b1" in m for k in runtimes)}
    int8 = result.get("int8") or {}
    metric = Metric(int8.get("metric", "acc"))
    out = list(head)
    if measured:
        edge_plot(measured, root / "edge.png", runtimes)
        out += ["![edge](edge.png)", "", f"| model | runtime | file kB | ms b1 | speed-up vs input | test {metric.label} |",
                "|---|---|---:|---:|---:|---:|"]
        for name, m in measured.items():
            prefix = {"chosen": "speedup", "chosen INT8": "speedup_int8"}.get(name)
            precision = {"chosen": "fp32", "chosen INT8": "int8"}.get(name)  # the input model is not scored
            for key, runtime in runtimes.items():
                if f"{key}_ms_b1" not in m:
                    continue
                up = "1.00" if prefix is None else _speedup_text(result, f"{prefix}_{key}_b1")
                score = (int8.get("scores", {}).get(key) or {}).get(precision)
                out.append(f"| {name} | {runtime} | {m[BY_KEY[key].bytes_key] / 1e3:,.1f} | {m[f'{key}_ms_b1']:.3f} | {up} | "
                           f"{metric.text(score) if score is not None else '–'} |")
        out += ["", f"Batch 1, 1 thread, median of {result['rounds']} interleaved rounds of every file ({result['cpu']}); "
                "each speed-up is the ratio to the input model's FP32 file in the same runtime, from those same rounds, "
                "with the p10–p90 of the per-round ratios. Measured once per chosen.pt (edge.json)."]
        if int8:
            out.append(f"INT8: static, calibrated on {int8['calibration']}; test figures on the {int8['data']}, "
                       "each file scored in its own runtime.")
        base, small = measured.get("input model"), measured.get("chosen")
        if base and small and small.get("onnx_bytes", 0) >= 0.99 * base.get("onnx_bytes", 1):
            out.append("Every format stores zeros like any weight: masked (unstructured) pruning changes bytes and "
                       "latency only when compressed (`edgeprune export --sparse-onnx`) or with channels removed.")
    else:
        (root / "edge.png").unlink(missing_ok=True)
    for name, m in models.items():
        if "error" in m:
            out.append(f"- {name}: {m['error']}")
        out += [f"- {name}, {runtime}: {error}" for runtime, error in m.get("errors", {}).items()]
    out += [f"- {note}" for note in result.get("notes", [])]
    out += [f"- not installed: {hint}" for hint in result.get("not_installed", [])]
    if "device" in result:
        out += ["", _device_line(result["device"], result["rounds"])]
    return out, result


def _device_line(d: dict, rounds: int) -> str:
    where = f"On device **{d['name']}** ({d['kind']}, {d['runtime']}, {d['threads']} thread(s))"
    if "error" in d:
        return f"{where}: not measured ({d['error']})."
    lo, hi = d["speedup_b1_spread"]
    return (f"{where}, batch 1, {rounds} rounds in turn: input model {d['input_ms_b1']:.3f} ms, chosen "
            f"{d['chosen_ms_b1']:.3f} ms, speed-up x{d['speedup_b1']:.2f} (per-round p10–p90 {lo:.2f}–{hi:.2f}).")
