"""A user's CNN (conv + BN, residual, depthwise, GELU MLP), dense, masked (unstructured) and physically
smaller (Reconvene), exports to an XNNPACK-lowered .pte that the ExecuTorch runtime runs with PyTorch's
outputs; the operators left outside the delegate are named."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import edgeprune
from byom.userdata import FAST_OPTIONS, loaders, trained_model
from edgeprune.export import Program, et_accuracy, export_executorch

pytest.importorskip("executorch")


@pytest.fixture(scope="module")
def data():
    return loaders()


@pytest.fixture(scope="module")
def dense():
    return trained_model()


@pytest.mark.slow
@pytest.mark.parametrize("method", ["dense", "magnitude", "reconvene"])
def test_pte_matches_pytorch(method, dense, data, tmp_path):
    if method == "dense":
        model = dense
    else:
        pruned = edgeprune.prune(dense, data, method=method, budget=0.6, finetune={"epochs": 1, "max_batches": 2},
                                 **FAST_OPTIONS.get(method, {}))
        model = pruned.model.eval()
        if method == "reconvene":  # physically smaller: fewer parameters than the dense model
            assert pruned.record["params"] < pruned.dense["params"]
        else:  # masked: the zeros are in the weights, the shapes are the dense ones
            assert pruned.record["params"] == pruned.dense["params"]
    x = next(iter(data[2]))[0][:40]
    info = export_executorch(model, tmp_path / "m.pte", x, batch=16)

    assert (tmp_path / "m.pte").stat().st_size == info["bytes"] > 1000
    assert info["max_abs_diff"] <= 1e-4 and info["parity_inputs"] == 40
    assert info["delegated_subgraphs"] >= 1
    assert all(op.startswith("aten::") and n >= 1 for op, n in info["outside_delegate"].items())
    assert not [p for p in tmp_path.iterdir() if p.name != "m.pte"]  # no temporary file left behind

    program = Program(tmp_path / "m.pte")  # loaded back from disk: 40 inputs in padded chunks of the fixed 16
    assert program.max_batch == 16 and program.input_shape == (1, 8, 8)
    with torch.no_grad():
        expected = model(x).numpy()
    assert np.abs(program.run(x) - expected).max() <= 1e-4
    acc, images = et_accuracy(program, data[2])
    with torch.no_grad():
        torch_correct = sum(int((model(xb).argmax(1) == yb).sum()) for xb, yb in data[2])
    assert images == 347 and (acc > 0.5 or method != "dense")
    assert abs(acc * images - torch_correct) <= 1  # same predictions (a near-tie may flip)
