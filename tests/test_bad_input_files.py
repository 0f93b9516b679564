"""Damaged files and operating-system refusals: the one checked reader (JSON / JSONL / YAML), content hashes
of checkpoints and run records, OS errors at the CLI boundary; hypothesis feeds the readers random bytes."""

from __future__ import annotations

import errno
import json
import shutil
import warnings

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeprune import models
from edgeprune.cli import main
from edgeprune.data import checksum
from edgeprune.errors import CheckpointError, ConfigError, DamagedFileError
from edgeprune.models.checkpoint import content_hash
from edgeprune.runs.store import RunStore
from edgeprune.utils.io import SEAL, append_jsonl, read_json, read_jsonl, read_yaml, seal, write_json
from helpers import assert_one_line_error

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# -- the checked reader ----------------------------------------------------------------------------------

def test_json_damage_names_file_and_line(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{\n  "a": 1,\n  "b": \n}')
    with pytest.raises(DamagedFileError, match=r"config.json.*line 4"):
        read_json(path, "run config")
    path.write_bytes(b'{"a": 1,\n"b": "\xff"}')
    with pytest.raises(DamagedFileError, match=r"line 2 is not UTF-8"):
        read_json(path)
    path.write_text("[1, 2]")
    with pytest.raises(DamagedFileError, match="list"):
        read_json(path)
    with pytest.raises(ConfigError, match="directory"):
        read_json(tmp_path)


def test_yaml_damage_names_file_and_line(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("model: lenet5\nseeds: [1, 2\n")
    with pytest.raises(DamagedFileError, match=r"recipe.yaml.*line 3"):
        read_yaml(path)
    path.write_bytes(b"model: lenet5\n\x89PNG\x00\xff\n")
    with pytest.raises(DamagedFileError, match="line 2 is not UTF-8"):
        read_yaml(path)
    path.write_text("- a\n- b\n")
    with pytest.raises(DamagedFileError, match="mapping"):
        read_yaml(path)
    path.write_text("!!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(DamagedFileError):
        read_yaml(path)
    path.write_text("")
    assert read_yaml(path) == {}


def test_sealed_records_detect_a_changed_byte_and_legacy_records_load(tmp_path):
    path = tmp_path / "results.jsonl"
    append_jsonl(path, {"id": "dense", "val_acc": 0.9})
    append_jsonl(path, {"id": "c1", "val_acc": 0.8, "setting": {"k": [1, 2]}})
    assert read_jsonl(path) == [{"id": "dense", "val_acc": 0.9}, {"id": "c1", "val_acc": 0.8, "setting": {"k": [1, 2]}}]
    path.write_text(path.read_text().replace("0.8", "0.9"))
    with pytest.raises(DamagedFileError, match="line 2.*hash"):
        read_jsonl(path)
    path.write_text('{"id": "old", "val_acc": 0.5}\n')  # written before seals: accepted as it is
    assert read_jsonl(path, key="id") == [{"id": "old", "val_acc": 0.5}]
    path.write_text('{"kind": "mam"}\n{"id": "x"}\n')
    with pytest.raises(DamagedFileError, match="line 1 is not a record"):
        read_jsonl(path, key="id")


def test_sealed_config_round_trips_and_refuses_an_edit(tmp_path):
    store = RunStore(tmp_path / "run").open({"format": "x", "budgets": [0.5]})
    assert store.config()["budgets"] == [0.5]
    RunStore(tmp_path / "run").open({"format": "x", "budgets": [0.5]})  # same: reopens
    text = store.config_path.read_text().replace("0.5", "0.6")
    store.config_path.write_text(text)
    with pytest.raises(DamagedFileError, match="config.json.*hash"):
        store.config()
    assert seal({"a": (1, 2)}) == seal({"a": [1, 2]})


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_are_data_or_one_line(tmp_path, blob):
    for name, read in (("f.json", read_json), ("f.yaml", read_yaml), ("f.jsonl", lambda p: read_jsonl(p, repair=False))):
        path = tmp_path / name
        path.write_bytes(blob)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a torn last JSONL line is dropped with a warning
            try:
                read(path)
            except ConfigError as exc:
                assert "\n" not in str(exc) and "f." in str(exc)


@FUZZ
@given(st.dictionaries(st.text(max_size=8).filter(lambda key: key != SEAL), st.recursive(  # the seal's key is reserved
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8),
    max_size=5))
def test_any_record_round_trips_through_its_seal(tmp_path, record):
    path = tmp_path / "r.json"
    write_json(path, record, sealed=True)
    assert read_json(path) == json.loads(json.dumps(record))


# -- checkpoints: a content hash checked on load ---------------------------------------------------------

def test_flipped_bytes_in_a_checkpoint_are_refused(tmp_path):
    path = models.save(models.create("lenet300", num_classes=10, in_channels=1, image_size=8), tmp_path / "m.pt")
    raw = bytearray(path.read_bytes())
    weights = raw.find(b"data/0") + 4096  # inside the first tensor's bytes
    for i in range(200):
        raw[weights + i] ^= 0xFF
    bad = tmp_path / "bad.pt"
    bad.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="bad.pt.*damaged"):
        models.load(bad)
    with pytest.raises(CheckpointError, match="bad.pt"):
        models.load_meta(bad)


def test_a_checkpoint_without_a_hash_loads_with_a_warning(tmp_path):
    path = models.save(models.create("lenet300", num_classes=10, in_channels=1, image_size=8), tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    assert payload["sha256"] == content_hash(payload)
    del payload["sha256"]
    torch.save(payload, tmp_path / "old.pt")
    with pytest.warns(UserWarning, match="no content hash"):
        models.load(tmp_path / "old.pt")


# -- OS errors at the CLI boundary -----------------------------------------------------------------------

def test_a_data_file_that_is_a_directory_is_one_line(fake_mnist, run_cli, tmp_path):
    victim = next((fake_mnist / "mnist").glob("train-images*"))
    victim.unlink()
    victim.mkdir()
    code, _, err = run_cli("train", "--model", "lenet300", "--dataset", "mnist", "--data-dir", fake_mnist,
                           "--epochs", "1", "-q", "--out", tmp_path / "out")
    assert_one_line_error(code, err, victim.name)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_permission_denied_and_disk_full_are_one_line(fake_mnist, run_cli, monkeypatch, tmp_path):
    def denied(path, *a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(checksum, "open", denied, raising=False)
    code, _, err = run_cli("train", "--model", "lenet300", "--dataset", "mnist", "--data-dir", fake_mnist, "-q",
                           "--out", tmp_path / "out")
    assert_one_line_error(code, err, "Permission denied", "mnist")

    def full(path, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checksum, "open", full, raising=False)
    code, _, err = run_cli("train", "--model", "lenet300", "--dataset", "mnist", "--data-dir", fake_mnist, "-q",
                           "--out", tmp_path / "out")
    assert_one_line_error(code, err, "No space left")


def test_an_os_error_without_a_file_is_a_bug_and_keeps_its_traceback(fake_mnist, monkeypatch, tmp_path):
    def bug(path, *a, **k):
        raise OSError("something internal")

    monkeypatch.setattr(checksum, "open", bug, raising=False)
    with pytest.raises(OSError, match="something internal"):
        main(["train", "--model", "lenet300", "--dataset", "mnist", "--data-dir", str(fake_mnist), "-q",
              "--out", str(tmp_path / "out")])


def test_bench_json_into_a_directory_is_refused_before_it_is_replaced(tmp_path, run_cli):
    path = models.save(models.create("lenet300", num_classes=10, in_channels=1, image_size=8), tmp_path / "m.pt")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    code, _, err = run_cli("bench", path, "--runs", "1", "--warmup", "0", "--batch", "1", "--json", tmp_path / "out")
    assert_one_line_error(code, err, "directory")
    assert (tmp_path / "out" / "keep.txt").read_text() == "x"
    shutil.rmtree(tmp_path / "out")
