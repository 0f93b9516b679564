"""Dynamic INT8 on a zoo ViT: the quantized model loads and runs in ONNX Runtime, its weights are INT8,
and its logits stay close to FP32 (no calibration data needed)."""

import numpy as np
import onnx
import torch

from edgeprune import models
from edgeprune.export import export_onnx, ort_run, ort_session, quantize


def test_dynamic_int8_vit(tmp_path):
    torch.manual_seed(0)
    model = models.create("vit", num_classes=10, in_channels=3, image_size=16, dim=32, depth=2, num_heads=2)
    export_onnx(model, tmp_path / "model.onnx")
    info = quantize(tmp_path / "model.onnx", tmp_path / "model.int8.onnx", "dynamic")
    assert info["mode"] == "dynamic" and info["bytes"] == (tmp_path / "model.int8.onnx").stat().st_size

    graph = onnx.load(str(tmp_path / "model.int8.onnx")).graph
    assert any(i.data_type == onnx.TensorProto.INT8 for i in graph.initializer)
    x = torch.randn(5, 3, 16, 16)
    fp32 = ort_run(ort_session(tmp_path / "model.onnx"), x)
    int8 = ort_run(ort_session(tmp_path / "model.int8.onnx"), x)
    assert int8.shape == (5, 10)
    assert 0 < np.abs(int8 - fp32).max() < 0.1 * np.abs(fp32).max() + 0.05  # quantized, but close
