"""round_to="auto" keeps widths that are multiples of ONNX Runtime's channel block under every budget kind (a MACs
budget that gave odd widths gave a model hardly faster than the input); a counted budget the block cannot reach
halves the block, and says so. The record and the sweep report say when the measured speed-up falls short of half
what the MAC reduction promises."""

import json
import warnings

import pytest
import torch

import edgeprune
from edgeprune import data as data_lib
from edgeprune import models
from edgeprune.errors import EdgepruneError
from edgeprune.export.ort_latency import channel_block
from edgeprune.measure.budget import parse
from edgeprune.methods import structured_mam
from edgeprune.methods.base import get_method
from edgeprune.runs.report import render
from edgeprune.runs.store import RunStore
from edgeprune.select.meter import speedup_warning

SIZE = 16


@pytest.fixture(scope="module")
def data():
    return data_lib.load(f"synthetic:classes=10,channels=3,size={SIZE},n=128,test=32")


def resnet20(**options):
    torch.manual_seed(0)
    return models.create("resnet20", num_classes=10, in_channels=3, image_size=SIZE, **options)


@pytest.mark.slow
def test_a_macs_budget_keeps_widths_that_are_multiples_of_the_block_and_fits(data):
    model = resnet20()
    pruned = edgeprune.prune(model, data, method="mix_and_match", granularity="channel", budget="macs<=50%",
                             finetune=0, criteria=["magnitude"], strategies=["balanced", "late_heavy"], calib_batches=1)
    block = channel_block()
    for record in pruned.candidates:
        assert record["decided"]["round_to"] == block, record["id"]
        widths = {n: w for n, w in record["decided"]["widths"].items() if n != "fc"}  # (the classifier keeps 10)
        assert all(w % block == 0 for w in widths.values()), widths
        assert record["macs"] <= 0.5 * pruned.dense["macs"], record["id"]
        assert record["macs"] > 0.3 * pruned.dense["macs"], record["id"]  # calibrated, not over-pruned
        promised = speedup_warning(record, pruned.dense["macs"])
        assert record.get("speedup_warning") == promised  # the rule, applied to the record's own measurements
    convs = [m for m in pruned.model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(c.out_channels % block == 0 for c in convs)
    assert sum(c.out_channels for c in convs) < sum(c.out_channels for c in model.modules() if isinstance(c, torch.nn.Conv2d))


@pytest.mark.parametrize("budget", ["latency<=50%", "latency<=2ms@executorch", "macs<=50%", "params<=50%",
                                    "size<=50%", 0.5])
def test_auto_rounds_to_the_block_under_every_budget_kind(budget):
    model = models.create("lenet5", num_classes=10, in_channels=1, image_size=8)
    options = get_method("mix_and_match", granularity="channel", criteria=["magnitude"]).options
    state = structured_mam.prepare(model, data_lib.load("digits"), torch.zeros(1, 1, 8, 8), options)
    value = parse(budget) if isinstance(budget, str) else budget
    assert structured_mam.rounding(state, value) == channel_block()


def test_a_counted_budget_the_block_cannot_reach_halves_the_block_and_says_so():
    torch.manual_seed(0)  # widths 8/16/32: with a block of 16 the 8- and 16-wide stages cannot shrink
    model = models.create("resnet20", num_classes=10, in_channels=1, image_size=8, width_mult=0.5)
    digits = data_lib.load("digits")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pruned = edgeprune.prune(model, digits, method="mix_and_match", granularity="channel", budget="params<=30%",
                                 finetune=0, criteria=["magnitude"], strategies=["balanced"], deploy_metrics=False,
                                 round_to="auto")
    finer = pruned.decided["round_to"]
    assert finer < channel_block() or channel_block() <= 8
    assert all(w % finer == 0 for n, w in pruned.decided["widths"].items() if n != "fc")
    assert pruned.record["params"] <= 0.3 * pruned.dense["params"]
    if finer < channel_block():
        assert any("params<=30%" in str(w.message) and f"multiples of {finer}" in str(w.message) for w in caught)


def test_a_latency_budget_the_block_cannot_reach_tries_finer_widths():
    """Under a latency budget too, widths in blocks of 16 that cannot reach it are halved down to odd widths (1) before
    the budget is refused: the refusal names no multiple, and the warning says how fine the widths went."""
    torch.manual_seed(0)
    model = models.create("resnet20", num_classes=10, in_channels=1, image_size=SIZE)
    data = data_lib.load(f"synthetic:classes=10,channels=1,size={SIZE},n=32,test=16")
    with warnings.catch_warnings(record=True) as caught, pytest.raises(EdgepruneError) as refused:
        warnings.simplefilter("always")
        edgeprune.prune(model, data, method="structured", budget="latency<=1%", drop_blocks=[2], finetune=0,
                        criteria=["magnitude"], strategies=["balanced"], deploy_metrics=False, latency_table=False)
    assert "budget latency<=1% cannot be met" in str(refused.value) and "multiples of" not in str(refused.value)
    if channel_block() > 1:
        assert any("latency<=1%" in str(w.message) and "multiples of 1," in str(w.message) for w in caught)


@pytest.mark.parametrize("measured,expected", [
    ({"macs": 49, "speedup_b1": 1.9, "speedup_b32": 1.06}, "MACs x0.49 but ONNX Runtime only 1.06x faster at batch 32"),
    ({"macs": 49, "speedup_b1": 0.98, "speedup_b32": 1.06},
     "MACs x0.49 but ONNX Runtime only 0.98x faster at batch 1 and 1.06x faster at batch 32"),
    ({"macs": 49, "speedup_b1": 1.6, "speedup_b32": 1.9}, None),  # 2.04x fewer MACs: more than 1.52x is enough
    ({"macs": 49, "speedup_b1": 1.53, "speedup_b32": 1.55}, None),
    ({"macs": 49}, None),  # not measured (deploy_metrics=False)
    ({"macs": 100, "speedup_b1": 0.9, "speedup_b32": 0.9}, None),  # no MACs saved, no speed-up promised
])
def test_the_speedup_warning_rule_on_records(measured, expected):
    assert speedup_warning(measured, 100) == expected


def test_the_report_says_when_the_speedup_falls_short(tmp_path):
    store = RunStore(tmp_path / "run").open({"method": "mix_and_match", "model": {"name": "resnet20"},
                                            "data": {"name": "synthetic"}, "budgets": ["macs<=50%"], "seeds": [0]})
    dense = {"kind": "dense", "id": "dense", "val_acc": 0.9, "params": 1000, "nonzeros": 1000, "macs": 100}
    store.append(dense)
    deploy = {"ort_latency_ms_b1": 1.0, "ort_latency_ms_b32": 20.0, "speedup_b1": 1.9, "speedup_b32": 1.06,
              "onnx_bytes": 4000, "onnx_bytes_int8": 1000}
    for name, b32 in (("slow", 1.06), ("fast", 1.9)):
        store.append({"kind": "candidate", "status": "ok", "id": f"mam-{name}", "method": "mix_and_match",
                      "budget": 0.5, "budget_name": "macs<=50%", "budget_text": "macs<=50%", "seed": 0,
                      "setting": {"strategy": name}, "val_acc": 0.8, "params": 500, "nonzeros": 500, "macs": 49,
                      **deploy, "speedup_b32": b32, "decided": {"deploy": {"dense": deploy}}})
    render(store.root)
    report = (store.root / "report.md").read_text()
    lines = [line for line in report.splitlines() if "only 1.06x faster at batch 32" in line]
    assert len(lines) == 1 and "strategy=slow" in lines[0], report
    assert "MACs x0.49" in lines[0]
    assert json.loads((store.root / "summary.json").read_text())  # the rest of the report still renders
