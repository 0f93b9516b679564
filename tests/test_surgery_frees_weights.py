"""Surgery frees the weights it replaces as soon as the pruned model is done with, not at the next full garbage
collection: torch-pruning's graph is a cycle whose nodes hold the autograd functions of the trace, which hold the
weights as they were traced. Every pruned copy of a structured budget's calibration kept a full-size copy of the
model alive that way (ResNet-50: 2.6 GB resident instead of 1.6)."""

import contextlib
import copy
import gc
import weakref

import torch

from edgeprune import models
from edgeprune.surgery.channels import remove_channels
from edgeprune.surgery.ratios import prune_channels
from edgeprune.surgery.structure import plan as plan_structure


@contextlib.contextmanager
def no_cycle_collection():
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def resnet20():
    torch.manual_seed(0)
    return models.create("resnet20", num_classes=10, in_channels=3, image_size=8).eval()


def test_a_pruned_copy_frees_the_weights_it_replaced_without_a_garbage_collection():
    model, x = resnet20(), torch.zeros(1, 3, 8, 8)
    structure = plan_structure(model, x)
    with no_cycle_collection():
        small = copy.deepcopy(model)
        replaced = weakref.ref(small.conv1.weight)
        prune_channels(small, x, structure, {n: 0.5 for group in structure.groups for n in group})
        assert tuple(small.conv1.weight.shape)[0] < tuple(model.conv1.weight.shape)[0]
        del small
        assert replaced() is None


def test_removing_channels_frees_the_weights_it_replaced_without_a_garbage_collection():
    model = resnet20()
    with no_cycle_collection():
        replaced = weakref.ref(model.layer1[0].conv1.weight)
        remove_channels(model, torch.zeros(1, 3, 8, 8), {"layer1.0.conv1": [0, 1, 2]})
        assert tuple(model.layer1[0].conv1.weight.shape)[0] == 13
        assert replaced() is None
