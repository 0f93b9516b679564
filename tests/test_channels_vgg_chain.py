"""remove_channels on a plain VGG chain: the conv loses rows, its BN entries, the next layer input columns."""

import copy

import torch
from torch import nn

from edgeprune import models
from edgeprune.surgery.channels import remove_channels
from edgeprune.surgery.groups import coupled_groups


def _convs(model):
    return [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def test_vgg_chain_removal_slices_the_neighbours_and_nothing_else():
    torch.manual_seed(0)
    model = models.create("vgg11", num_classes=10, in_channels=3, image_size=8)
    original = copy.deepcopy(model)
    mods, orig = dict(model.named_modules()), dict(original.named_modules())
    convs = _convs(model)
    second, third, last = convs[1], convs[2], convs[-1]
    bn_second = f"features.{int(second.split('.')[1]) + 1}"
    x = torch.randn(2, 3, 8, 8)

    removed = remove_channels(model, x[:1], {second: [0, 5, 127], last: list(range(500))})

    keep2 = [i for i in range(128) if i not in (0, 5, 127)]
    assert mods[second].weight.shape == (125, 64, 3, 3)
    assert torch.equal(mods[second].weight, orig[second].weight[keep2])
    assert torch.equal(mods[bn_second].weight, orig[bn_second].weight[keep2])
    assert torch.equal(mods[bn_second].running_var, orig[bn_second].running_var[keep2])
    assert torch.equal(mods[third].weight, orig[third].weight[:, keep2])
    # the last conv feeds the classifier's first Linear through the global pool
    assert mods[last].weight.shape[0] == 12
    assert mods["classifier.1"].weight.shape == (512, 12)
    assert torch.equal(mods["classifier.1"].weight, orig["classifier.1"].weight[:, 500:])

    assert removed[second] == {"out": [0, 5, 127], "in": []}
    assert removed[bn_second]["out"] == [0, 5, 127]
    assert removed[third] == {"out": [], "in": [0, 5, 127]}
    assert removed["classifier.1"] == {"out": [], "in": list(range(500))}
    touched = set(removed)
    for name, param in original.named_parameters():
        if name.rsplit(".", 1)[0] not in touched:
            assert torch.equal(dict(model.named_parameters())[name], param), name
    assert model(x).shape == (2, 10)


def test_plain_layers_are_groups_of_one_and_the_classifier_is_protected():
    model = models.create("vgg11", num_classes=10, in_channels=3, image_size=8)
    groups = coupled_groups(model, torch.zeros(1, 3, 8, 8))
    assert all(len(g.members) == 1 for g in groups)
    assert [g.members[0] for g in groups if g.protected] == ["classifier.3"]
    assert [g.members[0] for g in groups if not g.protected][-1] == "classifier.1"
