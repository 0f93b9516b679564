"""The contract's ``openvino`` and ``litert`` stages on three CI-subset models -- a torchvision CNN, a timm ViT, an HF
config model -- converted with parity in the runtime itself (OpenVINO from the ONNX export; LiteRT a batch-1
``.tflite``); not default stages (tests/test_openvino.py and tests/test_litert.py: the refusal of an operator the
runtime cannot convert)."""

from __future__ import annotations

import importlib.util
import re

import pytest
import torch

from edgeprune.runs.contract import EDGE_STAGES, STAGES, run_stage

zoo = pytest.importorskip("test_zoo_contract")  # the CI subset and how it is built (skips without tv/timm/hf)
PACKAGES = {"openvino": "openvino", "litert": "litert_torch"}
RUNTIMES = [pytest.param(stage, marks=pytest.mark.skipif(importlib.util.find_spec(package) is None,
                                                         reason=f"{package} is not installed"))
            for stage, package in PACKAGES.items()]


@pytest.mark.parametrize("stage", RUNTIMES)
def test_not_a_default_stage(stage):
    assert stage in EDGE_STAGES and stage not in STAGES


@pytest.mark.slow
@pytest.mark.parametrize("stage", RUNTIMES)
@pytest.mark.parametrize("case", ["torchvision:squeezenet1_1", "timm:vit_tiny_patch16_224", "hf-config:resnet"])
def test_converted_with_parity(stage, case):
    outcome = run_stage(stage, zoo.build(case), torch.zeros(1, 3, zoo.SIZE, zoo.SIZE), timeout=120)
    assert outcome.status == "pass", outcome
    diff, scale = (float(v) for v in re.match(r"max diff (\S+) \(max \|logit\| (\S+)\)", outcome.note).groups())
    assert diff <= 1e-4 * max(1.0, scale) and scale > 1e-3  # parity on logits that are not all ~0
