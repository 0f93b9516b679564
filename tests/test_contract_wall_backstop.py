"""The contract's wall-clock backstop catches a stage that waits, not one that works slowly because the
machine is loaded: a stage that keeps consuming CPU (here 15 % of the wall time) runs to its CPU box."""

import time

import torch
from torch import nn

from edgeprune.runs import contract


def _slow_but_working(cpu_seconds: float):
    def work():
        start = time.process_time()
        while time.process_time() - start < cpu_seconds:
            spin_until = time.process_time() + 0.015
            while time.process_time() < spin_until:
                sum(range(200))
            time.sleep(0.085)  # the other 85 %: the CPU went to other processes
    return work


def test_a_stage_that_gets_little_cpu_but_uses_it_is_not_stopped(monkeypatch):
    timeout = 0.5
    monkeypatch.setitem(contract._RUN, "roles", lambda model, example, shape: _slow_but_working(0.4)())
    t0 = time.perf_counter()
    outcome = contract.run_stage("roles", nn.Linear(4, 2), torch.zeros(1, 4), timeout=timeout)
    assert time.perf_counter() - t0 > timeout * contract.WALL_FACTOR  # past the old backstop
    assert outcome.status == "pass", outcome.note
