"""Two searches started at the same moment on one run directory: the loser is always told which process
holds it, never about a vanished temp file (the holder's sweep of orphaned temp files must not delete a
live process's temp file, the loser's half-made lock included)."""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest

from edgeprune.errors import ConfigError
from edgeprune.runs.lock import RunLock
from edgeprune.utils.io import write_text

ROUNDS = 40


def _contender(run_dir, barrier, results):
    barrier.wait()
    try:
        with RunLock(run_dir) as lock:
            lock.sweep_temp_files()
            time.sleep(0.15)  # hold it while the other one looks
        results.put((os.getpid(), "won"))
    except ConfigError as exc:
        results.put((os.getpid(), f"lost: {exc}"))
    except Exception as exc:  # noqa: BLE001  (what the race used to give: a vanished temp file)
        results.put((os.getpid(), f"crashed: {type(exc).__name__}: {exc}"))


@pytest.mark.slow
def test_the_loser_of_a_simultaneous_start_names_the_holder(tmp_path):
    fork = multiprocessing.get_context("fork")
    for round_ in range(ROUNDS):
        run_dir = tmp_path / f"run{round_}"
        run_dir.mkdir()
        barrier, results = fork.Barrier(2), fork.Queue()
        procs = [fork.Process(target=_contender, args=(run_dir, barrier, results)) for _ in range(2)]
        for p in procs:
            p.start()
        outcomes = dict(results.get(timeout=20) for _ in procs)
        for p in procs:
            p.join(timeout=20)
        winners = [pid for pid, text in outcomes.items() if text == "won"]
        assert len(winners) == 1, outcomes
        loser = next(text for pid, text in outcomes.items() if pid != winners[0])
        assert loser.startswith("lost: ") and f"pid {winners[0]}" in loser, (round_, loser)


def test_the_sweep_keeps_a_live_process_temp_file_and_removes_an_orphan(tmp_path):
    fork = multiprocessing.get_context("fork")
    writer = fork.Process(target=time.sleep, args=(30,))
    writer.start()
    try:
        live = tmp_path / f".model.pt.{writer.pid}.abc123.tmp"
        orphan = tmp_path / ".model.pt.k1ll3d.tmp"
        for path in (live, orphan):
            write_text(path, "partial")
        with RunLock(tmp_path) as lock:
            assert lock.sweep_temp_files() == [orphan]
        assert live.exists() and not orphan.exists()
    finally:
        writer.kill()
        writer.join()
