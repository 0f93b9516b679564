"""One front over everything trained: the global baselines are candidates of the Mix-and-Match sweep at
the same budget, the chosen model is the best of all with its origin, and the report carries intervals
and says when a single-criterion baseline is as good or better."""

from __future__ import annotations

import json

import edgeprune
from byom.userdata import FINETUNE, loaders, trained_model


def test_front_includes_baselines_and_report_is_honest(tmp_path):
    options = {"criteria": ["magnitude"], "strategies": ["balanced", "p70"], "range_rules": {"small_numel": 0},
               "calib_batches": 2, "baselines": ["magnitude", "snip"]}
    result = edgeprune.sweep(trained_model(), loaders(), method="mix_and_match", budgets=[0.6], seeds=1,
                             out=tmp_path / "run", finetune=FINETUNE, progress=False, **options)
    cands = [r for r in result.records if r["kind"] == "candidate"]
    baselines = {r["setting"].get("baseline") for r in cands} - {None}
    assert baselines == {"magnitude", "snip"}
    for r in cands:  # every candidate at the matched sparsity, with per-image test results
        assert abs(r["budget_achieved"] - 0.6) < 0.002
        assert r["test_n"] == 347 and r["test_correct"]["n"] == r["test_n"]

    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    origins = {g["origin"] for g in summary["front"]}
    # the front is over all candidates: the best by validation (whatever its origin) is on it
    best = max(cands, key=lambda r: r["val_acc"])
    assert any(best["id"] in g["ids"] for g in summary["front"])
    assert origins <= {"mix_and_match", "global magnitude", "global snip"}
    assert summary["chosen_origin"] in origins
    assert (tmp_path / "run" / "chosen.pt").is_file()
    comp = summary["mam_vs_baseline"]
    assert len(comp) == 1 and comp[0]["difference"] is not None
    d = comp[0]["difference"]
    assert d["lo"] <= d["diff"] <= d["hi"] and d["n"] == 347

    report = (tmp_path / "run" / "report.md").read_text()
    assert "global snip" in report and "95 % CI" in report and "How sure are these numbers" in report
    assert "Chosen vs input model" in report
    if not (d["significant"] and d["diff"] > 0):
        assert "A single-criterion global baseline is as good as or better than Mix-and-Match" in report
    if not d["significant"]:
        assert "no significant difference" in report
    assert "drop reduction" not in report
