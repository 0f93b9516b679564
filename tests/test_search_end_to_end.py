"""A reduced Mix-and-Match search on digits: records, matched baselines, report files, resume."""

import json

import pytest
from PIL import Image

from edgeprune.runs.search import SearchConfig, run_search

pytestmark = pytest.mark.timeout(300)


def small_config(**kw):
    base = dict(
        model="lenet300", dataset="digits", criteria=["magnitude", "gradient"], strategies=["min", "balanced", "p50", "max"],
        dense_epochs=3, epochs=1, calib_batches=2, baseline_matches=1, baselines=["magnitude", "random"],
        dense={"batch_size": 64}, finetune={"batch_size": 64, "max_batches": 5},
    )
    return SearchConfig.build({**base, **kw})


def test_search_writes_records_baselines_and_report(tmp_path):
    summary = run_search(small_config(), tmp_path / "run", progress=False)
    run = tmp_path / "run"
    records = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids))
    mam = [r for r in records if r["kind"] == "mam"]
    # balanced and p50 are the same strategy: trained once, reported under both names
    assert len(mam) == 3 * 2
    assert any("p50" in r["aliases"] for r in mam if r["strategy"] == "balanced")
    # masks exact: the measured sparsity is what the strategy asked for (floor per layer)
    for r in mam:
        assert r["status"] == "ok" and 0 < r["sparsity"] < 1 and 0 <= r["test_acc"] <= 1
    bases = [r for r in records if r["kind"] == "baseline"]
    assert len(bases) == 2
    for b in bases:
        matched = next(r for r in mam if b["matched_to"] == f"mam-{r['criterion']}-{r['strategy']}")
        assert abs(b["sparsity"] - matched["sparsity"]) <= 0.005
    for name in ("results.csv", "report.md", "pareto.png", "summary.json", "chosen.pt"):
        assert (run / name).exists(), name
    with Image.open(run / "pareto.png") as img:
        img.verify()
    assert summary["chosen"] is not None
    assert "Pareto front" in (run / "report.md").read_text()

    # re-running the same command recomputes nothing
    before = (run / "results.jsonl").read_text()
    run_search(small_config(), run, progress=False)
    assert (run / "results.jsonl").read_text() == before
