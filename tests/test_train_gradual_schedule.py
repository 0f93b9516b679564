"""Gradual pruning: per-layer counts follow the cubic schedule, only grow, and equal the target exactly
from the end step on; with a fixed criterion the final masks are the method's, with magnitude they follow |w|."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from edgeprune.prune.gradual import GradualMasks, cubic
from edgeprune.prune.masks import layerwise_masks
from edgeprune.train import TrainConfig, fit


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 12, generator=g)
    y = (x[:, :3].sum(1) > 0).long()
    return (DataLoader(TensorDataset(x[:192], y[:192]), 16, shuffle=True, generator=g),
            DataLoader(TensorDataset(x[192:], y[192:]), 64))


class Spy(GradualMasks):
    """Records the per-layer pruned counts after every optimizer step."""

    def update(self, step, model):
        new = super().update(step, model)
        current = new if new is not None else self.masks
        self.log.append((step, {n: int(m.numel() - m.count_nonzero()) for n, m in current.items()}))
        return new


@pytest.mark.parametrize("reselect", [False, True])
def test_gradual_reaches_exact_targets_at_end_step(reselect):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 2))
    dense = copy.deepcopy(model.state_dict())
    targets = {"0.weight": 0.9, "2.weight": 0.75, "4.weight": 0.5}
    scores = {n: torch.rand(p.shape) for n, p in model.named_parameters() if n in targets}
    final = layerwise_masks(scores, targets)
    want = {n: math.floor(s * final[n].numel()) for n, s in targets.items()}

    spy = Spy(final, end=0.5, updates=6, reselect=reselect)
    spy.log = []
    train, val = _data()
    epochs, steps_per_epoch = 4, len(train)
    fit(model, train, val, TrainConfig(epochs=epochs, lr=0.05), pruning=spy, progress=False)

    end_step = round(0.5 * epochs * steps_per_epoch)
    assert spy.end_step == end_step
    previous = {n: 0 for n in targets}
    for step, counts in spy.log:
        for n in targets:
            assert counts[n] >= previous[n]  # masks only grow
            if step >= end_step:
                assert counts[n] == want[n], (step, n)  # exactly the target from the end step on
            else:
                assert counts[n] <= want[n]
        j = spy.steps.get(step)
        if j is not None and j < spy.n:  # an update: floor(K · (1 − (1 − j/n)³))
            assert counts == {n: int(cubic(j / spy.n) * want[n]) for n in targets}
        previous = counts
    assert spy.log[end_step - 2][1] != want  # not there one step before the end
    params = dict(model.named_parameters())
    for n in targets:  # the trained model holds exactly the final masks
        assert int((params[n] == 0).sum()) == want[n]
        assert torch.equal(params[n] == 0, ~spy.masks[n])
    if not reselect:
        assert all(torch.equal(spy.masks[n], final[n]) for n in targets)
    assert not torch.equal(params["0.weight"], dense["0.weight"])
