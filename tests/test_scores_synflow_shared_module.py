"""SynFlow on a model that reaches one module under two names (timm's CoaT: ``self.mlp3 = self.mlp2``) leaves the
model as it was: torch.func.functional_call does not restore such a module, so the model kept SynFlow's float64
|weights| and the next stage failed ("Input type (float) and bias type (double)"). Found by the public-API
contract: Reconvene failed on timm's coat_tiny."""

import torch
from torch import nn

from edgeprune import scores


class Shared(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(4, 6)
        self.mlp2 = nn.Sequential(nn.Linear(6, 6), nn.ReLU())
        self.mlp3 = self.mlp2  # the same module, a second name
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        return self.head(self.mlp3(self.mlp2(self.stem(x))))


def test_synflow_leaves_a_model_with_a_shared_module_unchanged():
    torch.manual_seed(0)
    model = Shared()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for options in ({}, {"sparsity": 0.5, "rounds": 3}):
        result = scores.compute("synflow", model, None, input_shape=(4,), **options)
        assert set(result) == {n for n in before if n.endswith("weight")}
        for name, p in model.named_parameters():
            assert p.dtype == torch.float32 and torch.equal(p, before[name]), name
        assert model.mlp3 is model.mlp2 and model.mlp3[0].weight is model.mlp2[0].weight
    assert model(torch.zeros(2, 4)).dtype == torch.float32
