"""edgeprune measure and bench say in one line when the machine is too busy for their timings, and measure
times torch at one thread by default (all cores on a loaded machine: LeNet-5 read 68 ms instead of 0.6 ms)."""

import subprocess
import sys
import time

import pytest

from edgeprune import models
from edgeprune.measure.latency import BUSY_LOAD_PER_CORE, BUSY_SPREAD, busy_warning, time_calls


def _uneven():
    calls = {"n": 0}

    def call():  # every other call 4x slower: the spread a shared machine gives
        calls["n"] += 1
        time.sleep(0.004 if calls["n"] % 2 else 0.001)
    return call


def test_wide_spread_is_called_busy():
    steady = time_calls(lambda: time.sleep(0.02), runs=10, warmup=1)  # long enough that a late wake-up is small
    uneven = time_calls(_uneven(), runs=10, warmup=1)
    assert uneven["p90_ms"] / uneven["p10_ms"] > BUSY_SPREAD
    assert busy_warning([steady], load=0.0, cores=2) is None
    line = busy_warning([steady, uneven], load=0.0, cores=2)
    assert line and "\n" not in line and "p90/p10" in line


def test_load_above_the_cores_is_called_busy():
    steady = time_calls(lambda: time.sleep(0.02), runs=10, warmup=1)  # long enough that a late wake-up is small
    line = busy_warning([steady], load=2.0 * BUSY_LOAD_PER_CORE + 1, cores=2)
    assert line and "\n" not in line and "load average" in line


@pytest.mark.slow
def test_measure_times_torch_at_one_thread_by_default(tmp_path):
    path = models.save(models.create("lenet5", num_classes=10, in_channels=1, image_size=28), tmp_path / "m.pt")
    done = subprocess.run([sys.executable, "-m", "edgeprune", "measure", str(path), "--runs", "5", "--batch", "1"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if "threads / CPU" in line)
    assert row.split("threads / CPU")[1].strip(" │|").startswith("1 /")
