"""A search (the alias of `prune mix_and_match`) killed with SIGKILL mid-run, then re-run with the same command: every candidate exactly once.

The driver is killed as soon as a few candidate records exist (the next candidate is being trained, or its
checkpoint or record is being written). The re-run takes over the dead process's lock, keeps the records
written before the kill byte for byte (nothing finished is recomputed) and finishes the plan.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.timeout(240)

RECIPE = """\
model: lenet300
dataset: digits
criteria: [magnitude, gradient]
strategies: [min, early_heavy, late_heavy]
dense_epochs: 1
epochs: 2
calib_batches: 2
"""


def lines(path):
    return path.read_bytes().split(b"\n") if path.exists() else []


@pytest.mark.slow
def test_kill_9_then_resume_loses_and_repeats_nothing(run_cli, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE)
    run = tmp_path / "run"
    args = ["search", "--recipe", str(recipe), "--out", str(run), "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    driver = subprocess.Popen([sys.executable, "-m", "edgeprune", *args], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    results = run / "results.jsonl"
    try:
        deadline = time.time() + 180
        # dense + at least two candidates finished; kill while the next one runs
        while len([ln for ln in lines(results) if ln.strip()]) < 3:
            assert driver.poll() is None, driver.stderr.read().decode()
            assert time.time() < deadline, "the search produced no records in time"
            time.sleep(0.02)
        driver.send_signal(signal.SIGKILL)
    finally:
        driver.kill()
        driver.wait()  # reap it: a zombie would still look alive
    assert driver.returncode == -signal.SIGKILL

    before = results.read_bytes()
    kept = before[: before.rfind(b"\n") + 1]  # complete lines (a torn last one is dropped on resume)
    finished_before = [json.loads(ln)["id"] for ln in kept.splitlines()]
    plan = json.loads((run / "plan.json").read_text())
    assert len(plan["kinds"]["candidate"]["ids"]) == 6 + 3  # two criteria x three strategies, and the three global baselines
    assert len(finished_before) < 1 + 9, "the search finished before it could be killed"

    code, out, _ = run_cli("status", run)
    assert code == 0
    assert "stale lock" in out and "incomplete" in out

    # what a kill during a checkpoint write leaves (atomic_path's temp file); the re-run removes it
    orphan = run / "candidates" / ".mam-x.pt.k1ll3d.tmp"
    orphan.parent.mkdir(exist_ok=True)
    orphan.write_bytes(b"half a checkpoint")

    with pytest.warns(UserWarning, match="stale lock"):
        code, _, err = run_cli(*args)
    assert code == 0, err

    after = results.read_bytes()
    assert after.startswith(kept)  # what was finished is kept as written, not recomputed
    ids = [json.loads(ln)["id"] for ln in after.splitlines()]
    plan = json.loads((run / "plan.json").read_text())
    planned = ["dense", *plan["kinds"]["candidate"]["ids"]]
    assert sorted(ids) == sorted(planned)  # every candidate exactly once
    for record in map(json.loads, after.splitlines()[1:]):
        assert record["status"] == "ok"
        assert (run / record["checkpoint"]).is_file()
    assert not list(run.rglob("*.tmp"))  # no temp file left behind, the killed run's orphan included

    code, out, _ = run_cli("status", run, "--json")
    status = json.loads(out)
    assert status["complete"] and status["lock"]["state"] == "none"
    assert status["kinds"]["candidate"] == {"planned": 9, "planned_known": True, "finished": 9, "ok": 9, "failed": 0, "pending": 0}
