"""Roles on models outside the zoo: torch's own attention, custom norms, conv heads, look-alike sizes."""

import torch
import torch.nn.functional as F
from torch import nn

from edgeprune import models
from edgeprune.roles import classify


class TorchEncoder(nn.Module):
    """Patchify conv + torch's nn.TransformerEncoder (MultiheadAttention applies out_proj functionally)."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(3, 32, 4, 4)
        layer = nn.TransformerEncoderLayer(32, 2, 64, batch_first=True, dropout=0.0)
        self.enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(32, 5)

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2)
        return self.head(self.enc(x).mean(1))


def test_torch_multihead_attention():
    table = classify(TorchEncoder().eval(), torch.randn(1, 3, 16, 16))
    block = ["attn_qkv", "attn_proj", "norm", "mlp_in", "mlp_out", "norm"]  # fused in_proj_weight: attn_qkv
    assert [e.role for e in table] == ["patch_embed", *block, *block, "classifier"]
    assert table[1].param_name == "enc.layers.0.self_attn.in_proj_weight" and table[1].shape == (96, 32)


class ChannelsFirstNorm(nn.Module):
    """A LayerNorm over channels of [B, C, H, W] written by hand (as ConvNeXt-style code does)."""

    def __init__(self, c):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))

    def forward(self, x):
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        return self.weight[:, None, None] * (x - u) / torch.sqrt(s + 1e-6) + self.bias[:, None, None]


class LayerScale(nn.Module):
    """1-D parameter, same shape in and out, but not a normalisation: f(3x) = 3 f(x)."""

    def __init__(self, c):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((c,), 0.1))

    def forward(self, x):
        return x * self.gamma[:, None, None]


class ConvHead(nn.Module):
    """Conv stem (not patchify), custom norm, a fused 'qkv-looking' Linear d->3d WITHOUT attention, a 1x1
    conv classifier followed by global pooling (NiN style)."""

    def __init__(self, classes=7):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = ChannelsFirstNorm(8)
        self.scale = LayerScale(8)
        self.branch_a = nn.Conv2d(8, 8, 3, padding=1)
        self.branch_b = nn.Conv2d(8, 8, 1)
        self.fused = nn.Linear(8, 24)
        self.back = nn.Linear(24, 8)
        self.head = nn.Conv2d(8, classes, 1)

    def forward(self, x):
        x = self.scale(self.norm(self.stem(x)))
        x = F.relu(self.branch_a(x)) + self.branch_b(x)
        t = x.permute(0, 2, 3, 1)
        t = self.back(torch.tanh(self.fused(t)))
        return self.head(t.permute(0, 3, 1, 2)).mean((2, 3))


def test_custom_norm_conv_head_and_no_false_attention():
    table = classify(ConvHead(), torch.randn(1, 3, 8, 8))
    roles = {e.module_name: e.role for e in table}
    assert roles == {"stem": "conv", "norm": "norm", "branch_a": "conv", "branch_b": "conv",
                     "fused": "mlp_in", "back": "mlp_out", "head": "classifier"}  # no row for LayerScale
    assert table.num_classes == 7


def test_classifier_found_by_data_flow_not_by_size():
    # 100 classes: the hidden 300->100 layer has as many outputs as the classifier, yet feeds another layer
    model = models.create("lenet300", num_classes=100, in_channels=1, image_size=28)
    table = classify(model, torch.zeros(1, 1, 28, 28))
    assert [e.role for e in table.prunable()] == ["linear", "linear", "classifier"]
