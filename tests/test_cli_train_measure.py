import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_train_then_measure_through_the_real_entry_point(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "edgeprune", "train", "--model", "lenet300", "--dataset", "digits", "--epochs", "4", "--lr", "0.05", "--out", str(out), "-q"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_acc"] > 0.85 and metrics["params"] == 8 * 8 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10
    assert metrics["train"]["epochs_run"] == 4 and metrics["macs"] > 0
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "model.pt"]

    done = subprocess.run([sys.executable, "-m", "edgeprune", "measure", str(out / "model.pt"), "--runs", "5", "--dataset", "digits"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for word in ("params", "non-zeros", "MACs", "checkpoint bytes", "latency batch 1", "latency batch 32", "test accuracy"):
        assert word in done.stdout, word


def test_version_models_datasets(run_cli):
    from edgeprune import __version__

    code, out, _ = run_cli("--version")
    assert code == 0 and __version__ in out
    code, out, _ = run_cli("models")
    assert code == 0 and "lenet5" in out and "hf-config:" in out
    code, out, _ = run_cli("datasets")
    assert code == 0 and "mnist" in out and "digits" in out
