"""Latency in ExecuTorch measured like ONNX Runtime's (fixed threads, warm-up, medians), one entry point that
budgets call with a runtime name, and side-by-side timing in interleaved rounds."""

import pytest
import torch

from edgeprune import models
from edgeprune.errors import ConfigError
from edgeprune.export import check_runtime, compare_latency, et_latency, latency_ms
from edgeprune.export.et_latency import export_for

pytest.importorskip("executorch")


@pytest.mark.slow
def test_latency_in_both_runtimes(tmp_path, run_cli):
    torch.manual_seed(0)
    model = models.create("lenet300", num_classes=10, in_channels=1, image_size=8).eval()
    ms = latency_ms(model, batch=1, runtime="executorch", runs=5, warmup=2)  # exported to a temporary .pte
    assert 0 < ms < 1000
    export_for(model, tmp_path / "m.pte", "executorch", batch=1)
    export_for(model, tmp_path / "m.onnx", "onnxruntime")
    one = et_latency(tmp_path / "m.pte", runs=5, warmup=2, threads=1)
    assert one["runtime"] == "executorch" and one["threads"] == 1 and one["batch_size"] == 1
    assert one["p10_ms"] <= one["median_ms"] <= one["p90_ms"]
    assert latency_ms(tmp_path / "m.onnx", 1, runs=5, warmup=2) > 0  # the runtime follows the suffix

    timed = compare_latency({"ort": tmp_path / "m.onnx", "et": tmp_path / "m.pte"}, batch=1, rounds=3, runs=5, warmup=2)
    assert {t["runtime"] for t in timed.values()} == {"onnxruntime", "executorch"}
    assert all(len(t["rounds_ms"]) == 3 and t["median_ms"] > 0 for t in timed.values())

    code, out, err = run_cli("bench", tmp_path / "m.pte", "--batch", "1", "--runs", "3", "--warmup", "1",
                             "--threads", "1", "--json", tmp_path / "b.json")
    assert code == 0, err
    assert "executorch" in out and '"runtime": "executorch"' in (tmp_path / "b.json").read_text()
    with pytest.raises(ConfigError, match="runtime 'onnxruntime' cannot run"):
        latency_ms(tmp_path / "m.pte", 1, runtime="onnxruntime")
    with pytest.raises(ConfigError, match="at most 1; cannot time batch 4"):
        et_latency(tmp_path / "m.pte", batch_size=4, runs=2)
    with pytest.raises(ConfigError, match="allowed: onnxruntime, executorch"):
        check_runtime("tflite")
