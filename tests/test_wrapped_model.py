"""A model in a wrapper users run it in (``torch.compile`` for speed, ``nn.DataParallel`` for several GPUs, Ultralytics'
``YOLO`` object): prune,
save and export work on the module under the wrapper, with a warning, instead of recompiling at every changed shape
(minutes) or failing in the ONNX export of the pruned candidates."""

import pytest
import torch
from torch import nn

import edgeprune
from edgeprune import data as data_lib
from edgeprune import models

WRAPPERS = {"torch.compile": torch.compile, "DataParallel": nn.DataParallel,
            "torch.compile of a DataParallel": lambda m: torch.compile(nn.DataParallel(m))}


@pytest.mark.parametrize("wrapper", sorted(WRAPPERS))
def test_a_wrapped_model_is_pruned_saved_and_exported_as_its_module(tmp_path, wrapper):
    torch.manual_seed(0)
    wrapped = WRAPPERS[wrapper](models.create("resnet20", num_classes=10, in_channels=1, image_size=8, width_mult=0.5))
    said = f"a {wrapper} wrapper of ResNet"
    with pytest.warns(UserWarning, match=said):
        pruned = edgeprune.prune(wrapped, data_lib.load("digits"), method="structured", finetune=0,
                                 criteria=["magnitude"], strategies=["balanced"], deploy_metrics=False)
    assert type(pruned.model).__name__ == "ResNet" and pruned.record["params"] < pruned.dense["params"]
    with pytest.warns(UserWarning, match=said):
        path = edgeprune.save(wrapped, tmp_path / "dense.pt")
    assert not any(k.startswith(("_orig_mod.", "module.")) for k in torch.load(path, weights_only=True)["state_dict"])
    with pytest.warns(UserWarning, match=said):
        edgeprune.export(wrapped, tmp_path / "out", latency=False)
    assert (tmp_path / "out" / "model.onnx").is_file()


def test_an_ultralytics_yolo_classifier_object_is_pruned_as_its_network():
    """``YOLO("yolov8n-cls.yaml")`` is an nn.Module whose ``train()`` starts Ultralytics' trainer: the default call
    crashed with a TypeError from it."""
    ultralytics = pytest.importorskip("ultralytics")
    from ultralytics.nn.tasks import ClassificationModel

    yolo = ultralytics.YOLO("yolov8n-cls.yaml")
    yolo.model = ClassificationModel("yolov8n-cls.yaml", ch=1, nc=10, verbose=False)  # as fine-tuned on the user's data
    with pytest.warns(UserWarning, match=r"a YOLO \(Ultralytics\) wrapper of ClassificationModel"):
        pruned = edgeprune.prune(yolo, data_lib.load("digits"), method="structured", finetune=0,
                                 criteria=["magnitude"], strategies=["balanced"], deploy_metrics=False)
    assert type(pruned.model).__name__ == "ClassificationModel" and pruned.record["params"] < pruned.dense["params"]
