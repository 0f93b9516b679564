"""The detection task: COCO mAP (hand-checked, and against torchmetrics' faster-coco-eval), target checks, fit on
SSDlite and YOLOv8n, a user's own detector with its own loss, distillation and the bootstrap interval.

Data: sklearn's 8x8 digits scaled to 24 px and pasted in distinct quadrants of blank canvases; their boxes and
labels (digit + 1) are known exactly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

import edgeprune
from edgeprune import models, tasks
from edgeprune.errors import ConfigError, DataError, DependencyError, ModelError
from edgeprune.tasks import Detection
from edgeprune.train import TrainConfig, fit

pytest.importorskip("torchvision")
SIZE, GLYPH, CLASSES = 128, 24, 11


def digit_canvases(n: int, per_image: int = 2, seed: int = 0):
    """``n`` canvases [1, SIZE, SIZE] holding ``per_image`` digits each (one per quadrant), and their targets."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    images, targets = torch.zeros(n, 1, SIZE, SIZE), []
    half = SIZE // 2
    for i in range(n):
        boxes, labels = [], []
        for quadrant in rng.permutation(4)[:per_image]:
            k = int(rng.integers(len(digits.images)))
            glyph = F.interpolate(torch.tensor(digits.images[k] / 16.0, dtype=torch.float32)[None, None], size=(GLYPH, GLYPH))
            x0 = int(quadrant % 2 * half + rng.integers(0, half - GLYPH))
            y0 = int(quadrant // 2 * half + rng.integers(0, half - GLYPH))
            images[i, 0, y0:y0 + GLYPH, x0:x0 + GLYPH] = glyph[0, 0]
            boxes.append([x0, y0, x0 + GLYPH, y0 + GLYPH])
            labels.append(int(digits.target[k]) + 1)
        targets.append({"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.tensor(labels)})
    return images, targets


class Canvases(torch.utils.data.Dataset):
    """A detection dataset whose ``__getitems__`` returns a whole batch: (x [B, 1, H, W], list of target dicts)."""

    def __init__(self, n: int, per_image: int = 2, seed: int = 0):
        self.x, self.y = digit_canvases(n, per_image, seed)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]

    def __getitems__(self, index):
        return self.x[index], [self.y[i] for i in index]


def loader(data: Canvases, batch_size: int = 4) -> DataLoader:
    """A user's DataLoader over the canvases, with the collate function detection data needs."""
    pairs = list(zip(data.x, data.y))
    return DataLoader(pairs, batch_size=batch_size, collate_fn=lambda b: (torch.stack([x for x, _ in b]), [y for _, y in b]))


def statistics(preds, targets):
    task = Detection()
    return task, task.join([task.example_statistics(preds, targets)])


# -- the metric ---------------------------------------------------------------------------------------
def test_perfect_predictions_score_one_and_none_score_zero():
    _, targets = digit_canvases(6)
    perfect = [{"boxes": t["boxes"], "scores": torch.linspace(0.9, 0.5, len(t["labels"])), "labels": t["labels"]} for t in targets]
    task, stats = statistics(perfect, targets)
    assert task.reduce(stats) == {"map": 1.0, "map50": 1.0, "map75": 1.0}
    empty = [{"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.long)} for _ in targets]
    task, stats = statistics(empty, targets)
    assert task.reduce(stats) == {"map": 0.0, "map50": 0.0, "map75": 0.0}


def test_one_of_two_boxes_found_with_a_false_positive_after_it():
    # class 1 has two boxes; the best-scored detection hits one, the next is elsewhere: recall 1/2 at precision 1,
    # so 51 of COCO's 101 recall points (0, 0.01 .. 0.50) read precision 1 at every IoU threshold
    target = {"boxes": torch.tensor([[0.0, 0, 10, 10], [50, 50, 70, 70]]), "labels": torch.tensor([1, 1])}
    pred = {"boxes": torch.tensor([[0.0, 0, 10, 10], [90, 90, 99, 99]]), "scores": torch.tensor([0.9, 0.8]),
            "labels": torch.tensor([1, 1])}
    task, stats = statistics([pred], [target])
    assert task.reduce(stats)["map"] == pytest.approx(51 / 101, abs=1e-12)


def noisy_predictions(targets, seed: int = 0, jitter: float = 3.0):
    """Each box found with jittered corners and a random score, a wrong label now and then, plus one false positive."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for t in targets:
        n = len(t["labels"])
        boxes = t["boxes"] + torch.randn(n, 4, generator=g) * jitter
        boxes = torch.cat([boxes[:, :2], torch.maximum(boxes[:, 2:], boxes[:, :2] + 1)], 1)
        labels = torch.where(torch.rand(n, generator=g) < 0.2, torch.randint(1, CLASSES, (n,), generator=g), t["labels"])
        xy = torch.rand(1, 2, generator=g) * 100
        out.append({"boxes": torch.cat([boxes, torch.cat([xy, xy + 20], 1)]), "scores": torch.rand(n + 1, generator=g),
                    "labels": torch.cat([labels, torch.randint(1, CLASSES, (1,), generator=g)])})
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_map_equals_torchmetrics_coco_evaluation(seed):
    metrics = pytest.importorskip("torchmetrics.detection")
    pytest.importorskip("faster_coco_eval")
    _, targets = digit_canvases(40, per_image=3, seed=seed)
    preds = noisy_predictions(targets, seed)
    # COCO's own thresholds (np.linspace): torchmetrics' defaults are float32 (0.7 → 0.69999999), which reads
    # another point of the curve wherever a recall is exactly 0.7 (7 of 10 boxes found)
    reference = metrics.MeanAveragePrecision(iou_type="bbox", backend="faster_coco_eval", iou_thresholds=np.linspace(0.5, 0.95, 10).tolist(),
                                             rec_thresholds=np.linspace(0, 1, 101).tolist())
    reference.update(preds, targets)
    ref = reference.compute()
    task, stats = statistics(preds, targets)
    mine = task.reduce(stats)
    assert 0.1 < mine["map"] < 0.9
    for key, ref_key in (("map", "map"), ("map50", "map_50"), ("map75", "map_75")):
        assert mine[key] == pytest.approx(float(ref[ref_key]), abs=1e-6)


def test_bootstrap_interval_brackets_the_point_value():
    _, targets = digit_canvases(80, seed=3)
    task, stats = statistics(noisy_predictions(targets, 3), targets)
    point = task.reduce(stats)["map"]
    lo, hi = task.interval(tasks.Statistics(stats, len(stats)))
    assert lo < point < hi and hi - lo < 0.5
    weights_of_a_copy = task.reduce(stats, np.r_[np.arange(len(stats)), np.arange(len(stats))])["map"]
    assert weights_of_a_copy == pytest.approx(point, abs=1e-12)  # every image twice: the same curve


# -- targets and outputs ------------------------------------------------------------------------------
def box(*xyxy):
    return torch.tensor([xyxy], dtype=torch.float32)


BAD_TARGETS = {
    "not a list": (torch.zeros(2, 4), "list of one dict per image"),
    "one dict short": ([{"boxes": box(1, 1, 5, 5), "labels": torch.tensor([1])}], "list of one dict per image"),
    "boxes [N, 5]": ([{"boxes": torch.zeros(1, 5), "labels": torch.tensor([1])}] * 2, "expected float [N, 4]"),
    "integer boxes": ([{"boxes": torch.tensor([[1, 1, 5, 5]]), "labels": torch.tensor([1])}] * 2, "expected float [N, 4]"),
    "float labels": ([{"boxes": box(1, 1, 5, 5), "labels": torch.tensor([1.0])}] * 2, "expected int64 [1]"),
    "labels not one per box": ([{"boxes": box(1, 1, 5, 5), "labels": torch.tensor([1, 2])}] * 2, "one per box"),
    "label 0": ([{"boxes": box(1, 1, 5, 5), "labels": torch.tensor([0])}] * 2, "label 0; allowed labels are 1..K"),
    "x2 <= x1": ([{"boxes": box(5, 1, 5, 9), "labels": torch.tensor([1])}] * 2, "degenerate box [5.0, 1.0, 5.0, 9.0]"),
    "outside": ([{"boxes": box(1, 1, 5, 5), "labels": torch.tensor([1])}, {"boxes": box(20, 1, 40, 9), "labels": torch.tensor([1])}],
                "image 1 has box [20.0, 1.0, 40.0, 9.0] outside the 32x32 image"),
}


@pytest.mark.parametrize("case", BAD_TARGETS, ids=list(BAD_TARGETS))
def test_bad_targets_each_give_one_line(case):
    y, words = BAD_TARGETS[case]
    with pytest.raises(DataError) as err:
        Detection().check_target(torch.zeros(2, 1, 32, 32), y, "training data")
    message = str(err.value)
    assert words in message and "\n" not in message and message.startswith("training data")


def test_a_bad_target_stops_fit_before_any_step():
    data = Canvases(4)
    data.y[1] = {"boxes": data.y[1]["boxes"], "labels": torch.zeros_like(data.y[1]["labels"])}
    model = nn.Conv2d(1, 1, 3)
    before = model.weight.detach().clone()
    with pytest.raises(DataError, match="training data: image 1 has label 0; allowed labels are 1..K"):
        fit(model, loader(data), data, TrainConfig(epochs=1), task=Detection(), progress=False)
    assert torch.equal(model.weight, before)


def test_eval_output_must_be_boxes_scores_labels_per_image():
    with pytest.raises(ModelError, match="one dict with boxes"):
        Detection().check_output(nn.Identity(), torch.zeros(2, 10), torch.zeros(2, 1, 8, 8), None)
    with pytest.raises(ModelError, match="one dict with boxes"):
        Detection().check_output(nn.Identity(), [{"boxes": torch.zeros(0, 4)}] * 2, torch.zeros(2, 1, 8, 8), None)
    Detection().check_output(nn.Identity(), [{"boxes": torch.zeros(0, 4), "scores": torch.zeros(0),
                                              "labels": torch.zeros(0, dtype=torch.long)}] * 2, torch.zeros(2, 1, 8, 8), None)


# -- training real detectors --------------------------------------------------------------------------
def needs_ultralytics():
    pytest.importorskip("ultralytics")


@pytest.mark.parametrize("spec", ["torchvision:ssdlite320_mobilenet_v3_large", "yolo:yolov8n"])
def test_fit_trains_a_detector_and_selects_on_val_map(spec):
    if spec.startswith("yolo:"):
        needs_ultralytics()
    torch.manual_seed(0)
    model = models.create(spec, num_classes=CLASSES, in_channels=1, image_size=SIZE)
    train, val = Canvases(8, seed=1), Canvases(8, seed=2)
    result = fit(model, loader(train), val, TrainConfig(epochs=1, max_batches=2, eval_batch_size=8),
                 task=Detection(), progress=False)
    (epoch,) = result.history
    assert math.isfinite(epoch["train_loss"]) and epoch["train_loss"] > 0 and epoch["examples"] == 8
    assert 0.0 <= epoch["val_map"] <= 1.0 and result.best_val_acc == epoch["val_map"]


@pytest.mark.long
def test_yolo_learns_to_find_digits():
    """End to end through Ultralytics' loss and our NMS: 8 epochs on 512 canvases reached mAP 0.72 (≈2 min, CPU)."""
    needs_ultralytics()
    torch.manual_seed(0)
    model = models.create("yolo:yolov8n", num_classes=CLASSES, in_channels=1, image_size=SIZE)
    config = TrainConfig(epochs=8, lr=0.002, optimizer="adamw", weight_decay=5e-4, warmup_epochs=0.5, eval_batch_size=32)
    result = fit(model, loader(Canvases(512, seed=1), 16), Canvases(64, seed=2), config, task=Detection(), progress=False)
    assert result.best_val_acc > 0.5


class OneBoxNet(nn.Module):
    """A user's own detector: one box and class per image; train mode returns raw outputs for its own loss."""

    def __init__(self, classes: int = CLASSES):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 5, stride=4), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.box, self.cls = nn.Linear(128, 4), nn.Linear(128, classes)

    def forward(self, x):
        f = self.features(x)
        corners = torch.sigmoid(self.box(f)).view(-1, 2, 2) * x.shape[-1]
        boxes = torch.cat([corners.min(1).values, corners.max(1).values + 1], 1).clamp(max=x.shape[-1])
        logits = self.cls(f)
        if self.training:
            return {"boxes": boxes, "logits": logits}
        scores, labels = logits[:, 1:].softmax(1).max(1)
        return [{"boxes": b[None], "scores": s[None], "labels": label[None] + 1} for b, s, label in zip(boxes, scores, labels)]


def one_box_loss(output, targets):
    wanted = torch.stack([t["boxes"][0] for t in targets])
    return F.smooth_l1_loss(output["boxes"], wanted) / SIZE + F.cross_entropy(output["logits"], torch.stack([t["labels"][0] for t in targets]))


def test_a_users_model_with_its_own_loss_trains():
    model = OneBoxNet()
    before = [p.detach().clone() for p in model.parameters()]
    data = Canvases(8, per_image=1, seed=4)
    result = fit(model, loader(data), data, TrainConfig(epochs=2, lr=0.01), task=Detection(loss_fn=one_box_loss), progress=False)
    assert all(math.isfinite(h["train_loss"]) for h in result.history) and math.isfinite(result.best_val_acc)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    with pytest.raises(ModelError, match=r"OneBoxNet.forward takes no targets.*Detection\(loss_fn="):
        Detection().train_loss(model.train(), data.x[:2], data.y[:2])

    class LossesAsAList(nn.Module):
        def forward(self, images, targets):
            return [images.sum()]

    with pytest.raises(ModelError, match="returned a list of 1 items; expected a dict of scalar losses"):
        Detection().train_loss(LossesAsAList().train(), data.x[:2], data.y[:2])


def test_yolo_targets_reach_ultralytics_loss_as_our_boxes_and_labels_minus_one(monkeypatch):
    needs_ultralytics()
    from ultralytics.utils.loss import v8DetectionLoss

    seen = []
    preprocess = v8DetectionLoss.preprocess
    monkeypatch.setattr(v8DetectionLoss, "preprocess", lambda self, *args, **kw: seen.append(preprocess(self, *args, **kw)) or seen[-1])
    model = models.create("yolo:yolov8n", num_classes=CLASSES, in_channels=1, image_size=100)
    x, y = digit_canvases(3)
    x = x[..., :100, :100]  # zero-padded to 128 inside: boxes stay in these pixels
    y = [{"boxes": t["boxes"].clamp(max=100), "labels": t["labels"]} for t in y]
    losses = model.train()(x, y)
    assert all(math.isfinite(v.item()) for v in losses.values())
    (targets,) = seen  # [images, boxes, (class, x1, y1, x2, y2 pixels)] as Ultralytics' loss reads them
    for i, t in enumerate(y):
        assert torch.allclose(targets[i, : len(t["labels"]), 1:], t["boxes"], atol=1e-4)
        assert torch.equal(targets[i, : len(t["labels"]), 0].long(), t["labels"] - 1)


def test_yolo_predictions_are_xyxy_boxes_labels_plus_one_after_nms():
    needs_ultralytics()
    model = models.create("yolo:yolov8n", num_classes=CLASSES, in_channels=1, image_size=64).eval()
    pred = torch.zeros(1, 4 + CLASSES - 1, 3)  # Ultralytics' layout: cx, cy, w, h, then a sigmoid per class
    pred[0, :4, 0] = torch.tensor([30.0, 30, 20, 20])
    pred[0, :4, 1] = torch.tensor([31.0, 30, 20, 20])  # overlaps the first: suppressed
    pred[0, :4, 2] = torch.tensor([60.0, 10, 10, 40])  # sticks out of the 64 x 48 image: clipped
    pred[0, 4 + 2, :] = torch.tensor([0.9, 0.8, 0.7])
    (out,) = model._detections(pred, 48, 64)
    assert torch.equal(out["labels"], torch.tensor([3, 3])) and torch.allclose(out["scores"], torch.tensor([0.9, 0.7]))
    assert torch.equal(out["boxes"], torch.tensor([[20.0, 20, 40, 40], [55, 0, 64, 30]]))


def test_loss_of_a_detector_in_eval_mode_leaves_it_and_its_statistics_as_they_were():
    needs_ultralytics()
    model = models.create("yolo:yolov8n", num_classes=CLASSES, in_channels=1, image_size=64).eval()
    x, y = digit_canvases(2)
    x = F.interpolate(x, size=64)
    y = [{"boxes": t["boxes"] / 2, "labels": t["labels"]} for t in y]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    loss, output = Detection().train_loss(model, x, y)
    loss.backward()
    assert set(output) == {"box_loss", "cls_loss", "dfl_loss"} and math.isfinite(loss.item())
    assert not model.training and not any(m.training for m in model.modules())
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())  # BatchNorm running stats too


def test_distillation_adds_backbone_feature_matching_where_shapes_agree():
    needs_ultralytics()
    x, y = digit_canvases(2)
    student = models.create("yolo:yolov8n", num_classes=CLASSES, in_channels=1, image_size=SIZE)
    twin = models.create("yolo:yolov8n", num_classes=CLASSES, in_channels=1, image_size=SIZE).eval()
    wider = models.create("yolo:yolov8s", num_classes=CLASSES, in_channels=1, image_size=SIZE).eval()
    task = Detection()
    torch.manual_seed(0)
    alone, _ = task.train_loss(student, x, y)
    torch.manual_seed(0)
    with_twin, _ = task.distil_loss(student, twin, x, y, 0.5, 4.0)
    torch.manual_seed(0)
    with_wider, _ = task.distil_loss(student, wider, x, y, 0.5, 4.0)  # SPPF 512 channels vs 256: nothing to match
    assert with_wider.item() == pytest.approx(alone.item(), rel=1e-5)
    assert with_twin.item() != pytest.approx(0.5 * alone.item(), rel=1e-3) and with_twin.item() > 0.5 * alone.item()
    assert not twin.training and not wider.training


# -- building detectors -------------------------------------------------------------------------------
def test_a_torchvision_detector_builds_for_one_channel_small_images():
    model = models.create("torchvision:ssdlite320_mobilenet_v3_large", num_classes=CLASSES, in_channels=1, image_size=SIZE)
    assert model.transform.fixed_size == (SIZE, SIZE) and len(model.transform.image_mean) == 1
    assert next(m for m in model.backbone.modules() if isinstance(m, nn.Conv2d)).in_channels == 1
    assert model.edgeprune_build["spec"] == "torchvision:ssdlite320_mobilenet_v3_large"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ssdlite320_mobilenet_v3_large", "fasterrcnn_mobilenet_v3_large_fpn", "fcos_resnet50_fpn",
                                  "retinanet_resnet50_fpn"])
def test_each_torchvision_detector_gives_losses_detections_and_raw_tensors(name):
    from edgeprune.models.detection import export_module

    model = models.create(f"torchvision:{name}", num_classes=CLASSES, in_channels=1, image_size=64)
    assert model.transform.min_size == (64,) and model.transform.max_size == 64  # not upscaled to 800 px
    x, y = digit_canvases(2)
    x, y = F.interpolate(x, size=64), [{"boxes": t["boxes"] / 2, "labels": t["labels"]} for t in y]
    task = Detection()
    loss, losses = task.train_loss(model.train(), x, y)
    loss.backward()
    assert math.isfinite(loss.item()) and len(losses) >= 2
    with torch.no_grad():
        output = model.eval()(x)
        raw = export_module(model)(x)
    task.check_output(model, output, x, None)
    assert raw and all(isinstance(t, torch.Tensor) and t.shape[0] == 2 for t in raw)


def test_export_module_gives_the_heads_raw_tensors():
    from edgeprune.models.detection import export_module

    model = models.create("torchvision:ssdlite320_mobilenet_v3_large", num_classes=CLASSES, in_channels=1, image_size=64).eval()
    with torch.no_grad():
        boxes, logits = export_module(model)(torch.rand(2, 1, 64, 64))
    assert boxes.shape[0] == logits.shape[0] == 2 and boxes.shape[2] == 4 and logits.shape[2] == CLASSES
    assert boxes.shape[1] == logits.shape[1] == sum(model.anchor_generator.num_anchors_per_location()[i] * s * s
                                                    for i, s in enumerate([4, 2, 1, 1, 1, 1]))
    with pytest.raises(ModelError, match="not a detector"):
        export_module(nn.Linear(2, 2))


def test_yolo_export_module_is_the_prediction_before_nms():
    needs_ultralytics()
    from edgeprune.models.detection import export_module

    model = models.create("yolo:yolov8n", num_classes=CLASSES, in_channels=1, image_size=64).eval()
    with torch.no_grad():
        raw = export_module(model)(torch.rand(2, 1, 64, 64))
    assert raw.shape == (2, 4 + CLASSES - 1, 8 * 8 + 4 * 4 + 2 * 2)  # strides 8, 16, 32


@pytest.mark.parametrize("spec, error, words", [
    ("torchvision:maskrcnn_resnet50_fpn", ConfigError, "needs masks or keypoints"),
    ("yolo:yolov8n-seg", ConfigError, "has a Segment head"),
    ("yolo:no_such_yolo", ConfigError, "unknown yolo model 'no_such_yolo'"),
])
def test_detectors_that_cannot_be_built_say_why_in_one_line(spec, error, words):
    if spec.startswith("yolo:"):
        needs_ultralytics()
    with pytest.raises(error, match=words) as err:
        models.create(spec, num_classes=CLASSES, in_channels=1, image_size=64)
    assert "\n" not in str(err.value)


def test_yolo_without_ultralytics_is_a_dependency_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ultralytics", None)  # an import of it now fails
    with pytest.raises(DependencyError, match=r"install edgeprune\[yolo\]"):
        models.create("yolo:yolov8n", num_classes=CLASSES, in_channels=1, image_size=64)


def test_a_users_ultralytics_yolo_object_is_pruned_as_a_detector_and_left_as_it_was():
    """``YOLO(...)`` (or its ``.model``, a DetectionModel returning a tuple) goes behind torchvision's detection API
    as a copy: it was refused ("returns a tuple of 2 items in eval mode")."""
    ultralytics = pytest.importorskip("ultralytics")
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(0)
    yolo = ultralytics.YOLO("yolov8n.yaml")
    yolo.model = DetectionModel("yolov8n.yaml", ch=1, nc=CLASSES - 1, verbose=False)  # trained on the user's classes
    before = {k: v.clone() for k, v in yolo.model.state_dict().items()}
    data = (loader(Canvases(8, seed=1)), loader(Canvases(8, seed=2)))
    with pytest.warns(UserWarning, match="an Ultralytics YOLO detector: edgeprune works on a copy"):
        pruned = edgeprune.prune(yolo, data, task="detection", method="structured", finetune=0,
                                 criteria=["magnitude"], strategies=["balanced"], deploy_metrics=False)
    assert type(pruned.model).__name__ == "YoloDetector" and pruned.record["params"] < pruned.dense["params"]
    after = yolo.model.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], v) for k, v in before.items())
