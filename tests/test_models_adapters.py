"""timm / torchvision are optional: a missing or crashing install is a DependencyError, never a crash."""

import importlib.abc
import sys
import types

import pytest
import torch
from torch import nn

from edgeprune.errors import ConfigError, DependencyError
from edgeprune.models import create
from edgeprune.models.adapters import adapt_first_conv


class _CrashingImport(importlib.abc.MetaPathFinder):
    """Simulates a binary install that raises at import (as torchvision does next to a CPU torch here)."""

    def __init__(self, name):
        self.name = name

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] == self.name:
            raise RuntimeError(f"{self.name}: operator torchvision::nms does not exist")
        return None


@pytest.mark.parametrize("library", ["timm", "torchvision"])
def test_missing_library(monkeypatch, library):
    monkeypatch.setitem(sys.modules, library, None)
    with pytest.raises(DependencyError, match=f"{library} is not installed/importable here.*zoo/hf model"):
        create(f"{library}:resnet18")


@pytest.mark.parametrize("library", ["timm", "torchvision"])
def test_library_that_crashes_at_import(monkeypatch, library):
    for name in [m for m in sys.modules if m.split(".")[0] == library]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_CrashingImport(library), *sys.meta_path])
    with pytest.raises(DependencyError, match="RuntimeError"):
        create(f"{library}:resnet18")


def test_timm_adapter_passes_classes_and_channels(monkeypatch):
    calls = {}

    def create_model(name, **kwargs):
        calls.update(kwargs, name=name)
        if name != "tiny":
            raise RuntimeError(f"Unknown model ({name})")
        return nn.Sequential(nn.Conv2d(kwargs["in_chans"], 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(4, kwargs["num_classes"]))

    monkeypatch.setitem(sys.modules, "timm", types.SimpleNamespace(create_model=create_model))
    model = create("timm:tiny", num_classes=5, in_channels=1, image_size=8)
    assert calls == {"name": "tiny", "num_classes": 5, "in_chans": 1, "pretrained": False}
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 5)
    assert model.edgeprune_build["spec"] == "timm:tiny"
    with pytest.raises(ConfigError, match="'nope'"):
        create("timm:nope")


def test_first_conv_adapts_to_grey_input():
    rgb = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3))
    grey = adapt_first_conv(nn.Sequential(*[m for m in rgb]), 1)
    x = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(grey(x), rgb(x.expand(-1, 3, -1, -1)))


def test_real_libraries_when_importable():
    built = 0
    for library, spec in (("timm", "timm:resnet18"), ("torchvision", "torchvision:resnet18")):
        try:
            __import__(library)
        except Exception:  # noqa: BLE001
            continue
        model = create(spec, num_classes=4, in_channels=1, image_size=32).eval()
        assert model(torch.randn(1, 1, 32, 32)).shape == (1, 4)
        built += 1
    if not built:
        pytest.skip("neither timm nor torchvision is importable here")
