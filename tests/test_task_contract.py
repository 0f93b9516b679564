"""The task contract on a CI subset: segmentation and detection models (torchvision, smp, SegFormer, YOLO, the
zoo's and a user's own) through roles, masks, 30 % channels and ONNX parity under their task — each stage passes,
removes nothing and says why, or refuses in one line; none fails. And a user's own segmenter and regressor through
the public API (``edgeprune.prune(model, data, task=...)`` with each method's default options), as users call it.
benchmarks/zoo_tasks.py runs every model (``--stages prune:...`` for the public API)."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from byom.dense_tasks import TinyRegressor, TinySegNet
from edgeprune import models
from edgeprune.api_contract import API_STAGES, check_api

STAGES = ("roles", "mam50", "structured30", "onnx")
CASES = [  # (spec or factory, task, image size, needs)
    ("unet-tiny", "segmentation", 32, None),
    ("torchvision:lraspp_mobilenet_v3_large", "segmentation", 32, "torchvision"),
    ("torchvision:deeplabv3_mobilenet_v3_large", "segmentation", 32, "torchvision"),
    ("smp:unet-mobilenet_v2", "segmentation", 32, "segmentation_models_pytorch"),
    ("hf-config:segformer-b0", "segmentation", 32, "transformers"),
    (TinySegNet, "segmentation", 16, None),
    ("torchvision:ssdlite320_mobilenet_v3_large", "detection", 128, "torchvision"),
    ("yolo:yolov8n", "detection", 64, "ultralytics"),
    ("yolo:yolo11n", "detection", 64, "ultralytics"),
    (TinyRegressor, "regression", 16, None),
]


@pytest.mark.slow
@pytest.mark.parametrize("spec,task,size,needs", CASES, ids=[c[0] if isinstance(c[0], str) else c[0].__name__ for c in CASES])
def test_task_contract(spec, task, size, needs):
    if needs and importlib.util.find_spec(needs) is None:
        pytest.skip(f"{needs} is not installed")
    torch.manual_seed(0)
    model = (models.create(spec, num_classes=11, in_channels=1, image_size=size) if isinstance(spec, str) else spec()).eval()
    outcomes = check_api(model, torch.zeros(1, 1, size, size), STAGES, task=task)
    failed = [o.as_dict() for o in outcomes if o.status == "fail"]
    assert not failed, failed
    assert all("\n" not in o.note for o in outcomes)
    assert {o.stage: o.status for o in outcomes}["roles"] == "pass" and {o.stage: o.status for o in outcomes}["onnx"] == "pass"


@pytest.mark.slow
@pytest.mark.parametrize("factory,task,size", [(TinySegNet, "segmentation", 16), (TinyRegressor, "regression", 16)],
                         ids=["TinySegNet", "TinyRegressor"])
def test_task_contract_through_the_public_api(factory, task, size):
    torch.manual_seed(0)
    outcomes = check_api(factory().eval(), torch.zeros(1, 1, size, size), API_STAGES, task=task)
    report = "\n".join(f"{o.stage}: {o.status} {o.note}" for o in outcomes)
    assert {o.stage: o.status for o in outcomes} == {s: "n/a" if s == "prune:vbp" else "pass" for s in API_STAGES}, report
    assert all("\n" not in o.note for o in outcomes)
