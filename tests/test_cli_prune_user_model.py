"""`edgeprune prune METHOD --model path/to/file.py:factory`: a user's model file through the CLI, then
report / status / export on the run directory; bad input is one line and exit code 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

MYNET = f"{Path(__file__).resolve().parent}/byom/mynet.py:build"
COMMON = ["--dataset", "digits", "--dense-epochs", "1", "--finetune", "1", "-q"]


@pytest.mark.slow
@pytest.mark.parametrize("method,budget", [("vbp", "0.5"), ("mix_and_match", "0.5")])
def test_prune_a_model_file(method, budget, run_cli, tmp_path):
    out = tmp_path / "run"
    extra = ["-O", "criteria=[magnitude]", "-O", "strategies=[balanced]", "-O", "range_rules={small_numel: 0}"] \
        if method == "mix_and_match" else []
    code, stdout, err = run_cli("prune", method, "--model", MYNET, "--arg", "width=8", "--budget", budget,
                                "--out", out, *COMMON, *extra)
    assert code == 0, err
    assert "chosen:" in stdout and (out / "chosen.pt").is_file() and (out / "front.png").is_file()
    code, stdout, err = run_cli("status", out)
    assert code == 0 and "complete" in stdout
    code, stdout, err = run_cli("export", out, "--out", tmp_path / "export", "--dataset", "digits")
    assert code == 0, err
    assert (tmp_path / "export" / "model.onnx").stat().st_size > 0


@pytest.mark.parametrize("args,needle", [
    (["prune", "nope", "--model", MYNET], "nope"),
    (["prune", "vbp", "--model", MYNET, "--budget", "1.5"], "1.5"),
    (["prune", "vbp", "--model", "missing/net.py:build"], "missing/net.py"),
    (["prune", "vbp", "--model", MYNET, "-O", "colour=red"], "colour"),
    (["prune", "reconvene", "--model", MYNET, "--seeds", "0"], "seeds"),
])
def test_bad_input_is_one_line(args, needle, run_cli, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = run_cli(*args, "--out", out, *COMMON)
    assert code == 2
    assert err.count("\n") == 1 and needle in err and "Traceback" not in err
    assert not out.exists()


def test_out_made_by_another_method(run_cli, tmp_path):
    out = tmp_path / "run"
    code, _, err = run_cli("prune", "magnitude", "--model", MYNET, "--budget", "0.5", "--out", out, *COMMON)
    assert code == 0, err
    before = sorted(p.name for p in out.iterdir())
    code, _, err = run_cli("prune", "random", "--model", MYNET, "--budget", "0.5", "--out", out, *COMMON)
    assert code == 2 and "'magnitude'" in err and err.count("\n") == 1
    assert sorted(p.name for p in out.iterdir()) == before
