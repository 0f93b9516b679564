"""Structured (channel) pruning of detectors: torch-pruning traces the detector's dense part (before decoding and
NMS), YOLO's CSP blocks are rebuilt without their chunk (SplitStage, same outputs), the heads keep their widths
and the pruned detector still detects and exports to ONNX with parity."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

from edgeprune import models, tasks
from edgeprune.surgery import graph as channels
from edgeprune.surgery.ratios import prune_channels
from edgeprune.surgery.structure import plan as plan_structure

SIZE = 64


def _randomised_norms(model: nn.Module) -> nn.Module:
    """BatchNorm statistics and affine parameters away from the identity, so a wrong channel slice shows."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.randn(m.num_features, generator=gen))
                m.bias.copy_(torch.randn(m.num_features, generator=gen))
    return model


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _structured30(model: nn.Module, example: torch.Tensor):
    pruned = copy.deepcopy(model)
    layers = {n for n, m in pruned.named_modules() if n and isinstance(m, (nn.Linear, nn.Conv2d))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        widths = prune_channels(pruned, example, plan_structure(pruned, example), dict.fromkeys(layers, 0.3))
    return pruned, widths


def _detects(model: nn.Module, example: torch.Tensor) -> None:
    with torch.no_grad():
        out = model.eval()(example)
    assert isinstance(out, list) and len(out) == len(example)
    assert all({"boxes", "scores", "labels"} <= set(o) and o["boxes"].shape[1:] == (4,) for o in out)


@pytest.mark.parametrize("name", ["yolov8n", "yolo11n"])
def test_split_stages_keep_the_outputs(name):
    pytest.importorskip("ultralytics")
    from ultralytics.nn.tasks import DetectionModel

    from edgeprune.models import yolo

    torch.manual_seed(0)
    original = _randomised_norms(DetectionModel(f"{name}.yaml", ch=1, nc=10, verbose=False)).eval()
    split = copy.deepcopy(original)
    assert yolo.split_stages(split) == (8 if name == "yolov8n" else 9)
    assert not any(type(m).__name__ in ("C2f", "C3k2", "C2PSA") for m in split.modules())
    x = torch.randn(2, 1, SIZE, SIZE)
    with torch.no_grad():
        torch.testing.assert_close(split(x)[0], original(x)[0], rtol=0, atol=0)
        torch.testing.assert_close(split.train()(x), original.train()(x), rtol=0, atol=0)  # what the loss reads


@pytest.mark.slow
def test_yolov8n_structured_pruning_detects_and_exports(tmp_path):
    pytest.importorskip("ultralytics")
    pytest.importorskip("onnxruntime")
    from edgeprune.export.onnx import export_verified

    model = models.create("yolo:yolov8n", num_classes=11, in_channels=1, image_size=SIZE).eval()
    example = torch.zeros(1, 1, SIZE, SIZE)
    with tasks.using(tasks.Detection()) as task:
        heads = channels.output_modules(model, example)
        assert heads == {f"yolo.model.22.{h}.{i}.2" for h in ("cv2", "cv3") for i in range(3)} | {"yolo.model.22.dfl.conv"}
        raw = tuple(task.deployable(model)(example).shape)
        pruned, widths = _structured30(model, example)
        assert not widths.skipped  # no group kept whole: no chunk left to stop torch-pruning
        assert _params(pruned) < 0.6 * _params(model)
        assert tuple(task.deployable(pruned)(example).shape) == raw
        _detects(pruned, torch.randn(2, 1, SIZE, SIZE))
        info = export_verified(pruned, tmp_path / "yolo.onnx", torch.randn(2, 1, SIZE, SIZE))
    assert info["max_abs_diff"] <= info["tolerance"]


@pytest.mark.slow
def test_yolo11n_structured_pruning_keeps_its_attention_whole():
    pytest.importorskip("ultralytics")
    model = models.create("yolo:yolo11n", num_classes=11, in_channels=1, image_size=SIZE)
    example = torch.zeros(1, 1, SIZE, SIZE)
    with tasks.using(tasks.Detection()):
        pruned, widths = _structured30(model, example)
        _detects(pruned, torch.randn(2, 1, SIZE, SIZE))
    assert _params(pruned) < 0.7 * _params(model)
    assert any("attn.qkv" in note for note in widths.skipped)


@pytest.mark.slow
def test_ssdlite_structured_pruning_stops_at_the_heads():
    model = models.create("torchvision:ssdlite320_mobilenet_v3_large", num_classes=11, in_channels=1, image_size=128).eval()
    example = torch.zeros(1, 1, 128, 128)
    with tasks.using(tasks.Detection()) as task:
        raw = [tuple(t.shape) for t in task.deployable(model)(example)]
        pruned, _ = _structured30(model, example)
        assert [tuple(t.shape) for t in task.deployable(pruned)(example)] == raw
        _detects(pruned, torch.randn(2, 1, 128, 128))
    assert _params(pruned) < 0.7 * _params(model)


# the latency budget: ~3 min, ten dynamo ONNX exports of YOLOv8n while calibrating (make test-long)
@pytest.mark.slow
@pytest.mark.parametrize("budget", ["macs<=70%", pytest.param("latency<=70%", marks=pytest.mark.long)])
def test_prune_yolov8n_end_to_end(tmp_path, budget):
    """The public call: Mix-and-Match channel pruning to a measured budget, fine-tuned, still a detector, exported."""
    pytest.importorskip("ultralytics")
    import edgeprune
    from edgeprune.api_contract import tiny_data
    from edgeprune.export.onnx import export_verified

    model = models.create("yolo:yolov8n", num_classes=11, in_channels=1, image_size=128)
    example = torch.zeros(1, 1, 128, 128)
    data = tiny_data(example, 11, task=tasks.Detection())
    result = edgeprune.prune(model, data, task="detection", method="mix_and_match", granularity="channel",
                             budget=budget, finetune={"epochs": 1, "max_batches": 2}, criteria=["magnitude"],
                             strategies=["balanced"], latency_runs=5)
    assert result.record["status"] == "ok" and result.record["params"] < result.dense["params"]
    _detects(result.model, torch.randn(2, 1, 128, 128))
    with tasks.using(tasks.Detection()):
        info = export_verified(result.model, tmp_path / "pruned.onnx", torch.randn(2, 1, 128, 128))
    assert info["max_abs_diff"] <= info["tolerance"]
