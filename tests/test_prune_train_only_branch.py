"""A classifier with an auxiliary head that runs only in training (GoogLeNet, Inception v3): structured pruning
must see it, or the head keeps its old input width and the fine-tune fails (Reconvene on GoogLeNet once did)."""

import pytest
import torch
from torch import nn

from edgeprune.api_contract import check_api


class AuxNet(nn.Module):
    def __init__(self, classes: int = 10, aux_norm: bool = False):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU())
        self.mid = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU())
        # aux_norm: Inception v3's head, batch norm on a 1x1 map, which a training-mode batch of one cannot run
        norm = [nn.Conv2d(32, 32, 1), nn.BatchNorm2d(32)] if aux_norm else []
        self.aux = nn.Sequential(nn.AdaptiveAvgPool2d(1), *norm, nn.Flatten(), nn.Linear(32, classes))
        self.head = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(32, classes))

    def forward(self, x):
        mid = self.mid(self.stem(x))
        out = self.head(mid)
        return (out, self.aux(mid)) if self.training else out


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["prune:reconvene", "prune:structured"])
def test_train_only_branch_is_pruned_with_its_input(stage):
    torch.manual_seed(0)
    (outcome,) = check_api(AuxNet(), torch.zeros(1, 3, 16, 16), [stage])
    assert outcome.status == "pass", outcome.note


@pytest.mark.parametrize("aux_norm, batch", [(False, 2), (True, 1)])
def test_train_mode_trace_restores_batch_norm_statistics(aux_norm, batch):
    from edgeprune.surgery.groups import coupled_groups

    torch.manual_seed(0)
    model = AuxNet(aux_norm=aux_norm).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    groups = coupled_groups(model, torch.randn(batch, 3, 16, 16))
    consumers = {c for g in groups for c in g.consumers}
    assert ("aux.1" if aux_norm else "aux.2") in consumers  # traced in train mode: the auxiliary head reads mid's channels
    assert not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
