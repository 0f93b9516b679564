"""The user's own (unregistered) classes, physically narrowed, save and load back into a fresh instance."""

import pytest
import torch
from torch import nn

tp = pytest.importorskip("torch_pruning")

from edgeprune.errors import CheckpointError  # noqa: E402
from edgeprune.models import load, load_meta, save  # noqa: E402


class TinyCNN(nn.Module):
    """conv + BatchNorm, a residual block with a depthwise conv, LayerNorm'd pooled features, a head."""

    def __init__(self, width=16, num_classes=4):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU())
        self.depthwise = nn.Conv2d(width, width, 3, padding=1, groups=width, bias=False)
        self.bn = nn.BatchNorm2d(width)
        self.expand = nn.Conv2d(width, 2 * width, 1)
        self.norm = nn.LayerNorm(2 * width)
        self.head = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(x + self.bn(self.depthwise(x)))
        return self.head(self.norm(self.expand(x).mean(dim=(2, 3))))


class TinyMLP(nn.Module):
    def __init__(self, hidden=64):
        super().__init__()
        self.fc1 = nn.Linear(12, hidden)
        self.fc2 = nn.Linear(hidden, 3)
        self.scale = nn.Parameter(torch.ones(hidden))  # a plain parameter pruning narrows with fc1

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x.flatten(1))) * self.scale)


def _same(a, b, x):
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x))


def test_pruned_user_models_load_into_fresh_instances(tmp_path):
    torch.manual_seed(0)
    cnn = TinyCNN()
    cnn.train()
    cnn(torch.randn(8, 3, 8, 8))  # BatchNorm running stats off their defaults
    cnn.eval()
    example = torch.randn(1, 3, 8, 8)
    pruner = tp.pruner.MetaPruner(cnn, example, importance=tp.importance.MagnitudeImportance(p=1),
                                  pruning_ratio=0.5, ignored_layers=[cnn.head])
    pruner.step()
    assert cnn.stem[0].out_channels == 8 and cnn.depthwise.groups == 8 and cnn.bn.num_features == 8
    assert cnn.expand.out_channels == 16 and cnn.norm.normalized_shape == (16,) and cnn.bn.running_mean.shape == (8,)
    path = save(cnn, tmp_path / "cnn.pt", meta={"ratio": 0.5})

    build = load_meta(path)["build"]
    assert build["spec"] is None and build["class"] == "TinyCNN" and build["module"] == __name__
    with pytest.raises(CheckpointError) as info:
        load(path)
    assert str(info.value) == (f"checkpoint {str(path)!r} holds a custom TinyCNN model without a spec; "
                               f"pass model=TinyCNN(...) (a fresh instance) to load it")

    fresh = TinyCNN().train()
    again = load(path, model=fresh)
    assert again is fresh and not fresh.training and fresh.edgeprune_meta == {"ratio": 0.5}
    assert fresh.depthwise.groups == 8 and fresh.norm.normalized_shape == (16,)
    assert not hasattr(fresh, "edgeprune_build")  # nothing added but what the saved file says
    x = torch.randn(2, 3, 8, 8)
    _same(fresh, cnn, x)
    _same(load(path, model=lambda: TinyCNN(width=16)), cnn, x)  # a zero-argument factory works as well

    with pytest.raises(CheckpointError, match=r"holds a TinyCNN model .* but model= is a TinyMLP"):
        load(path, model=TinyMLP())

    mlp = TinyMLP().eval()
    keep = torch.arange(0, 64, 3)  # VBP-style: fewer hidden neurons in fc1 / fc2 / scale
    with torch.no_grad():
        mlp.fc1 = nn.Linear(12, len(keep))
        mlp.fc1.weight.copy_(torch.randn(len(keep), 12))
        mlp.fc2 = nn.Linear(len(keep), 3)
        mlp.scale = nn.Parameter(torch.rand(len(keep)))
    path = save(mlp, tmp_path / "mlp.pt")
    again = load(path, model=TinyMLP)  # the class itself is a zero-argument callable
    assert again.fc1.out_features == len(keep) == again.scale.shape[0] and again.fc2.in_features == len(keep)
    _same(again, mlp, torch.randn(4, 3, 2, 2))
    with pytest.raises(CheckpointError, match=r"holds a TinyMLP model .* but model= is a TinyCNN"):
        load(path, model=TinyCNN)


class TinyAttention(nn.Module):
    def __init__(self, dim=16, heads=4):
        super().__init__()
        self.embed = nn.Linear(6, dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 3)

    def forward(self, x):
        h = self.embed(x)
        return self.head(self.norm(h + self.attn(h, h, h)[0])).mean(dim=1)


def test_attention_with_heads_and_width_removed(tmp_path):
    torch.manual_seed(0)
    model = TinyAttention().eval()
    # what head pruning leaves: 2 of 4 heads (head_dim 4) and an 8-wide residual stream
    model.embed, model.attn = nn.Linear(6, 8), nn.MultiheadAttention(8, 2, batch_first=True)
    model.norm, model.head = nn.LayerNorm(8), nn.Linear(8, 3)
    model.eval()
    again = load(save(model, tmp_path / "attn.pt"), model=TinyAttention())
    assert (again.attn.embed_dim, again.attn.num_heads, again.attn.head_dim) == (8, 2, 4)
    assert again.attn.in_proj_weight.shape == (24, 8) and again.norm.normalized_shape == (8,)
    _same(again, model, torch.randn(2, 5, 6))
