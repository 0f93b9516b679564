"""Shared by the bad-input suite (tests/test_bad_input_suite.py, tests/test_bad_input_run_dirs.py): the assets
every case copies, a snapshot of a folder, ways to damage files, and the one assertion of every case."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import torch

import edgeprune
from edgeprune import models
from edgeprune.runs.lock import _proc_start
from helpers import assert_one_line_error

TESTS = Path(__file__).resolve().parent
MYNET = f"{TESTS}/byom/mynet.py:build"
METHODS = sorted(edgeprune.list_methods())
HUGE = "99999999999999999999999"
FAST = ["--dataset", "digits", "--dense-epochs", "1", "--finetune", "1", "-q"]


# ----------------------------------------------------------------------------------------------------
# assets (built once) and helpers
# ----------------------------------------------------------------------------------------------------

_ASSETS: dict = {}


def build_assets(tmp_path_factory) -> dict:
    """A digits LeNet-5 checkpoint, the same model built for 28 px ("trained on another data set") and a
    finished run directory of a cheap sweep; built once per session (cases work on copies)."""
    if _ASSETS:
        return _ASSETS
    root = tmp_path_factory.mktemp("assets")
    torch.manual_seed(0)
    ckpt = models.save(models.create("lenet5", num_classes=10, in_channels=1, image_size=8), root / "lenet5.pt")
    other = models.save(models.create("lenet5", num_classes=10, in_channels=1, image_size=28), root / "lenet5-28.pt")
    run = root / "run"
    sys.path.insert(0, str(TESTS))
    from byom.mynet import build
    from byom.userdata import loaders

    edgeprune.sweep(build(), loaders(), method="magnitude", budgets=[0.5], finetune=0, out=run, progress=False)
    assert (run / "chosen.pt").is_file()
    _ASSETS.update(ckpt=ckpt, ckpt28=other, run=run)
    return _ASSETS


def snapshot(folder: Path) -> dict:
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def flip(path: Path, count: int = 200) -> Path:
    """``count`` flipped bytes in the middle of ``path`` (the weights of a checkpoint)."""
    raw = bytearray(path.read_bytes())
    mid = len(raw) // 2
    for i in range(count):
        raw[mid + i] ^= 0xFF
    path.write_bytes(bytes(raw))
    return path


def copy_run(assets, tmp: Path) -> Path:
    run = tmp / "run"
    shutil.copytree(assets["run"], run)
    return run


def lines(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]


def rewrite_results(run: Path, records_or_lines: list) -> None:
    text = [r if isinstance(r, str) else json.dumps(r) for r in records_or_lines]
    (run / "results.jsonl").write_text("\n".join(text) + "\n")


def candidate(run: Path) -> dict:
    return next(r for r in lines(run) if r.get("kind") == "candidate")


def live_lock(run: Path) -> Path:
    """A lock held by a live process other than this one (our parent: alive for as long as we are)."""
    pid = os.getppid()
    (run / ".lock").write_text(json.dumps({"pid": pid, "host": os.uname().nodename, "started": 0.0,
                                           "proc_start": _proc_start(pid), "command": "edgeprune prune"}))
    return run


def unsealed(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "_sha256"}


def make_file(tmp, name="file.txt", data=b"x"):
    path = tmp / name
    path.write_bytes(data)
    return path


def make_folder(path: Path) -> Path:
    path.mkdir()
    return path


def run_with(change):
    def make(assets, tmp):
        run = copy_run(assets, tmp)
        change(run)
        return run
    return make



def check_case(name, build, words, assets, run_cli, tmp_path) -> None:
    """Exit code 2, one line on stderr holding ``words``, no traceback, the watched folder unchanged."""
    argv, watched = build(assets, tmp_path)
    before = snapshot(watched)
    code, _, err = run_cli(*argv)
    assert_one_line_error(code, err, *words)
    assert snapshot(watched) == before, f"{name}: the folder changed"
