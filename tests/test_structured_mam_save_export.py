"""A model from structured Mix-and-Match is physically smaller: it saves and loads back (narrower layers,
fewer heads), and its ONNX file is smaller than the input model's and matches PyTorch in ONNX Runtime."""

import pytest
import torch

import edgeprune
from edgeprune import data as data_lib
from edgeprune import models
from edgeprune.export import export_verified

# the budget is measured in calibration: ONNX bytes (an export per step) for the small CNN, params for the ViT
SPECS = {"lenet5": ({}, "size<=60%"), "vit": (dict(dim=32, depth=2, num_heads=4), "params<=60%")}


@pytest.mark.parametrize("spec", sorted(SPECS))
def test_pruned_model_saves_loads_and_exports_smaller(spec, tmp_path):
    digits = data_lib.load("digits")
    kwargs, budget = SPECS[spec]
    model = models.create(spec, num_classes=10, in_channels=1, image_size=8, **kwargs)
    pruned = edgeprune.prune(model, digits, method="mix_and_match", budget=budget, finetune=0, granularity="channel",
                             criteria=["product"], strategies=["balanced"], calib_batches=2)
    small = pruned.model
    assert pruned.record["params"] < pruned.dense["params"]

    edgeprune.save(pruned, tmp_path / "small.pt")
    loaded = edgeprune.load(tmp_path / "small.pt")
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(loaded.eval()(x), small.eval()(x), atol=1e-6)
    if spec == "vit":
        assert [b.attn.num_heads for b in loaded.blocks] == [b.attn.num_heads for b in small.blocks]

    dense_onnx = export_verified(model, tmp_path / "dense.onnx", x)
    small_onnx = export_verified(loaded, tmp_path / "small.onnx", x)
    assert small_onnx["max_abs_diff"] <= 1e-4
    assert small_onnx["bytes"] < dense_onnx["bytes"]
    if budget.startswith("size"):  # the budget, measured on the shipped file
        assert small_onnx["bytes"] <= 0.6 * dense_onnx["bytes"]
        assert pruned.record["budget_achieved"] == pytest.approx(small_onnx["bytes"], rel=0.01)
