"""The bad-input suite: every command and every method, given what a careful user gets wrong, answers with exit
code 2, exactly one line on stderr, no traceback, and leaves the watched folder byte for byte as it was (no new
file, nothing rewritten). Almost every case fails in validation, before any training. The cases on run
directories (report, status, export, bench) are in tests/test_bad_input_run_dirs.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from badinput import (
    FAST,
    HUGE,
    METHODS,
    MYNET,
    TESTS,
    build_assets,
    check_case,
    copy_run,
    flip,
    live_lock,
    make_file,
    run_with,
    snapshot,
)
from helpers import assert_one_line_error


@pytest.fixture(scope="session")
def assets(tmp_path_factory) -> dict:
    return build_assets(tmp_path_factory)


# ----------------------------------------------------------------------------------------------------
# the cases: (name, build(assets, tmp) -> (argv, watched folder), words the line must hold)
# ----------------------------------------------------------------------------------------------------

def prune(method, *args, out_name="out"):
    def build(assets, tmp):
        return ["prune", method, "--model", MYNET, "--out", tmp / out_name, *FAST, *args], tmp
    return build


CASES: list[tuple[str, object, list[str]]] = []

# every method: the same four mistakes, refused before anything is trained
for _m in METHODS:
    CASES += [
        (f"prune-{_m}-budget-out-of-range", prune(_m, "--budget", "1.5"), ["1.5"]),
        (f"prune-{_m}-budget-nan", prune(_m, "--budget", "nan"), ["nan"]),
        (f"prune-{_m}-unknown-option", prune(_m, "-O", "colour=red"), ["colour"]),
        (f"prune-{_m}-absurd-finetune", prune(_m, "--finetune", HUGE), ["epochs", "10000"]),
        (f"prune-{_m}-absurd-seeds", prune(_m, "--seeds", "100000"), ["seeds", "1,000"]),
    ]


def _prune_ckpt(key, *extra, flipped=False, model="lenet5"):
    def build(assets, tmp):
        path = Path(shutil.copy(assets[key], tmp / "input.pt"))
        if flipped:
            flip(path)
        return ["prune", "magnitude", "--model", model, "--checkpoint", path, "--out", tmp / "out", *FAST, *extra], tmp
    return build


def _prune_into(make):
    def build(assets, tmp):
        out = make(assets, tmp)
        return ["prune", "magnitude", "--model", MYNET, "--budget", "0.5", "--out", out, *FAST], tmp
    return build


CASES += [
    ("prune-unknown-method", prune("nope"), ["nope"]),
    ("prune-missing-model-file", lambda a, t: (["prune", "vbp", "--model", "missing/net.py:build", "--out", t / "o", *FAST], t), ["missing/net.py"]),
    ("prune-bad-model-arg", prune("magnitude", "--arg", "oops"), ["oops", "key=value"]),
    ("prune-unknown-model-arg", prune("magnitude", "--arg", "depth=3"), ["depth"]),
    ("prune-dense-epochs-0", prune("magnitude", "--dense-epochs", "0"), ["dense-epochs"]),
    ("prune-seeds-0", prune("magnitude", "--seeds", "0"), ["seeds"]),
    ("prune-negative-finetune", prune("magnitude", "--finetune", "-1"), ["finetune"]),
    ("prune-unknown-dataset", prune("magnitude", "--dataset", "imagenet"), ["imagenet"]),
    ("prune-executor-unknown", prune("magnitude", "--executor", "slurm"), ["slurm"]),
    ("prune-mam-unknown-criterion", prune("mix_and_match", "-O", "criteria=[nope]"), ["nope"]),
    ("prune-mam-absurd-calibration", prune("mix_and_match", "-O", f"calib_batches={HUGE}"), ["calib_batches"]),
    ("prune-vbp-negative-calibration", prune("vbp", "-O", "calib_batches=-1"), ["calib_batches"]),
    ("prune-reconvene-unknown-score", prune("reconvene", "-O", "score=nope"), ["score"]),
    ("prune-snip-absurd-calib-batch", prune("snip", "-O", "calib_batch_size=10000000"), ["calib_batch_size"]),
    ("prune-model-arg-sets-classes", prune("magnitude", "--arg", "num_classes=3"), ["num_classes"]),
    ("prune-mam-range-rules-out-of-range", prune("mix_and_match", "-O", "range_rules={norm: [2, 1]}"), ["norm"]),
    ("prune-mam-range-rules-not-a-mapping", prune("mix_and_match", "-O", "range_rules=5"), ["range_rules"]),
    ("prune-mam-no-criterion", prune("mix_and_match", "-O", "criteria=[]"), ["criteria=[]"]),
    ("prune-mam-calib-batches-0", prune("mix_and_match", "-O", "calib_batches=0"), ["calib_batches=0"]),
    ("prune-grasp-calib-batches-0", prune("grasp", "-O", "calib_batches=0"), ["calib_batches=0"]),
    ("prune-checkpoint-of-another-data-set", _prune_ckpt("ckpt28"), ["LeNet5", "(1, 1, 8, 8)"]),
    ("prune-damaged-checkpoint", _prune_ckpt("ckpt", flipped=True), ["input.pt", "damaged"]),
    ("prune-checkpoint-missing", lambda a, t: (["prune", "magnitude", "--model", "lenet5", "--checkpoint", t / "nope.pt",
                                                "--out", t / "out", *FAST], t), ["nope.pt"]),
    ("prune-out-is-a-file", _prune_into(lambda a, t: make_file(t)), ["file.txt"]),
    ("prune-out-below-a-file", _prune_into(lambda a, t: make_file(t) / "run"), ["file.txt"]),
    ("prune-out-config-not-utf8", _prune_into(run_with(lambda r: (r / "config.json").write_bytes(b"\xff\xfe{\x00"))), ["config.json", "UTF-8"]),
    ("prune-out-config-truncated", _prune_into(run_with(lambda r: (r / "config.json").write_text('{"format": "edgeprune-run", "meth'))), ["config.json", "line 1"]),
    ("prune-out-of-another-method", lambda a, t: (["prune", "random", "--model", MYNET, "--budget", "0.5",
                                                   "--out", copy_run(a, t), *FAST], t), ["magnitude"]),
    ("prune-out-held-by-a-live-sweep", _prune_into(run_with(live_lock)), ["live search"]),
]


def alias(cmd, *args, model=MYNET):
    def build(assets, tmp):
        dense = [] if cmd == "pai" else ["--dense-epochs", "1"]  # pai trains from scratch: no input model
        return [cmd, "--model", model, "--dataset", "digits", *dense, "--out", tmp / "out", "-q", *args], tmp
    return build


def _recipe(data: bytes):
    def build(assets, tmp):
        return ["search", "--recipe", make_file(tmp, "r.yaml", data), "--out", tmp / "out", "-q"], tmp
    return build


# search, vbp and pai: aliases of `prune` (mix_and_match, vbp, reconvene) with their own flags
CASES += [
    ("search-target-sparsity-out-of-range", alias("search", "--target-sparsity", "1.2"), ["1.2"]),
    ("search-unknown-criterion", alias("search", "--criteria", "nope"), ["nope"]),
    ("search-absurd-epochs", alias("search", "--epochs", HUGE), ["epochs"]),
    ("search-no-criterion", alias("search", "--criteria", ","), ["criteria"]),
    ("search-calib-batches-0", alias("search", "--calib-batches", "0"), ["calib_batches"]),
    ("search-seeds-absurd", alias("search", "--seeds", "5000"), ["seeds"]),
    ("search-damaged-checkpoint", lambda a, t: alias("search", "--checkpoint", flip(Path(shutil.copy(a["ckpt"], t / "m.pt"))),
                                                     model="lenet5")(a, t), ["m.pt", "damaged"]),
    ("search-recipe-not-utf8", _recipe(b"model: lenet5\n\xff\xfe\x00"), ["r.yaml", "line 2", "UTF-8"]),
    ("search-recipe-random-bytes", _recipe(bytes(range(256))), ["r.yaml"]),
    ("search-recipe-bad-yaml", _recipe(b"model: lenet5\nseeds: [1, 2\n"), ["r.yaml", "line 3"]),
    ("search-recipe-a-list", _recipe(b"- lenet5\n"), ["r.yaml", "mapping"]),
    ("search-recipe-missing", lambda a, t: (["search", "--recipe", t / "nope.yaml", "--out", t / "out", "-q"], t), ["nope.yaml"]),
    ("search-recipe-python-tag", _recipe(b"model: !!python/object/apply:os.system ['echo pwned']\n"), ["r.yaml"]),
    ("vbp-ratio-out-of-range", alias("vbp", "--ratio", "1.0"), ["1"]),
    ("vbp-ratios-not-numbers", alias("vbp", "--ratios", "0.3,x"), ["0.3,x"]),
    ("vbp-absurd-epochs", alias("vbp", "--epochs", HUGE), ["epochs"]),
    ("vbp-negative-calibration", alias("vbp", "--calib-batches", "-1"), ["calib_batches"]),
    ("vbp-a-model-without-mlp-blocks", alias("vbp", model="lenet5"), ["MLP"]),
    ("pai-sparsity-out-of-range", alias("pai", "--sparsity", "-0.1"), ["-0.1"]),
    ("pai-unknown-score", alias("pai", "--score", "nope"), ["nope"]),
    ("pai-unknown-mode", alias("pai", "--mode", "sideways"), ["sideways"]),
    ("pai-absurd-epochs", alias("pai", "--epochs", HUGE), ["epochs"]),
    ("pai-absurd-rounds", alias("pai", "--rounds", HUGE), ["rounds"]),
]


def _images(tmp: Path, broken: bytes | None) -> Path:
    """A class-per-folder image tree (two classes, 8x8 PNGs), with one broken image when ``broken`` is given."""
    from PIL import Image

    root = tmp / "images"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(4):
            Image.new("L", (8, 8), color=40 * i).save(root / cls / f"{i}.png")
    if broken is not None:
        (root / "b" / "broken.jpg").write_bytes(broken)
    return root


def _mnist_garbage(tmp: Path) -> Path:
    from edgeprune.data import mnist

    (tmp / "mnist").mkdir()
    for pair in mnist.FILES.values():
        for name in pair:
            (tmp / "mnist" / name).write_bytes(b"\x1f\x8b garbage")
    return tmp


CASES += [  # data that cannot be read, refused before anything is trained or written
    ("prune-corrupt-image", lambda a, t: prune("magnitude", "--dataset", f"imagefolder:{_images(t, b'not a jpeg')}")(a, t),
     ["broken.jpg"]),
    ("prune-image-folder-missing", prune("magnitude", "--dataset", "imagefolder:/nowhere/images"), ["/nowhere/images"]),
    ("train-mnist-garbage", lambda a, t: train("--dataset", "mnist", "--data-dir", _mnist_garbage(t))(a, t), ["md5"]),
    ("train-synthetic-bad-spec", lambda a, t: train("--dataset", "synthetic:classes=x")(a, t), ["classes"]),
]


def measure(*extra, flipped=False, key="ckpt"):
    def build(assets, tmp):
        path = Path(shutil.copy(assets[key], tmp / "m.pt"))
        if flipped:
            flip(path)
        return ["measure", path, *extra], tmp
    return build


CASES += [
    ("measure-damaged-checkpoint", measure(flipped=True), ["m.pt", "damaged"]),
    ("measure-other-data-set", measure("--dataset", "digits", key="ckpt28"), ["digits", "1x28x28", "1x8x8"]),
    ("measure-a-directory", lambda a, t: (["measure", t], t), ["directory"]),
    ("measure-runs-0", measure("--runs", "0"), ["runs"]),
    ("measure-runs-absurd", measure("--runs", HUGE), ["runs"]),
    ("measure-batch-absurd", measure("--batch", "1," + HUGE), ["batch"]),
    ("measure-threads-0", measure("--threads", "0"), ["threads"]),
]


def train(*extra):
    def build(assets, tmp):
        base = {"--model": "lenet5", "--dataset": "digits", "--epochs": "1"}
        args = list(extra)
        for k in list(base):
            if k in args:
                i = args.index(k)
                base[k] = args[i + 1]
                del args[i:i + 2]
        return ["train", *[x for kv in base.items() for x in kv], *args, "--out", tmp / "out", "-q"], tmp
    return build


CASES += [
    ("train-epochs-absurd", train("--epochs", HUGE), ["epochs", "10000"]),
    ("train-batch-size-absurd", train("--batch-size", "10000000"), ["batch_size"]),
    ("train-negative-seed", train("--seed", "-1"), ["seed"]),
    ("train-patience-absurd", train("--patience", HUGE), ["patience"]),
    ("train-out-below-a-file", lambda a, t: (train()(a, t)[0][:-3] + ["--out", make_file(t) / "run", "-q"], t), ["file.txt"]),
    ("train-optimizer-unknown", train("--optimizer", "lion"), ["lion"]),
    ("train-lr-inf", train("--lr", "inf"), ["lr", "inf"]),
    ("train-model-arg-sets-channels", train("--arg", "in_channels=3"), ["in_channels"]),
]


CASES += [
    ("roles-unknown-model", lambda a, t: (["roles", "lenet9"], t), ["lenet9"]),
    ("roles-unknown-dataset", lambda a, t: (["roles", "lenet5", "--dataset", "imagenet"], t), ["imagenet"]),
    ("roles-bad-arg", lambda a, t: (["roles", "lenet5", "--arg", "oops"], t), ["oops"]),
    ("roles-damaged-checkpoint", lambda a, t: (["roles", flip(Path(shutil.copy(a["ckpt"], t / "m.pt")))], t), ["m.pt"]),
    ("methods-extra-argument", lambda a, t: (["methods", "extra"], t), ["extra"]),
    ("models-unknown-option", lambda a, t: (["models", "--all"], t), ["--all"]),
    ("datasets-unknown-option", lambda a, t: (["datasets", "--all"], t), ["--all"]),
    ("demo-epochs-0", lambda a, t: (["demo", "--epochs", "0", "--out", t / "demo", "-q"], t), ["epochs"]),
    ("demo-dense-epochs-absurd", lambda a, t: (["demo", "--dense-epochs", HUGE, "--out", t / "demo", "-q"], t), ["epochs"]),
    ("unknown-command", lambda a, t: (["compress"], t), ["compress"]),
    ("wrong-type", lambda a, t: (["prune", "magnitude", "--model", MYNET, "--seeds", "two", "--out", t / "o"], t), ["--seeds"]),
    ("missing-argument", lambda a, t: (["prune", "--model", MYNET], t), ["method"]),
]


def test_the_suite_is_large_and_covers_every_command():
    from test_bad_input_run_dirs import CASES as RUN_DIR_CASES

    every = CASES + RUN_DIR_CASES
    commands = {name.split("-")[0] for name, _, _ in every}
    assert len(every) >= 80 and len({n for n, _, _ in every}) == len(every)
    assert {"prune", "search", "vbp", "pai", "report", "status", "export", "measure", "train", "bench", "roles",
            "methods", "models", "datasets", "demo"} <= commands
    assert all(any(n.startswith(f"prune-{m}-") for n, _, _ in CASES) for m in METHODS)


@pytest.mark.parametrize("name,build,words", CASES, ids=[c[0] for c in CASES])
def test_bad_input(name, build, words, assets, run_cli, tmp_path):
    check_case(name, build, words, assets, run_cli, tmp_path)


# ----------------------------------------------------------------------------------------------------
# a handful through a real process: the exit code and stderr of `python -m edgeprune`
# ----------------------------------------------------------------------------------------------------

REAL = ["measure-damaged-checkpoint", "wrong-type"]  # a damaged file and a usage error; the rest run in-process


@pytest.mark.slow
def test_bad_input_in_a_real_process(assets, tmp_path):
    """A few cases through ``python -m edgeprune`` (started together: the import dominates)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent / "src"), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    started = []
    for name in REAL:
        _, build, words = next(c for c in CASES if c[0] == name)
        (tmp_path / name).mkdir()
        argv, watched = build(assets, tmp_path / name)
        proc = subprocess.Popen([sys.executable, "-m", "edgeprune", *map(str, argv)], env=env, text=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        started.append((name, proc, words, watched, snapshot(watched)))
    for name, proc, words, watched, before in started:
        _, err = proc.communicate(timeout=180)
        assert_one_line_error(proc.returncode, err, *words)
        assert snapshot(watched) == before, name
