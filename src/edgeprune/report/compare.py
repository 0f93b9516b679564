"""Comparisons a run report makes, with their uncertainty: from records that keep per-image test correctness.

A *setting* is a list of records that differ only by seed. Accuracies get a 95 % interval (Wilson from the
test-set size with one seed, a t-interval over seeds with several); two settings, or a setting and the
input model, are compared paired on the same test images (:mod:`edgeprune.report.stats`).

Other tasks (records that name their metric) keep no per-example results but a bootstrap interval over the
test examples per record (``test_<metric>_ci``). A setting's value is the mean over seeds and its interval,
bound by bound, the wider of the mean of the seeds' bootstrap intervals (test-set noise) and the t-interval over
seeds (training noise) — the rule classifiers follow with Wilson in place of the bootstrap. Two such settings
are compared by their intervals: disjoint intervals name the better one, overlapping ones show no difference
(a conservative reading: no paired test is possible without per-example results).
"""

from __future__ import annotations

import math
import statistics

from edgeprune.report import stats
from edgeprune.report.metric import ACCURACY, Metric


def _correct(record: dict):
    packed = record.get("test_correct")
    return stats.unpack(packed) if isinstance(packed, dict) else None


def _corrects(members: list[dict]) -> list:
    out = [c for c in (_correct(m) for m in members) if c is not None]
    return out if out and len({c.size for c in out}) == 1 else []


def interval(members: list[dict], metric: Metric = ACCURACY) -> tuple[float, float] | None:
    """(lo, hi) of the setting's test accuracy (Wilson; widened by a t-interval over seeds when several);
    None without per-image test results. Other tasks: :func:`task_interval`."""
    if metric.named:
        found = task_interval(members, metric)
        return found[1:] if found else None
    corrects = _corrects(members)
    if not corrects:
        return None
    _, lo, hi = stats.accuracy_interval(corrects)
    return lo, hi


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def task_interval(members: list[dict], metric: Metric) -> tuple[float, float, float] | None:
    """(mean, lo, hi) of a setting's test value of a named metric: the mean over seeds; bound by bound the
    wider of the mean of the seeds' bootstrap intervals and the t-interval over seeds (cut to the metric's range
    where known). None without a test value and an interval for every seed."""
    values = [m[metric.test] for m in members if _finite(m.get(metric.test))]
    bounds = [m[metric.ci] for m in members
              if isinstance(m.get(metric.ci), (list, tuple)) and len(m[metric.ci]) == 2 and all(map(_finite, m[metric.ci]))]
    if not values or len(bounds) != len(values) or len(values) != len(members):
        return None
    mean = statistics.fmean(values)
    lo, hi = statistics.fmean(b[0] for b in bounds), statistics.fmean(b[1] for b in bounds)
    if len(values) > 1:
        _, t_lo, t_hi = stats.t_interval(values)
        lo, hi = metric.clamp(min(lo, t_lo), max(hi, t_hi))
    return mean, lo, hi


def setting_text(members: list[dict], metric: Metric = ACCURACY) -> str:
    """The setting's test value with its 95 % interval: ``97.25 % [96.91, 97.56]``, ``0.4123 [0.3981, 0.4270]``."""
    if not metric.named:
        return accuracy_text(members)
    unit = " %" if metric.percent else ""
    found = task_interval(members, metric)
    if found is None:
        values = [m[metric.test] for m in members if _finite(m.get(metric.test))]
        return f"{metric.number(statistics.fmean(values))}{unit}" if values else "–"
    mean, lo, hi = found
    seeds = f" over {len(members)} seeds" if len(members) > 1 else ""
    return f"{metric.number(mean)}{unit} [{metric.number(lo)}, {metric.number(hi)}]{seeds}"


def by_intervals(a: list[dict], b: list[dict], metric: Metric, a_name: str, b_name: str) -> dict | None:
    """Setting ``a`` vs setting ``b`` of a named metric by their test intervals: ``{"a": [mean, lo, hi], "b": ...,
    "significant": disjoint, "verdict": one sentence}``; None without intervals."""
    ia, ib = task_interval(a, metric), task_interval(b, metric)
    if ia is None or ib is None:
        return None
    disjoint = ia[1] > ib[2] or ib[1] > ia[2]
    values = f"{metric.text(ia[0])} vs {metric.text(ib[0])}, {metric.direction}"
    if not disjoint:
        text = (f"no difference shown between {a_name} and {b_name}: their 95 % intervals overlap ({values}; "
                "not a paired test)")
    else:
        better, worse = (a_name, b_name) if metric.score(ia[0]) > metric.score(ib[0]) else (b_name, a_name)
        text = f"{better} is better than {worse}: their 95 % intervals do not overlap ({values})"
    return {"a": list(ia), "b": list(ib), "significant": disjoint, "verdict": text}


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


def best_by_val(groups: list[tuple[dict, list[dict]]], metric: Metric = ACCURACY) -> tuple[dict, list[dict]] | None:
    """The (row, members) of the best mean validation value, in the metric's direction (selection never looks at test)."""
    return max(groups, key=lambda g: metric.score(statistics.fmean(m[metric.val] for m in g[1]))) if groups else None


def _pruned(row: dict) -> bool:
    """A setting of the method itself: neither a global baseline nor the scratch baseline."""
    return not {"baseline", "scratch"} & set(row["setting"])


def mam_vs_baselines(rows: list[dict], members: dict[str, list[dict]], metric: Metric = ACCURACY) -> list[dict]:
    """Per budget: the best Mix-and-Match setting vs the best global baseline (both by validation),
    paired on the test images (other tasks: by their intervals). ``members``: row label -> its records."""
    out = []
    for budget in sorted({r["budget"] for r in rows}):
        here = [(r, members[r["label"]]) for r in rows if r["budget"] == budget]
        mam = best_by_val([g for g in here if _pruned(g[0])], metric)
        base = best_by_val([g for g in here if "baseline" in g[0]["setting"]], metric)
        if mam is None or base is None:
            continue
        d = difference(mam[1], base[1]) if not metric.named else None
        found = by_intervals(mam[1], base[1], metric, "Mix-and-Match", "the baseline") if metric.named else None
        out.append({"budget": budget, "mam": mam[0]["label"], "baseline": base[0]["label"],
                    "mam_test": setting_text(mam[1], metric), "baseline_test": setting_text(base[1], metric),
                    "difference": d.as_dict() if d else None, "_d": d,
                    **({"intervals": found} if metric.named else {})})
    return out


def pruned_vs_scratch(rows: list[dict], members: dict[str, list[dict]], metric: Metric = ACCURACY) -> list[dict]:
    """Per budget with a scratch baseline: the best pruned setting (by validation) against the input architecture
    narrowed and trained from scratch, paired on the test images (other tasks: by their intervals)."""
    out = []
    for budget in sorted({r["budget"] for r in rows}):
        here = [(r, members[r["label"]]) for r in rows if r["budget"] == budget]
        scratch = best_by_val([g for g in here if "scratch" in g[0]["setting"]], metric)
        pruned = best_by_val([g for g in here if _pruned(g[0])], metric)
        if scratch is None or pruned is None:
            continue
        if metric.named:
            found = by_intervals(pruned[1], scratch[1], metric, "pruning", "training the small model from scratch")
            verdict = found["verdict"] if found else "no test results to compare"
            won = bool(found and found["significant"] and metric.score(found["a"][0]) > metric.score(found["b"][0]))
        else:
            d = difference(pruned[1], scratch[1])
            verdict = stats.verdict(d, "pruning", "training the small model from scratch") if d else \
                "no per-image test results to compare"
            won = bool(d and d.significant and d.diff > 0)
        out.append({"budget": budget, "pruned": pruned[0]["label"], "scratch": scratch[0]["label"],
                    "pruned_test": setting_text(pruned[1], metric), "scratch_test": setting_text(scratch[1], metric),
                    "verdict": verdict, "pruning_won": won})
    return out


NO_SCRATCH = ("**Not measured**: this run has no scratch baseline, so it does not say whether the same architecture "
              "made narrower and trained from scratch would do as well as pruning (on some models it does better: "
              "VGG-16/2 on MNIST in edgeprune's few-shot benchmark). Add it with the option `scratch_epochs=N` "
              "(`-O scratch_epochs=N`), N the input model's training epochs plus the fine-tune's.")


def scratch_lines(found: list[dict], structured: bool = False) -> list[str]:
    """The report's section on the scratch baseline; for a structured front without one, that it is missing."""
    title = ["## Pruning vs training the small model from scratch", ""]
    if not found:
        return title + [NO_SCRATCH, ""] if structured else []
    lines = title + ["The scratch baseline is the input architecture narrowed uniformly to the same budget, "
                     "re-initialised and trained from scratch without distillation (option `scratch_epochs`).", ""]
    for c in found:
        said = "pruning beat training the small model" if c["pruning_won"] else \
            "**pruning did not beat training the small model**"
        lines.append(f"- **Budget {c['budget']:g}**: {said}: best pruned setting {c['pruned']} (test {c['pruned_test']}) "
                     f"vs {c['scratch']} (test {c['scratch_test']}); {c['verdict']}.")
    return lines + [""]


def _section_lines(intro: str, chosen_verdict: str | None, comparisons: list[dict], judge, missing: str,
                   within: str) -> list[str]:
    """The section "How sure are these numbers": ``judge(c)`` is ``(verdict, significant, mam_better)`` for one
    budget's comparison, or None where there is nothing to compare (then "no ``missing`` to compare")."""
    lines = ["## How sure are these numbers", "", intro, ""]
    if chosen_verdict is not None:
        lines.append(f"- **Chosen vs input model**: {chosen_verdict}.")
    for c in comparisons:
        judged = judge(c)
        head = (f"- **Budget {c['budget']:g}**: best Mix-and-Match setting {c['mam']} (test {c['mam_test']}) vs best "
                f"global baseline {c['baseline']} (test {c['baseline_test']})")
        if judged is None:
            lines.append(f"{head}: no {missing} to compare.")
            continue
        verdict, significant, better = judged
        lines.append(f"{head}: {verdict}.")
        if not better:
            lines.append("  **A single-criterion global baseline is as good as or better than Mix-and-Match here"
                         + (" (better)." if significant else f" (within the {within}).") + "**")
    return lines + [""]


def comparison_lines(comparisons: list[dict], chosen_vs_dense: stats.Difference | None, chosen: str | None) -> list[str]:
    """The report's section "How sure are these numbers" (markdown lines)."""
    intro = ("Test accuracies carry a 95 % interval (Wilson from the test-set size, widened by a t-interval over "
             "seeds when there are several). Differences are paired on the same test images (paired bootstrap over "
             "the images, McNemar's exact p with one seed; with several seeds also a t-interval on the per-seed "
             "differences, the wider interval counts); a difference whose interval covers zero is reported as no "
             "significant difference.")
    chosen_verdict = (stats.verdict(chosen_vs_dense, "the chosen model", "the input model")
                      if chosen and chosen_vs_dense is not None else None)

    def judge(c: dict):
        d = c["_d"]
        return None if d is None else (stats.verdict(d, "Mix-and-Match", "the baseline"), d.significant,
                                       d.significant and d.diff > 0)

    return _section_lines(intro, chosen_verdict, comparisons, judge, "per-image test results", "interval")


def task_comparison_lines(comparisons: list[dict], chosen_vs_dense: dict | None, chosen: str | None,
                          metric: Metric) -> list[str]:
    """The section "How sure are these numbers" for a named metric (comparisons by intervals, not paired)."""
    intro = (f"Test {metric.label} carries a 95 % interval: a percentile bootstrap over the test examples per model; "
             "with several seeds the mean of their values, with on each side the wider of the mean of the seeds' "
             "bootstrap intervals and a t-interval over seeds (cut to the metric's range where known). Records of this "
             "task keep no per-example results, so two models are compared by their intervals, not paired: intervals "
             "that do not overlap name the better model, overlapping ones show no difference (a conservative reading).")
    chosen_verdict = chosen_vs_dense["verdict"] if chosen and chosen_vs_dense is not None else None

    def judge(c: dict):
        found = c.get("intervals")
        return None if found is None else (found["verdict"], found["significant"], found["significant"]
                                           and metric.score(found["a"][0]) > metric.score(found["b"][0]))

    return _section_lines(intro, chosen_verdict, comparisons, judge, "test intervals", "intervals")
