"""torch's deprecation log about torchao registering an Enum with pytree (``W... torch/utils/_pytree.py ...
KernelPreference ... register_constant()``) is not shown before edgeprune's own output: checked in real
``python -m edgeprune`` processes, one of which imports torchao (the ExecuTorch path)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
NOISE = ("_pytree", "KernelPreference", "register_constant")


def _edgeprune(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run([sys.executable, "-m", "edgeprune", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=240)


@pytest.mark.slow
def test_a_cheap_command_prints_no_torch_noise(tmp_path):
    done = _edgeprune("datasets", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert not [line for line in done.stderr.splitlines() if any(n in line for n in NOISE)], done.stderr


@pytest.mark.slow
def test_a_command_that_imports_torchao_prints_only_its_own_line(tmp_path):
    pytest.importorskip("executorch")
    pytest.importorskip("torchao")
    done = _edgeprune("export", "model.pt", "--out", "out", "--format", "executorch", "--int8", "dynamic", cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "--int8 dynamic" in lines[0], done.stderr
    assert not (tmp_path / "out").exists()
