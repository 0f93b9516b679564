"""An hf hub id that is neither cached nor reachable fails fast with one line (no hub retry messages), through
a real ``python -m edgeprune`` process on this machine (no network)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.mark.slow
def test_an_unknown_hub_id_offline_is_one_line_and_fast(tmp_path):
    pytest.importorskip("transformers")
    env = {**os.environ, "PYTHONPATH": str(SRC), "HF_HOME": str(tmp_path / "hf")}  # an empty cache
    env.pop("HF_HUB_OFFLINE", None)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "edgeprune", "train", "-m", "hf:nosuch/model", "--dataset", "digits",
                           "-q", "--out", str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=120)
    seconds = time.monotonic() - started
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and "nosuch/model" in lines[0]
    assert seconds < 35, seconds  # 22 s at load 5 (importing transformers); the hub retries took 42 s
    assert not list((tmp_path / "out").rglob("*"))  # nothing written
