"""Structured pruning prunes what torch-pruning safely can and says what it kept whole: when the full plan fails
(a reshape by the head count it cannot see, an index mapping it gets wrong), prune_channels retries with the
attention kept whole, then with only MLP hidden widths and conv channels; groups whose channels torch-pruning
maps out of range (FasterNet's partial conv) stay whole. The structured30 contract stage then passes on small
CrossViT, CaiT, ConViT, LeViT, PVT-v2 and FasterNet models, with a note naming what was kept. A model every retry
fails on is still refused in one line, and left as it was; layers whose group torch-pruning fails to find
(GCViT's ZeroDivisionError) are kept whole and said.
"""

import copy

import pytest
import torch
from torch import nn

from edgeprune import models
from edgeprune.errors import ModelError
from edgeprune.measure import param_count
from edgeprune.runs.contract import run_stage
from edgeprune.surgery.lazy import tp
from edgeprune.surgery.ratios import prune_channels
from edgeprune.surgery.structure import plan as plan_structure

pytest.importorskip("timm")

SIZE = 64
CASES = {  # spec, options, what the note says was kept whole
    "crossvit": ("timm:crossvit_tiny_240", dict(depth=((1, 1, 0),), embed_dim=(48, 96), num_heads=(3, 3)),
                 "attention kept whole (CrossAttention x2)"),
    "cait": ("timm:cait_xxs24_224", dict(img_size=SIZE, depth=2, depth_token_only=1, embed_dim=96, num_heads=3),
             "attention kept whole (ClassAttn)"),
    "convit": ("timm:convit_tiny", dict(img_size=SIZE, depth=2, local_up_to_layer=1, embed_dim=96, num_heads=3),
               "only MLP hidden widths and conv channels outside attention pruned"),
    "fasternet": ("timm:fasternet_t0", dict(depths=(1, 1, 1, 1), embed_dim=16),
                  "coupled group(s) kept whole, torch-pruning cannot map their channels"),
    "levit": ("hf-config:levit", dict(hidden_sizes=[32, 48, 64], num_attention_heads=[1, 2, 2], depths=[1, 1, 1],
                                      key_dim=[8, 8, 8]), "attention kept whole (LevitAttention x3"),
    "pvt_v2": ("hf-config:pvt_v2", dict(hidden_sizes=[16, 32, 40, 64], depths=[1, 1, 1, 1],
                                        num_attention_heads=[1, 2, 5, 8], mlp_ratios=[2, 2, 2, 2]),
               "only MLP hidden widths and conv channels outside attention pruned"),
}


def build(name):
    spec, options, _ = CASES[name]
    if spec.startswith("hf-config:"):
        pytest.importorskip("transformers")
    torch.manual_seed(0)
    return models.create(spec, num_classes=10, in_channels=3, image_size=SIZE, **options).eval()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_structured30_passes_and_says_what_was_kept_whole(name):
    model = build(name)
    x = torch.zeros(1, 3, SIZE, SIZE)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    outcome = run_stage("structured30", model, x)
    assert outcome.status == "pass", outcome.note
    assert CASES[name][2] in outcome.note
    large, small = (int(n) for n in outcome.note.split(";")[0].removeprefix("params ").split(" -> "))
    assert small < large == param_count(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the input is never modified


def test_prune_channels_returns_the_kept_parts_and_a_model_that_runs():
    model = build("crossvit")
    x = torch.randn(2, 3, SIZE, SIZE)
    pruned = copy.deepcopy(model)
    structure = plan_structure(pruned, x)
    names = {n: 0.3 for g in structure.groups for n in g}
    widths = prune_channels(pruned, x, structure, names)
    assert widths.skipped and "CrossAttention" in widths.skipped[0]
    assert structure.retry == 1  # the retry that worked: the next call starts there
    assert param_count(pruned) < param_count(model)
    assert pruned(x).shape == model(x).shape
    again = copy.deepcopy(model)
    assert prune_channels(again, x, structure, names) == widths  # the same plan, the same widths


class WidthInAttribute(nn.Module):
    """Both convs' widths are kept in an attribute and read by reshapes: every retry prunes them (plain convs) and
    fails, and once each is found to break the forward, nothing is left to prune."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2, self.width = nn.Conv2d(3, 16, 3), nn.Conv2d(16, 16, 1), 16
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        h = torch.relu(self.conv1(x))
        y = self.conv2(h.reshape(h.shape[0], self.width, -1).reshape(h.shape))
        return self.head(y.reshape(y.shape[0], self.width, -1).mean(-1))


def test_a_model_every_retry_fails_on_is_refused_in_one_line_and_left_as_it_was():
    torch.manual_seed(0)
    model = WidthInAttribute().eval()
    x = torch.randn(1, 3, 16, 16)
    reference, params = model(x), param_count(model)
    structure = plan_structure(model, x)
    with pytest.raises(ModelError, match="not supported: nothing is left to prune once output channels of conv1, "
                                         "conv2 kept whole") as info:
        prune_channels(model, x, structure, {"conv1": 0.3, "conv2": 0.3})
    assert "\n" not in str(info.value)
    assert param_count(model) == params and torch.equal(model(x), reference)
    outcome = run_stage("structured30", model, x)
    assert outcome.status == "refused" and "\n" not in outcome.note, outcome


def test_layers_torch_pruning_fails_to_group_are_kept_whole_and_said():
    torch.manual_seed(0)  # GCViT's global query: torch-pruning's expand mapping divides by a zero head dim
    from timm.models.gcvit import GlobalContextVit  # (its second block of a stage has the global query)

    model = GlobalContextVit(num_classes=10, img_size=SIZE, depths=(1, 2, 1, 1), embed_dim=32, num_heads=(1, 2, 4, 8)).eval()
    outcome = run_stage("structured30", model, torch.zeros(1, 3, SIZE, SIZE))
    assert outcome.status == "pass", outcome
    assert "kept whole, torch-pruning fails to find their coupled channels" in outcome.note
    assert "ZeroDivisionError" in outcome.note and "\n" not in outcome.note

def test_a_retry_keeps_the_modes_of_the_input_model():
    model = build("crossvit")
    x = torch.zeros(1, 3, SIZE, SIZE)
    structure = plan_structure(model, x)
    model.blocks[0].train()  # (plan() leaves every module in the model's own mode)
    modes = [m.training for m in model.modules()]
    widths = prune_channels(model, x, structure, {n: 0.3 for g in structure.groups for n in g})
    assert widths.skipped  # the model came from a retry on a copy
    assert [m.training for m in model.modules()] == modes


def test_a_group_whose_dependency_search_runs_away_is_kept_whole_and_the_rest_pruned():
    # ReXNet's partial residuals (x[:, :c] += shortcut) chained block after block: BasePruner's search from the last
    # block's projection grows without bound; it was refused as a whole
    torch.manual_seed(0)
    model = models.create("timm:rexnet_100", num_classes=10, image_size=32, width_mult=0.5).eval()
    x = torch.randn(1, 3, 32, 32)
    pruned = copy.deepcopy(model)
    structure = plan_structure(pruned, x)
    widths = prune_channels(pruned, x, structure, {n: 0.3 for g in structure.groups for n in g})
    note = widths.skipped[0]
    assert note.startswith("Conv2d x2 kept whole (features.15.conv_pwl.conv, features.10.conv_pwl.conv)"), note
    assert "dependency search from them was stopped" in note and "\n" not in note
    assert param_count(pruned) < 0.8 * param_count(model)
    assert pruned(x).shape == model(x).shape
    assert {"features.15.conv_pwl.conv", "features.10.conv_pwl.conv"} <= structure.protected  # the next call starts there


class Scale(nn.Module):
    """timm MetaFormer's layer scale: multiplies by its parameter viewed to a shape it keeps."""

    def __init__(self, dim):
        super().__init__()
        self.shape, self.scale = (dim, 1, 1), nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * self.scale.view(self.shape)


class ScaledResidual(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem, self.fc1, self.fc2 = nn.Conv2d(3, 16, 3), nn.Conv2d(16, 32, 1), nn.Conv2d(32, 16, 1)
        self.scale, self.head = Scale(16), nn.Linear(16, 10)

    def forward(self, x):
        x = self.stem(x)
        x = x + self.scale(self.fc2(torch.relu(self.fc1(x))))
        return self.head(x.mean((2, 3)))


def test_a_shape_kept_beside_a_pruned_parameter_follows_it():
    # PoolFormer was refused: its Scale's view(self.shape) failed once the residual stream shrank, then every block
    # was kept whole
    torch.manual_seed(0)
    model = ScaledResidual().eval()
    x = torch.randn(1, 3, 12, 12)
    structure = plan_structure(model, x)
    widths = prune_channels(model, x, structure, {n: 0.5 for g in structure.groups for n in g})
    assert not widths.skipped
    assert model.scale.scale.shape == (8,) and model.scale.shape == (8, 1, 1) and model.fc1.out_channels == 16
    assert model(x).shape == (1, 10)


def test_an_lstm_is_not_searched_from_and_its_model_is_pruned_alike(monkeypatch):
    # timm's Sequencer: BasePruner searched from each LSTM (2 s each, twice per pruned copy: 30 s on Sequencer2d-S)
    # and found groups it could not map, kept whole: the zoo's call ran out of its box
    from timm.models.sequencer import Sequencer2d

    torch.manual_seed(0)
    model = Sequencer2d(num_classes=10, img_size=32, layers=(1, 1, 1, 1), patch_sizes=(4, 2, 1, 1),
                        embed_dims=(32, 48, 48, 48), hidden_sizes=(8, 12, 12, 12)).eval()
    x = torch.randn(1, 3, 32, 32)
    structure = plan_structure(model, x)
    pruned = copy.deepcopy(model)
    searched = []
    original = tp.DependencyGraph.get_pruning_group
    monkeypatch.setattr(tp.DependencyGraph, "get_pruning_group",
                        lambda self, module, *a, **k: (searched.append(module), original(self, module, *a, **k))[1])
    widths = prune_channels(pruned, x, structure, {n: 0.3 for g in structure.groups for n in g})
    assert not any(isinstance(m, nn.LSTM) for m in searched)
    assert not widths.skipped, widths.skipped
    assert param_count(pruned) < 0.8 * param_count(model) and pruned(x).shape == (1, 10)
