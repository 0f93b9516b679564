"""edgeprune pai --no-onnx: no ONNX file is written and no ONNX Runtime latency is reported."""

import json


def test_no_onnx_skips_the_export_and_its_latency(run_cli, tmp_path):
    out = tmp_path / "run"
    code, _, stderr = run_cli("pai", "--model", "resnet20", "--dataset", "digits", "--sparsity", "0.9", "--score",
                              "magnitude", "--mode", "reconvene", "--epochs", "1", "--max-batches", "1", "--limit", "200",
                              "--latency-batch", "1", "--latency-runs", "2", "--no-onnx", "--out", str(out), "-q")
    assert code == 0, stderr
    assert (out / "models" / "reconvene-seed0.pt").exists()
    assert not list((out / "models").glob("*.onnx"))
    record = json.loads((out / "results.jsonl").read_text().splitlines()[0])
    assert "latency_ms_b1" in record and not any(k.startswith("onnx_") for k in record)
