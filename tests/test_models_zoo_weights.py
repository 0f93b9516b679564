"""timm:/torchvision: specs build offline, take local weights (weights=PATH), refuse foreign or corrupt files,
refuse input sizes the model cannot take, and list their names."""

import pytest
import torch

pytest.importorskip("timm")
pytest.importorskip("torchvision")

from edgeprune import models  # noqa: E402
from edgeprune.cli import app  # noqa: E402
from edgeprune.errors import CheckpointError, ModelError  # noqa: E402


@pytest.mark.parametrize("spec", ["timm:resnet10t", "torchvision:resnet18"])
def test_local_weights_load_with_a_fresh_classifier(tmp_path, spec):
    torch.manual_seed(0)
    source = models.create(spec, num_classes=7, in_channels=3, image_size=32)
    path = tmp_path / "w.pth"
    torch.save({"state_dict": source.state_dict()}, path)
    torch.manual_seed(1)
    model = models.create(spec, num_classes=3, in_channels=1, image_size=32, weights=str(path))
    body = [k for k, v in source.state_dict().items() if v.ndim == 4][1]  # a conv after the first one
    assert torch.equal(model.state_dict()[body], source.state_dict()[body])
    first = [k for k, v in source.state_dict().items() if v.ndim == 4][0]  # RGB filters folded: grey = R = G = B
    assert torch.allclose(model.state_dict()[first], source.state_dict()[first].sum(1, keepdim=True))
    assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 3)


def test_foreign_and_corrupt_weights_are_refused(tmp_path):
    other = tmp_path / "other.pt"
    torch.save(models.create("torchvision:mobilenet_v3_small", num_classes=3).state_dict(), other)
    with pytest.raises(ModelError, match="does not fit torchvision:resnet18"):
        models.create("torchvision:resnet18", num_classes=3, weights=str(other))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.pt"):
        models.create("timm:resnet10t", num_classes=3, weights=str(bad))


def test_too_small_input_is_a_model_error():
    with pytest.raises(ModelError, match="cannot take 3x8x8 inputs"):
        models.create("torchvision:inception_v3", num_classes=3, image_size=8, init_weights=False)


def test_list_names(capsys):
    assert "resnet18" in models.list_names("torchvision") and "vit_b_16" in models.list_names("torchvision")
    assert "maskrcnn_resnet50_fpn" not in models.list_names("torchvision")  # classification models only
    assert models.list_names("timm", "resnet1*t") == sorted(models.list_names("timm", "resnet1*t"))
    assert "deit" in models.list_names("hf-config")
    with pytest.raises(SystemExit) as exit_info:
        app(["models", "--list", "timm", "--pattern", "convnext_at*"], standalone_mode=True)
    assert exit_info.value.code == 0
    assert "timm:convnext_atto" in capsys.readouterr().out
