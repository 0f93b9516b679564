import json

import pytest

from edgeprune.utils.io import append_jsonl, atomic_path, write_json


def test_failed_write_leaves_nothing_behind(tmp_path):
    target = tmp_path / "out" / "metrics.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert not target.exists()
    assert list((tmp_path / "out").iterdir()) == []


def test_write_json_and_append_jsonl(tmp_path):
    write_json(tmp_path / "a.json", {"x": 1})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1}
    append_jsonl(tmp_path / "r.jsonl", {"id": "a"})
    append_jsonl(tmp_path / "r.jsonl", {"id": "b"})
    assert [json.loads(line)["id"] for line in (tmp_path / "r.jsonl").read_text().splitlines()] == ["a", "b"]
