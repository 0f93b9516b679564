import json

import pytest

from edgeprune.errors import ConfigError
from edgeprune.runs import RunStore


def test_records_survive_and_a_torn_last_line_is_repaired(tmp_path):
    store = RunStore(tmp_path / "run").open({"model": "lenet5", "seed": 0})
    store.append({"id": "a", "val_acc": 0.9})
    store.append({"id": "b", "val_acc": 0.8})
    with open(store.results_path, "ab") as f:
        f.write(b'{"id": "c", "val_ac')  # killed mid-write
    with pytest.warns(UserWarning, match="corrupt last line"):
        assert [r["id"] for r in store.records()] == ["a", "b"]
    last = store.results_path.read_text().splitlines(keepends=True)[-1]
    assert last.startswith('{"id": "b", "val_acc": 0.8, "_sha256": ') and last.endswith("}\n")  # sealed record
    store.append({"id": "c", "val_acc": 0.7})
    assert store.finished_ids() == {"a", "b", "c"}


def test_last_record_without_newline_is_kept(tmp_path):
    store = RunStore(tmp_path).open({})
    store.results_path.write_text(json.dumps({"id": "a"}))
    assert store.finished_ids() == {"a"}
    store.append({"id": "b"})
    assert store.finished_ids() == {"a", "b"}


def test_a_corrupt_middle_line_is_an_error(tmp_path):
    store = RunStore(tmp_path).open({})
    store.results_path.write_text('{"id": "a"}\nnot json\n{"id": "b"}\n')
    with pytest.raises(ConfigError, match="line 2"):
        store.records()


def test_a_run_made_by_another_configuration_is_refused(tmp_path):
    RunStore(tmp_path / "run").open({"model": "lenet5", "epochs": 2})
    RunStore(tmp_path / "run").open({"model": "lenet5", "epochs": 2})  # same: fine
    with pytest.raises(ConfigError, match="epochs"):
        RunStore(tmp_path / "run").open({"model": "lenet5", "epochs": 3})
