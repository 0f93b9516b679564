"""Roles never come from layer names: renaming every module (randomly, or misleadingly) changes nothing."""

import random
from collections import OrderedDict

import pytest
import torch
from torch import nn

from edgeprune import models
from edgeprune.roles import classify


def rename_everything(model: nn.Module, seed: int) -> nn.Module:
    """Give every submodule a random registered name; attribute access keeps working so forward runs.

    ModuleList entries keep their index keys (``self.blocks[i]`` looks them up), the lists themselves
    are renamed like everything else.
    """
    rng = random.Random(seed)
    for module in list(model.modules()):
        if isinstance(module, nn.ModuleList):
            continue
        renamed = OrderedDict()
        for key, child in module._modules.items():
            new = "m" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(8))
            renamed[new] = child
            if child is not None:
                object.__setattr__(module, key, child)  # plain attribute: forward's self.<key> still works
        module._modules = renamed
    return model


def roles_by_weight(model, x):
    table = classify(model, x)
    weights = dict(model.named_parameters())
    return [(id(weights[e.param_name]), e.role, e.small, round(e.depth, 6)) for e in table.prunable()], table


@pytest.mark.parametrize("spec,channels,size,kwargs", [
    ("vit", 3, 32, {}),
    ("resnet20", 3, 16, {}),
    ("lenet5", 1, 28, {}),
    ("hf-config:swin", 3, 32, dict(embed_dim=16, depths=[1, 1], num_heads=[1, 2], window_size=4, patch_size=4)),
])
def test_renamed_model_has_the_same_roles(spec, channels, size, kwargs):
    if spec.startswith("hf-config:"):
        pytest.importorskip("transformers")
    torch.manual_seed(0)
    model = models.create(spec, num_classes=10, in_channels=channels, image_size=size, **kwargs)
    x = torch.randn(1, channels, size, size)
    before, table_before = roles_by_weight(model, x)
    names_before = {n for n, _ in model.named_modules()}
    rename_everything(model, seed=1)
    assert not names_before & {n for n, _ in model.named_modules()} - {""}  # really renamed
    after, table_after = roles_by_weight(model, x)
    assert after == before
    assert [e.role for e in table_after] == [e.role for e in table_before]  # norms too


class Block(nn.Module):
    """A transformer block whose attribute names lie: the attention lives in ``mlp``, the MLP in ``attn``."""

    def __init__(self, d=16, heads=2):
        super().__init__()
        self.heads = heads
        self.classifier = nn.LayerNorm(d)
        self.mlp = nn.ModuleDict({"fc1": nn.Linear(d, d), "fc2": nn.Linear(d, d), "head": nn.Linear(d, d),
                                  "conv": nn.Linear(d, d)})
        self.patch_embed = nn.LayerNorm(d)
        self.attn = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x):
        b, n, d = x.shape
        h = self.classifier(x)
        q, k, v = (self.mlp[key](h).view(b, n, self.heads, -1).transpose(1, 2) for key in ("fc1", "fc2", "head"))
        a = torch.softmax(q @ k.transpose(-1, -2) / (d // self.heads) ** 0.5, dim=-1) @ v
        x = x + self.mlp["conv"](a.transpose(1, 2).reshape(b, n, d))
        return x + self.attn(self.patch_embed(x))


class Liar(nn.Module):
    def __init__(self):
        super().__init__()
        self.head = nn.Conv2d(3, 16, 4, stride=4)
        self.mlp = Block()
        self.attn = Block()
        self.norm = nn.LayerNorm(16)
        self.qkv = nn.Linear(16, 7)

    def forward(self, x):
        x = self.head(x).flatten(2).transpose(1, 2)
        return self.qkv(self.norm(self.attn(self.mlp(x))).mean(1))


def test_misleading_names_are_ignored():
    table = classify(Liar(), torch.zeros(1, 3, 16, 16))
    block = ["norm", "attn_qkv", "attn_qkv", "attn_qkv", "attn_proj", "norm", "mlp_in", "mlp_out"]
    assert [e.role for e in table] == ["patch_embed", *block, *block, "norm", "classifier"]
    assert table.num_classes == 7
    assert [(a.module_name, b.module_name) for a, b in table.mlp_pairs()] == [
        ("mlp.attn.0", "mlp.attn.2"), ("attn.attn.0", "attn.attn.2")]
