"""Export parity is relative for large logits: a deep untrained net's logits of 1e6 differ by rounding only."""

import pytest
import torch
from torch import nn

from edgeprune.errors import ModelError
from edgeprune.export.onnx import export_verified, parity_limit


def test_limit_is_absolute_below_one_and_relative_above():
    assert parity_limit(1e-4, 0.3) == 1e-4
    assert parity_limit(1e-4, 2e6) == pytest.approx(200.0)
    assert parity_limit(1e-4, float("nan")) == 1e-4


class Loud(nn.Module):
    """A conv net whose logits are ~1e6: FP32 kernels disagree in the last digits."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 64, 3)
        self.fc = nn.Linear(64, 10)
        with torch.no_grad():
            self.conv.weight.mul_(300.0)
            self.fc.weight.mul_(3000.0)

    def forward(self, x):
        return self.fc(self.conv(x).relu().mean((2, 3)))


def test_large_logits_pass_and_a_wrong_export_still_fails(tmp_path):
    torch.manual_seed(0)
    model = Loud().eval()
    inputs = torch.randn(4, 3, 16, 16)
    info = export_verified(model, tmp_path / "m.onnx", inputs)
    assert info["logit_scale"] > 1e4 and info["max_abs_diff"] <= info["tolerance"]

    class Off(Loud):  # PyTorch sees a different model than the exported one: 1 % off
        def forward(self, x):
            out = super().forward(x)
            return out * 1.01 if torch.compiler.is_compiling() is False and not torch.jit.is_tracing() else out

    with pytest.raises(ModelError, match="does not match PyTorch"):
        wrong = Off()
        wrong.load_state_dict(model.state_dict())
        export_verified(wrong.eval(), tmp_path / "w.onnx", inputs)
    assert not (tmp_path / "w.onnx").exists()
