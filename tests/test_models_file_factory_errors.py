"""Every way a ``file.py:factory`` spec can fail is one line of the right error class naming the value."""

import pytest

from edgeprune.errors import ConfigError, EdgepruneError, ModelError
from edgeprune.models import create

GOOD = '''
from torch import nn


def build(num_classes=10, width=8):
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(width), nn.ReLU(), nn.Linear(width, num_classes))


class Net(nn.Module):
    pass


def broken():
    raise ValueError("width must be even\\nsecond line")


def not_a_module(num_classes):
    return {"num_classes": num_classes}


LAYERS = 3
'''


def _fails(error, spec, *needles, **kwargs) -> str:
    with pytest.raises(error) as info:
        create(spec, **kwargs)
    message = str(info.value)
    assert "\n" not in message and isinstance(info.value, EdgepruneError)
    for needle in needles:
        assert needle in message, (needle, message)
    return message


@pytest.fixture
def good(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "good.py").write_text(GOOD)
    return tmp_path


def test_missing_file_and_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _fails(ConfigError, "nope.py:build", "'nope.py'", "does not exist")
    (tmp_path / "pkg.py").mkdir()
    _fails(ConfigError, "pkg.py:build", "'pkg.py'", "is a directory")


def test_spec_without_factory_name(good):
    _fails(ConfigError, "good.py", "'good.py'", "no factory", "<path/to/file.py>:<factory>")
    _fails(ConfigError, "good.py:", "factory name", "'good.py:'")


def test_file_that_fails_to_import(good):
    (good / "syntax.py").write_text("x = 1\ndef build(:\n    pass\n")
    message = _fails(ModelError, "syntax.py:build", "model file 'syntax.py' failed to import: SyntaxError:")
    assert message.endswith("(line 2)")
    (good / "deps.py").write_text("import os\nimport edgeprune_no_such_module\n")
    _fails(ModelError, "deps.py:build", "ModuleNotFoundError", "edgeprune_no_such_module", "(line 2)")
    (good / "raises.py").write_text("raise RuntimeError('boom')\n")
    _fails(ModelError, "raises.py:build", "'raises.py'", "RuntimeError: boom", "(line 1)")


def test_missing_factory_lists_the_callables(good):
    message = _fails(ConfigError, "good.py:make", "no factory 'make'", "'good.py'")
    assert "Net, broken, build, not_a_module" in message and "LAYERS" not in message and "nn" not in message


def test_factory_not_callable(good):
    _fails(ConfigError, "good.py:LAYERS", "'LAYERS'", "is a int, not a callable", "build")


def test_factory_raises(good):
    message = _fails(ModelError, "good.py:broken", "factory 'good.py:broken' failed: ValueError: width must be even")
    assert "second line" not in message and message.endswith("(line 14)")


def test_unknown_and_missing_keyword(good):
    _fails(ConfigError, "good.py:build", "unknown option 'depth'", "'good.py:build'", "allowed: width", depth=3)
    (good / "needs.py").write_text("def build(width):\n    return width\n")
    _fails(ConfigError, "needs.py:build", "'needs.py:build'", "missing a required argument: 'width'", "--arg")


def test_factory_returns_something_else(good):
    _fails(ModelError, "good.py:not_a_module", "factory 'good.py:not_a_module' returned a dict, not a torch.nn.Module")
    (good / "none.py").write_text("def build():\n    return None\n")
    _fails(ModelError, "none.py:build", "returned a NoneType")
