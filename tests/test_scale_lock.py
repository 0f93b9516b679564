"""RUN_DIR/.lock: a live search's lock is refused, a dead one is taken over with a warning and released."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from edgeprune.errors import ConfigError
from edgeprune.runs.lock import RunLock, _proc_start, lock_state, read_lock


def write_lock(run_dir, pid, proc_start=None):
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / ".lock").write_text(json.dumps(
        {"pid": pid, "host": socket.gethostname(), "started": time.time(), "proc_start": proc_start, "command": "test"}
    ))


def test_a_live_search_holds_the_directory(run_cli, tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_lock(tmp_path / "r", sleeper.pid, _proc_start(sleeper.pid))
        assert lock_state(tmp_path / "r")[0] == "live"
        code, _, err = run_cli("search", "--model", "lenet300", "--dataset", "digits", "-q", "--out", tmp_path / "r")
        assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
        assert f"locked by a live search (pid {sleeper.pid}" in err
        assert not (tmp_path / "r" / "results.jsonl").exists()
        assert read_lock(tmp_path / "r").pid == sleeper.pid  # the holder's lock is untouched
    finally:
        sleeper.kill()
        sleeper.wait()
    # the holder is gone (reaped): its lock is stale now
    assert lock_state(tmp_path / "r")[0] == "stale"


def test_a_dead_holder_is_taken_over_with_a_warning(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    write_lock(tmp_path, gone.pid)
    with pytest.warns(UserWarning, match=f"stale lock \\(pid {gone.pid} "):
        with RunLock(tmp_path):
            assert read_lock(tmp_path).pid == os.getpid()
            assert lock_state(tmp_path)[0] == "live"
            with pytest.raises(ConfigError, match="locked by a live search"):
                RunLock(tmp_path).acquire()  # a second search in the meantime is refused
    assert not (tmp_path / ".lock").exists()  # released on exit
    assert lock_state(tmp_path)[0] == "none"


def test_a_recycled_pid_is_not_mistaken_for_the_holder(tmp_path):
    # our own pid is alive, but with another start time it is a different process
    write_lock(tmp_path, os.getpid(), proc_start=(_proc_start(os.getpid()) or 0) + 12345)
    assert lock_state(tmp_path)[0] == "stale"
    with pytest.warns(UserWarning, match="stale lock"):
        RunLock(tmp_path).acquire().release()


def test_an_unreadable_lock_is_stale(tmp_path):
    (tmp_path / ".lock").write_text("")
    assert lock_state(tmp_path)[0] == "stale"
    with pytest.warns(UserWarning, match="unreadable lock file"):
        RunLock(tmp_path).acquire().release()
