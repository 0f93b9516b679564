"""Latency tables in every runtime (issue 29): the one-layer files of an ExecuTorch, OpenVINO or LiteRT budget are
programs of that runtime computing the operator the ONNX table's file states, timed by the runner at their own input
shape (the budgets that use them: tests/test_edge_runtime_budgets.py)."""

import json
import subprocess
import sys

import onnxruntime
import pytest
import torch

from edgeprune.devices import runner
from edgeprune.devices.base import SUFFIX
from edgeprune.export.runtimes import installed
from edgeprune.select import latency_table

OPS = [latency_table.Op("Conv", 8, 16, 1, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), (12, 12), True),
       latency_table.Op("Conv", 8, 16, 1, (3, 3), (2, 2), (0, 0, 1, 1), (1, 1), (12, 12), False),  # TF-style "same"
       latency_table.Op("Conv", 16, 16, 16, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), (6, 6), True),  # depthwise
       latency_table.Op("Linear", 16, 24, 1, (), (), (), (), (5,), True)]  # five tokens
RUNTIMES = sorted({r.name for r in installed()} - {"onnx"})


@pytest.mark.slow
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_one_layer_programs_compute_the_operator_and_are_timed_at_their_own_shape(runtime, tmp_path):
    suffix = {r: s for s, r in SUFFIX.items()}[runtime]
    for i, op in enumerate(OPS):  # the same operator as the ONNX table's file: the same output shape
        module, shape = latency_table._op_module(op)
        latency_table._onnx_file(op, 2, tmp_path / f"op{i}.onnx")
        session = onnxruntime.InferenceSession(str(tmp_path / f"op{i}.onnx"), providers=["CPUExecutionProvider"])
        expected = session.run(None, {"x": torch.zeros(2, *shape).numpy()})[0].shape
        assert tuple(module(torch.zeros(2, *shape)).shape) == expected, op
    paths = [tmp_path / f"call{suffix}"]
    latency_table._op_file(None, 1, paths[0], runtime)
    for i, op in enumerate(OPS):
        paths.append(tmp_path / f"p{i}{suffix}")
        latency_table._op_file(op, 1, paths[-1], runtime)
    done = subprocess.run([sys.executable, runner.__file__, "--runtime", runtime, "--rounds", "3", "--warmup", "1",
                           *map(str, paths)], capture_output=True, text=True)
    out = json.loads(done.stdout)
    assert done.returncode == 0, out
    assert [len(t) for t in out["times_ms"]] == [3] * len(paths) and all(min(t) > 0 for t in out["times_ms"])
