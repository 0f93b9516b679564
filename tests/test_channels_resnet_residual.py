"""remove_channels on ResNet-20: channels tied by residual sums leave every member of their group."""

import copy

import torch

from edgeprune import models
from edgeprune.surgery.channels import remove_channels
from edgeprune.surgery.groups import coupled_groups

STAGE2 = ["layer2.0.conv2", "layer2.0.downsample.0", "layer2.1.conv2", "layer2.2.conv2"]


def test_coupled_groups_are_the_residual_streams():
    model = models.create("resnet20", num_classes=10, in_channels=3, image_size=8)
    groups = {tuple(g.members): g for g in coupled_groups(model, torch.zeros(1, 3, 8, 8))}
    assert ("conv1", "layer1.0.conv2", "layer1.1.conv2", "layer1.2.conv2") in groups
    stage2 = groups[tuple(STAGE2)]
    assert stage2.channels == 32
    assert stage2.consumers == ["layer2.1.conv1", "layer2.2.conv1", "layer3.0.conv1", "layer3.0.downsample.0"]
    assert ("layer2.1.conv1",) in groups and not groups[("layer2.1.conv1",)].protected
    assert groups[("fc",)].protected


def test_removing_from_one_member_removes_from_the_whole_group_and_adds_line_up():
    torch.manual_seed(0)
    model = models.create("resnet20", num_classes=10, in_channels=3, image_size=8)
    original = copy.deepcopy(model)
    mods, orig = dict(model.named_modules()), dict(original.named_modules())
    gone = [1, 4, 30]
    keep = [i for i in range(32) if i not in gone]

    removed = remove_channels(model, torch.zeros(1, 3, 8, 8), {"layer2.1.conv2": gone})

    for name in STAGE2:
        assert mods[name].weight.shape[0] == 29, name
        assert torch.equal(mods[name].weight, orig[name].weight[keep]), name
        assert removed[name]["out"] == gone
    for name in ["layer2.1.conv1", "layer2.2.conv1", "layer3.0.conv1", "layer3.0.downsample.0"]:
        assert torch.equal(mods[name].weight, orig[name].weight[:, keep]), name
        assert removed[name] == {"out": [], "in": gone}
    for bn in ["layer2.0.bn2", "layer2.0.downsample.1", "layer2.1.bn2", "layer2.2.bn2"]:
        assert mods[bn].num_features == 29
    # inner convs are not coupled to the stream
    assert mods["layer2.1.conv1"].weight.shape[0] == 32 and "layer2.1.bn1" not in removed

    # every residual sum lines up: the block output and its identity have the same shape
    shapes = []
    for block in [b for stage in (model.layer1, model.layer2, model.layer3) for b in stage]:
        block.register_forward_hook(lambda m, i, o: shapes.append((i[0].shape, o.shape)))
    x = torch.randn(2, 3, 8, 8)
    assert model(x).shape == (2, 10)
    assert len(shapes) == 9
    assert shapes[3][1][1] == 29 and shapes[5][1][1] == 29 and shapes[6][0][1] == 29


def test_the_residual_streams_are_flagged_and_nothing_else():
    model = models.create("resnet20", num_classes=10, in_channels=3, image_size=8)
    groups = coupled_groups(model, torch.zeros(1, 3, 8, 8))
    residual = {tuple(g.members) for g in groups if g.residual}
    assert tuple(STAGE2) in residual and len(residual) == 3  # one stream per stage
    assert not any(g.residual for g in groups if g.members == ["layer2.1.conv1"])


def test_a_residual_range_holds_the_streams_and_leaves_the_inner_convs_their_role():
    import edgeprune
    from edgeprune import data as data_lib
    from edgeprune.methods import structured_mam
    from edgeprune.methods.base import get_method

    model = models.create("resnet20", num_classes=10, in_channels=1, image_size=8)
    options = get_method("mix_and_match", granularity="channel", criteria=["magnitude"],
                         range_rules={"residual": (0.0, 0.1)}).options
    state = structured_mam.prepare(model, None, torch.zeros(1, 1, 8, 8), options)
    assert all(state.ranges[f"{m}.weight"] == (0.0, 0.1) for m in STAGE2)
    assert state.ranges["layer2.1.conv1.weight"][1] > 0.1
    pruned = edgeprune.prune(model, data_lib.load("digits"), method="mix_and_match", granularity="channel",
                             budget="macs<=60%", criteria=["magnitude"], strategies=["balanced"], finetune=0,
                             deploy_metrics=False, round_to=1, range_rules={"residual": (0.0, 0.1)})
    widths = {n: m.weight.shape[0] for n, m in pruned.model.named_modules() if n in STAGE2 + ["layer2.1.conv1"]}
    assert widths["layer2.0.conv2"] >= 32 * 0.9 > widths["layer2.1.conv1"]  # the stream within its range, not the rest
