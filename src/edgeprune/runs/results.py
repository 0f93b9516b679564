"""A run's results as its report reads them: records checked, candidates grouped into settings (mean ± std over
seeds) and the chosen setting on the front (the rule: :mod:`edgeprune.runs.report`)."""

from __future__ import annotations

import json
import statistics

from edgeprune.errors import DamagedFileError
from edgeprune.report import compare
from edgeprune.report.metric import ACCURACY, Metric
from edgeprune.runs.store import RunStore

NUMERIC = ("budget_achieved", "val_acc_pruned", "val_acc", "test_acc", "sparsity", "params", "nonzeros", "macs",
           "seconds")
# measured on the device by structured methods (ONNX Runtime, 1 thread; bytes of the ONNX files)
DEPLOY = ("ort_latency_ms_b1", "ort_latency_ms_b32", "speedup_b1", "speedup_b32", "onnx_bytes", "onnx_bytes_int8")
SIZES = ("sparsity", "params", "nonzeros", "macs", "seconds")


def numeric(metric: Metric, records: list[dict]) -> tuple[str, ...]:
    """The numeric fields a setting averages: the classifier's, or the named metric's and the task's other test metrics."""
    if not metric.named:
        return NUMERIC
    others = [k for r in records for k, v in r.items() if k.startswith("test_") and k not in (metric.test, "test_n")
              and isinstance(v, (int, float)) and not isinstance(v, bool)]
    return ("budget_achieved", metric.pruned, metric.val, metric.test, *dict.fromkeys(others), *SIZES)


def other_tests(metric: Metric, row: dict) -> list[tuple[str, float]]:
    """(name, value) of the task's test metrics besides the primary one (``pixel_acc``, ``mae``...)."""
    return [(k[5:], v) for k, v in row.items()
            if metric.named and k.startswith("test_") and k[5:] != metric.name and not k.endswith(("_std", "_ci", "_n"))
            and isinstance(v, float)]


def origin(row: dict) -> str:
    """Where a setting came from: the run's method, or the global baseline trained beside it."""
    baseline = row.get("setting", {}).get("baseline")
    return f"global {baseline}" if baseline else row["method"]


def label(row: dict) -> str:
    setting = ", ".join(f"{k}={v}" for k, v in row["setting"].items()
                        if k not in ("aliases", "baseline") and v not in (None, [], {}))
    budget = row.get("budget_text") or f"{row['budget_name']} {row['budget']:g}"  # typed budgets: as the user wrote them
    return f"{origin(row)} @ {budget}" + (f" ({setting})" if setting else "")


def group(records: list[dict], dense: dict, metric: Metric = ACCURACY) -> list[dict]:
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
        if first.get("budget_text"):
            row["budget_text"] = first["budget_text"]
        row["ids"] = [m["id"] for m in members]
        row["seeds"] = sorted(m["seed"] for m in members)
        for key in numeric(metric, members) + DEPLOY:
            values = [m[key] for m in members if isinstance(m.get(key), (int, float))]
            if values:
                row[key] = statistics.fmean(values)
                row[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        row["removed"] = 1.0 - row["nonzeros"] / max(dense["nonzeros"], 1)
        row["origin"] = origin(row)
        row["label"] = label(row)
        row["test_ci"] = compare.interval(members, metric) if metric.test in row else None
        rows.append(row)
    return rows


def choose(front: list[dict], dense_val: float, tolerance: float, metric: Metric = ACCURACY) -> dict | None:
    """The most accurate setting of the highest budget that stays within ``tolerance`` (else the most
    accurate). Budgets, not the achieved fractions, rank compression: settings of one budget all sit at
    it (calibrated to within 0.1 pp), and a 0.05 pp sparser candidate must not win over a more accurate one.
    Another task's metric: the best in its direction, ``tolerance`` as :meth:`Metric.within` takes it."""
    good = [g for g in front if metric.within(g[metric.val], dense_val, tolerance)]
    if good:
        top = max(g["budget"] for g in good)
        return max((g for g in good if g["budget"] == top), key=lambda g: metric.score(g[metric.val]))
    return max(front, key=lambda g: metric.score(g[metric.val])) if front else None


_NUMBER = (int, float)
VAL = "val"  # stands for the validation key of the record's metric (val_acc, val_miou...)
_FIELDS = {  # what the report reads from each kind of record, and its type
    "dense": {VAL: _NUMBER, "params": _NUMBER, "nonzeros": _NUMBER, "macs": _NUMBER},
    "ok": {"method": str, "budget": _NUMBER, "budget_name": str, "seed": int, "setting": dict,
           VAL: _NUMBER, "params": _NUMBER, "nonzeros": _NUMBER, "macs": _NUMBER},
    "failed": {"error": str},
}


def _metric_checked(r: dict, where: str, run: Metric | None) -> Metric:
    """The metric ``r`` names, checked to be a name and a direction and the same as the run's other records'."""
    name, higher = r.get("metric", "acc"), r.get("metric_higher", True)
    if not isinstance(name, str) or not name.isidentifier() or not isinstance(higher, bool):
        raise DamagedFileError(f"{where}: record {r['id']!r} has metric={name!r}, metric_higher={higher!r}; expected a "
                               "metric name and true/false (was the file edited?)")
    metric = Metric.of(r)
    if run is not None and metric != run:
        raise DamagedFileError(f"{where}: record {r['id']!r} measures {metric.name!r} ({metric.direction}); the run's "
                               f"earlier records {run.name!r} ({run.direction}) (was the file edited?)")
    return metric


def check_records(store: RunStore) -> list[dict]:
    """The records of ``store``, each checked to hold the fields the report reads (one line naming the line)."""
    out, run = [], None
    for line, r in store.records(repair=False, with_lines=True):
        where = f"{str(store.results_path)!r} line {line}"
        kind = "dense" if r.get("kind") == "dense" else r.get("status") if r.get("kind") == "candidate" else None
        if kind not in _FIELDS:
            raise DamagedFileError(f"{where}: record {r['id']!r} has kind {r.get('kind')!r} / status {r.get('status')!r}; "
                                   "expected a dense record or a candidate with status ok or failed (was the file edited?)")
        if kind != "failed":
            run = _metric_checked(r, where, run)
        for key, types in _FIELDS[kind].items():
            key = run.val if key == VAL else key
            if not isinstance(r.get(key), types) or isinstance(r.get(key), bool):
                raise DamagedFileError(f"{where}: record {r['id']!r} has {key}={r.get(key)!r}; expected a "
                                       f"{'number' if types is _NUMBER else types.__name__} (was the file edited?)")
        checkpoint = r.get("checkpoint")
        if checkpoint is not None and (not isinstance(checkpoint, str)
                                       or store.root.resolve() not in (store.root / checkpoint).resolve().parents):
            raise DamagedFileError(f"{where}: record {r['id']!r} names checkpoint {checkpoint!r}, not a file inside "
                                   "the run directory (was the file edited?)")
        out.append(r)
    return out
