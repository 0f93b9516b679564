"""Every method's sweep, killed with SIGKILL at a random moment and started again: every candidate exactly
once, the records written before the kill kept byte for byte; then report, status and export work on the folder.

The moment is drawn per method (reproducible: ``EDGEPRUNE_KILL_SEED`` changes the draw): after 0, 1 or 2
finished records (0: anywhere from import to the first record), plus a random extra delay."""

from __future__ import annotations

import json
import os
import random
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


def complete(path: Path) -> list[bytes]:
    """The finished lines of ``path`` (a line being appended is not counted)."""
    return path.read_bytes().split(b"\n")[:-1] if path.exists() else []


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(edgeprune.list_methods()))
def test_sweep_resumes_after_kill_9(method, tmp_path, run_cli):
    run = tmp_path / "run"
    script = SCRIPT.format(tests=str(TESTS), spec=f"{TESTS}/byom/mynet.py:build", method=method, out=str(run))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    driver = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    results = run / "results.jsonl"
    draw = random.Random(f"{os.environ.get('EDGEPRUNE_KILL_SEED', '0')}-{method}")
    after, delay = draw.choice([0, 1, 2]), draw.uniform(0.0, 6.0 if draw.random() < 0.5 else 0.5)
    try:
        deadline = time.time() + 120
        while len(complete(results)) < after:
            if driver.poll() is not None:
                break
            assert time.time() < deadline, "the sweep produced no records in time"
            time.sleep(0.02)
        time.sleep(delay)
        driver.send_signal(signal.SIGKILL)
    finally:
        driver.kill()
        driver.wait()
    assert driver.returncode in (-signal.SIGKILL, 0), driver.stderr.read().decode()
    raw = results.read_bytes() if results.exists() else b""
    before = raw[: raw.rfind(b"\n") + 1]  # a torn last line (killed mid-append) is dropped on resume

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
