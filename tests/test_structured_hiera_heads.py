"""HF Hiera: groups torch-pruning couples with its q/k/v through their reshapes removed every head of an attention,
and the default structured call crashed (ZeroDivisionError in ``head_dim = width // heads``). An attempt that would
leave an attention without heads now fails like any plan the pruned model cannot run, and the retries follow."""

import warnings

import pytest
import torch

import edgeprune
from edgeprune.api_contract import tiny_data
from edgeprune.models import create

pytest.importorskip("transformers")


@pytest.mark.slow
def test_the_default_structured_call_prunes_hiera():
    torch.manual_seed(0)
    model = create("hf-config:hiera", num_classes=10, in_channels=3, image_size=64, embed_dim=32, depths=[1, 1, 1, 1])
    before = sum(p.numel() for p in model.parameters())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pruned = edgeprune.prune(model, tiny_data(torch.zeros(1, 3, 64, 64), 10), method="structured", finetune=0).model
    assert sum(p.numel() for p in pruned.parameters()) < before
    assert pruned(torch.zeros(2, 3, 64, 64)).shape == (2, 10)
    assert any("keeps parts of it whole" in str(w.message) for w in caught)
