"""Issue 32: a plan before long work, progress lines a redirected log shows, and a quick mode.

Real CLI (in-process and as a process whose output goes to a file) on digits with tiny settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import edgeprune
from edgeprune.train import QUICK_MAX_BATCHES
from helpers import assert_one_line_error

SRC = Path(__file__).resolve().parents[1] / "src"
TINY = ["--model", "lenet300", "--dataset", "digits", "--dense-epochs", "1", "--finetune", "1"]


def test_dry_run_prints_the_plan_and_writes_nothing(run_cli, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = run_cli("prune", "magnitude", *TINY, "--budget", "0.5,0.7", "--seeds", "2", "--out", out,
                                "--dry-run")
    assert code == 0, err
    assert "4 candidates" in err and "2 budgets × 2 seeds" in err, err
    assert "dense training: 1 epoch" in err and "fine-tune: 1 epoch" in err, err
    assert "estimate" in err, err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_the_plan_counts_what_the_run_then_writes_and_status_shows_it(run_cli, tmp_path, capsys):
    out = tmp_path / "mam"
    result = edgeprune.sweep("lenet5", "digits", method="mix_and_match", budgets=[0.6], seeds=[0], out=out,
                             finetune={"epochs": 1, "max_batches": 2}, criteria=["magnitude", "product"],
                             strategies=["min", "max"], baselines=["magnitude"])
    err = capsys.readouterr().err
    assert "5 candidates (1 budget × 1 seed × 5 settings)" in err, err
    assert "criterion: magnitude, product" in err and "strategy: min, max" in err and "baseline: magnitude" in err, err
    plan = json.loads((out / "plan.json").read_text())
    written = [r for r in result.records if r["kind"] == "candidate"]
    assert plan["details"]["candidates"] == len(written) == 5
    assert plan["details"]["estimate_seconds"] > 0 and plan["kinds"]["candidate"]["expected"] == 5
    code, stdout, err = run_cli("status", out)
    assert code == 0, err
    assert "done: 5/5" in stdout and "ETA" in stdout and "estimate" in stdout, stdout
    assert "5 candidates" in stdout, stdout


def test_api_dry_run_writes_nothing_and_returns_the_plan(tmp_path, capsys):
    plan = edgeprune.sweep("lenet300", "digits", method="magnitude", budgets=[0.5], seeds=3, out=tmp_path / "r",
                           finetune=1, dry_run=True)
    assert plan["candidates"] == 3 and plan["dry_run"] is True
    assert "3 candidates" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_prune_with_progress_prints_the_plan(capsys):
    edgeprune.prune("lenet300", "digits", method="magnitude", budget=0.5, finetune={"epochs": 1, "max_batches": 2},
                    progress=True)
    err = capsys.readouterr().err
    assert "plan: magnitude" in err and "1 candidate" in err and "[1/1]" in err, err


@pytest.mark.slow
def test_a_redirected_log_shows_the_plan_first_and_a_line_per_candidate(tmp_path):
    log = tmp_path / "log.txt"
    args = ["prune", "magnitude", *TINY, "--budget", "0.5,0.7", "--out", str(tmp_path / "run")]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    started = time.monotonic()
    with open(log, "w") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "edgeprune", *args], stdout=sink, stderr=subprocess.STDOUT,
                                env=env, cwd=tmp_path)
        plan_seen = None
        while proc.poll() is None and plan_seen is None:
            if "plan: magnitude" in log.read_text():
                plan_seen = time.monotonic() - started
            time.sleep(0.2)
        assert proc.wait(timeout=120) == 0, log.read_text()
    text = log.read_text()
    assert plan_seen is None or plan_seen < 45, plan_seen  # seconds: 24 on a machine at load 5, a whole run before
    lines = text.splitlines()
    first_candidate = next(i for i, line in enumerate(lines) if line.startswith("[1/2]"))
    assert any("plan: magnitude" in line for line in lines[:first_candidate]), text
    assert any(line.startswith("train lenet300 epoch 1/1") for line in lines[:first_candidate]), text
    for n in (1, 2):
        line = next(line for line in lines if line.startswith(f"[{n}/2]"))
        assert " done " in line and "val_acc " in line and "params " in line and "ETA " in line, line


def test_a_quick_run_says_so_and_never_shares_a_full_runs_directory(run_cli, tmp_path):
    out = tmp_path / "quick"
    code, stdout, err = run_cli("prune", "magnitude", *TINY, "--budget", "0.5", "--out", out, "--quick")
    assert code == 0, err
    assert "quick run" in err, err
    config = json.loads((out / "config.json").read_text())
    assert config["quick"] is True
    assert config["data"]["train"] + config["data"]["val"] <= 1000
    assert config["finetune"]["max_batches"] == QUICK_MAX_BATCHES
    assert "quick run" in (out / "report.md").read_text().splitlines()[2]
    dense = json.loads((out / "dense" / "metrics.json").read_text())
    assert dense["config"]["max_batches"] == QUICK_MAX_BATCHES
    code, _, err = run_cli("prune", "magnitude", *TINY, "--budget", "0.5", "--out", out, "-q")
    assert "quick" in assert_one_line_error(code, err)


def test_quick_train_caps_batches_and_data(run_cli, tmp_path):
    out = tmp_path / "t"
    code, _, err = run_cli("train", "--model", "lenet300", "--dataset", "digits", "--epochs", "1", "--batch-size", "16",
                           "--quick", "--out", out, "-q")
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train"]["history"][0]["examples"] <= QUICK_MAX_BATCHES * 16
    assert metrics["config"]["max_batches"] == QUICK_MAX_BATCHES


def test_test_limit_thins_the_test_split_stratified():
    from edgeprune import data

    full, thin = data.load("digits"), data.load("digits", test_limit=100)
    assert len(thin.test) == 100 and len(thin.train) == len(full.train)
    assert set(thin.test.labels.tolist()) == set(full.test.labels.tolist())


def test_the_aliases_take_dry_run_and_quick(run_cli, tmp_path):
    search = ["search", "--model", "lenet300", "--criteria", "magnitude", "--strategies", "min", "--epochs", "1",
              "--dense-epochs", "1"]
    pai = ["pai", "--model", "lenet300", "--dataset", "digits", "--mode", "unstructured", "--epochs", "1"]
    for argv in (search, pai):
        code, _, err = run_cli(*argv, "--out", tmp_path / argv[0], "--dry-run", "--quick")
        assert code == 0, err
        assert "plan: " in err and "quick run" in err, err
    assert not list(tmp_path.iterdir())
