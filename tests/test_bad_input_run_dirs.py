"""The bad-input suite on run directories: `report`, `status`, `export` and `bench` given damaged records,
configs, plans and checkpoints, or a run a live sweep still writes: exit code 2, one line naming the file (and
line), no traceback, the folder byte for byte as it was."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from badinput import (
    build_assets,
    check_case,
    copy_run,
    flip,
    lines,
    live_lock,
    make_file,
    make_folder,
    rewrite_results,
    unsealed,
)

CASES: list[tuple[str, object, list[str]]] = []


@pytest.fixture(scope="session")
def assets(tmp_path_factory) -> dict:
    return build_assets(tmp_path_factory)


def report(change=None, *extra, cmd="report"):
    def build(assets, tmp):
        run = copy_run(assets, tmp)
        if change is not None:
            change(run)
        return [cmd, run, *extra], run
    return build


def _first_candidate_without(key):
    def change(run):
        rows = lines(run)
        rows = [unsealed({k: v for k, v in r.items() if k != key}) if r.get("kind") == "candidate" else r for r in rows]
        rewrite_results(run, rows)
    return change


def _tampered_value(run):
    rows = lines(run)
    i = next(i for i, r in enumerate(rows) if r.get("kind") == "candidate")
    rows[i]["val_acc"] = 0.999  # the seal still holds the old value
    rewrite_results(run, rows)


def _middle_line(text):
    def change(run):
        rows = (run / "results.jsonl").read_text().splitlines()
        rewrite_results(run, [rows[0], text, *rows[1:]])
    return change


def _middle_bytes(run):
    raw = (run / "results.jsonl").read_bytes().split(b"\n")
    (run / "results.jsonl").write_bytes(b"\n".join([raw[0], b"\xff\xfe\xfa garbage", *raw[1:]]))


DAMAGE = [  # (name, change of the run directory, words)
    ("line-kind-mam", _middle_line('{"kind": "mam"}'), ["line 2", "record"]),
    ("line-list", _middle_line("[1, 2, 3]"), ["line 2", "record"]),
    ("line-not-json", _middle_line("{not json"), ["line 2", "JSON"]),
    ("line-not-utf8", _middle_bytes, ["line 2"]),
    ("record-without-val-acc", _first_candidate_without("val_acc"), ["val_acc"]),
    ("record-without-budget", _first_candidate_without("budget"), ["budget"]),
    ("record-tampered", _tampered_value, ["hash"]),
    ("config-truncated", lambda r: (r / "config.json").write_text((r / "config.json").read_text()[:40]), ["config.json", "line"]),
    ("config-not-utf8", lambda r: (r / "config.json").write_bytes(os.urandom(64) + b"\xff"), ["config.json"]),
    ("config-a-list", lambda r: (r / "config.json").write_text("[1, 2]"), ["config.json", "list"]),
]
for _name, _change, _words in DAMAGE:
    CASES.append((f"report-{_name}", report(_change), _words))
CASES += [
    ("report-config-edited", report(lambda r: (r / "config.json").write_text(
        (r / "config.json").read_text().replace('"magnitude"', '"random"', 1))), ["config.json", "hash"]),
    ("report-config-method-not-a-string", report(lambda r: (r / "config.json").write_text(json.dumps(
        {**unsealed(json.loads((r / "config.json").read_text())), "method": ["x"]}))), ["method"]),
    ("report-checkpoint-outside-the-run", report(lambda r: rewrite_results(r, [
        {**unsealed(x), "checkpoint": "../../../etc/passwd"} if x.get("kind") == "candidate" else x for x in lines(r)])),
     ["../../../etc/passwd", "inside the run directory"]),
    ("report-live-sweep", report(live_lock), ["live search"]),
    ("report-missing-folder", lambda a, t: (["report", t / "nowhere"], t), ["nowhere"]),
    ("report-empty-folder", lambda a, t: (["report", t], t), ["config.json"]),
    ("report-a-file", lambda a, t: (["report", make_file(t)], t), ["file.txt"]),
]

for _name, _change, _words in DAMAGE[:4] + DAMAGE[7:]:
    CASES.append((f"status-{_name}", report(_change, cmd="status"), _words))
CASES += [
    ("status-plan-not-json", report(lambda r: (r / "plan.json").write_text("{oops"), cmd="status"), ["plan.json", "line 1"]),
    ("status-plan-kinds-a-list", report(lambda r: (r / "plan.json").write_text('{"kinds": [1]}'), cmd="status"), ["plan.json", "kinds"]),
    ("status-plan-ids-not-names", report(lambda r: (r / "plan.json").write_text('{"kinds": {"candidate": {"ids": [[1]]}}}'), cmd="status"), ["plan.json"]),
    ("status-plan-created-text", report(lambda r: (r / "plan.json").write_text('{"kinds": {}, "created": "monday"}'), cmd="status"), ["created"]),
    ("status-not-a-run", lambda a, t: (["status", t], t), ["config.json"]),
]


def export(change=None, *extra, candidate_id=None):
    def build(assets, tmp):
        run = copy_run(assets, tmp)
        if change is not None:
            change(run)
        args = ["--candidate", candidate_id] if candidate_id else []
        return ["export", run, "--out", tmp / "export", *args, *extra], tmp
    return build


def _export_file(make, *extra):
    def build(assets, tmp):
        return ["export", make(assets, tmp), "--out", tmp / "export", *extra], tmp
    return build


CASES += [
    ("export-live-sweep", export(live_lock), ["live search"]),
    ("export-damaged-chosen", export(lambda r: flip(r / "chosen.pt")), ["chosen.pt", "damaged"]),
    ("export-damaged-records", export(_middle_line("[1, 2, 3]")), ["line 2"]),
    ("export-unknown-candidate", export(candidate_id="nope"), ["nope"]),
    ("export-damaged-checkpoint", _export_file(lambda a, t: flip(Path(shutil.copy(a["ckpt"], t / "m.pt")))), ["m.pt", "damaged"]),
    ("export-text-file", _export_file(lambda a, t: make_file(t, "m.pt", b"hello")), ["m.pt"]),
    ("export-random-bytes", _export_file(lambda a, t: make_file(t, "m.pt", os.urandom(512))), ["m.pt"]),
    ("export-missing", _export_file(lambda a, t: t / "nope.pt"), ["nope.pt"]),
    ("export-bad-opset", _export_file(lambda a, t: a["ckpt"], "--opset", "5"), ["opset"]),
    ("export-bad-sparse", _export_file(lambda a, t: a["ckpt"], "--sparse", "int3"), ["int3"]),
    ("export-calib-0", _export_file(lambda a, t: a["ckpt"], "--calib-batches", "0"), ["calib-batches"]),
    ("export-dataset-mismatch", _export_file(lambda a, t: a["ckpt"], "--dataset", "synthetic:size=16,n=64"), ["classes"]),
]

def bench(*extra, key="ckpt"):
    def build(assets, tmp):
        return ["bench", Path(shutil.copy(assets[key], tmp / "m.pt")), "--runs", "1", "--warmup", "0", *extra], tmp
    return build


CASES += [
    ("bench-json-is-a-directory", lambda a, t: bench("--json", make_folder(t / "d"))(a, t), ["directory"]),
    ("bench-unknown-runtime", bench("--runtime", "tvm"), ["tvm"]),
    ("bench-batch-0", bench("--batch", "0"), ["batch"]),
    ("bench-damaged", lambda a, t: (["bench", flip(Path(shutil.copy(a["ckpt"], t / "m.pt")))], t), ["m.pt", "damaged"]),
    ("bench-live-sweep", lambda a, t: (["bench", live_lock(copy_run(a, t))], t), ["live search"]),
]


@pytest.mark.parametrize("name,build,words", CASES, ids=[c[0] for c in CASES])
def test_bad_input(name, build, words, assets, run_cli, tmp_path):
    check_case(name, build, words, assets, run_cli, tmp_path)
