"""A model wrapped by ``torch.compile`` (as users run it for speed): prune, save and export work on the module under
the wrapper, with a warning, instead of recompiling at every changed shape (minutes) or failing in the ONNX export."""

import pytest
import torch

import edgeprune
from edgeprune import data as data_lib
from edgeprune import models


def _compiled():
    torch.manual_seed(0)
    return torch.compile(models.create("resnet20", num_classes=10, in_channels=1, image_size=8, width_mult=0.5))


def test_a_compiled_model_is_pruned_saved_and_exported_as_its_module(tmp_path):
    compiled = _compiled()
    with pytest.warns(UserWarning, match="torch.compile wrapper of ResNet"):
        pruned = edgeprune.prune(compiled, data_lib.load("digits"), method="structured", finetune=0,
                                 criteria=["magnitude"], strategies=["balanced"], deploy_metrics=False)
    assert type(pruned.model).__name__ == "ResNet" and pruned.record["params"] < pruned.dense["params"]
    with pytest.warns(UserWarning, match="torch.compile wrapper"):
        path = edgeprune.save(compiled, tmp_path / "dense.pt")
    assert not any(k.startswith("_orig_mod.") for k in torch.load(path, weights_only=True)["state_dict"])
    with pytest.warns(UserWarning, match="torch.compile wrapper"):
        exported = edgeprune.export(compiled, tmp_path / "out", latency=False)
    assert (tmp_path / "out" / "model.onnx").is_file() and exported is not None
