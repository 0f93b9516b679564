"""Modules that check their state's version on load (torchvision's MNASNet: "version should be set to 1 or 2")
go through fine-tuning (the best epoch's weights restored), save and load. Found by the public-API contract:
every method's default call failed on mnasnet0_5."""

import pytest
import torch

import edgeprune
from edgeprune import models
from edgeprune.api_contract import tiny_data

pytest.importorskip("torchvision")


@pytest.fixture(scope="module")
def mnasnet():
    torch.manual_seed(0)
    return models.create("torchvision:mnasnet0_5", num_classes=5, in_channels=3, image_size=32)


def test_mnasnet_is_fine_tuned_saved_and_loaded(mnasnet, tmp_path):
    example = torch.zeros(1, 3, 32, 32)
    pruned = edgeprune.prune(mnasnet, tiny_data(example, 5), method="magnitude", budget=0.5, finetune=1)
    assert pruned.record["status"] == "ok"
    path = edgeprune.save(pruned, tmp_path / "m.pt")
    loaded = edgeprune.load(path)
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(loaded.eval()(x), pruned.model.eval()(x), atol=1e-6)
