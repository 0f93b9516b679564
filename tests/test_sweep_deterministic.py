"""The same sweep with the same seed gives identical records: twice in one process over the SAME user
DataLoaders (whose shuffling generator the first run advanced), Mix-and-Match, baselines and gradual."""

from __future__ import annotations

import edgeprune
from byom.userdata import loaders, trained_model

VOLATILE = {"seconds"}  # wall-clock time is the only field allowed to differ


def _records(model, data, out):
    result = edgeprune.sweep(model, data, method="mix_and_match", budgets=[0.6], seeds=[3], out=out,
                             finetune={"epochs": 2, "max_batches": 3}, schedule="gradual", progress=False,
                             criteria=["gradient"], strategies=["balanced"], calib_batches=2,
                             range_rules={"small_numel": 0}, baselines=["random"])
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in result.records]


def test_two_identical_runs_give_identical_records(tmp_path):
    model, data = trained_model(), loaders()
    first = _records(model, data, tmp_path / "a")
    second = _records(model, data, tmp_path / "b")
    assert len(first) == 3  # dense, one strategy, one baseline
    assert first == second
    assert all(r["status"] == "ok" for r in first)
