"""Segmentation models (torchvision, smp:, hf-config:segformer-bN, zoo unet-tiny) give per-pixel logits the
segmentation task trains on; structured pruning keeps every output's shape; ONNX keeps every output, in parity.
The 1-D zoo model (kws-cnn1d) prunes through the public API like an image classifier."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import edgeprune
from edgeprune import roles as roles_lib
from edgeprune.errors import ConfigError, ModelError
from edgeprune.export.onnx import export_verified, ort_session
from edgeprune.measure import param_count
from edgeprune.models import create, load, save
from edgeprune.surgery.ratios import prune_channels
from edgeprune.surgery.structure import StructurePlan
from edgeprune.surgery.structure import plan as plan_structure
from edgeprune.tasks import Segmentation, output_tensors

CLASSES, SIZE = 11, 64
FAST = ["torchvision:lraspp_mobilenet_v3_large", "unet-tiny", "smp:unet-resnet18", "smp:unet-mobilenet_v2",
        "smp:unet-efficientnet-b0", "smp:unet-tu-mobilenetv3_large_100", "smp:unet-mobileone_s0",
        "hf-config:segformer-b0"]
HEAVY = ["torchvision:deeplabv3_mobilenet_v3_large", "torchvision:deeplabv3_resnet50", "torchvision:fcn_resnet50"]


def _needs(spec: str) -> None:
    if spec.startswith("smp:"):
        pytest.importorskip("segmentation_models_pytorch")
    if spec.startswith("hf-config:"):
        pytest.importorskip("transformers")


def _model(spec: str, in_channels: int = 1, **options) -> nn.Module:
    _needs(spec)
    torch.manual_seed(0)
    return create(spec, num_classes=CLASSES, in_channels=in_channels, image_size=SIZE, **options).eval()


def _masks(n: int) -> torch.Tensor:
    y = torch.randint(0, CLASSES, (n, SIZE, SIZE), generator=torch.Generator().manual_seed(1))
    y[:, :4] = 255  # ignored pixels
    return y


def _check_builder(spec: str, in_channels: int, **options) -> None:
    model = _model(spec, in_channels, **options)
    x = torch.randn(2, in_channels, SIZE, SIZE)
    with torch.no_grad():
        output = model(x)
    side = SIZE // 4 if spec.startswith("hf-config:segformer") else SIZE  # SegFormer: a quarter of the resolution
    shapes = [tuple(t.shape) for t in output_tensors(output)]
    assert shapes and all(s == (2, CLASSES, side, side) for s in shapes), shapes
    task = Segmentation()
    assert torch.isfinite(task.loss(output, _masks(2)))
    assert set(task.reduce(task.example_statistics(output, _masks(2)))) == {"miou", "pixel_acc"}


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("spec", FAST)
def test_builder_gives_per_pixel_logits_the_task_trains_on(spec, in_channels):
    _check_builder(spec, in_channels)


@pytest.mark.slow
@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("spec", HEAVY)
def test_heavy_torchvision_builder_gives_per_pixel_logits(spec, in_channels):
    _check_builder(spec, in_channels)


def test_torchvision_aux_head_is_a_second_output_and_survives_a_checkpoint(tmp_path):
    model = _model("torchvision:deeplabv3_mobilenet_v3_large", aux_loss=True)
    x = torch.randn(1, 1, SIZE, SIZE)
    with torch.no_grad():
        want = model(x)
        got = load(save(model, tmp_path / "m.pt")).eval()(x)
    assert list(want) == list(got) == ["out", "aux"]
    assert all(torch.equal(want[k], got[k]) for k in want)


def test_segformer_rebuilds_from_its_checkpoint_offline(tmp_path):
    model = _model("hf-config:segformer-b0")
    x = torch.randn(1, 1, SIZE, SIZE)
    again = load(save(model, tmp_path / "s.pt")).eval()
    assert type(again.hf_model).__name__ == "SegformerForSemanticSegmentation"
    with torch.no_grad():
        assert torch.equal(model(x), again(x))


def test_smp_spec_forms_and_their_errors():
    pytest.importorskip("segmentation_models_pytorch")
    short = _model("smp:unet-resnet18")
    long = _model("smp:Unet", encoder_name="resnet18")
    assert param_count(short) == param_count(long)
    for spec, options, match in [("smp:nonet-resnet18", {}, "unknown smp architecture 'nonet'"),
                                 ("smp:unet-resnet18", {"encoder_name": "resnet34"}, "names its encoder twice"),
                                 ("smp:unet-resnet1234", {}, "unknown smp encoder 'resnet1234'"),
                                 ("smp:unet", {"classes": 3}, "pass num_classes as an argument of create"),
                                 ("smp:unet", {"colour": 3}, "unknown option 'colour' for smp:unet")]:
        with pytest.raises(ConfigError, match=match):
            create(spec, num_classes=CLASSES, in_channels=1, image_size=SIZE, **options)


def test_bad_sizes_and_options_are_one_line_errors():
    with pytest.raises(ConfigError, match="allowed: segformer-b0, segformer-b1"):
        create("hf-config:segformer-b9", num_classes=CLASSES)
    with pytest.raises(ModelError, match="lraspp_mobilenet_v3_large cannot be built with"):
        create("torchvision:lraspp_mobilenet_v3_large", num_classes=CLASSES, aux_loss=True)
    with pytest.raises(ModelError, match="too small for unet-tiny with depth 3; allowed: >= 8"):
        create("unet-tiny", num_classes=CLASSES, image_size=4)
    with pytest.raises(ModelError, match="too short for kws-cnn1d with 4 blocks; allowed: >= 16"):
        create("kws-cnn1d", num_classes=CLASSES, image_size=8)


# --------------------------------------------------------------------------------------- structured


def _structured(model: nn.Module, fraction: float = 0.3) -> tuple[nn.Module, StructurePlan]:
    x = torch.randn(1, 1, SIZE, SIZE)
    pruned = copy.deepcopy(model)
    plan = plan_structure(pruned, x)
    layers = [n for n, m in pruned.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    prune_channels(pruned, x, plan, dict.fromkeys(layers, fraction))
    return pruned.eval(), plan


@pytest.fixture(scope="module")
def lraspp():
    model = _model("torchvision:lraspp_mobilenet_v3_large")
    return model, _structured(model)[0]


def _same_outputs(model: nn.Module, pruned: nn.Module, params_left: float = 0.7) -> None:
    """Every output keeps its shape at another batch size, and at most ``params_left`` of the parameters stay."""
    x = torch.randn(3, 1, SIZE, SIZE)
    with torch.no_grad():
        want, got = model(x), pruned(x)
    assert [t.shape for t in output_tensors(got)] == [t.shape for t in output_tensors(want)]
    assert all(torch.isfinite(t).all() for t in output_tensors(got))
    assert param_count(pruned) < params_left * param_count(model)


def test_structured_30_percent_of_lraspp_keeps_its_output(lraspp):
    model, pruned = lraspp
    _same_outputs(model, pruned)
    heads = {"classifier.low_classifier", "classifier.high_classifier"}  # both add into the logits
    table = roles_lib.classify(model, torch.zeros(1, 1, SIZE, SIZE))
    assert {e.module_name for e in table.entries if e.role == "classifier"} == heads
    modules = dict(pruned.named_modules())
    assert all(modules[h].out_channels == CLASSES for h in heads)


def test_structured_30_percent_of_a_unet_keeps_its_output():
    model = _model("unet-tiny")
    pruned, plan = _structured(model)
    _same_outputs(model, pruned)
    assert plan.protected == {"head"}


@pytest.mark.slow
@pytest.mark.parametrize("spec,options,params_left", [
    ("torchvision:deeplabv3_mobilenet_v3_large", {"aux_loss": True}, 0.7), ("smp:unet-resnet18", {}, 0.7),
    ("hf-config:segformer-b0", {}, 0.85)])  # SegFormer: only whole heads go in attention (its reshapes)
def test_structured_30_percent_keeps_every_output_of_larger_models(spec, options, params_left):
    model = _model(spec, **options)
    pruned, plan = _structured(model)
    _same_outputs(model, pruned, params_left)
    if options.get("aux_loss"):
        assert {"classifier.4", "aux_classifier.4"} <= plan.protected


@pytest.mark.slow
def test_onnx_export_of_the_pruned_lraspp_matches_pytorch(lraspp, tmp_path):
    _, pruned = lraspp
    info = export_verified(pruned, tmp_path / "lraspp.onnx", torch.randn(3, 1, SIZE, SIZE))
    outputs = ort_session(info["path"]).get_outputs()
    assert [(o.name, o.shape[1:]) for o in outputs] == [("logits", [CLASSES, SIZE, SIZE])]
    assert info["max_abs_diff"] <= info["tolerance"]


# --------------------------------------------------------------------------------------- 1-D


def _waves(n: int, seed: int, classes: int = 4, length: int = 64) -> TensorDataset:
    """Noisy sines, one frequency per class: a sequence task a 1-D CNN learns in a few steps."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    t = torch.arange(length).float()
    x = torch.sin((y[:, None].float() + 1) * 0.3 * t + torch.rand(n, 1, generator=g) * 6.28)
    return TensorDataset((x + 0.3 * torch.randn(n, length, generator=g))[:, None], y)


def test_kws_cnn1d_prunes_its_conv1d_weights_through_the_api():
    model = create("kws-cnn1d", num_classes=4, in_channels=1, image_size=64)
    assert model(torch.randn(2, 1, 64)).shape == (2, 4)
    data = tuple(DataLoader(_waves(n, s), batch_size=32) for n, s in ((128, 0), (64, 1), (64, 2)))
    pruned = edgeprune.prune(model, data, method="magnitude", budget=0.6, finetune=0)
    convs = [m for m in pruned.model.modules() if isinstance(m, nn.Conv1d)]
    zeros = sum(int((m.weight == 0).sum()) for m in convs)
    assert zeros > 0.5 * sum(m.weight.numel() for m in convs)
    assert pruned.record["sparsity"] == pytest.approx(0.6, abs=0.01)


def test_kws_cnn1d_loses_whole_conv1d_channels():
    model = create("kws-cnn1d", num_classes=4, in_channels=40, image_size=101).eval()
    x = torch.randn(1, 40, 101)
    plan = plan_structure(model, x)
    layers = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv1d, nn.Linear))]
    prune_channels(model, x, plan, dict.fromkeys(layers, 0.5))
    assert [m.out_channels for m in model.modules() if isinstance(m, nn.Conv1d)] == [16, 16, 32, 32]
    assert model(torch.randn(2, 40, 101)).shape == (2, 4)
