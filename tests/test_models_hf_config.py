"""Tiny untrained HF ViT / DeiT / Swin / LeViT / ConvNeXt built from configs return logits."""

import pytest
import torch

pytest.importorskip("transformers")

from edgeprune.errors import ConfigError, ModelError  # noqa: E402
from edgeprune.models import HFImageClassifier, create  # noqa: E402
from helpers import TINY_HF as TINY  # noqa: E402


@pytest.mark.parametrize("model_type", sorted(TINY))
@pytest.mark.parametrize("channels,size", [(3, 32), (1, 28)])
def test_tiny_hf_config_model_gives_logits(model_type, channels, size):
    torch.manual_seed(0)
    model = create(f"hf-config:{model_type}", num_classes=5, in_channels=channels, image_size=size,
                   **TINY[model_type]).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, channels, size, size))
    assert logits.shape == (2, 5)
    assert isinstance(model, HFImageClassifier)
    assert all(name.startswith("hf_model.") for name, _ in model.named_parameters())
    build = model.edgeprune_build
    assert build["hf_config"]["model_type"] == model_type
    assert build["kwargs"] == TINY[model_type]


def test_levit_and_deit_use_the_plain_classification_head():
    levit = create("hf-config:levit", **TINY["levit"])
    deit = create("hf-config:deit", **TINY["deit"])
    assert type(levit.hf_model).__name__ == "LevitForImageClassification"
    assert type(deit.hf_model).__name__ == "DeiTForImageClassification"


def test_swin_at_8px_needs_a_smaller_window():
    kwargs = dict(TINY["swin"], window_size=2, patch_size=2)
    model = create("hf-config:swin", num_classes=3, in_channels=1, image_size=8, **kwargs)
    assert model(torch.randn(1, 1, 8, 8)).shape == (1, 3)
    with pytest.raises(ModelError, match="1x8x8"):
        create("hf-config:swin", num_classes=3, in_channels=1, image_size=8, **TINY["swin"])


def test_unknown_config_key_is_named():
    with pytest.raises(ConfigError, match=r"'hidden_szie'.*hf-config:vit.*hidden_size"):
        create("hf-config:vit", hidden_szie=32)


def test_create_arguments_are_not_config_overrides():
    with pytest.raises(ConfigError, match="num_classes"):
        create("hf-config:vit", num_labels=3)


def test_unknown_model_type():
    with pytest.raises(ConfigError, match="'gpt2'"):
        create("hf-config:gpt2")


def test_a_config_sized_by_height_and_width_takes_one_side():
    """Hiera's config holds image_size as (height, width) and refused one side ("invalid overrides for
    hf-config:hiera (StrictDataclassFieldValidationError: ... 'image_size')"); YOLOS's was listed by hand."""
    model = create("hf-config:hiera", num_classes=5, in_channels=3, image_size=64, embed_dim=16, depths=[1, 1, 1, 1],
                   num_heads=[1, 1, 1, 1]).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, 5)
