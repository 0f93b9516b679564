"""A full, read-only or failing disk while writing: one line naming the file and the OS reason, exit code 2,
no traceback, no half-written file, and re-running after freeing space resumes.

The disks are real: a small tmpfs mounted for the test (skipped where mounting is not permitted)."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest
import torch

from edgeprune import models as model_lib
from edgeprune.errors import WriteError
from edgeprune.runs.store import RunStore
from edgeprune.utils.io import append_jsonl, read_jsonl, write_text
from helpers import assert_one_line_error

MYNET = f"{Path(__file__).resolve().parent}/byom/mynet.py:build"


def _mount(folder: Path, options: str) -> None:
    folder.mkdir(exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip() or 'not permitted'})")


@pytest.fixture
def small_disk(tmp_path):
    """A real 1 MiB filesystem; ``fill(left)`` leaves ``left`` bytes free, ``free()`` makes room again."""
    disk = tmp_path / "disk"
    _mount(disk, "size=1m")
    filler = disk / "filler"

    class Disk:
        root = disk

        @staticmethod
        def fill(left: int) -> None:
            with open(filler, "wb") as f:
                while True:
                    stat = _statvfs(disk)
                    if stat <= left:
                        break
                    try:
                        f.write(b"\0" * min(4096, stat - left))
                        f.flush()
                    except OSError:
                        break

        @staticmethod
        def free() -> None:
            filler.unlink(missing_ok=True)

    yield Disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def _statvfs(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


@pytest.fixture
def read_only_disk(tmp_path):
    disk = tmp_path / "ro"
    _mount(disk, "size=64k,ro")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def _temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


# -- the writers ----------------------------------------------------------------------------------------

def test_a_full_disk_is_a_write_error_naming_the_file_and_leaves_nothing(small_disk):
    small_disk.fill(0)
    target = small_disk.root / "notes.txt"
    with pytest.raises(WriteError) as info:
        write_text(target, "x" * 100_000)
    message = str(info.value)
    assert str(target) in message and "No space left on device" in message and f"errno {errno.ENOSPC}" in message
    assert not target.exists() and not _temp_files(small_disk.root)


@pytest.mark.slow
def test_a_checkpoint_on_a_full_disk_is_a_write_error(small_disk):
    small_disk.fill(8192)
    target = small_disk.root / "model.pt"
    with pytest.raises(WriteError, match="No space left on device"):
        model_lib.save(torch.nn.Linear(200, 200), target)
    assert not target.exists() and not _temp_files(small_disk.root)


def test_a_read_only_disk_is_a_write_error(read_only_disk):
    target = read_only_disk / "notes.txt"
    with pytest.raises(WriteError, match=f"Read-only file system \\(errno {errno.EROFS}\\)"):
        write_text(target, "hello")
    assert not target.exists()


def test_an_append_that_does_not_fit_leaves_the_records_whole(small_disk):
    path = small_disk.root / "results.jsonl"
    append_jsonl(path, {"id": "a"})
    small_disk.fill(0)
    with pytest.raises(WriteError, match="results.jsonl"):
        append_jsonl(path, {"id": "b", "blob": "y" * 50_000})
    assert [r["id"] for r in read_jsonl(path, repair=False)] == ["a"]
    assert path.read_bytes().endswith(b"\n")


def test_dev_full_is_a_write_error():
    """/dev/full: every write fails with ENOSPC (the appender opens the path itself)."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    with pytest.raises(WriteError, match="/dev/full.*No space left on device"):
        append_jsonl("/dev/full", {"id": "a"})


# -- the real CLI ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_train_on_a_full_disk_is_one_line_then_runs_after_freeing_space(small_disk, run_cli):
    out = small_disk.root / "train"
    small_disk.fill(16384)
    code, _, err = run_cli("train", "-m", "lenet5", "-d", "digits", "--epochs", "1", "-q", "--out", out)
    line = assert_one_line_error(code, err, "model.pt", "No space left on device", "errno 28")
    assert "free" in line
    assert not (out / "model.pt").exists() and not _temp_files(small_disk.root)
    small_disk.free()
    code, _, err = run_cli("train", "-m", "lenet5", "-d", "digits", "--epochs", "1", "-q", "--out", out)
    assert code == 0, err
    model_lib.load(out / "model.pt")


@pytest.mark.slow
@pytest.mark.parametrize("left_kib", [4, 40, 72, 120])
def test_prune_on_a_full_disk_is_one_line_then_resumes(left_kib, small_disk, run_cli):
    """The disk fills at a different writer each time (config, dense model, candidate, report / plot)."""
    out = small_disk.root / "run"
    args = ["prune", "magnitude", "--model", MYNET, "--arg", "width=8", "--dataset", "digits",
            "--dense-epochs", "1", "--finetune", "1", "-q", "--out", out]
    small_disk.fill(left_kib * 1024)
    code, _, err = run_cli(*args)
    assert_one_line_error(code, err, "No space left on device", str(small_disk.root))
    assert not _temp_files(small_disk.root)
    for checkpoint in out.rglob("*.pt"):
        model_lib.load(checkpoint)  # every checkpoint that exists is whole
    if (out / "results.jsonl").exists():
        RunStore(out).records(repair=False)  # no torn line
    small_disk.free()
    code, stdout, err = run_cli(*args)
    assert code == 0, err
    assert (out / "chosen.pt").is_file() and (out / "report.md").is_file()
