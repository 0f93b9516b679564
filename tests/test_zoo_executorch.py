"""The contract's ``executorch`` stage (issue 16) on three CI-subset models -- a torchvision CNN, a timm ViT, an
HF config model -- exported with parity; a model with an op nothing can run is refused in one line naming it;
a parity mismatch is a failure, not a refusal; without the [edge] extra the stage does not apply.
benchmarks/edge_zoo.py --stage executorch runs the stage on the whole subset."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from edgeprune.errors import DependencyError, ModelError
from edgeprune.export import executorch as et_lib
from edgeprune.runs.contract import EDGE_STAGES, STAGES, run_stage

pytest.importorskip("executorch")
zoo = pytest.importorskip("test_zoo_contract")  # the CI subset and how it is built (skips without tv/timm/hf)


def test_not_a_default_stage():
    assert "executorch" in EDGE_STAGES and "executorch" not in STAGES


@pytest.mark.slow
@pytest.mark.parametrize("case", ["torchvision:squeezenet1_1", "timm:vit_tiny_patch16_224", "hf-config:resnet"])
def test_exported_with_parity(case):
    model = zoo.build(case)
    outcome = run_stage("executorch", model, torch.zeros(1, 3, zoo.SIZE, zoo.SIZE), timeout=120)
    assert outcome.status == "pass", outcome
    assert outcome.note.startswith("max diff ") and "ops outside the delegate" in outcome.note
    diff, scale = (float(v) for v in re.match(r"max diff (\S+) \(max \|logit\| (\S+)\)", outcome.note).groups())
    assert diff <= 1e-4 * max(1.0, scale) and scale > 1e-3  # parity on logits that are not all ~0


class Spectral(nn.Module):
    """svdvals has no Core ATen form: no XNNPACK or portable kernel can run it."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        x = self.conv(x).mean(1).flatten(1)[:, :16]
        return self.fc(x) + torch.linalg.svdvals(x.reshape(-1, 4, 4)).sum(-1, keepdim=True)


def test_unlowerable_op_is_refused_in_one_line():
    outcome = run_stage("executorch", Spectral(), torch.zeros(1, 3, 8, 8))
    assert outcome.status == "refused", outcome
    assert "\n" not in outcome.note and "aten._linalg_svd" in outcome.note
    assert "cannot be lowered to ExecuTorch" in outcome.note


def test_parity_mismatch_is_a_failure(monkeypatch):
    def mismatch(model, path, inputs, **kwargs):
        raise ModelError("ExecuTorch export of 'Linear' does not match PyTorch: max abs logit difference 0.3 > "
                         "tolerance 0.0001")

    monkeypatch.setattr(et_lib, "export_executorch", mismatch)
    outcome = run_stage("executorch", nn.Sequential(nn.Flatten(), nn.Linear(12, 5)), torch.zeros(1, 3, 2, 2))
    assert outcome.status == "fail" and "does not match PyTorch" in outcome.note


def test_without_the_extra_not_applicable(monkeypatch):
    def missing():
        raise DependencyError(f"ExecuTorch export needs the executorch package; {et_lib.INSTALL_HINT}")

    monkeypatch.setattr(et_lib, "executorch", missing)
    outcome = run_stage("executorch", nn.Sequential(nn.Flatten(), nn.Linear(12, 5)), torch.zeros(1, 3, 2, 2))
    assert outcome.status == "n/a" and "pip install 'edgeprune[edge]'" in outcome.note
