"""A GLU MLP (``a, b = fc1(x).chunk(2, -1); fc2(act(a) * b)``: SwiGLU, as EVA-02 and many ViTs have it) loses hidden
neurons in pairs: row ``j`` and row ``j + half`` of fc1 with column ``j`` of fc2. torch-pruning maps a split only along
dimension 1 and turns split mappings off in any model with a 3-d parameter such as a position embedding, so these
MLPs were kept whole ("cannot map their channels") and EVA-02 could not be pruned at all.
"""

import copy

import torch
from torch import nn

import edgeprune
from edgeprune.api_contract import tiny_data
from edgeprune.select import latency_table
from edgeprune.surgery.ratios import prune_channels
from edgeprune.surgery.structure import plan as plan_structure

DIM, HIDDEN, TOKENS = 16, 32, 4


class GluMlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(DIM, 2 * HIDDEN), nn.Linear(HIDDEN, DIM)

    def forward(self, x):
        a, b = self.fc1(x).chunk(2, dim=-1)
        return self.fc2(nn.functional.silu(a) * b)


class GluViT(nn.Module):
    """Tokens of an image's rows, a position embedding (the 3-d parameter), one residual GLU MLP, mean-pooled head."""

    def __init__(self):
        super().__init__()
        self.embed, self.pos = nn.Linear(8, DIM), nn.Parameter(torch.randn(1, TOKENS, DIM) * 0.02)
        self.norm, self.mlp, self.head = nn.LayerNorm(DIM), GluMlp(), nn.Linear(DIM, 10)

    def forward(self, x):
        t = self.embed(x[:, 0]) + self.pos
        t = t + self.mlp(self.norm(t))
        return self.head(t.mean(1))


def test_a_glu_mlp_loses_hidden_neurons_in_pairs():
    torch.manual_seed(0)
    model = GluViT().eval()
    weak = torch.arange(0, HIDDEN, 2)  # half the hidden neurons contribute almost nothing
    with torch.no_grad():
        model.mlp.fc1.weight[weak] *= 1e-4
        model.mlp.fc1.weight[weak + HIDDEN] *= 1e-4
        model.mlp.fc1.bias[weak] = model.mlp.fc1.bias[weak + HIDDEN] = 0.0
        model.mlp.fc2.weight[:, weak] *= 1e-4
    x = torch.randn(4, 1, TOKENS, 8)
    structure = plan_structure(model, x)
    assert structure.channel_groups.get("mlp.fc1") == 2
    pruned = copy.deepcopy(model)
    widths = prune_channels(pruned, x, structure, {"mlp.fc1": 0.5})
    assert not widths.skipped
    assert (pruned.mlp.fc1.out_features, pruned.mlp.fc2.in_features) == (HIDDEN, HIDDEN // 2)
    # the weak pairs went: a wrong pairing would cut a strong neuron's gate from its value
    torch.testing.assert_close(pruned(x), model(x), atol=1e-4, rtol=1e-4)
    ops = latency_table.census(model, x)
    predicted = latency_table.predicted_widths(ops, structure, {"mlp.fc1": 0.5}, 1, model)
    assert predicted["mlp.fc1"] == (DIM, HIDDEN) and predicted["mlp.fc2"] == (HIDDEN // 2, DIM)


def test_the_default_structured_call_prunes_a_glu_mlp():
    torch.manual_seed(0)
    model = GluViT()
    pruned = edgeprune.prune(model, tiny_data(torch.zeros(1, 1, TOKENS, 8), 10), method="structured", finetune=0)
    mlp = pruned.model.mlp
    assert mlp.fc2.in_features < HIDDEN and mlp.fc1.out_features == 2 * mlp.fc2.in_features
    assert pruned.model(torch.zeros(2, 1, TOKENS, 8)).shape == (2, 10)
