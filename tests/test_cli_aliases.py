"""`edgeprune search`, `vbp` and `pai` are aliases of `edgeprune prune METHOD`: one run directory format,
one record schema, and report / status / export work on what they write."""

import json

import pytest

from edgeprune import models
from edgeprune.runs.sweep import FORMAT
from helpers import assert_one_line_error

pytestmark = pytest.mark.timeout(300)


def records(run):
    return [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]


def check_run(run_cli, run, method, n_candidates):
    config = json.loads((run / "config.json").read_text())
    assert config["format"] == FORMAT and config["method"] == method
    rows = records(run)
    assert [r["id"] for r in rows][0] == "dense" and len(rows) == 1 + n_candidates
    assert all(r["status"] == "ok" for r in rows[1:])
    for args in (["report", run], ["status", run]):
        code, _, err = run_cli(*args)
        assert code == 0, err
    return rows[1:]


def test_search_is_prune_mix_and_match(run_cli, tmp_path):
    run = tmp_path / "s"
    args = ["search", "--model", "lenet300", "--dataset", "digits", "--criteria", "magnitude",
            "--strategies", "min,early_heavy", "--target-sparsity", "0.8", "--epochs", "1", "--dense-epochs", "1",
            "--out", run, "-q"]
    code, _, err = run_cli(*args)
    assert code == 0, err
    cands = check_run(run_cli, run, "mix_and_match", 2 + 3)  # two strategies and the three global baselines
    assert {c["setting"].get("strategy") for c in cands} == {"min", "early_heavy", None}
    assert {c["setting"].get("baseline") for c in cands} == {"magnitude", "snip", "grasp", None}
    before = (run / "results.jsonl").read_bytes()
    assert run_cli(*args)[0] == 0 and (run / "results.jsonl").read_bytes() == before  # resumed: nothing new
    code, _, err = run_cli(*args[:-3], "--epochs", "2", "--out", run, "-q")
    assert "different configuration" in assert_one_line_error(code, err)


def test_vbp_is_prune_vbp(run_cli, tmp_path):
    run = tmp_path / "v"
    args = ["vbp", "--model", "vit", "--dataset", "digits", "--arg", "dim=16", "--arg", "depth=2",
            "--arg", "num_heads=2", "--ratios", "0.25,0.5", "--dense-epochs", "1", "--epochs", "1",
            "--max-batches", "4", "--calib-batches", "3", "--out", run, "-q"]
    code, _, err = run_cli(*args)
    assert code == 0, err
    for c in check_run(run_cli, run, "vbp", 2):
        assert c["decided"]["pruned_neurons"] == round(c["budget"] * 128)
        loaded = models.load(run / c["checkpoint"])
        assert sum(b.mlp.fc1.out_features for b in loaded.blocks) == 128 - c["decided"]["pruned_neurons"]
    code, _, err = run_cli(*args[:-3], "--no-compensation", "--out", run, "-q")
    assert "compensation" in assert_one_line_error(code, err)


@pytest.mark.slow
def test_pai_is_prune_reconvene_with_upai(run_cli, tmp_path):
    run = tmp_path / "p"
    code, _, err = run_cli("pai", "--model", "resnet20", "--dataset", "digits", "--sparsity", "0.9",
                           "--score", "magnitude", "--epochs", "1", "--max-batches", "2", "--out", run, "-q")
    assert code == 0, err
    by_mode = {c["setting"]["mode"]: c for c in check_run(run_cli, run, "reconvene", 2)}
    assert by_mode["reconvene"]["decided"]["structured"]
    assert by_mode["reconvene"]["params"] < by_mode["unstructured"]["params"]
    code, _, err = run_cli("export", run, "--candidate", by_mode["reconvene"]["id"], "--out", tmp_path / "m.onnx")
    assert code == 0, err


@pytest.mark.parametrize("args,needle", [
    (["search", "--model", "lenet300", "--criteria", "magnitude,taylor"], "taylor"),
    (["search", "--model", "lenet300", "--strategies", "min,zigzag"], "zigzag"),
    (["search", "--model", "lenet300", "--target-sparsity", "1.0"], "1.0"),
    (["search", "--model", "lenet300", "--seeds", "0"], "seeds"),
    (["search", "--model", "lenet300", "--executor", "slurm"], "slurm"),
    (["search", "--dataset", "digits"], "--model"),
    (["vbp", "--model", "vit", "--dataset", "digits", "--ratio", "1.5"], "1.5"),
    (["vbp", "--model", "vit", "--dataset", "digits", "--selection", "loudest"], "loudest"),
    (["pai", "--model", "resnet20", "--dataset", "digits", "--mode", "sideways"], "sideways"),
    (["pai", "--model", "resnet20", "--dataset", "digits", "--score", "taylor"], "taylor"),
    (["pai", "--model", "resnet20", "--dataset", "digits", "--epochs", "0"], "epochs"),
    (["pai", "--model", "resnet20", "--dataset", "digits", "--sparsity", "-0.1"], "-0.1"),
])
def test_alias_flags_refused_before_anything_is_written(run_cli, tmp_path, args, needle):
    code, _, err = run_cli(*args, "--out", tmp_path / "r", "-q")
    assert needle in assert_one_line_error(code, err)
    assert not (tmp_path / "r").exists()


def test_search_recipe(run_cli, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: lenet300\nepochz: 3\n")
    assert "epochz" in assert_one_line_error(*run_cli("search", "--recipe", recipe, "-q")[::2])
    recipe.write_bytes(b"\xff\xfe\x00garbage")
    assert "UTF-8" in assert_one_line_error(*run_cli("search", "--recipe", recipe, "-q")[::2])
    recipe.write_text("- a list\n")
    assert "mapping" in assert_one_line_error(*run_cli("search", "--recipe", recipe, "-q")[::2])
