"""A user's ViT built on nn.MultiheadAttention loses whole heads under structured Mix-and-Match: the residual
stream keeps its width, the pruned model exports to ONNX with parity, and it saves and loads back."""

import pytest
import torch
from torch import nn

import edgeprune
from edgeprune import data as data_lib
from edgeprune.export.onnx import export_verified
from edgeprune.models.mha import SplitMultiheadAttention


class Block(nn.Module):
    def __init__(self, dim=64, heads=4):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.fc1, self.fc2 = nn.Linear(dim, 2 * dim), nn.Linear(2 * dim, dim)

    def forward(self, x):
        y = self.norm1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.fc2(torch.relu(self.fc1(self.norm2(x))))


class TinyViT(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch = nn.Conv2d(1, 64, 2, 2)
        self.blocks = nn.Sequential(Block(), Block())
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        return self.head(self.blocks(self.patch(x).flatten(2).transpose(1, 2)).mean(1))


@pytest.mark.slow
def test_heads_leave_a_multihead_attention_vit(tmp_path):
    torch.manual_seed(0)
    model = TinyViT()
    pruned = edgeprune.prune(model, data_lib.load("digits"), method="mix_and_match", granularity="channel",
                             budget="params<=60%", finetune=0, criteria=["magnitude"], strategies=["balanced"],
                             deploy_metrics=False, progress=False)
    assert isinstance(model.blocks[0].attn, nn.MultiheadAttention)  # the input model is left as it was
    small = pruned.model.eval()
    attns = [b.attn for b in small.blocks]
    assert all(isinstance(a, SplitMultiheadAttention) for a in attns)
    assert any(a.num_heads < 4 for a in attns)
    for a in attns:
        assert a.q_proj.out_features == a.k_proj.out_features == a.v_proj.out_features == 16 * a.num_heads
        assert a.q_proj.in_features == a.out_proj.out_features == 64  # the residual stream keeps its width
    assert pruned.record["params"] <= 0.6 * pruned.dense["params"]

    x = torch.randn(3, 1, 8, 8)
    assert export_verified(small, tmp_path / "small.onnx", x)["max_abs_diff"] < 1e-4
    edgeprune.save(pruned, tmp_path / "small.pt")
    back = edgeprune.load(tmp_path / "small.pt", model=TinyViT()).eval()
    assert [b.attn.num_heads for b in back.blocks] == [a.num_heads for a in attns]
    torch.testing.assert_close(back(x), small(x))
