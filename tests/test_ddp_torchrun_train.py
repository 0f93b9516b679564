"""`torchrun --nproc_per_node 2 -m edgeprune train …`: two gloo ranks train one model, rank 0 writes once."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgeprune import data, models
from edgeprune.measure import accuracy

pytestmark = pytest.mark.timeout(240)


def torchrun() -> str:
    exe = Path(sys.executable).with_name("torchrun")
    return str(exe) if exe.exists() else shutil.which("torchrun") or pytest.skip("torchrun not found")


@pytest.mark.slow
def test_two_gloo_ranks_write_one_checkpoint(tmp_path):
    out = tmp_path / "ddp"
    cmd = [torchrun(), "--standalone", "--nproc_per_node", "2", "-m", "edgeprune", "train", "--model", "lenet300",
           "--dataset", "digits", "--epochs", "2", "--patience", "1", "--batch-size", "64", "--out", str(out), "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=200, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]

    # one checkpoint and one metrics file, nothing else (no second writer, no temp files)
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "model.pt"]
    assert proc.stdout.count("lenet300 on digits") == 1  # only rank 0 prints

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    history = metrics["train"]["history"]
    assert 1 <= len(history) <= 2
    # the two ranks split the epoch (DistributedSampler pads to an even count); counts are all-reduced
    splits = data.load("digits")
    assert history[0]["examples"] in (len(splits.train), len(splits.train) + 1)
    model = models.load(out / "model.pt")
    assert accuracy(model, splits.test) == pytest.approx(metrics["test_acc"], abs=1e-9)
    assert accuracy(model, splits.val) == pytest.approx(metrics["val_acc"], abs=1e-9)
    assert metrics["val_acc"] > 0.2  # it learned something (chance is 0.1)
