from pathlib import Path

import pytest

from edgeprune.data import list_datasets, load, resolve_root
from edgeprune.errors import ConfigError


def test_unknown_spec_names_it_and_lists_known():
    with pytest.raises(ConfigError) as err:
        load("imagenet-21k")
    message = str(err.value)
    assert "'imagenet-21k'" in message and all(n in message for n in ("digits", "mnist", "cifar10", "synthetic"))
    with pytest.raises(ConfigError, match="takes no ':argument'"):
        load("digits:big")


def test_list_datasets_has_one_line_descriptions():
    table = list_datasets()
    assert {"digits", "mnist", "cifar10", "cifar100", "imagefolder", "synthetic"} <= set(table)
    assert all(isinstance(d, str) and d and "\n" not in d for d in table.values())


def test_resolve_root_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("EDGEPRUNE_DATA", raising=False)
    assert resolve_root(None) == Path("data")
    monkeypatch.setenv("EDGEPRUNE_DATA", str(tmp_path))
    assert resolve_root(None) == tmp_path
    assert resolve_root(tmp_path / "x") == tmp_path / "x"


def test_splits_describe_is_json_ready():
    import json

    info = load("synthetic:n=40,size=8,classes=2", seed=4).describe()
    assert json.loads(json.dumps(info))["seed"] == 4 and info["train"] + info["val"] == 40
