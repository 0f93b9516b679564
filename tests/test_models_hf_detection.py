"""HF DETR and YOLOS from local configs (``hf-config:detr``, ``hf-config:yolos``) behind torchvision's detection API:
HF's own loss on our targets, HF's post-processing to pixel boxes with our labels, the dense part for export, a
checkpoint round trip, structured pruning, and the detection task's checks on real mnist-det canvases."""

from __future__ import annotations

import copy
import math
import warnings

import pytest
import torch
from torch import nn

from edgeprune import models, tasks
from edgeprune.errors import ConfigError
from edgeprune.models import hf_detection
from edgeprune.surgery.ratios import prune_channels
from edgeprune.surgery.structure import plan as plan_structure

pytest.importorskip("transformers")
pytest.importorskip("torchvision")
pytest.importorskip("scipy")  # HF's Hungarian matching
SIZE, CLASSES = 128, 11
SPECS = ["hf-config:detr", "hf-config:yolos"]


def build(spec: str, in_channels: int = 1, **options) -> hf_detection.HFDetector:
    torch.manual_seed(0)
    return models.create(spec, num_classes=CLASSES, in_channels=in_channels, image_size=SIZE, **options)


def targets() -> list[dict]:
    return [{"boxes": torch.tensor([[10.0, 20.0, 40.0, 60.0]]), "labels": torch.tensor([3])},
            {"boxes": torch.tensor([[0.0, 0.0, 128.0, 100.0], [50.0, 50.0, 70.0, 90.0]]), "labels": torch.tensor([1, 10])}]


def images(n: int = 2, channels: int = 1) -> torch.Tensor:
    return torch.rand(n, channels, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("spec", SPECS)
def test_builds_offline_with_hf_classes_less_the_background(spec):
    model = build(spec)
    assert isinstance(model, hf_detection.HFDetector)
    assert model.edgeprune_build["hf_class"] == hf_detection.HEADS[spec.split(":")[1]]
    assert model.config.num_labels == CLASSES - 1  # HF adds its own "no object" class
    assert all(p.requires_grad for p in model.parameters())
    assert not any(type(m).__name__ == "DetrFrozenBatchNorm2d" for m in model.modules())


def test_three_channel_inputs_and_config_overrides():
    model = build("hf-config:detr", in_channels=3, num_queries=7, d_model=64)
    assert model.config.backbone_config.num_channels == 3
    logits, boxes = model.export_module()(images(1, channels=3))
    assert logits.shape == (1, 7, CLASSES) and boxes.shape == (1, 7, 4)
    with pytest.raises(ConfigError, match="unknown config key 'not_a_key'"):
        build("hf-config:yolos", not_a_key=1)


@pytest.mark.parametrize("spec", SPECS)
def test_train_step_is_hf_loss_of_our_targets(spec):
    model = build(spec, **({"dropout": 0.0} if "detr" in spec else {})).train()
    x, y = images(), targets()
    losses = model(x, y)
    assert set(losses) == {"loss_ce", "loss_bbox", "loss_giou"}
    loss = tasks.Detection().total_loss(losses)
    assert loss.ndim == 0 and math.isfinite(float(loss.detach()))
    hf_labels = [{"class_labels": torch.tensor([2]), "boxes": torch.tensor([[25 / 128, 40 / 128, 30 / 128, 40 / 128]])},
                 {"class_labels": torch.tensor([0, 9]),
                  "boxes": torch.tensor([[0.5, 50 / 128, 1.0, 100 / 128], [60 / 128, 70 / 128, 20 / 128, 40 / 128]])}]
    own = model.hf_model(pixel_values=x, labels=hf_labels).loss
    torch.testing.assert_close(loss, own)
    loss.backward()
    stem = next(p for p in model.parameters())
    assert stem.grad is not None and stem.grad.abs().sum() > 0


@pytest.mark.parametrize("spec", SPECS)
def test_eval_gives_every_query_as_pixel_boxes_with_our_labels(spec):
    model = build(spec).eval()
    x = images()
    with torch.no_grad():
        out = model(x)
        logits, pred_boxes = model.export_module()(x)
    queries = logits.shape[1]
    assert len(out) == 2 and all(set(o) == {"boxes", "scores", "labels"} for o in out)
    probs = logits.softmax(-1)[..., :-1]  # without "no object"
    for o, p, b in zip(out, probs, pred_boxes):
        assert o["boxes"].shape == (queries, 4) and o["scores"].shape == (queries,) and o["labels"].dtype == torch.int64
        torch.testing.assert_close(o["scores"], p.max(-1).values)
        torch.testing.assert_close(o["labels"], p.argmax(-1) + 1)
        xyxy = torch.cat([b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2], 1) * SIZE
        torch.testing.assert_close(o["boxes"], xyxy.clamp(0, SIZE))


@pytest.mark.parametrize("spec", SPECS)
def test_deployable_part_is_logits_and_boxes(spec):
    model = build(spec).eval()
    dense = tasks.Detection().deployable(model)
    assert isinstance(dense, hf_detection.HFDenseOutputs)
    assert dict(dense.named_parameters()).keys() == dict(model.named_parameters()).keys()
    with torch.no_grad():
        logits, boxes = dense(images(3))
    queries = model.config.num_queries if "detr" in spec else model.config.num_detection_tokens
    assert logits.shape == (3, queries, CLASSES) and boxes.shape == (3, queries, 4)
    assert 0 <= float(boxes.min()) and float(boxes.max()) <= 1  # HF's sigmoid: normalised cx, cy, w, h


@pytest.mark.parametrize("spec", SPECS)
def test_checkpoint_rebuilds_the_detector(spec, tmp_path):
    model = build(spec).eval()
    models.save(model, tmp_path / "m.pt")
    loaded = models.load(tmp_path / "m.pt").eval()
    assert isinstance(loaded, hf_detection.HFDetector)
    x = images(1)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)[0]["boxes"], model(x)[0]["boxes"])


@pytest.mark.parametrize("spec", SPECS)
def test_structured_pruning_keeps_loss_and_detections(spec):
    model, x = build(spec).eval(), images(1)
    pruned = copy.deepcopy(model)
    layers = {n for n, m in pruned.named_modules() if n and isinstance(m, (nn.Linear, nn.Conv2d))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prune_channels(pruned, x, plan_structure(pruned, x), dict.fromkeys(layers, 0.3))
    assert sum(p.numel() for p in pruned.parameters()) < sum(p.numel() for p in model.parameters())
    losses = pruned.train()(images(), targets())
    assert math.isfinite(float(tasks.Detection().total_loss(losses).detach()))
    with torch.no_grad():
        assert pruned.eval()(x)[0]["boxes"].shape[1:] == (4,)


@pytest.mark.parametrize("spec", SPECS)
def test_detection_task_accepts_them_on_mnist_det(spec, mnist_root):
    from edgeprune.data import load
    from edgeprune.runs.inputs import resolve

    splits = load("mnist-det:n=24,test=8", mnist_root)
    inputs = resolve(spec, splits, task="detection")  # builds for the data, then check_task_fits
    assert isinstance(inputs.model, hf_detection.HFDetector) and inputs.example.shape == (1, 1, SIZE, SIZE)
    metrics = inputs.task.evaluate(inputs.model, splits.val, max_batches=1)
    assert 0 <= metrics["map"] <= 1


@pytest.mark.parametrize("spec", SPECS)
def test_distillation_matches_the_features_before_the_heads(spec):
    # eval mode: its loss with norms in eval mode, features as the teacher's (DETR's dropout is functional: off)
    student = build(spec, **({"dropout": 0.0} if "detr" in spec else {})).eval()
    teacher = copy.deepcopy(student)
    task, x, y = tasks.Detection(), images(), targets()
    with torch.no_grad():
        for p in teacher.backbone.parameters():
            p.add_(0.5)
        same, _ = task.distil_loss(student, copy.deepcopy(student), x, y, alpha=0.5, temperature=1.0)
        moved, _ = task.distil_loss(student, teacher, x, y, alpha=0.5, temperature=1.0)
        alone = task.train_loss(student, x, y)[0]
    torch.testing.assert_close(same, 0.5 * alone)  # identical features: the task term only
    assert float(moved) > float(same)
