"""Refusals of the ExecuTorch export: an operator that cannot be lowered is named in one line, and without
the [edge] extra the command says how to install it (exit 2); nothing is written."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from edgeprune import models
from edgeprune.errors import DependencyError, ModelError
from edgeprune.export import export_executorch
from helpers import assert_one_line_error, without_executorch

pytest.importorskip("executorch")


class Spectral(nn.Module):
    """svdvals has no Core ATen form: no XNNPACK or portable kernel can run it."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = x.flatten(1)[:, :16]
        return self.fc(x) + torch.linalg.svdvals(x.reshape(-1, 4, 4)).sum(-1, keepdim=True)


class Sorting(nn.Module):
    """sort is Core ATen, but XNNPACK does not take it and this runtime has no kernel for it."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        return torch.sort(self.fc(x.flatten(1)), dim=1).values


@pytest.mark.parametrize("model, op", [(Spectral(), "aten._linalg_svd"), (Sorting(), "aten::sort")])
def test_unsupported_operator_is_named(model, op, tmp_path):
    with pytest.raises(ModelError) as err:
        export_executorch(model, tmp_path / "m.pte", torch.randn(2, 1, 8, 8))
    message = str(err.value)
    assert op in message and "cannot be lowered to ExecuTorch" in message and "\n" not in message
    assert not list(tmp_path.iterdir())


def test_missing_extra_is_one_line(monkeypatch, tmp_path):
    with without_executorch(monkeypatch), pytest.raises(DependencyError, match=r"pip install 'edgeprune\[edge\]'"):
        export_executorch(nn.Linear(4, 2), tmp_path / "m.pte", torch.randn(2, 4))


@pytest.mark.slow
def test_cli_without_the_extra_exits_2(tmp_path):
    """The real command in a fresh interpreter where `import executorch` fails (a stub that raises)."""
    ckpt = models.save(models.create("lenet5", num_classes=10, in_channels=1, image_size=8), tmp_path / "m.pt")
    stub = tmp_path / "stub"
    stub.mkdir()
    (stub / "executorch.py").write_text("raise ImportError(\"No module named 'executorch'\")\n")
    code = ("import sys; sys.path.insert(0, sys.argv.pop(1)); from edgeprune.cli import main; "
            "sys.argv[0] = 'edgeprune'; main()")
    proc = subprocess.run([sys.executable, "-c", code, str(stub), "export", str(ckpt), "--out", str(tmp_path / "out"),
                           "--format", "executorch"], capture_output=True, text=True, timeout=300)
    assert_one_line_error(proc.returncode, proc.stderr, "pip install 'edgeprune[edge]'", "executorch")
    assert not (tmp_path / "out").exists()
