"""The compressed sparse artifact rebuilds the exact model (FP32 values bit-exact), is smaller than dense
FP32 at 50%+ sparsity, and its position coding stays within 1.10x of the n·H(d) information bound."""

import pytest
import torch

from edgeprune import models
from edgeprune.export import sparse
from edgeprune.measure import prunable_weights, sparsity
from edgeprune.prune.masks import global_masks, make_permanent


def pruned_lenet300(level: float):
    torch.manual_seed(0)
    model = models.create("lenet300", num_classes=10, in_channels=1, image_size=28)
    scores = {n: torch.rand_like(w) for n, w in prunable_weights(model).items()}  # random-pattern masks
    make_permanent(model, global_masks(scores, level))
    return model


@pytest.mark.parametrize("level", [0.5, 0.9, 0.99])
def test_fp32_artifact_is_bit_exact_and_small(tmp_path, level):
    model = pruned_lenet300(level)
    assert sparsity(model) == pytest.approx(level, abs=1e-6)
    info = sparse.save(model, tmp_path / "m.epz", meta={"note": "test"})
    loaded = sparse.load(tmp_path / "m.epz")

    assert loaded.edgeprune_build == model.edgeprune_build and loaded.edgeprune_meta == {"note": "test"}
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        nz = a != 0
        assert torch.equal(a, b), name
        # non-zero values identical to the bit
        assert torch.equal(a[nz].view(torch.int32), b[nz].view(torch.int32)), name
    x = torch.randn(4, 1, 28, 28)
    assert torch.equal(model.eval()(x), loaded(x))

    assert info["bytes"] == (tmp_path / "m.epz").stat().st_size
    assert info["bytes"] < info["dense_fp32_bytes"] * (1 - level + 0.2)
    assert info["pattern_bytes"] <= 1.10 * info["pattern_bound_bytes"] + 16
    assert info["bytes"] <= 1.10 * info["bound_bytes"]


@pytest.mark.parametrize("values,scale,tolerance", [("fp16", "channel", 1e-3), ("int8", "channel", 1 / 127), ("int8", "tensor", 1 / 127)])
def test_reduced_precision_values_keep_the_pattern(tmp_path, values, scale, tolerance):
    model = pruned_lenet300(0.95)
    info = sparse.save(model, tmp_path / "m.epz", values=values, int8_scale=scale)
    loaded = sparse.load(tmp_path / "m.epz")
    for name, w in prunable_weights(model).items():
        w2 = dict(loaded.named_parameters())[name]
        assert torch.equal(w == 0, w2 == 0) or bool(((w2 != 0) <= (w != 0)).all())  # never a new non-zero
        rel = (w2 - w).abs().max() / w.abs().max()
        assert rel <= tolerance, (name, float(rel))
    biases = [n for n, _ in model.named_parameters() if n.endswith("bias")]
    assert all(torch.equal(dict(model.named_parameters())[n], dict(loaded.named_parameters())[n]) for n in biases)
    fp32 = sparse.save(model, tmp_path / "f.epz")
    assert info["bytes"] < fp32["bytes"]


def test_structurally_pruned_model_round_trips(tmp_path):
    from edgeprune.surgery.channels import remove_channels

    torch.manual_seed(0)
    model = models.create("resnet20", num_classes=10, in_channels=3, image_size=8)
    remove_channels(model, torch.randn(1, 3, 8, 8), {"layer1.0.conv1": range(0, 16, 2), "layer3.1.conv1": range(40)})
    # plus unstructured zeros in what is left
    make_permanent(model, global_masks({n: torch.rand_like(w) for n, w in prunable_weights(model).items()}, 0.8))
    info = sparse.save(model, tmp_path / "r.epz")
    loaded = sparse.load(tmp_path / "r.epz")
    assert loaded.layer3[1].conv1.out_channels == 24
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(model.eval()(x), loaded(x))
    assert info["bytes"] < 0.4 * info["dense_fp32_bytes"]
