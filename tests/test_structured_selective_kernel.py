"""SKNet's selective kernel: ``torch.stack(paths, 1)`` weighted by one layer's output viewed ``(B, paths, C, 1, 1)``,
its input split by a fixed size (``torch.split(x, self.in_channels // paths, 1)``).

torch-pruning tied branch channel ``c`` to ``fc_select``'s channel ``c`` alone (not ``c + C``), and the split's
readers failing in their forward kept their own outputs whole too: the default structured call on timm's SKResNet-18
was refused ("the largest reachable sparsity is 0.0210")."""

import copy

import pytest
import torch
from torch import nn

import edgeprune
from edgeprune.api_contract import tiny_data
from edgeprune.surgery.ratios import prune_channels
from edgeprune.surgery.structure import plan as plan_structure

layers = pytest.importorskip("timm.layers")

X = torch.randn(2, 8, 16, 16)


class Selective(nn.Module):
    """A conv, one selective kernel (two paths reading halves of its output), a conv after it."""

    def __init__(self, split_input: bool = True):
        super().__init__()
        self.stem = nn.Conv2d(8, 16, 3, padding=1)
        self.sk = layers.SelectiveKernel(16, 32, kernel_size=[3, 5], split_input=split_input, rd_divisor=4)
        self.head = nn.Conv2d(32, 4, 1)

    def forward(self, x):
        return self.head(self.sk(self.stem(x))).mean((2, 3))


def _rows_kept(before: torch.Tensor, after: torch.Tensor) -> list[int]:
    """Which rows of ``before`` survive in ``after`` (rows are matched by their weights)."""
    flat = before.flatten(1)
    return [int(torch.cdist(row.flatten()[None], flat).argmin()) for row in after]


@pytest.mark.parametrize("split_input", [True, False])
def test_the_branch_weights_lose_the_same_channel_in_every_path(split_input):
    torch.manual_seed(0)
    model = Selective(split_input).eval()
    structure = plan_structure(model, X)
    pruned = copy.deepcopy(model)
    widths = prune_channels(pruned, X, structure, {"sk.paths.0.conv": 0.5})
    kept = _rows_kept(model.sk.paths[0].conv.weight, pruned.sk.paths[0].conv.weight.detach())
    assert widths["sk.paths.0.conv"] == 16 and pruned.sk.paths[1].conv.out_channels == 16
    select = _rows_kept(model.sk.attn.fc_select.weight, pruned.sk.attn.fc_select.weight.detach())
    assert select == [*kept, *(c + 32 for c in kept)]  # channel c of each path: rows c and c + 32
    assert pruned(X).shape == model(X).shape


def test_a_split_of_a_fixed_size_keeps_what_it_splits_and_its_readers_lose_outputs():
    torch.manual_seed(0)
    model = Selective().eval()
    structure = plan_structure(model, X)
    pruned = copy.deepcopy(model)
    widths = prune_channels(pruned, X, structure, {"stem": 0.5, "sk.paths.0.conv": 0.5})
    assert widths["stem"] == 16 and widths["sk.paths.0.conv"] == 16  # the split input whole; the paths' outputs halved
    assert widths.skipped and widths.skipped[0].startswith("the inputs of Conv2d"), widths.skipped
    assert pruned(X).shape == model(X).shape


@pytest.mark.slow
def test_the_default_structured_call_prunes_skresnet():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    model = timm.create_model("skresnet18", num_classes=10)
    data = tiny_data(torch.zeros(1, 3, 32, 32), 10)
    with pytest.warns(UserWarning, match="the inputs of Conv2d"):
        pruned = edgeprune.prune(model, data, method="structured", finetune=0, deploy_metrics=False)
    assert pruned.record["status"] == "ok"
    assert pruned.record["params"] < 0.4 * pruned.dense["params"]
    assert pruned.model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
