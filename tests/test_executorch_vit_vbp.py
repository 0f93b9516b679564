"""A tiny ViT, dense and after VBP (physically fewer MLP neurons), exports to an XNNPACK-lowered .pte whose
ExecuTorch outputs match PyTorch's; what stayed outside the delegate is named per operator kind."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import edgeprune
from byom.userdata import loaders
from edgeprune import models
from edgeprune.export import Program, export_executorch

pytest.importorskip("executorch")


@pytest.mark.slow
def test_tiny_vit_dense_and_vbp_pruned(tmp_path):
    torch.manual_seed(0)
    vit = models.create("vit", num_classes=10, in_channels=1, image_size=8, dim=16, depth=1, num_heads=2)
    data = loaders()
    pruned = edgeprune.prune(vit, data, method="vbp", budget=0.5, finetune=0, calib_batches=2).model.eval()
    assert pruned.blocks[0].mlp.fc1.out_features == 32 == vit.blocks[0].mlp.fc1.out_features // 2
    x = next(iter(data[2]))[0][:6]
    for name, model in (("dense", vit.eval()), ("vbp", pruned)):
        info = export_executorch(model, tmp_path / f"{name}.pte", x)
        assert info["max_abs_diff"] <= 1e-4, name
        assert info["batch"] == 1 and info["parity_inputs"] == 6
        # LayerNorm is not delegated to XNNPACK in ExecuTorch 1.5: it must be reported, with its count
        assert info["outside_delegate"].get("aten::native_layer_norm", 0) >= 1, info["outside_delegate"]
        with torch.no_grad():
            assert np.abs(Program(tmp_path / f"{name}.pte").run(x) - model(x).numpy()).max() <= 1e-4
    assert (tmp_path / "vbp.pte").stat().st_size < (tmp_path / "dense.pte").stat().st_size
