"""``edgeprune vbp`` end to end on digits: dense training, statistics, two ratios, KD fine-tune, run folder, resume."""

import json

from edgeprune import models

ARGS = ["--model", "vit", "--dataset", "digits", "--arg", "dim=16", "--arg", "depth=2", "--arg", "num_heads=2",
        "--dense-epochs", "2", "--epochs", "1", "--max-batches", "4", "--calib-batches", "3", "--limit", "400",
        "--latency-runs", "3", "--no-onnx", "-q"]


def test_vbp_run_folder_and_resume(run_cli, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = run_cli("vbp", *ARGS, "--ratios", "0.25,0.5", "--out", out)
    assert code == 0, err
    for name in ("config.json", "results.jsonl", "report.md", "accuracy_vs_ratio.png", "statistics.pt",
                 "dense/model.pt", "ratio-0.250/model.pt", "ratio-0.500/model.pt"):
        assert (out / name).is_file(), name
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["ratio"] for r in records] == [0.25, 0.5]
    for r in records:
        assert r["pruned_neurons"] == round(r["ratio"] * 128) and r["total_neurons"] == 128
        assert r["calibration_samples"] == 3 * 64 * 17  # 3 batches of 64 digits, 16 patches + class token
        assert r["params_after"] < r["params_before"] and 0 < r["macs_reduction"] < r["ratio"]
        assert r["speedup_b1"] > 0 and abs(r["speedup_over_mac_ratio_b1"] * r["mac_ratio"] - r["speedup_b1"]) < 1e-9
        for key in ("dense_val_acc", "dense_test_acc", "retained_val_acc", "retained_test_acc", "final_val_acc",
                    "final_test_acc"):
            assert 0.0 <= r[key] <= 1.0
        assert r["final_val_acc"] >= r["retained_val_acc"]  # the final model is selected on validation
        assert r["finetune"]["epochs_run"] == 1
        loaded = models.load(r["checkpoint"])
        assert sum(b.mlp.fc1.out_features for b in loaded.blocks) == 128 - r["pruned_neurons"]
    report = (out / "report.md").read_text()
    assert "| 0.25 | 32/128 |" in report and "| 0.50 | 64/128 |" in report
    assert "0.50" in stdout and "run folder" in stdout

    # same command again: finished ratios are skipped, nothing is appended
    mtime = (out / "ratio-0.500/model.pt").stat().st_mtime_ns
    code, _, err = run_cli("vbp", *ARGS, "--ratios", "0.25,0.5", "--out", out)
    assert code == 0, err
    assert len((out / "results.jsonl").read_text().splitlines()) == 2
    assert (out / "ratio-0.500/model.pt").stat().st_mtime_ns == mtime

    # other settings on the same folder are refused
    code, _, err = run_cli("vbp", *ARGS, "--ratios", "0.25", "--no-compensation", "--out", out)
    assert code == 2 and err.startswith("error: ") and "compensation" in err

    # the trained dense model as --checkpoint, no fine-tune, into a new folder
    other = tmp_path / "from-checkpoint"
    code, _, err = run_cli("vbp", "--model", "vit", "--checkpoint", out / "dense" / "model.pt", "--dataset", "digits",
                           "--ratio", "0.5", "--epochs", "0", "--calib-batches", "3", "--limit", "400",
                           "--latency-runs", "3", "--out", other, "-q")
    assert code == 0, err
    (rec,) = [json.loads(line) for line in (other / "results.jsonl").read_text().splitlines()]
    assert rec["finetune"] is None and rec["final_test_acc"] == rec["retained_test_acc"]
    assert "ort_error" not in rec and rec["ort_latency_ms_b1_after"] > 0 and rec["ort_speedup_b1"] > 0  # ONNX Runtime timed
    assert rec["retained_test_acc"] == records[1]["retained_test_acc"]  # same model, same statistics, same choice
