"""``edgeprune export --format both --int8 static --sparse-onnx`` on a masked checkpoint: model.onnx,
model.pte and their INT8 forms, each checked in its own runtime, the sparse-initializer ONNX files, the
operators outside the XNNPACK delegate, and batch-1 latency of ONNX Runtime and ExecuTorch side by side."""

import json

import pytest
import torch

from edgeprune import models
from edgeprune.measure import prunable_weights
from edgeprune.prune.masks import global_masks, make_permanent
from helpers import assert_one_line_error

pytest.importorskip("executorch")


@pytest.mark.slow
def test_export_both_formats(run_cli, tmp_path):
    torch.manual_seed(0)
    model = models.create("lenet300", num_classes=10, in_channels=1, image_size=8)
    make_permanent(model, global_masks({n: w.detach().abs() for n, w in prunable_weights(model).items()}, 0.95))
    ckpt = models.save(model, tmp_path / "m.pt", meta={"dataset": "digits"})
    out = tmp_path / "out"
    code, text, err = run_cli("export", ckpt, "--out", out, "--format", "both", "--int8", "static", "--sparse-onnx",
                              "--calib-batches", "2")
    assert code == 0, err
    record = json.loads((out / "export.json").read_text())
    assert record["formats"] == ["onnx", "executorch"]
    et = record["executorch"]
    assert et["fp32"]["max_abs_diff"] <= 1e-4 and et["fp32"]["bytes"] == (out / "model.pte").stat().st_size
    assert et["int8"]["bytes"] == (out / "model.int8.pte").stat().st_size < et["fp32"]["bytes"]
    assert isinstance(et["fp32"]["outside_delegate"], dict) and "outside the XNNPACK delegate" in text
    acc = record["accuracy"]
    assert acc["fp32_executorch"] == pytest.approx(acc["fp32_torch"], abs=1 / acc["images"])
    assert acc["fp32_ort"] == pytest.approx(acc["fp32_torch"], abs=1 / acc["images"])
    assert 0 <= acc["int8_executorch"] <= 1 and 0 <= acc["int8_ort"] <= 1
    sparse = record["sparse_onnx"]
    assert sparse["model.sparse.onnx"]["bytes"] < record["onnx"]["bytes"] / 4
    assert sparse["model.sparse.onnx"]["max_abs_diff_to_dense"] <= 1e-5
    assert sparse["model.int8.sparse.onnx"]["max_abs_diff_to_dense"] <= 1e-5
    lat = record["latency"]
    assert lat["threads"] == 1 and {"onnx", "executorch", "onnx int8", "executorch int8"} <= set(lat)
    assert all(lat[k] > 0 for k in ("onnx", "executorch"))
    assert "latency b1 executorch" in text and "model.pte" in text


def test_bad_format_choices(run_cli, tmp_path):
    ckpt = models.save(models.create("lenet300", num_classes=10, in_channels=1, image_size=8), tmp_path / "m.pt")
    code, _, err = run_cli("export", ckpt, "--out", tmp_path / "a", "--format", "tflite")
    assert_one_line_error(code, err, "--format 'tflite'", "onnx, executorch, openvino, litert, both")
    code, _, err = run_cli("export", ckpt, "--out", tmp_path / "b", "--format", "executorch", "--int8", "dynamic")
    assert_one_line_error(code, err, "--int8 dynamic", "static")
    code, _, err = run_cli("export", ckpt, "--out", tmp_path / "c", "--format", "executorch", "--sparse-onnx")
    assert_one_line_error(code, err, "--sparse-onnx")
    assert not any((tmp_path / d).exists() for d in "abc")
