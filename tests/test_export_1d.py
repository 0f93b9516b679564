"""A 1-D model (``kws-cnn1d``, input [B, C, L]) exports from its checkpoint alone: the input shape is (C, L), not
a square image, in ONNX Runtime and ExecuTorch, with parity in each."""

import json

import pytest

import edgeprune
from edgeprune import models
from edgeprune.export.onnx import input_shape_of


def test_input_shape_of_a_1d_model_is_channels_by_length():
    assert input_shape_of(models.create("kws-cnn1d", num_classes=5, in_channels=2, image_size=64)) == (2, 64)
    assert input_shape_of(models.create("lenet5", num_classes=10, in_channels=1, image_size=28)) == (1, 28, 28)


@pytest.mark.slow
def test_export_cli_on_a_1d_checkpoint(run_cli, tmp_path):
    pytest.importorskip("executorch")
    edgeprune.save(models.create("kws-cnn1d", num_classes=5, in_channels=1, image_size=64), tmp_path / "kws.pt")
    code, out, err = run_cli("export", tmp_path / "kws.pt", "-o", tmp_path / "out", "--format", "both")
    assert code == 0, err
    info = json.loads((tmp_path / "out" / "export.json").read_text())
    assert info["onnx"]["input_shape"] == [1, 64]
    assert info["executorch"]["fp32"]["input_shape"] == [1, 64]
    assert info["executorch"]["fp32"]["max_abs_diff"] < 1e-4
