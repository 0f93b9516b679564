"""A structurally pruned ResNet-20 (channels removed with torch-pruning's DependencyGraph) exports its
smaller graph, and ONNX Runtime matches PyTorch on it."""

import onnx
import torch

from edgeprune import models
from edgeprune.export import export_verified
from edgeprune.surgery.channels import remove_channels


def conv_weight_shapes(path):
    graph = onnx.load(str(path)).graph
    convs = [n for n in graph.node if n.op_type == "Conv"]
    inits = {i.name: list(i.dims) for i in graph.initializer}
    return [inits[n.input[1]] for n in convs if n.input[1] in inits]


def test_channel_pruned_resnet20_exports_smaller_graph(tmp_path):
    torch.manual_seed(0)
    dense = models.create("resnet20", num_classes=10, in_channels=3, image_size=16)
    pruned = models.create("resnet20", num_classes=10, in_channels=3, image_size=16)
    pruned.load_state_dict(dense.state_dict())
    example = torch.randn(1, 3, 16, 16)
    # inner convs of three blocks lose half their output channels; the layer1 residual stream loses 4 of 16
    plan = {"layer1.0.conv1": range(8), "layer2.1.conv1": range(0, 32, 2), "layer3.2.conv1": range(32),
            "layer1.0.conv2": range(4)}
    remove_channels(pruned, example, plan)
    # through a real checkpoint: the narrower layers must be rebuilt by models.load
    path = models.save(pruned, tmp_path / "pruned.pt")
    loaded = models.load(path)

    info = export_verified(loaded, tmp_path / "pruned.onnx", torch.randn(6, 3, 16, 16))
    assert info["max_abs_diff"] <= 1e-4

    shapes = conv_weight_shapes(tmp_path / "pruned.onnx")
    assert len(shapes) == 21  # every conv (19 + 2 downsample) is in the graph with its weight
    assert [8, 12, 3, 3] in shapes  # layer1.0.conv1: 8 of 16 outputs left, 12 of 16 residual inputs
    assert [16, 32, 3, 3] in shapes and [32, 64, 3, 3] in shapes  # layer2.1.conv1, layer3.2.conv1 halved
    assert [12, 3, 3, 3] in shapes  # the stem conv lost the 4 residual channels
    onnx_conv = sum(a * b * c * d for a, b, c, d in shapes)
    torch_conv = sum(m.weight.numel() for m in loaded.modules() if isinstance(m, torch.nn.Conv2d))
    dense_conv = sum(m.weight.numel() for m in dense.modules() if isinstance(m, torch.nn.Conv2d))
    assert onnx_conv == torch_conv < 0.9 * dense_conv
    # the file holds the smaller weights: well under the dense model's FP32 bytes
    assert info["bytes"] < 4 * sum(p.numel() for p in dense.parameters())
