"""hf-config:efficientnet: its own `in_channels` config key is overridden as config_in_channels, and a
narrower width_coefficient keeps the head's hidden_dim consistent with its top conv."""

import pytest
import torch

pytest.importorskip("transformers")

from edgeprune import models  # noqa: E402
from edgeprune.errors import ConfigError  # noqa: E402


def test_efficientnet_width_and_config_in_channels():
    blocks = [32, 16, 24, 40, 80, 112, 192]
    model = models.create("hf-config:efficientnet", num_classes=4, in_channels=1, image_size=32,
                          width_coefficient=0.25, depth_coefficient=0.25, config_in_channels=blocks)
    assert model.config.in_channels == blocks and model.config.num_channels == 1
    assert model.config.hidden_dim == 320  # round_filters(1280) at width 0.25, not the default 2560
    assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 4)
    with pytest.raises(ConfigError, match="config_in_channels"):
        models.create("hf-config:efficientnet", num_classes=4, image_size=32, blocks_width=3)
