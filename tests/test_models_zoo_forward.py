"""Every zoo model builds and maps digits / MNIST / CIFAR-sized batches to logits."""

import pytest
import torch

from edgeprune.models import create, list_models

ZOO = ["lenet300", "lenet5", "vgg11", "vgg16", "resnet20", "resnet56", "resnet18", "vit"]
SIZES = [(1, 8), (1, 28), (3, 32)]
SLOW_AT_28 = {"vgg16", "resnet56", "resnet18"}  # same code path as 8/32 px; skipped to keep the suite fast


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("channels,size", SIZES)
def test_zoo_model_gives_logits(name, channels, size):
    if size == 28 and name in SLOW_AT_28:
        pytest.skip("covered at 8 and 32 px")
    torch.manual_seed(0)
    model = create(name, num_classes=7, in_channels=channels, image_size=size).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, channels, size, size))
    assert logits.shape == (2, 7)
    assert torch.isfinite(logits).all()
    assert model.edgeprune_build == {"spec": name, "num_classes": 7, "in_channels": channels,
                                     "image_size": size, "kwargs": {}, "class": type(model).__qualname__,
                                     "module": type(model).__module__}


def test_list_models_names_zoo_and_prefixes():
    names = list_models()
    assert set(ZOO) <= set(names)
    assert {"hf:", "hf-config:", "timm:", "torchvision:"} <= set(names)
    assert all(isinstance(d, str) and d and "\n" not in d for d in names.values())


def test_zoo_prefix_and_options_are_recorded():
    model = create("zoo:vit", num_classes=3, in_channels=1, image_size=8, dim=32, depth=2, num_heads=2,
                   mlp_ratio=2.0)
    assert model.edgeprune_build["spec"] == "zoo:vit"
    assert model.edgeprune_build["kwargs"] == {"dim": 32, "depth": 2, "num_heads": 2, "mlp_ratio": 2.0}
    assert model.patch_embed.proj.kernel_size == (2, 2)
    assert model.blocks[0].mlp.fc1.out_features == 64
    assert model(torch.randn(1, 1, 8, 8)).shape == (1, 3)


def test_lenet5_is_the_caffe_variant_at_28px():
    model = create("lenet5", num_classes=10, in_channels=1, image_size=28)
    assert model.classifier[0].in_features == 800  # 50 * 4 * 4
    assert model.classifier[0].out_features == 500
    small = create("lenet5", num_classes=10, in_channels=1, image_size=8)
    assert small.features[0].padding == (2, 2)


def test_cifar_resnet_depths_and_option_b_shortcuts():
    r20, r56 = create("resnet20"), create("resnet56")
    assert [len(getattr(r20, f"layer{i}")) for i in (1, 2, 3)] == [3, 3, 3]
    assert [len(getattr(r56, f"layer{i}")) for i in (1, 2, 3)] == [9, 9, 9]
    assert r20.layer1[0].downsample is None
    assert isinstance(r20.layer2[0].downsample[0], torch.nn.Conv2d)
    assert r20.layer2[0].downsample[0].kernel_size == (1, 1)


def test_vgg_classifier_width_option():
    model = create("vgg11", num_classes=4, classifier_width=128)
    linears = [m for m in model.classifier if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(512, 128), (128, 4)]
