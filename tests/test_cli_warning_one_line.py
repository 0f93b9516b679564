"""A warning reaches the command-line user as one line, not as our source file and line."""

import subprocess
import sys

import pytest

from edgeprune.data import load
from edgeprune.methods.dense import train_dense
from edgeprune.train import default_config


@pytest.mark.slow
def test_a_warning_is_one_line(tmp_path):
    out = tmp_path / "run"
    train_dense("lenet300", load("digits"), default_config("lenet300", epochs=1), out / "dense", progress=False)
    # lenet300 on 8x8 digits: min and max give the same per-layer sparsities, which Mix-and-Match warns about
    proc = subprocess.run([sys.executable, "-m", "edgeprune", "prune", "mix_and_match", "--model", "lenet300",
                           "--dense-epochs", "1", "--budget", "0.8", "--finetune", "0", "-O", "strategies=[min,max]",
                           "-O", "criteria=[magnitude]", "-O", "baselines=[]", "--out", str(out), "-q"],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines and all(ln.startswith("warning: ") for ln in lines), proc.stderr
    assert any("identical per-layer sparsities" in ln for ln in lines)
