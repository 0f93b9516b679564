"""edgeprune pai end to end on digits: both modes train, the run folder is complete, a rerun resumes."""

import json

import torch

from edgeprune import models
from edgeprune.export.onnx import ort_run, ort_session


def test_pai_both_modes_writes_a_complete_resumable_run(run_cli, tmp_path):
    out = tmp_path / "run"
    args = ["pai", "--model", "resnet20", "--dataset", "digits", "--sparsity", "0.9", "--score", "magnitude",
            "--epochs", "1", "--max-batches", "2", "--limit", "300", "--latency-batch", "1", "--latency-runs", "2",
            "--out", str(out), "-q"]
    code, stdout, stderr = run_cli(*args)
    assert code == 0, stderr
    for name in ("config.json", "results.jsonl", "report.md", "accuracy_vs_size.png"):
        assert (out / name).stat().st_size > 0, name
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["mode"] for r in records) == ["reconvene", "unstructured"]
    rec, upai = sorted(records, key=lambda r: r["mode"])
    assert rec["structured"] and rec["params"] < upai["params"] and rec["dense_bytes"] < upai["dense_bytes"]
    assert rec["macs"] < upai["macs"]
    assert upai["nonzeros"] < upai["params"]  # the UPaI model keeps dense shapes with zeros
    for r in records:
        assert 0.0 <= r["test_acc"] <= 1.0 and r["sparse_bytes"] > 0 and r["generation_seconds"] > 0
        assert r["sparse_bytes_kind"] in ("artifact", "estimate")
        # the saved (resized) Reconvene checkpoint loads back with the trained weights
        loaded = models.load(out / "models" / f"{r['mode']}-seed0.pt")
        assert sum(p.numel() for p in loaded.parameters()) == r["params"]
        assert loaded(torch.zeros(1, 1, 8, 8)).shape == (1, 10)
        # the exported ONNX model runs in ONNX Runtime and gives the checkpoint's logits
        session = ort_session(out / "models" / f"{r['mode']}-seed0.onnx")
        x = torch.randn(3, 1, 8, 8)
        assert torch.allclose(torch.from_numpy(ort_run(session, x)), loaded.eval()(x), atol=1e-4)
        assert r["onnx_latency_ms_b1"] > 0
    report = (out / "report.md").read_text()
    assert "Reconvene" in report and "UPaI" in report and "Pruning Sensitivity Evaluator" in report
    assert "ONNX Runtime latency b1" in report

    code, stdout, stderr = run_cli(*args)  # resume: nothing left to do
    assert code == 0, stderr
    assert len((out / "results.jsonl").read_text().splitlines()) == 2

    # a run folder written before a setting existed resumes when the setting is at its default
    config = json.loads((out / "config.json").read_text())
    del config["round_to"]
    (out / "config.json").write_text(json.dumps(config))
    code, stdout, stderr = run_cli(*args)
    assert code == 0, stderr
    code, _, stderr = run_cli(*args, "--round-to", "8")
    assert code == 2 and "holds results of another configuration" in stderr

    code, _, stderr = run_cli(*[a if a != "0.9" else "0.8" for a in args])
    assert code == 2 and "holds results of another configuration" in stderr
