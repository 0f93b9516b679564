"""A model from structured Mix-and-Match is physically smaller: it saves and loads back (narrower layers,
fewer heads), exports to ONNX with parity, and its record holds what the device sees (ONNX bytes, ORT
latency at batch 1 and 32); a sweep's report shows accuracy against latency and bytes with the budget."""

import pytest
import torch

import edgeprune
from edgeprune import data as data_lib
from edgeprune import models
from edgeprune.export import export_verified


@pytest.fixture(scope="module")
def digits():
    return data_lib.load("digits")


@pytest.mark.slow
def test_vit_loses_heads_saves_loads_and_exports(digits, tmp_path):
    model = models.create("vit", num_classes=10, in_channels=1, image_size=8, dim=32, depth=2, num_heads=4)
    pruned = edgeprune.prune(model, digits, method="mix_and_match", budget="params<=60%", finetune=0,
                             granularity="channel", criteria=["product"], strategies=["max"], calib_batches=2,
                             deploy_metrics=False)
    small = pruned.model
    assert pruned.record["params"] <= 0.6 * pruned.dense["params"]
    assert sum(b.attn.num_heads for b in small.blocks) < 8

    edgeprune.save(pruned, tmp_path / "small.pt")
    loaded = edgeprune.load(tmp_path / "small.pt")
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(loaded.eval()(x), small.eval()(x), atol=1e-6)
    assert [b.attn.num_heads for b in loaded.blocks] == [b.attn.num_heads for b in small.blocks]
    assert export_verified(loaded, tmp_path / "small.onnx", x)["max_abs_diff"] <= 1e-4


@pytest.mark.slow
def test_size_budget_is_met_by_the_shipped_file_and_the_report_shows_the_device(digits, tmp_path):
    model = models.create("lenet5", num_classes=10, in_channels=1, image_size=8)
    result = edgeprune.sweep(model, digits, method="mix_and_match", budgets=["size<=60%"], out=tmp_path / "run",
                             finetune=0, progress=False, granularity="channel", criteria=["magnitude"],
                             strategies=["balanced"], calib_batches=2)
    record = next(r for r in result.records if r.get("kind") == "candidate")
    dense = record["decided"]["deploy"]["dense"]
    assert record["budget_achieved"] <= 0.6 * dense["onnx_bytes"]  # the budget measures the shipped file itself
    assert record["onnx_bytes"] == pytest.approx(record["budget_achieved"], rel=1e-3)  # deploy metrics predict it
    assert record["onnx_bytes_int8"] < record["onnx_bytes"]
    assert record["ort_latency_ms_b1"] > 0 and record["speedup_b32"] > 0 and record["macs"] > 0

    loaded = edgeprune.load(tmp_path / "run" / record["checkpoint"])
    x = torch.randn(4, 1, 8, 8)
    shipped = export_verified(loaded, tmp_path / "small.onnx", x)
    assert shipped["bytes"] == pytest.approx(record["onnx_bytes"], rel=0.01)

    report = (tmp_path / "run" / "report.md").read_text()
    assert "## On the device" in report and "size<=60%" in report
    assert (tmp_path / "run" / "deploy.png").stat().st_size > 0
