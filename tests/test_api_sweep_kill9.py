"""Every method's sweep, killed with SIGKILL mid-run and started again: every candidate exactly once, the
records written before the kill kept byte for byte; then report, status and export work on the folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import edgeprune

pytestmark = pytest.mark.timeout(300)
TESTS = Path(__file__).resolve().parent

SCRIPT = """
import sys, torch
torch.set_num_threads(1)
sys.path.insert(0, {tests!r})
import edgeprune
from byom.userdata import FAST_OPTIONS, FINETUNE, loaders
from edgeprune.train import TrainConfig, fit
train, val, test = loaders()
torch.manual_seed(0)
model = edgeprune.models.create({spec!r}, num_classes=10, in_channels=1, image_size=8)
fit(model, train, val, TrainConfig(epochs=1, lr=0.05), progress=False)
edgeprune.sweep(model, (train, val, test), method={method!r}, budgets=[0.3, 0.5, 0.7], out={out!r},
                finetune={{**FINETUNE, "epochs": 2}}, progress=False, **FAST_OPTIONS.get({method!r}, {{}}))
"""


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


@pytest.mark.parametrize("method", sorted(edgeprune.list_methods()))
def test_sweep_resumes_after_kill_9(method, tmp_path, run_cli):
    run = tmp_path / "run"
    script = SCRIPT.format(tests=str(TESTS), spec=f"{TESTS}/byom/mynet.py:build", method=method, out=str(run))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    driver = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    results = run / "results.jsonl"
    try:
        deadline = time.time() + 120
        while len(records(results)) < 2:  # the input model and one candidate
            if driver.poll() is not None:
                break
            assert time.time() < deadline, "the sweep produced no records in time"
            time.sleep(0.02)
        driver.send_signal(signal.SIGKILL)
    finally:
        driver.kill()
        driver.wait()
    assert driver.returncode in (-signal.SIGKILL, 0), driver.stderr.read().decode()
    before = results.read_bytes()

    again = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=240)
    assert again.returncode == 0, again.stderr
    assert results.read_bytes().startswith(before)
    ids = [r["id"] for r in records(results)]
    plan = json.loads((run / "plan.json").read_text())["kinds"]["candidate"]["ids"]
    assert sorted(ids) == sorted(["dense", *plan]) and len(ids) == len(set(ids))
    assert all(r["status"] == "ok" for r in records(results))

    code, out, err = run_cli("report", run)
    assert code == 0, err
    assert (run / "report.md").read_text().startswith(f"# {method}") and (run / "chosen.pt").is_file()
    code, out, err = run_cli("status", run, "--json")
    assert code == 0 and json.loads(out)["complete"] is True
    code, out, err = run_cli("export", run, "--out", tmp_path / "export")
    assert code == 0, err
    assert (tmp_path / "export" / "model.onnx").is_file()
