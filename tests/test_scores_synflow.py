"""SynFlow: synaptic flow is conserved layer by layer (single round) and iterative SynFlow hits exactly p."""

import torch
from torch import nn

from edgeprune import scores
from edgeprune.prune.masks import global_masks, masks_sparsity


def _chain():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8, bias=False), nn.ReLU(), nn.Linear(8, 5, bias=False), nn.ReLU(),
                         nn.Linear(5, 3, bias=False))


def test_single_round_conserves_flow_per_layer_and_leaves_model_alone():
    model = _chain()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    got = scores.compute("synflow", model, input_shape=(6,))
    sums = [float(s.double().sum()) for s in got.values()]
    with torch.no_grad():
        R = float(torch.ones(1, 6).double() @ model[0].weight.double().abs().T @ model[2].weight.double().abs().T
                  @ model[4].weight.double().abs().T @ torch.ones(3, 1).double())
    for s in sums:
        assert abs(s - R) / R < 1e-5, (sums, R)  # each layer's scores sum to R (Tanaka et al., Thm 1)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k  # signs restored: the model is untouched


def test_iterative_synflow_reaches_exactly_the_target_and_global_topk_reproduces_it():
    model = _chain()
    total = 6 * 8 + 8 * 5 + 5 * 3
    p = 0.8
    got = scores.compute("synflow", model, input_shape=(6,), sparsity=p, rounds=20)
    flat = torch.cat([s.reshape(-1) for s in got.values()])
    pruned = int((flat < 0).sum())
    assert pruned == round(p * total)
    masks = global_masks(got, p)
    assert masks_sparsity(masks) == round(p * total) / total
    for name, m in masks.items():
        assert torch.equal(m, got[name] >= 0), name
    # no layer collapses at this sparsity (the point of SynFlow)
    assert all(bool(m.any()) for m in masks.values())


def test_synflow_reads_the_input_shape_from_batches():
    model = _chain()
    a = scores.compute("synflow", model, [(torch.randn(2, 6), torch.zeros(2, dtype=torch.long))])
    b = scores.compute("synflow", model, input_shape=(6,))
    for name in a:
        torch.testing.assert_close(a[name], b[name])


class _CastsToFloat32(nn.Module):
    """A chain whose flow passes float32's range (~3e38) and that normalises in float32 inside its forward, as timm's
    EfficientViT attention does (inf / inf there is NaN)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.layers = nn.ModuleList(nn.Linear(32, 32, bias=False) for _ in range(20))
        with torch.no_grad():
            for layer in self.layers:
                layer.weight.mul_(100.0)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        y = x.float()
        return (y[:, :-1] / y[:, -1:]).to(x.dtype)


def test_synflow_keeps_float64_through_a_models_own_casts_to_float32():
    got = scores.compute("synflow", _CastsToFloat32(), input_shape=(32,))
    assert all(torch.isfinite(s).all() and (s > 0).any() for s in got.values())
