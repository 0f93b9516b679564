"""Fixed-size models (a timm DeiT or LeViT, an HF Swin, a torchvision ViT) build at their own input size
when no image size is given (no --dataset/--image-size), instead of failing at 32 px; models that take any
size keep the 32 px default."""

import pytest
import torch

from edgeprune.models import create

pytest.importorskip("timm")

# small HF Swin overrides that still build at the config's own 224 px (56 x 56 patches, 7 x 7 windows)
SWIN = dict(embed_dim=16, depths=[1, 1], num_heads=[1, 2], patch_size=4)


@pytest.mark.parametrize("spec", ["timm:deit_tiny_patch16_224", "timm:levit_128s"])
def test_roles_of_a_fixed_size_timm_model(spec, run_cli):
    code, out, err = run_cli("roles", spec)
    assert code == 0, err
    assert "attn_qkv" in out


def test_roles_of_an_hf_swin(run_cli):
    pytest.importorskip("transformers")
    args = [f"--arg={key}={value}".replace(" ", "") for key, value in SWIN.items()]
    code, out, err = run_cli("roles", "hf-config:swin", *args)
    assert code == 0, err
    assert "attn_qkv" in out


def test_create_records_the_models_own_size():
    assert create("timm:deit_tiny_patch16_224", num_classes=3).edgeprune_build["image_size"] == 224
    assert create("timm:deit_tiny_patch16_224", num_classes=3, img_size=64).edgeprune_build["image_size"] == 64
    assert create("timm:resnet10t", num_classes=3).edgeprune_build["image_size"] == 32  # takes any size


def test_hf_config_and_torchvision_own_sizes():
    pytest.importorskip("transformers")
    swin = create("hf-config:swin", num_classes=3, **SWIN)
    assert swin.edgeprune_build["image_size"] == 224
    assert swin(torch.zeros(1, 3, 224, 224)).shape == (1, 3)
    assert create("hf-config:convnext", num_classes=3, hidden_sizes=[8, 16], depths=[1, 1],
                  num_stages=2).edgeprune_build["image_size"] == 224  # the config's image_size
    pytest.importorskip("torchvision")
    assert create("torchvision:vit_b_16", num_classes=3).edgeprune_build["image_size"] == 224
    assert create("torchvision:resnet18", num_classes=3).edgeprune_build["image_size"] == 32


def test_an_explicit_size_still_wins_and_is_checked(run_cli):
    code, _, err = run_cli("roles", "timm:deit_tiny_patch16_224", "--image-size", "32")
    assert code == 2 and "3x32x32" in err
