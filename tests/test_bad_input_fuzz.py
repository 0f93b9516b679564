"""Property-based fuzzing (hypothesis, bounded and fast) of `edgeprune prune` arguments and of run records:
whatever the input, the answer is a valid configuration or one line with exit code 2, never a traceback."""

from __future__ import annotations

import json
import shutil
import sys
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import edgeprune
import edgeprune.api
from edgeprune import models
from edgeprune.errors import EdgepruneError
from edgeprune.runs.report import render
from edgeprune.runs.status import run_status

TESTS = Path(__file__).resolve().parent
METHODS = sorted(edgeprune.list_methods())
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
OPTION_KEYS = ["criteria", "strategies", "calib_batches", "calib_batch_size", "score", "min_keep", "range_rules",
               "synflow_rounds", "round_to", "colour", ""]


VALID: list = []  # the arguments that passed every check (some must, or the fuzzing only tests the first check)


class Valid(Exception):
    """Raised instead of sweeping: the configuration passed every check."""


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    return models.save(models.create("lenet5", num_classes=10, in_channels=1, image_size=8), root / "lenet5.pt")


def numbers_as_text():
    return st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers(-10**30, 10**30).map(str),
                     st.text(alphabet="0123456789.,-+eEnaif ", max_size=12))


@FUZZ
@given(method=st.sampled_from(METHODS + ["nope"]), budget=st.none() | st.just("0.5") | numbers_as_text(),
       seeds=st.sampled_from([1, 2]) | st.integers(-3, 10**25), finetune=st.none() | st.just(0) | st.integers(-3, 10**25),
       options=st.just([]) | st.lists(st.tuples(st.sampled_from(OPTION_KEYS), st.text(max_size=12) | numbers_as_text()),
                                      max_size=2))
def test_prune_arguments(method, budget, seeds, finetune, options, checkpoint, run_cli, tmp_path, monkeypatch):
    def refuse_to_run(*args, **kwargs):
        raise Valid()

    monkeypatch.setattr(edgeprune.api, "run_sweep", refuse_to_run)
    out = tmp_path / "out"
    argv = ["prune", method, "--model", "lenet5", "--checkpoint", checkpoint, "--dataset", "digits", "-q",
            "--seeds", seeds, "--out", out]
    argv += ["--budget", budget] if budget is not None else []
    argv += ["--finetune", finetune] if finetune is not None else []
    for key, value in options:
        argv += ["-O", f"{key}={value}"]
    try:
        code, _, err = run_cli(*argv)
    except Valid:
        VALID.append(argv)
        return
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, (argv, err)
    assert not out.exists()


JSONISH = st.recursive(st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats(allow_nan=False) | st.text(max_size=6),
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                       max_leaves=6)
FIELDS = ["id", "kind", "status", "method", "budget", "budget_name", "seed", "setting", "val_acc", "test_acc",
          "params", "nonzeros", "macs", "checkpoint", "error", "seconds"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    sys.path.insert(0, str(TESTS))
    from byom.mynet import build
    from byom.userdata import loaders

    run = tmp_path_factory.mktemp("fuzzrun") / "run"
    edgeprune.sweep(build(), loaders(), method="random", budgets=[0.5], finetune=0, out=run, progress=False)
    return run


RECORD = st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=5), "kind": st.sampled_from(["dense", "candidate", "mam"]),
     "status": st.sampled_from(["ok", "failed", "x"])},
    optional={k: JSONISH for k in FIELDS[3:]} | {"budget": st.floats(0, 1), "val_acc": st.floats(0, 1),
                                                "params": st.integers(0, 10**6), "nonzeros": st.integers(0, 10**6)})


@FUZZ
@given(records=st.lists(RECORD, min_size=1, max_size=3),
       where=st.integers(0, 3))
def test_edited_results_are_reported_or_refused_in_one_line(records, where, finished_run, tmp_path):
    run = tmp_path / "run"
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(finished_run, run)
    lines = (run / "results.jsonl").read_text().splitlines()
    for i, record in enumerate(records):
        lines.insert(min(where + i, len(lines)), json.dumps(record))
    (run / "results.jsonl").write_text("\n".join(lines) + "\n")
    for action in (render, run_status):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                action(run)
            except EdgepruneError as exc:
                assert "\n" not in str(exc)


def test_some_fuzzed_arguments_were_valid():
    assert VALID or pytest.skip("run with test_prune_arguments")
