"""Structured pruning and Reconvene inside blocks when torch-pruning cannot trace the whole model (surgery.blocks).

ShuffleNet's channel shuffle followed by a chunk makes torch-pruning's reshape mapping divide by zero on the
whole model; its branches trace alone, so channels go inside them while every block's input and output widths
stay. A depthwise conv reading a block's input keeps its width (pruning it would narrow the input).
"""

import pytest
import torch
from torch import nn

from edgeprune.measure import param_count
from edgeprune.runs.contract import run_stage
from edgeprune.surgery.groups import coupled_groups
from edgeprune.surgery.ratios import prune_channels
from edgeprune.surgery.structure import plan as plan_structure

tv = pytest.importorskip("torchvision")


def _block_outputs(model, names, x):
    shapes, modules = {}, dict(model.named_modules())
    hooks = [modules[n].register_forward_hook(lambda m, i, o, n=n: shapes.__setitem__(n, tuple(o.shape))) for n in names]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return shapes


def test_shufflenet_loses_channels_inside_its_blocks_and_keeps_their_widths():
    torch.manual_seed(0)
    model = tv.models.shufflenet_v2_x0_5(num_classes=5).eval()
    x = torch.randn(2, 3, 32, 32)
    structure = plan_structure(model, x[:1])
    assert structure.blocks and "blocks that trace alone" in structure.skipped[0], structure.skipped
    shapes, before = _block_outputs(model, structure.blocks, x), param_count(model)
    widths = prune_channels(model, x[:1], structure, {n: 0.3 for n in structure.channels})
    assert param_count(model) < before and model(x).shape == (2, 5)
    assert _block_outputs(model, structure.blocks, x) == shapes
    assert widths["stage2.1.branch2.0"] < structure.channels["stage2.1.branch2.0"]  # a branch's inner width


def test_a_depthwise_conv_on_the_traced_input_keeps_its_width():
    block = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.Conv2d(8, 16, 1), nn.ReLU(), nn.Conv2d(16, 8, 1))
    groups = {tuple(g.members): g.protected for g in coupled_groups(block, torch.zeros(1, 8, 6, 6))}
    assert groups[("0",)] and not groups[("1",)] and groups[("3",)], groups


def test_torchvision_shufflenet_passes_the_structured_stage():
    torch.manual_seed(0)
    model = tv.models.shufflenet_v2_x0_5(num_classes=5).eval()
    outcome = run_stage("structured30", model, torch.zeros(1, 3, 32, 32))
    assert outcome.status == "pass" and "blocks that trace alone" in outcome.note, outcome


def test_reconvene_removes_channels_inside_shufflenets_blocks():
    torch.manual_seed(0)
    model = tv.models.shufflenet_v2_x0_5(num_classes=5).eval()
    outcome = run_stage("reconvene90", model, torch.zeros(1, 3, 32, 32))
    assert outcome.status == "pass" and "blocks that trace alone" in outcome.note, outcome


def test_the_default_call_prunes_shufflenet_to_what_it_can_reach_and_says_so():
    import edgeprune
    from edgeprune.api_contract import tiny_data
    from edgeprune.errors import ConfigError

    torch.manual_seed(0)
    model, example = tv.models.shufflenet_v2_x0_5(num_classes=5).eval(), torch.zeros(1, 3, 32, 32)
    data = tiny_data(example, 5)
    with pytest.warns(UserWarning, match=r"default sparsity 0\.8 is out of reach on this model \(the largest reachable sparsity is 0\.3\d+ .*\); pruned to 0\.3\d instead"):
        pruned = edgeprune.prune(model, data, method="structured", finetune=0, strategies=["balanced"],
                                 criteria=["magnitude"], deploy_metrics=False)
    assert 0.3 <= pruned.budget < 0.8 and pruned.budget <= pruned.record["budget_achieved"] < pruned.budget + 0.01
    assert pruned.model(example).shape == (1, 5)
    with pytest.raises(ConfigError, match=r"budget 0\.8 cannot be met: the largest reachable sparsity is 0\.3"):
        edgeprune.prune(model, data, method="structured", budget=0.8, finetune=0, strategies=["balanced"],
                        criteria=["magnitude"], deploy_metrics=False)  # a budget the user named is met or refused
