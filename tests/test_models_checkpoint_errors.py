"""Bad checkpoint files give one-line CheckpointErrors saying what was found; nothing unsafe is loaded."""

import pickle

import pytest
import torch

from edgeprune.errors import CheckpointError
from edgeprune.models import create, load, load_meta, save


class Payload:
    """A custom class: unpickling it would run code, so weights_only loading must refuse it."""

    def __reduce__(self):
        return (print, ("pwned",))


def _error(path) -> str:
    with pytest.raises(CheckpointError) as info:
        load(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_file(tmp_path):
    assert "does not exist" in _error(tmp_path / "nope.pt")
    assert "directory" in _error(tmp_path)


def test_text_file(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("hello world\nsecond line\n")
    message = _error(path)
    assert "not a torch checkpoint" in message and "'hello world'" in message


def test_plain_pickle(tmp_path):
    path = tmp_path / "plain.pt"
    path.write_bytes(pickle.dumps({"a": 1}))
    assert "plain Python pickle" in _error(path)


def test_pickled_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "x": Payload()}, path)
    message = _error(path)
    assert "pickled code (print)" in message
    assert "pwned" not in capsys.readouterr().out


def test_torch_file_that_is_not_an_edgeprune_checkpoint(tmp_path):
    path = tmp_path / "sd.pt"
    torch.save(create("lenet300").state_dict(), path)
    message = _error(path)
    assert "not an edgeprune checkpoint" in message and "features.1.weight" in message
    with pytest.raises(CheckpointError):
        load_meta(path)


def test_weights_of_another_model(tmp_path):
    path = save(create("lenet5", in_channels=1, image_size=8), tmp_path / "m.pt")
    raw = torch.load(path, weights_only=True)
    raw["build"]["spec"] = "resnet20"
    torch.save(raw, path)
    message = _error(path)
    assert "'resnet20'" in message and "missing (" in message and "unexpected (" in message
    assert "features.0.weight" in message


def test_save_refuses_a_spec_that_cannot_load_back(tmp_path):
    with pytest.raises(CheckpointError) as info:
        save(create("lenet5", in_channels=1, image_size=8), tmp_path / "m.pt", spec="resnet20")
    message = str(info.value)
    assert "\n" not in message and "spec='resnet20'" in message and "LeNet5" in message
    assert "missing (" in message and "features.0.weight" in message and "model=" in message
    assert not (tmp_path / "m.pt").exists()


def test_tampered_shapes(tmp_path):
    path = save(create("lenet300", in_channels=1, image_size=8), tmp_path / "m.pt")
    raw = torch.load(path, weights_only=True)
    raw["state_dict"]["features.1.weight"] = torch.zeros(300, 10)
    raw["structure"].pop("features.1")
    torch.save(raw, path)
    assert "shape mismatch (1): features.1.weight (300, 10) vs (300, 64)" in _error(path)


def test_newer_version(tmp_path):
    path = save(create("lenet300"), tmp_path / "m.pt")
    raw = torch.load(path, weights_only=True)
    raw["version"] = 99
    torch.save(raw, path)
    assert "version 99" in _error(path)
