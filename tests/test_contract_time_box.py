"""The zoo contract's time box: a stage is stopped after TIMEOUT s of CPU time, or WALL_FACTOR x that waiting."""

import time

import torch
from torch import nn

from edgeprune.runs import contract


def _run(monkeypatch, work, timeout=0.3):
    monkeypatch.setitem(contract._RUN, "roles", lambda model, example, shape: work())
    t0 = time.perf_counter()
    outcome = contract.run_stage("roles", nn.Linear(4, 2), torch.zeros(1, 4), timeout=timeout)
    return outcome, time.perf_counter() - t0


def test_a_busy_stage_stops_after_its_cpu_time(monkeypatch):
    def spin():
        while True:
            sum(range(1000))

    outcome, wall = _run(monkeypatch, spin)
    assert outcome.status == "fail" and outcome.note == "did not finish within 0.3 s of CPU time"
    assert wall < 0.3 * contract.WALL_FACTOR + 1


def test_the_note_says_where_in_edgeprune_the_time_ran_out(monkeypatch):
    scope = {"__name__": "edgeprune.methods.slow"}  # a function as if defined in an edgeprune module
    exec("def spin():\n    while True:\n        sum(range(1000))\n\ndef prune():\n    spin()\n", scope)
    outcome, _ = _run(monkeypatch, scope["prune"])
    assert outcome.note == "did not finish within 0.3 s of CPU time (stopped in methods.slow:spin < methods.slow:prune)"


def test_a_waiting_stage_stops_at_the_wall_clock_backstop(monkeypatch):
    outcome, wall = _run(monkeypatch, lambda: time.sleep(30))
    assert outcome.status == "fail" and "did not finish" in outcome.note
    assert 0.3 * contract.WALL_FACTOR - 0.1 < wall < 0.3 * contract.WALL_FACTOR + 1


def test_a_quick_stage_passes_and_leaves_no_timer(monkeypatch):
    import signal

    outcome, _ = _run(monkeypatch, lambda: "fine")
    assert (outcome.status, outcome.note) == ("pass", "fine")
    assert signal.getitimer(signal.ITIMER_PROF) == (0.0, 0.0) and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
