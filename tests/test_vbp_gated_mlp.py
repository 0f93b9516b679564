"""VBP on gated MLPs (SwiGLU / GeGLU): hidden neuron k is a product of several rows -- row k of separate gate and
value layers (ViTamin, Llama-style blocks) or rows k and H + k of one fused layer (timm's GluMlp in EVA-02). Every
row of a removed neuron goes, and the pruned model equals the dense one with those neurons replaced by their means."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import edgeprune
from edgeprune import roles
from edgeprune.methods import vbp
from helpers import pruned_neurons_at_their_means


class SwiGlu(nn.Module):
    def __init__(self, dim, hidden, fused):
        super().__init__()
        self.fused = fused
        if fused:
            self.fc1 = nn.Linear(dim, 2 * hidden)
        else:
            self.gate, self.up = nn.Linear(dim, hidden), nn.Linear(dim, hidden)
        self.down = nn.Linear(hidden, dim)

    def forward(self, x):
        if self.fused:
            value, gate = self.fc1(x).chunk(2, dim=-1)
        else:
            value, gate = self.up(x), self.gate(x)
        return self.down(F.silu(gate) * value)


class Net(nn.Module):
    """Tokens from a patchify conv, two gated MLP blocks with residuals, a linear head."""

    def __init__(self, fused, dim=16, hidden=48):
        super().__init__()
        self.embed = nn.Conv2d(1, dim, 4, stride=4)
        self.blocks = nn.ModuleList(SwiGlu(dim, hidden, fused) for _ in range(2))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 10)

    def forward(self, x):
        t = self.embed(x).flatten(2).transpose(1, 2)
        for block in self.blocks:
            t = t + block(t)
        return self.head(self.norm(t).mean(1))


def _batches(n=3):
    gen = torch.Generator().manual_seed(1)
    return [(torch.randn(8, 1, 16, 16, generator=gen), torch.randint(0, 10, (8,), generator=gen)) for _ in range(n)]


@pytest.mark.parametrize("fused", [False, True], ids=["separate", "fused"])
def test_gated_blocks_get_mlp_roles(fused):
    table = roles.classify(Net(fused).eval(), torch.zeros(1, 1, 16, 16))
    pairs = [(a.module_name, b.module_name) for a, b in table.mlp_pairs()]
    if fused:
        assert pairs == [("blocks.0.fc1", "blocks.0.down"), ("blocks.1.fc1", "blocks.1.down")]
        assert table.gates("blocks.0.down") == ()
    else:  # the first layer called is the partner, the other a gate
        assert pairs == [("blocks.0.up", "blocks.0.down"), ("blocks.1.up", "blocks.1.down")]
        assert table.gates("blocks.0.down") == ("blocks.0.gate",)


@pytest.mark.parametrize("fused", [False, True], ids=["separate", "fused"])
def test_pruned_gated_model_equals_mean_replaced_model(fused):
    torch.manual_seed(0)
    model = Net(fused).eval()
    pruned, stats = vbp.prune(model, _batches(), ratio=0.5)
    assert stats.pruned_neurons == 48
    for i, block in enumerate(pruned.blocks):
        kept = stats.blocks[f"blocks.{i}." + ("fc1" if fused else "up")].kept
        assert block.down.in_features == kept
        if fused:
            assert block.fc1.out_features == 2 * kept
        else:
            assert block.up.out_features == block.gate.out_features == kept

    x = torch.randn(5, 1, 16, 16)
    with torch.no_grad():
        with pruned_neurons_at_their_means(model, stats):
            expected = model(x)
        torch.testing.assert_close(pruned(x), expected, rtol=1e-5, atol=1e-5)
        assert (pruned(x) - model(x)).abs().max() > 1e-4  # pruning did change the function


def test_magnitude_selection_counts_every_row_of_a_neuron():
    model = Net(fused=True).eval()
    block = model.blocks[0]
    with torch.no_grad():  # neuron 3's value row (second chunk) is zero: its magnitude is its gate row + column
        block.fc1.weight[48 + 3] = 0.0
        block.fc1.bias[48 + 3] = 0.0
    stats = vbp.prune(model, _batches(1), ratio=0.25, selection="magnitude")[1].blocks["blocks.0.fc1"]
    w, b, down = block.fc1.weight.detach().double(), block.fc1.bias.detach().double(), block.down.weight.detach().double()
    expected = w[3].square().sum() + b[3].square() + down[:, 3].square().sum()
    torch.testing.assert_close(stats.score[3], expected)


TIMM = [("vitamin_small_224", dict(img_size=64, depth=2), 64),
        ("eva02_tiny_patch14_224", dict(img_size=32, patch_size=8, depth=2), 32)]


@pytest.mark.parametrize("name, options, size", TIMM, ids=[t[0] for t in TIMM])
def test_default_vbp_call_prunes_timm_gated_mlps(name, options, size):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=10, **options)
    x = torch.randn(40, 3, size, size)
    y = torch.randint(0, 10, (40,))
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    result = edgeprune.prune(model, (data, data), method="vbp", finetune=0)
    dense = sum(p.numel() for p in model.parameters())
    assert sum(p.numel() for p in result.model.parameters()) < dense
    with torch.no_grad():
        assert result.model(x[:2]).shape == (2, 10)
