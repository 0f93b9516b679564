"""Latency figures are sane: positive, batch 32 slower per call than batch 1, the same keys for torch and
ONNX Runtime, threads and CPU recorded; the bench command prints them and writes JSON."""

import json

import torch

from edgeprune import models
from edgeprune.export import export_onnx
from edgeprune.export.ort_latency import ort_latency
from edgeprune.measure import latency


def test_ort_latency_matches_torch_latency_shape(tmp_path):
    torch.manual_seed(0)
    model = models.create("lenet5", num_classes=10, in_channels=1, image_size=28)
    export_onnx(model, tmp_path / "m.onnx")
    b1 = ort_latency(tmp_path / "m.onnx", batch_size=1, runs=15, warmup=3, threads=1)
    b32 = ort_latency(tmp_path / "m.onnx", batch_size=32, runs=15, warmup=3, threads=1)
    reference = latency(model, (1, 28, 28), batch_size=1, runs=3, warmup=1, threads=1)
    assert set(b1) == set(reference)
    assert b1["runtime"] == "onnxruntime" and reference["runtime"] == "torch"
    assert b1["threads"] == 1 and b1["cpu"] == reference["cpu"] and b1["runs"] == 15
    assert 0 < b1["p10_ms"] <= b1["median_ms"] <= b1["p90_ms"]
    assert b32["median_ms"] > b1["median_ms"]


def test_bench_command_both_runtimes(run_cli, tmp_path):
    path = models.save(models.create("lenet300", num_classes=10, in_channels=1, image_size=16), tmp_path / "m.pt")
    code, out, err = run_cli("bench", path, "--runtime", "both", "--batch", "1,32", "--runs", "10", "--warmup", "2",
                             "--threads", "1", "--json", tmp_path / "bench.json")
    assert code == 0, err
    assert "onnxruntime" in out and "torch" in out
    info = json.loads((tmp_path / "bench.json").read_text())
    rows = {(r["runtime"], r["batch_size"]): r for r in info["results"]}
    assert set(rows) == {("torch", 1), ("torch", 32), ("onnxruntime", 1), ("onnxruntime", 32)}
    for runtime in ("torch", "onnxruntime"):
        assert 0 < rows[(runtime, 1)]["median_ms"] < rows[(runtime, 32)]["median_ms"]
        assert rows[(runtime, 1)]["threads"] == 1
    assert info["model"] == "lenet300" and info["machine"]["cpu"]
