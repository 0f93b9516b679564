"""edgeprune pai: bad input gives exit 2 and one 'error: ' line, and leaves no run folder behind."""

import pytest


@pytest.mark.parametrize(
    "args, message",
    [
        (["--sparsity", "1.0"], "budget 1.0 is not allowed for method 'reconvene': a sparsity"),
        (["--sparsity", "-0.1"], "in [0, 1)"),
        (["--score", "obd"], "score='obd' is not allowed (Input should be 'synflow', 'snip', 'grasp', 'magnitude' or 'random')"),
        (["--mode", "mixed"], "--mode must be one of reconvene, unstructured, both"),
        (["--keep", "most"], "keep='most' is not allowed (Input should be 'score_mass' or 'zero_filters')"),
        (["--epochs", "0"], "--epochs must be > 0"),
        (["--round-to", "0"], "round_to"),
        (["--model", "lenet300"], "no convolution layer for Reconvene's structured step; -O modes=[unstructured]"),
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


def test_a_setting_that_fails_every_candidate_is_one_line(run_cli, tmp_path):
    """Found only when a candidate is generated (after the dense reference is trained): exit 2, one line."""
    out = tmp_path / "run"
    code, stdout, stderr = run_cli("pai", "--model", "resnet20", "--dataset", "digits", "--epochs", "1",
                                   "--max-batches", "2", "--score", "magnitude", "--sparsity", "0.9999",
                                   "--keep", "zero_filters", "--mode", "reconvene", "--out", str(out), "-q")
    assert code == 2, (stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "every candidate failed" in lines[0]
    assert "keep=zero_filters would remove every channel of layer" in lines[0]
