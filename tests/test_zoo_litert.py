"""The contract's ``litert`` stage on three CI-subset models -- a torchvision CNN, a timm ViT, an HF config model --
converted to a batch-1 ``.tflite`` with parity in LiteRT's interpreter; not a default stage (tests/test_litert.py: the
refusal of an operator with no LiteRT lowering)."""

from __future__ import annotations

import re

import pytest
import torch

from edgeprune.runs.contract import EDGE_STAGES, STAGES, run_stage

pytest.importorskip("litert_torch")
zoo = pytest.importorskip("test_zoo_contract")  # the CI subset and how it is built (skips without tv/timm/hf)


def test_not_a_default_stage():
    assert "litert" in EDGE_STAGES and "litert" not in STAGES


@pytest.mark.slow
@pytest.mark.parametrize("case", ["torchvision:squeezenet1_1", "timm:vit_tiny_patch16_224", "hf-config:resnet"])
def test_converted_with_parity(case):
    outcome = run_stage("litert", zoo.build(case), torch.zeros(1, 3, zoo.SIZE, zoo.SIZE), timeout=120)
    assert outcome.status == "pass", outcome
    diff, scale = (float(v) for v in re.match(r"max diff (\S+) \(max \|logit\| (\S+)\)", outcome.note).groups())
    assert diff <= 1e-4 * max(1.0, scale) and scale > 1e-3  # parity on logits that are not all ~0
