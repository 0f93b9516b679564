"""A model over ONNX's 2 GB single-file limit is refused in one line before the exporter runs (torchvision's
ViT-H/14 would otherwise spend minutes exporting and then fail), and nothing is written."""

import pytest
import torch
from torch import nn

from edgeprune.errors import ModelError
from edgeprune.export.onnx import PROTOBUF_LIMIT, export_onnx


class Huge(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)
        self.register_buffer("table", torch.empty(PROTOBUF_LIMIT // 4 + 1))  # untouched pages: no real memory

    def forward(self, x):
        return self.fc(x.flatten(1))


def test_a_model_over_two_gigabytes_is_refused_in_one_line(tmp_path):
    path = tmp_path / "huge.onnx"
    with pytest.raises(ModelError, match=r"2\.15 GB of weights, over ONNX's 2 GB") as info:
        export_onnx(Huge(), path, input_shape=(1, 2, 2))
    assert "\n" not in str(info.value) and not path.exists()
