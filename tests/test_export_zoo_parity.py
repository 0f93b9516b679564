"""Every zoo family exports to ONNX and ONNX Runtime reproduces PyTorch's logits (dynamic batch)."""

import pytest
import torch

from edgeprune import models
from edgeprune.export import PARITY_TOLERANCE, export_verified, ort_run, ort_session


@pytest.mark.slow
@pytest.mark.parametrize(
    "spec,channels,size,kwargs",
    [
        ("lenet5", 1, 28, {}),
        ("vgg11", 3, 16, {"classifier_width": 32}),
        ("resnet20", 3, 16, {}),
        ("vit", 3, 16, {"dim": 32, "depth": 2, "num_heads": 2}),  # scaled_dot_product_attention
    ],
)
def test_zoo_model_exports_with_ort_parity(tmp_path, spec, channels, size, kwargs):
    torch.manual_seed(0)
    model = models.create(spec, num_classes=10, in_channels=channels, image_size=size, **kwargs)
    model.train()  # export must use eval mode (BatchNorm running stats) and restore the mode after
    inputs = torch.randn(8, channels, size, size)
    info = export_verified(model, tmp_path / "model.onnx", inputs)
    assert model.training
    assert info["max_abs_diff"] <= PARITY_TOLERANCE
    assert (tmp_path / "model.onnx").stat().st_size == info["bytes"]
    assert not list(tmp_path.glob("*.data")) and not list(tmp_path.glob("*.tmp"))  # one self-contained file

    # the batch dimension is symbolic: another batch size runs and still matches
    session = ort_session(tmp_path / "model.onnx", threads=1)
    x = torch.randn(3, channels, size, size)
    with torch.no_grad():
        expected = model.eval()(x).numpy()
    assert abs(ort_run(session, x) - expected).max() <= PARITY_TOLERANCE
