"""Static INT8 (QDQ, per-channel, calibrated on training batches) keeps a trained LeNet-5's accuracy on
digits within a few points, measured in ONNX Runtime, in a file about 3x smaller."""

import onnx
import torch

from edgeprune import data, models
from edgeprune.export import evaluate_int8
from edgeprune.train import TrainConfig, fit


def test_static_int8_keeps_accuracy(tmp_path):
    torch.manual_seed(0)
    splits = data.load("digits", seed=0)
    model = models.create("lenet5", num_classes=10, in_channels=1, image_size=8)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread is fastest, and immune to a busy machine
    try:
        fit(model, splits.train, splits.val, TrainConfig(epochs=4, batch_size=64, lr=0.05, seed=0), progress=False)
    finally:
        torch.set_num_threads(threads)

    result = evaluate_int8(model, splits, mode="static", calib_batches=8, workdir=tmp_path)
    assert result["fp32_acc_ort"] > 0.85  # the model really learned
    assert result["int8_acc_ort"] >= result["fp32_acc_ort"] - 0.03
    assert result["int8_onnx_bytes"] < 0.4 * result["onnx_bytes"]
    assert result["max_abs_diff"] <= 1e-4
    assert result["int8"]["calibration"]["images"] == 8 * 32

    # the file really is a QDQ graph with INT8 weights
    graph = onnx.load(str(tmp_path / "model.int8.onnx")).graph
    ops = {n.op_type for n in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    int8_weights = [i for i in graph.initializer if i.data_type == onnx.TensorProto.INT8 and len(i.dims) >= 2]
    assert len(int8_weights) == 4  # two convs, two fully connected layers
