"""benchmarks/zoo_api.py's report: a stage over its CPU box is counted apart from a failure, and a stage that
passed only in a larger box says so."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import zoo_api  # noqa: E402


def test_slow_passes_and_time_boxes_are_reported_apart(monkeypatch):
    saved = {}
    monkeypatch.setattr(zoo_api, "save", lambda name, data, text: saved.update(data=data, text=text))
    rows = {
        "torchvision:densenet121": {"build": "ok", "stages": {
            "prune:structured": {"stage": "prune:structured", "status": "pass", "seconds": 301.4, "note": "", "box": 900.0}}},
        "torchvision:densenet201": {"build": "ok", "stages": {
            "prune:structured": {"stage": "prune:structured", "status": "fail", "seconds": 900.2,
                                 "note": "did not finish within 900 s of CPU time", "box": 900.0}}},
        "torchvision:resnet18": {"build": "ok", "stages": {
            "prune:structured": {"stage": "prune:structured", "status": "pass", "seconds": 27.5, "note": ""}}},
        "torchvision:densenet169": {"build": "ok", "stages": {  # a larger box, but within the default one
            "prune:structured": {"stage": "prune:structured", "status": "pass", "seconds": 192.0, "note": "", "box": 900.0}}},
    }
    zoo_api.report("t", rows, ("prune:structured",), 4)
    assert saved["data"]["counts"] == {"prune:structured": {"pass": 3, "timeout": 1}}
    assert "Passed only in a box larger than 240 s of CPU time: torchvision:densenet121 prune:structured (301 s of a " \
           "900 s box)." in saved["text"]
    assert "resnet18 prune:structured (" not in saved["text"] and "densenet169 prune:structured (" not in saved["text"]
