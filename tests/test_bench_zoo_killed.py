"""benchmarks/zoo.py: a worker the kernel kills (out of memory) or the model's time box stops is reported with the
stage it was in and the stages it finished."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import zoo  # noqa: E402

WORKER = """
import os, signal, sys
print("zoo-stage: roles", file=sys.stderr, flush=True)
print('zoo-outcome: {"stage": "roles", "status": "pass", "seconds": 0.5, "note": "conv:2"}', file=sys.stderr, flush=True)
print("zoo-stage: prune:mix_and_match", file=sys.stderr, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _run(monkeypatch, tmp_path, body, time_box=60.0):
    script = tmp_path / "worker.py"
    script.write_text(body)
    monkeypatch.setattr(zoo, "__file__", str(script))
    return zoo.run_one("timm:some_model", time_box, ("roles", "prune:mix_and_match"))


def test_a_killed_worker_names_the_stage_it_was_in(monkeypatch, tmp_path):
    row = _run(monkeypatch, tmp_path, WORKER)
    note = "killed by signal 9 (SIGKILL: the kernel's out-of-memory killer?)"
    assert row["build"] == "ok" and row["note"] == f"{note} in stage prune:mix_and_match"
    assert row["stages"] == {"roles": {"stage": "roles", "status": "pass", "seconds": 0.5, "note": "conv:2"},
                             "prune:mix_and_match": {"stage": "prune:mix_and_match", "status": "fail",
                                                     "seconds": None, "note": note}}


def test_a_worker_killed_while_building_is_a_build_crash(monkeypatch, tmp_path):
    row = _run(monkeypatch, tmp_path, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    assert row["build"] == "crash" and "stages" not in row and row["note"].startswith("killed by signal 9")


def test_a_worker_stopped_at_the_time_box_keeps_its_finished_stages(monkeypatch, tmp_path):
    body = WORKER.replace("os.kill(os.getpid(), signal.SIGKILL)", "import time; time.sleep(60)")
    row = _run(monkeypatch, tmp_path, body, time_box=3.0)
    why = "did not finish within the 3 s time box"
    assert row["build"] == "ok" and row["note"] == f"{why} in stage prune:mix_and_match" and row["seconds"] == 3.0
    assert row["stages"]["roles"]["status"] == "pass"
    assert row["stages"]["prune:mix_and_match"] == {"stage": "prune:mix_and_match", "status": "fail", "seconds": None,
                                                    "note": why}


def test_a_worker_stopped_at_the_time_box_while_building_is_a_build_timeout(monkeypatch, tmp_path):
    row = _run(monkeypatch, tmp_path, "import time\ntime.sleep(60)\n", time_box=2.0)
    assert row["build"] == "timeout" and "stages" not in row and row["note"] == "did not finish within the 2 s time box"
