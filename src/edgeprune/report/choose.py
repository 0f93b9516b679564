"""Which model to recommend, and which Mix-and-Match settings the baselines are matched to.

The chosen model is the sparsest setting on the validation Pareto front whose mean validation accuracy is
within ``tolerance`` of the dense model's; if none is, the most accurate one. Selection uses validation
accuracy only.
"""

from __future__ import annotations

from edgeprune.report.pareto import pareto_front
from edgeprune.report.tables import group_by_setting


def mam_groups(records: list[dict]) -> list[dict]:
    return [g for g in group_by_setting(records) if g["kind"] == "mam"]


def front_of(groups: list[dict], x: str = "sparsity") -> list[dict]:
    points = [(g[x], g["val_acc"]) for g in groups]
    return [groups[i] for i in pareto_front(points)]


def choose(groups: list[dict], dense_val: float, tolerance: float) -> dict | None:
    front = front_of(groups)
    if not front:
        return None
    good = [g for g in front if g["val_acc"] >= dense_val - tolerance]
    return max(good, key=lambda g: g["sparsity"]) if good else max(front, key=lambda g: g["val_acc"])


def matched_settings(records: list[dict], dense_record: dict, n: int, tolerance: float) -> list[dict]:
    """The chosen setting, then the other front settings by validation accuracy: ``n`` in all."""
    groups = mam_groups(records)
    chosen = choose(groups, dense_record["val_acc"], tolerance)
    if chosen is None or n == 0:
        return []
    others = sorted((g for g in front_of(groups) if g is not chosen), key=lambda g: -g["val_acc"])
    return [chosen, *others][:n]
