"""Every file edgeprune writes (run folder, train folder, export folder, the run lock) gets the mode a plain
``open`` gives under the user's umask: 0644 under umask 022, 0600 under 077 — atomic writes included."""

import importlib.util
import os
import stat

import pytest

import edgeprune
from edgeprune.runs.lock import LOCK_NAME, RunLock


@pytest.fixture(params=[0o022, 0o077], ids=["umask022", "umask077"])
def umask(request):
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def _wrong_modes(folder, umask: int) -> dict[str, str]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files, f"nothing written in {folder}"
    wanted = 0o666 & ~umask
    return {str(p.relative_to(folder)): oct(stat.S_IMODE(p.stat().st_mode)) for p in files
            if stat.S_IMODE(p.stat().st_mode) != wanted}


@pytest.mark.slow
def test_run_train_and_export_files_follow_the_umask(umask, tmp_path, run_cli):
    run = tmp_path / "run"
    edgeprune.sweep("lenet300", "digits", budgets=[0.5], seeds=1, out=run, finetune=0, criteria=["magnitude"],
                    strategies=["balanced"], baselines=[], progress=False)
    assert not _wrong_modes(run, umask)

    code, _, err = run_cli("train", "-m", "lenet300", "-d", "digits", "--epochs", "1", "--limit", "300",
                           "-o", tmp_path / "train", "-q")
    assert code == 0, err
    assert not _wrong_modes(tmp_path / "train", umask)

    both = importlib.util.find_spec("executorch") is not None
    code, _, err = run_cli("export", run, "--out", tmp_path / "export", "--format", "both" if both else "onnx",
                           "--no-latency", "--int8", "static", "--sparse", "fp16", "--sparse-onnx")
    assert code == 0, err
    assert not _wrong_modes(tmp_path / "export", umask)


def test_the_run_lock_follows_the_umask(umask, tmp_path):
    with RunLock(tmp_path):
        assert stat.S_IMODE((tmp_path / LOCK_NAME).stat().st_mode) == 0o666 & ~umask
