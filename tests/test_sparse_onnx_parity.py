"""Standard sparse ONNX: a weight-sparse model's initializers become ONNX sparse_initializers (FP32 and
INT8 QDQ); stock ONNX Runtime loads the file and gives exactly the dense export's outputs; LeNet-300-100 at
98 % sparsity is more than 10x smaller than its dense ONNX."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from torch.utils.data import TensorDataset

from edgeprune import models
from edgeprune.errors import ModelError
from edgeprune.export import export_verified, quantize
from edgeprune.export.onnx import ort_run, ort_session
from edgeprune.export.sparse_onnx import check_same_outputs, sparsify, write_sparse
from edgeprune.measure import prunable_weights
from edgeprune.prune.masks import global_masks, make_permanent


def test_lenet300_98_percent_sparse_onnx(tmp_path):
    torch.manual_seed(0)
    model = models.create("lenet300", num_classes=10, in_channels=1, image_size=28).eval()
    make_permanent(model, global_masks({n: w.detach().abs() for n, w in prunable_weights(model).items()}, 0.98))
    x = torch.randn(32, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    export_verified(model, tmp_path / "m.onnx", x)

    info = write_sparse(tmp_path / "m.onnx", tmp_path / "m.sparse.onnx", x)
    assert info["ratio_to_dense"] >= 10 and info["max_abs_diff_to_dense"] <= 1e-5
    graph = onnx.load(str(tmp_path / "m.sparse.onnx")).graph
    density = {n: float((w != 0).float().mean()) for n, w in prunable_weights(model).items()}
    # sparse where nnz·(4 + 8) bytes < dense bytes: the two big layers (the classifier keeps more of its weights)
    assert {s.values.name for s in graph.sparse_initializer} == {n for n, d in density.items() if d < 1 / 3} \
        >= {"features.1.weight", "features.3.weight"}
    assert all(s.indices.data_type == onnx.TensorProto.INT64 for s in graph.sparse_initializer)
    assert {n.op_type for n in graph.node} >= {"Gemm"}  # fed straight into the unchanged Gemm nodes
    nnz = sum(int((w != 0).sum()) for n, w in prunable_weights(model).items() if density[n] < 1 / 3)
    assert sum(len(s.indices.int64_data) or len(s.indices.raw_data) // 8 for s in graph.sparse_initializer) == nnz
    with torch.no_grad():
        assert np.abs(ort_run(ort_session(tmp_path / "m.sparse.onnx"), x) - model(x).numpy()).max() <= 1e-4

    calib = TensorDataset(torch.randn(128, 1, 28, 28), torch.zeros(128, dtype=torch.long))
    quantize(tmp_path / "m.onnx", tmp_path / "q.onnx", "static", calibration_data=calib, calib_batches=2)
    q = write_sparse(tmp_path / "q.onnx", tmp_path / "q.sparse.onnx", x)
    assert q["max_abs_diff_to_dense"] <= 1e-5 and q["ratio_to_dense"] > 3
    assert all(t["name"].endswith("_quantized") for t in q["sparse_tensors"])  # the INT8 weights of the QDQ graph


@pytest.mark.slow
def test_dense_weights_stay_dense_and_mismatch_is_refused(tmp_path):
    torch.manual_seed(0)
    model = models.create("lenet300", num_classes=10, in_channels=1, image_size=8).eval()
    x = torch.randn(4, 1, 8, 8)
    export_verified(model, tmp_path / "m.onnx", x)
    info = sparsify(tmp_path / "m.onnx", tmp_path / "same.onnx")
    assert info["sparse_tensors"] == []  # nothing is worth it below 2/3 zeros (8-byte indices)
    other = models.create("lenet300", num_classes=10, in_channels=1, image_size=8).eval()
    export_verified(other, tmp_path / "other.onnx", x)
    with pytest.raises(ModelError, match="does not match its dense export"):
        check_same_outputs(tmp_path / "m.onnx", tmp_path / "other.onnx", x)
