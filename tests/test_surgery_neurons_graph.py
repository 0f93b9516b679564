"""VBP's neuron removal goes through the dependency graph (as channel removal does) and gives exactly the weights of
slicing the block by hand: a ViT MLP, LeViT's BatchNorm, ConvNeXt-V2's GRN and PVT-v2's depthwise conv between
mlp_in and mlp_out."""

import copy

import pytest
import torch

from edgeprune import models
from edgeprune.methods.vbp_core import find_mlp_blocks
from edgeprune.surgery import neurons

CASES = [("vit", 8, 1, dict(dim=32, depth=2, num_heads=4)), ("timm:levit_128s", 64, 3, {"img_size": 64}),
         ("timm:convnextv2_atto", 64, 3, {}), ("timm:pvt_v2_b0", 64, 3, {})]


@pytest.mark.parametrize("spec, size, channels, options", CASES, ids=[c[0] for c in CASES])
def test_neurons_leave_through_the_graph_with_the_weights_of_slicing_by_hand(spec, size, channels, options):
    if spec.startswith("timm:"):
        pytest.importorskip("timm")
    torch.manual_seed(0)
    model = models.create(spec, num_classes=5, in_channels=channels, image_size=size, **options).eval()
    x = torch.randn(1, channels, size, size)
    blocks = find_mlp_blocks(model, x)
    between = {n: b.between for n, b in blocks.items()}
    gen = torch.Generator().manual_seed(0)
    pruned = {n: torch.sort(torch.randperm(model.get_submodule(b[0]).weight.shape[0], generator=gen)[:5]).values
              for n, b in blocks.items()}

    _, plan, done = neurons._graph_plan(model, x, blocks, pruned, between)
    assert done == set(blocks) and set(plan) == {b[0] for b in blocks.values()}  # every block through the graph

    by_graph, by_hand = copy.deepcopy(model), copy.deepcopy(model)
    neurons.remove_hidden(by_graph, blocks, pruned, between, x)
    neurons.remove_hidden(by_hand, blocks, pruned, between)
    graph_state, hand_state = by_graph.state_dict(), by_hand.state_dict()
    assert graph_state.keys() == hand_state.keys()
    for key, value in hand_state.items():
        assert torch.equal(graph_state[key], value), key
    assert sum(p.numel() for p in by_graph.parameters()) < sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        assert torch.equal(by_graph(x), by_hand(x))
