"""scaled_dot_product_attention on inputs of other than 4 dims, which the ONNX exporter cannot translate ("op
aten.scaled_dot_product_attention.default cannot be translated to ONNX"): 5-D within windows ([batch, heads, windows,
tokens, dim]: timm's Hiera, NesT, Twins), 3-D with the heads folded into the batch (timm's SAM ViT). The export runs it
on 4-D views of the same tensors, and parity holds."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from edgeprune.export.onnx import export_verified


class WindowAttention(nn.Module):
    def __init__(self, masked: bool):
        super().__init__()
        self.masked = masked
        self.qkv = nn.Linear(8, 24)
        self.head = nn.Linear(8, 3)

    def forward(self, x):  # x: [B, 1, 16, 8] -> 4 windows of 4 tokens of 8 features, 2 heads of 4
        b = x.shape[0]
        tokens = x.reshape(b, 4, 4, 8)
        q, k, v = self.qkv(tokens).reshape(b, 4, 4, 3, 2, 4).permute(3, 0, 4, 1, 2, 5)  # 3 x [B, heads, windows, 4, 4]
        if self.masked:
            mask = torch.ones(4, 4, dtype=torch.bool).tril()  # broadcast over batch, heads and windows, by position
            out = F.scaled_dot_product_attention(q, k, v, mask)
        else:  # every argument by name
            out = F.scaled_dot_product_attention(query=q, key=k, value=v, dropout_p=0.0)
        return self.head(out.permute(0, 2, 3, 1, 4).reshape(b, 16, 8).mean(1))


@pytest.mark.parametrize("masked", [False, True])
def test_attention_within_windows_exports_with_parity(tmp_path, masked):
    torch.manual_seed(0)
    info = export_verified(WindowAttention(masked).eval(), tmp_path / "model.onnx", torch.randn(3, 1, 16, 8))
    assert info["max_abs_diff"] < 1e-5 and info["logit_scale"] > 1e-3


class FoldedHeadsAttention(nn.Module):
    """timm's SAM ViT: heads folded into the batch, [batch x heads, tokens, dim], with a float bias (relative
    positions) of the same 3 dims."""

    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(8, 24)
        self.bias = nn.Parameter(torch.randn(16, 16))
        self.head = nn.Linear(8, 3)

    def forward(self, x):  # x: [B, 1, 16, 8] -> 16 tokens of 8 features, 2 heads of 4
        b = x.shape[0]
        q, k, v = self.qkv(x.reshape(b, 16, 8)).reshape(b, 16, 3, 2, 4).permute(2, 0, 3, 1, 4).reshape(3, b * 2, 16, 4)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=self.bias.expand(b * 2, 16, 16))
        return self.head(out.reshape(b, 2, 16, 4).permute(0, 2, 1, 3).reshape(b, 16, 8).mean(1))


def test_attention_on_three_dims_exports_with_parity(tmp_path):
    torch.manual_seed(0)
    info = export_verified(FoldedHeadsAttention().eval(), tmp_path / "model.onnx", torch.randn(3, 1, 16, 8))
    assert info["max_abs_diff"] < 1e-5 and info["logit_scale"] > 1e-3
