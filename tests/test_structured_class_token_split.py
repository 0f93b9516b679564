"""HF CvT splits its class token from the tokens (``torch.split(x, [1, h * w], 1)``), reads each part twice and
concatenates them again: torch-pruning indexes the split's sizes by its consumers, ran past them, and the whole model
was refused ("cannot trace HFImageClassifier for structured pruning: list index out of range"), with no block that
traces alone to prune instead. Such a concatenation is now left unmapped and the model is pruned as a whole."""

import pytest
import torch

import edgeprune
from edgeprune.api_contract import tiny_data
from edgeprune.models import create
from edgeprune.surgery.graph import build_graph

pytest.importorskip("transformers")

X = torch.zeros(1, 3, 32, 32)


def cvt():
    torch.manual_seed(0)
    # (depth 1, 2, 3: transformers indexes stage k's drop-path rates by k)
    return create("hf-config:cvt", num_classes=10, in_channels=3, image_size=32, depth=[1, 2, 3],
                  embed_dim=[16, 32, 48], num_heads=[1, 2, 3]).eval()


def test_cvt_traces_as_a_whole():
    assert build_graph(cvt(), X).module2node


@pytest.mark.slow
def test_the_default_structured_call_prunes_cvt():
    model = cvt()
    before = sum(p.numel() for p in model.parameters())
    pruned = edgeprune.prune(model, tiny_data(X, 10), method="structured", finetune=0).model
    assert sum(p.numel() for p in pruned.parameters()) < before
    assert pruned(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
