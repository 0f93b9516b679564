"""The --edge report's speed-ups (chosen vs input model) are ratios from one interleaved measurement, with the
spread (p10/p90) of the per-round ratios stored and shown beside each."""

import pytest

import edgeprune
from edgeprune.runs.report import EDGE_TITLE

pytest.importorskip("executorch")
pytestmark = pytest.mark.timeout(300)


@pytest.mark.slow
def test_edge_speedups_carry_the_per_round_spread(tmp_path):
    out = tmp_path / "run"
    summary = edgeprune.sweep("lenet5", "digits", method="magnitude", budgets=[0.5], finetune=0, out=out,
                              progress=False, edge_report=True).summary
    edge = summary["edge"]
    base, chosen = edge["models"]["input model"], edge["models"]["chosen"]
    for runtime in ("ort", "et"):
        ratios = sorted(b / c for b, c in zip(base[f"{runtime}_rounds_ms"], chosen[f"{runtime}_rounds_ms"]))
        low, high = edge[f"speedup_{runtime}_b1_spread"]
        assert ratios[0] <= low <= high <= ratios[-1]
    section = (out / "report.md").read_text().split(EDGE_TITLE)[1]
    low, high = edge["speedup_ort_b1_spread"]
    assert f"{edge['speedup_ort_b1']:.2f} ({low:.2f}–{high:.2f})" in section
