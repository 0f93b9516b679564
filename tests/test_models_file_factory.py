"""A model from the user's own file, ``mynet.py:build``: created with options, saved, loaded from elsewhere."""

import pickle
import sys
import textwrap

import pytest
import torch

from edgeprune.models import create, list_models, load, save

MYNET = textwrap.dedent('''
    import torch
    from torch import nn


    class MyNet(nn.Module):
        """conv + BatchNorm stem, a residual block with a depthwise conv, a linear head."""

        def __init__(self, num_classes, in_channels, width):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU())
            self.depthwise = nn.Conv2d(width, width, 3, padding=1, groups=width, bias=False)
            self.bn = nn.BatchNorm2d(width)
            self.head = nn.Linear(width, num_classes)

        def forward(self, x):
            x = self.stem(x)
            x = torch.relu(x + self.bn(self.depthwise(x)))
            return self.head(x.mean(dim=(2, 3)))


    def build(num_classes=10, in_channels=3, width=8):
        return MyNet(num_classes, in_channels, width)
''')


def test_file_factory_create_save_load_elsewhere(tmp_path, monkeypatch):
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "mynet.py").write_text(MYNET)
    monkeypatch.chdir(folder)
    assert "<path/to/file.py>:<factory>" in list_models()

    torch.manual_seed(0)
    model = create("mynet.py:build", num_classes=5, in_channels=1, image_size=12, width=6)
    assert type(model).__name__ == "MyNet" and model.depthwise.groups == 6 and model.head.out_features == 5
    module = sys.modules[type(model).__module__]  # registered, so the class pickles by reference
    assert module.__file__ == str(folder / "mynet.py")
    assert type(pickle.loads(pickle.dumps(model))) is type(model)
    build = model.edgeprune_build
    assert build == {"spec": f"{folder / 'mynet.py'}:build", "num_classes": 5, "in_channels": 1, "image_size": 12,
                     "kwargs": {"width": 6}, "class": "MyNet", "module": type(model).__module__}

    model.train()
    model(torch.randn(8, 1, 12, 12))  # move BatchNorm running stats off their defaults
    model.eval()
    x = torch.randn(3, 1, 12, 12)
    with torch.no_grad():
        assert model(x).shape == (3, 5)
    path = save(model, tmp_path / "out" / "mynet.pt")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the relative spec would not resolve here; the saved absolute one does
    again = load(path)
    assert again is not model and type(again).__name__ == "MyNet" and not again.training
    assert again.edgeprune_build == build
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x))
    assert torch.equal(again.bn.running_var, model.bn.running_var)


def test_a_model_file_imports_its_sibling_modules(tmp_path, monkeypatch):
    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / "mynet_parts.py").write_text(MYNET)
    (folder / "train.py").write_text("from mynet_parts import build\n\n\ndef small():\n    return build(4, 1, 6)\n")
    monkeypatch.chdir(tmp_path)  # not the model's folder: `python repo/train.py` would still find its siblings
    monkeypatch.setattr(sys, "path", list(sys.path))
    model = create("repo/train.py:small", num_classes=4, in_channels=1, image_size=8)
    assert type(model).__name__ == "MyNet" and model.head.out_features == 4


def test_a_factory_that_returns_a_wrapper_builds_its_module(tmp_path, monkeypatch):
    """A factory returning a wrapper (``nn.DataParallel``, an Ultralytics ``YOLO`` object) builds, saves and rebuilds
    the module inside: the YOLO object's own train() crashed the CLI's default call."""
    (tmp_path / "wrapped.py").write_text(MYNET + "\n\ndef wrapped(num_classes=10, in_channels=1):\n"
                                         "    return torch.nn.DataParallel(build(num_classes, in_channels))\n")
    monkeypatch.setattr(sys, "path", list(sys.path))
    with pytest.warns(UserWarning, match="a DataParallel wrapper of MyNet"):
        model = create(f"{tmp_path / 'wrapped.py'}:wrapped", num_classes=4, in_channels=1, image_size=8)
    assert type(model).__name__ == "MyNet" and model.head.out_features == 4
