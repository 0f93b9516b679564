"""An HF transformers ViT built from a config exports to ONNX with ORT parity."""

import pytest
import torch

pytest.importorskip("transformers")

from edgeprune import models  # noqa: E402
from edgeprune.export import export_verified  # noqa: E402


def test_hf_config_vit_exports(tmp_path):
    torch.manual_seed(0)
    model = models.create(
        "hf-config:vit", num_classes=10, in_channels=3, image_size=32,
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, patch_size=4,
    )
    path = models.save(model, tmp_path / "vit.pt")  # rebuilt offline from its stored config
    info = export_verified(models.load(path), tmp_path / "model.onnx", torch.randn(4, 3, 32, 32))
    assert info["max_abs_diff"] <= 1e-4
    assert info["opset"] == 18 and info["batch"] == "dynamic"
