"""Bad executor flags: one line, exit 2, nothing written, and no Ray started to find out."""

import sys

import pytest

from helpers import assert_one_line_error

SEARCH = ["search", "--model", "lenet300", "--dataset", "digits", "-q"]




@pytest.mark.parametrize(
    "args,needles",
    [
        (["--executor", "ray", "--workers", "0"], ["--workers", "> 0"]),
        (["--executor", "ray", "--workers", "-3"], ["--workers"]),
        (["--executor", "ray", "--cpus-per-candidate", "0"], ["--cpus-per-candidate"]),
        (["--executor", "ray", "--gpus-per-candidate", "-1"], ["--gpus-per-candidate", ">= 0"]),
        (["--executor", "ray", "--cpus-per-candidate", "512"], ["no node", "512", "largest node"]),
        (["--executor", "ray", "--gpus-per-candidate", "1"], ["no node", "GPU"]),
        (["--executor", "ray", "--ray-address", "127.0.0.1:1"], ["127.0.0.1:1", "unreachable", "ray start --head", "omit --ray-address"]),
        (["--executor", "ray", "--ray-address", "not an address"], ["not an address", "HOST:PORT"]),
        (["--workers", "2"], ["--workers 2", "--executor ray"]),
        (["--ray-address", "auto"], ["--ray-address", "--executor ray"]),
    ],
)
def test_executor_flags_refused(run_cli, tmp_path, args, needles):
    code, _, err = run_cli(*SEARCH, *args, "--out", tmp_path / "r")
    err = assert_one_line_error(code, err)
    for needle in needles:
        assert needle in err
    assert not (tmp_path / "r").exists()
    ray = sys.modules.get("ray")  # refusing must not have started (or needed) Ray
    assert ray is None or not ray.is_initialized()
