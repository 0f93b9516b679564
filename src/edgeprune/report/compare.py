"""Comparisons a run report makes, with their uncertainty: from records that keep per-image test correctness.

A *setting* is a list of records that differ only by seed. Accuracies get a 95 % interval (Wilson from the
test-set size with one seed, a t-interval over seeds with several); two settings, or a setting and the
input model, are compared paired on the same test images (:mod:`edgeprune.report.stats`).
"""

from __future__ import annotations

import statistics

from edgeprune.report import stats


def _correct(record: dict):
    packed = record.get("test_correct")
    return stats.unpack(packed) if isinstance(packed, dict) else None


def _corrects(members: list[dict]) -> list:
    out = [c for c in (_correct(m) for m in members) if c is not None]
    return out if out and len({c.size for c in out}) == 1 else []


def interval(members: list[dict]) -> tuple[float, float] | None:
    """(lo, hi) of the setting's test accuracy (Wilson; widened by a t-interval over seeds when several);
    None without per-image test results."""
    corrects = _corrects(members)
    if not corrects:
        return None
    _, lo, hi = stats.accuracy_interval(corrects)
    return lo, hi


def accuracy_text(members: list[dict]) -> str:
    """Test accuracy of a setting with its 95 % interval, e.g. ``97.25 % [96.91, 97.56]``."""
    corrects = _corrects(members)
    if not corrects:
        values = [m["test_acc"] for m in members if isinstance(m.get("test_acc"), (int, float))]
        return f"{100 * statistics.fmean(values):.2f} %" if values else "–"
    mean, lo, hi = stats.accuracy_interval(corrects)
    seeds = f" over {len(corrects)} seeds" if len(corrects) > 1 else ""
    return f"{100 * mean:.2f} % [{100 * lo:.2f}, {100 * hi:.2f}]{seeds}"


def difference(a: list[dict], b: list[dict]) -> stats.Difference | None:
    """Setting ``a`` minus setting ``b`` on the same test images, paired by seed (``b`` may be the single
    input-model record, then every seed of ``a`` is paired with it). None without per-image results."""
    by_seed = {m.get("seed"): _correct(m) for m in b}
    pairs = []
    for m in a:
        ca = _correct(m)
        cb = by_seed.get(m.get("seed")) if len(b) > 1 else _correct(b[0])
        if ca is not None and cb is not None and ca.size == cb.size:
            pairs.append((ca, cb))
    return stats.over_seeds(pairs) if pairs else None


def best_by_val(groups: list[tuple[dict, list[dict]]]) -> tuple[dict, list[dict]] | None:
    """The (row, members) of highest mean validation accuracy (selection never looks at test)."""
    return max(groups, key=lambda g: statistics.fmean(m["val_acc"] for m in g[1])) if groups else None


def mam_vs_baselines(rows: list[dict], members: dict[str, list[dict]]) -> list[dict]:
    """Per budget: the best Mix-and-Match setting vs the best global baseline (both by validation),
    paired on the test images. ``members``: row label -> its records."""
    out = []
    for budget in sorted({r["budget"] for r in rows}):
        here = [(r, members[r["label"]]) for r in rows if r["budget"] == budget]
        mam = best_by_val([g for g in here if "baseline" not in g[0]["setting"]])
        base = best_by_val([g for g in here if "baseline" in g[0]["setting"]])
        if mam is None or base is None:
            continue
        d = difference(mam[1], base[1])
        out.append({"budget": budget, "mam": mam[0]["label"], "baseline": base[0]["label"],
                    "mam_test": accuracy_text(mam[1]), "baseline_test": accuracy_text(base[1]),
                    "difference": d.as_dict() if d else None, "_d": d})
    return out


def comparison_lines(comparisons: list[dict], chosen_vs_dense: stats.Difference | None, chosen: str | None) -> list[str]:
    """The report's section "How sure are these numbers" (markdown lines)."""
    lines = ["## How sure are these numbers", "",
             "Test accuracies carry a 95 % interval (Wilson from the test-set size, widened by a t-interval over "
             "seeds when there are several). Differences are paired on the same test images (paired bootstrap over "
             "the images, McNemar's exact p with one seed; with several seeds also a t-interval on the per-seed "
             "differences, the wider interval counts); a difference whose interval covers zero is reported as no "
             "significant difference.", ""]
    if chosen and chosen_vs_dense is not None:
        lines.append(f"- **Chosen vs input model**: {stats.verdict(chosen_vs_dense, 'the chosen model', 'the input model')}.")
    for c in comparisons:
        d = c["_d"]
        head = (f"- **Budget {c['budget']:g}**: best Mix-and-Match setting {c['mam']} (test {c['mam_test']}) vs best "
                f"global baseline {c['baseline']} (test {c['baseline_test']})")
        if d is None:
            lines.append(head + ": no per-image test results to compare.")
            continue
        lines.append(f"{head}: {stats.verdict(d, 'Mix-and-Match', 'the baseline')}.")
        if not (d.significant and d.diff > 0):
            lines.append("  **A single-criterion global baseline is as good as or better than Mix-and-Match here"
                         + (" (better)." if d.significant else " (within the interval).") + "**")
    return lines + [""]
