"""An HF config too large for this machine's memory is refused in one line, counted on the meta device (nothing
allocated), instead of the process being killed for memory."""

import pytest

from edgeprune import models
from edgeprune.errors import ModelError

pytest.importorskip("transformers")


def test_a_config_whose_weights_exceed_the_memory_is_refused_before_building():
    with pytest.raises(ModelError, match=r"hf-config:vit has \d+\.\d GB of weights .* pass smaller config") as info:
        models.create("hf-config:vit", num_classes=10, in_channels=3, image_size=32, hidden_size=8192,
                      num_hidden_layers=64, intermediate_size=32768, num_attention_heads=64, patch_size=8)
    assert "\n" not in str(info.value)
