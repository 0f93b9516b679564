"""`edgeprune status RUN_DIR`: planned vs finished vs failed per kind, from plan.json, results.jsonl and the lock."""

import json
import os
import socket
import time

from edgeprune.runs import RunStore
from edgeprune.runs.status import start_session, write_plan


def test_status_of_a_half_finished_run(run_cli, tmp_path):
    run = tmp_path / "run"
    store = RunStore(run).open({"model": "lenet300"})
    start_session(run, executor="ray")
    write_plan(run, "dense", ["dense"])
    write_plan(run, "mam", ["mam-a", "mam-b", "mam-c"])
    write_plan(run, "baseline", None, expected=4)
    store.append({"id": "dense", "kind": "dense", "val_acc": 0.9})
    store.append({"id": "mam-a", "kind": "mam", "status": "ok", "seconds": 2.0})
    store.append({"id": "mam-c", "kind": "mam", "status": "failed", "error": "RuntimeError: boom", "seconds": 1.0})
    (run / ".lock").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}))

    code, out, err = run_cli("status", run, "--json")
    assert code == 0, err
    status = json.loads(out)
    assert status["kinds"]["mam"] == {"planned": 3, "planned_known": True, "finished": 2, "ok": 1, "failed": 1, "pending": 1}
    assert status["kinds"]["baseline"] == {"planned": 4, "planned_known": False, "finished": 0, "ok": 0, "failed": 0, "pending": 4}
    assert status["kinds"]["dense"]["pending"] == 0
    assert status["lock"]["state"] == "live" and status["lock"]["pid"] == os.getpid()
    assert not status["complete"] and status["candidate_seconds"] == 3.0 and status["executor"] == "ray"

    code, out, _ = run_cli("status", run)
    assert code == 0
    assert "not planned yet" in out and f"running (pid {os.getpid()}" in out and "state: incomplete" in out


def test_status_of_something_that_is_not_a_run(run_cli, tmp_path):
    code, _, err = run_cli("status", tmp_path)
    assert code == 2 and err.startswith("error: ") and "not a run directory" in err
