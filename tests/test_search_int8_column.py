"""--int8: every final model's INT8 accuracy is measured in ONNX Runtime and the report gains the paper's drop."""

import pytest

from edgeprune.runs import RunStore
from edgeprune.runs.search import SearchConfig, run_search

pytestmark = pytest.mark.timeout(300)


def test_int8_accuracy_and_drop_in_the_report(tmp_path):
    cfg = SearchConfig.build(
        model="lenet300", dataset="digits", criteria=["magnitude"], strategies=["min", "max"], dense_epochs=4,
        epochs=1, baseline_matches=1, baselines=["magnitude"], int8="static",
        dense={"batch_size": 64, "lr": 0.05}, finetune={"batch_size": 64},
    )
    summary = run_search(cfg, tmp_path, progress=False)
    records = RunStore(tmp_path).records()
    for r in records:
        assert 0.5 < r["int8_acc"] <= 1.0 and abs(r["fp32_acc_ort"] - r["test_acc"]) < 0.01, r["id"]
    assert summary["drop_reductions"][0]["accuracy"] == "int8_acc"
    report = (tmp_path / "report.md").read_text()
    assert "INT8 test %" in report and "ONNX Runtime" in report
