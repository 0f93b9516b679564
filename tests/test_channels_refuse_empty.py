"""remove_channels refuses plans that would empty a layer or change the output, and leaves the model as it was."""

import copy

import pytest
import torch

from edgeprune import models
from edgeprune.errors import ConfigError
from edgeprune.surgery.channels import remove_channels


def _same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize(
    "plan, message",
    [
        ({"features.4": list(range(128))}, "refusing to remove all 128 output channels of layer 'features.4'"),
        ({"classifier.3": [0]}, "layer 'classifier.3' produces the model's output"),
        ({"features.99": [0]}, "unknown layer 'features.99'"),
        ({"features.5": [0]}, "only Conv/Linear layers"),
        ({"features.4": [128]}, "channel indices must be in [0, 128), got 128"),
    ],
)
def test_bad_plans_raise_one_line_errors_and_change_nothing(plan, message):
    model = models.create("vgg11", num_classes=10, in_channels=3, image_size=8)
    before = copy.deepcopy(model)
    with pytest.raises(ConfigError) as err:
        remove_channels(model, torch.zeros(1, 3, 8, 8), plan)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert _same(model, before)


def test_a_residual_group_emptied_through_one_member_is_refused():
    model = models.create("resnet20", num_classes=10, in_channels=3, image_size=8)
    before = copy.deepcopy(model)
    with pytest.raises(ConfigError, match="refusing to remove all 64 output channels of layer 'layer3"):
        remove_channels(model, torch.zeros(1, 3, 8, 8), {"layer3.1.conv2": list(range(64))})
    assert _same(model, before)
