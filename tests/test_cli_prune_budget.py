"""`edgeprune prune mix_and_match -O granularity=channel --budget macs<=50%`: a run directory whose every
candidate fits the budget (and running it again resumes); a malformed --budget is one line, exit 2, nothing written."""

import json

from helpers import assert_one_line_error

COMMON = ["--model", "lenet5", "--dataset", "digits", "--dense-epochs", "1", "--finetune", "0", "-q",
          "-O", "granularity=channel", "-O", "strategies=[balanced,p90]", "-O", "criteria=[magnitude]",
          "-O", "deploy_metrics=false", "-O", "calib_batches=1"]


def test_prune_to_a_macs_budget(run_cli, tmp_path):
    out = tmp_path / "run"
    code, _, err = run_cli("prune", "mix_and_match", "--budget", "macs<=50%", "--out", out, *COMMON)
    assert code == 0, err
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    dense = next(r for r in records if r["kind"] == "dense")
    candidates = [r for r in records if r["kind"] == "candidate"]
    assert len(candidates) == 3  # two strategies and the scratch baseline, on by default from the shell
    scratch = next(r for r in candidates if r["setting"].get("scratch"))
    assert scratch["decided"]["scratch"] == {"epochs": 1 + 0} and scratch["epochs_run"] >= 1
    assert "Pruning vs training the small model from scratch" in (out / "report.md").read_text()
    for r in candidates:
        assert r["status"] == "ok" and r["budget_text"] == "macs<=50%" and r["budget_name"] == "macs"
        assert r["macs"] <= 0.5 * dense["macs"] and (out / r["checkpoint"]).is_file()
    assert "macs<=50%" in (out / "report.md").read_text()
    code, _, err = run_cli("prune", "mix_and_match", "--budget", "macs<=50%", "--out", out, *COMMON)  # resumes
    assert code == 0, err
    assert len((out / "results.jsonl").read_text().splitlines()) == len(records)


def test_a_malformed_budget_is_refused(run_cli, tmp_path):
    out = tmp_path / "run"
    code, _, err = run_cli("prune", "mix_and_match", "--budget", "latency<=fast", "--out", out, *COMMON)
    assert_one_line_error(code, err, "latency<=fast", "allowed")
    assert not out.exists()
