"""edgeprune pai: bad input gives exit 2 and one 'error: ' line, and leaves no run folder behind."""

import pytest


@pytest.mark.parametrize(
    "args, message",
    [
        (["--sparsity", "1.0"], "--sparsity must be in [0, 1), got 1.0"),
        (["--sparsity", "-0.1"], "--sparsity must be in [0, 1)"),
        (["--score", "obd"], "unknown score 'obd'; allowed: synflow, snip, grasp, magnitude, random"),
        (["--mode", "mixed"], "--mode must be one of reconvene, unstructured, both"),
        (["--keep", "most"], "--keep must be one of score_mass, zero_filters"),
        (["--epochs", "0"], "--epochs must be > 0"),
        (["--round-to", "0"], "round_to"),
        (["--model", "lenet300"], "no convolution layer for Reconvene's structured step; use --mode unstructured"),
        (["--model", "resnet20", "--score", "magnitude", "--sparsity", "0.9999", "--keep", "zero_filters"],
         "keep=zero_filters would remove every channel of layer"),
    ],
)
def test_bad_input_exits_2_with_one_line(run_cli, tmp_path, args, message):
    out = tmp_path / "run"
    base = ["pai", "--model", "resnet20", "--dataset", "digits", "--epochs", "1", "--out", str(out), "-q"]
    code, stdout, stderr = run_cli(*base, *args)
    assert code == 2, (stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message in lines[0]
    assert not out.exists()
