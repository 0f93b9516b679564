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


def test_remove_checked_leaves_an_emptying_group_alone_without_tracing_again(monkeypatch):
    """A group that would empty a coupled layer is known before any removal: it is left alone with the reason and
    the other groups are removed, with no re-trace (on timm's ResNeSt each trace cost seconds; the bisection ran out
    of time and the whole plan was refused)."""
    from edgeprune.surgery import channels
    from edgeprune.surgery.graph import build_graph

    model = models.create("vgg11", num_classes=10, in_channels=3, image_size=8).eval()
    example = torch.zeros(1, 3, 8, 8)
    graph = build_graph(model, example)
    traces = []
    monkeypatch.setattr(channels, "build_graph", lambda *a, **k: traces.append(1) or build_graph(*a, **k))
    pruned, removed, left = channels.remove_checked(
        model, example, {"features.4": list(range(128)), "features.0": [0, 1]}, graph, "the test")
    assert left == {"features.4": "refusing to remove all 128 output channels of layer 'features.4'; keep at least one channel"}
    assert removed["features.0"]["out"] == [0, 1] and removed["features.4"] == {"out": [], "in": [0, 1]}
    assert pruned(example).shape == (1, 10) and traces == []
