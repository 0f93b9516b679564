"""``edgeprune export RUN --model file.py:factory``: a run made from Python with the user's own class (its
checkpoints have no spec) is exported by rebuilding the chosen model on a fresh instance made by the factory,
with parity in ONNX Runtime; without ``--model`` the refusal names the flag."""

import importlib.util
import json

import numpy as np
import onnxruntime
import pytest
import torch

import edgeprune
from helpers import assert_one_line_error

USER_FILE = '''
from torch import nn


class UserNet(nn.Module):
    def __init__(self, num_classes=10, in_channels=1, width=8):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, width, 3, padding=1)
        self.fc1 = nn.Linear(width, 2 * width)
        self.fc2 = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        return self.fc2(self.fc1(self.conv(x).relu().mean((2, 3))).relu())


def build(num_classes=10, in_channels=1, width=8):
    return UserNet(num_classes, in_channels, width)


class Other(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        return self.fc(x.flatten(1))
'''


@pytest.fixture(scope="module")
def user_run(tmp_path_factory):
    """(the user's .py file, a run directory swept from Python on UserNet(width=6))."""
    root = tmp_path_factory.mktemp("byom")
    source = root / "usernet.py"
    source.write_text(USER_FILE)
    spec = importlib.util.spec_from_file_location("usernet", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    edgeprune.sweep(module.UserNet(width=6), "digits", budgets=[0.5], seeds=1, out=root / "run", finetune=0,
                    criteria=["magnitude"], strategies=["balanced"], baselines=[], progress=False)
    return source, root / "run", module


def test_export_rebuilds_the_users_class_with_parity(run_cli, user_run, tmp_path):
    source, run, module = user_run
    code, out, err = run_cli("export", run, "--model", f"{source}:build", "--arg", "width=6", "--out", tmp_path / "exp")
    assert code == 0, err
    record = json.loads((tmp_path / "exp" / "export.json").read_text())
    assert record["candidate"] == "chosen" and record["model"] == f"{source}:build"
    assert record["parity"]["max_abs_diff"] <= 1e-4 and "digits test split" in record["parity"]["inputs"]

    reference = edgeprune.load(run / "chosen.pt", model=module.UserNet(width=6))
    x = torch.randn(5, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    session = onnxruntime.InferenceSession(str(tmp_path / "exp" / "model.onnx"), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(logits, reference(x).numpy(), atol=1e-4)


def test_export_without_model_names_the_flag(run_cli, user_run, tmp_path):
    source, run, _ = user_run
    code, out, err = run_cli("export", run, "--out", tmp_path / "exp")
    line = assert_one_line_error(code, err, "UserNet", "--model", "file.py:factory")
    assert "model=" not in line  # Python advice does not help on the command line
    assert not (tmp_path / "exp").exists()


def test_export_with_a_factory_of_another_class_is_one_line(run_cli, user_run, tmp_path):
    source, run, _ = user_run
    code, out, err = run_cli("export", run, "--model", f"{source}:Other", "--out", tmp_path / "exp")
    assert_one_line_error(code, err, "chosen.pt", "UserNet", "Other")
    code, out, err = run_cli("export", run, "--arg", "width=6", "--out", tmp_path / "exp")
    assert_one_line_error(code, err, "--arg", "--model")
    assert not (tmp_path / "exp").exists()
