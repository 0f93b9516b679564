"""Latency tables (issue 29): every layer timed on a device at a few widths, an additive model fitted to whole-model
timings, widths predicted without surgery, cached in a sealed file, and used by calibration to propose."""

import json
import shutil
import subprocess
import sys

import pytest
import torch
import torchvision

import edgeprune
import edgeprune.methods.catalog  # noqa: F401  (fills the method registry)
from edgeprune import data as data_lib
from edgeprune import models, strategies
from edgeprune.devices import CommandDevice, HostDevice, runner
from edgeprune.errors import ConfigError
from edgeprune.measure.budget import parse
from edgeprune.methods import structured_mam
from edgeprune.methods.base import get_method
from edgeprune.select import latency_table
from edgeprune.surgery.structure import fractions_from_params


def state_of(model, example, **options):
    options = get_method("structured", criteria=["magnitude"], deploy_metrics=False, **options).options
    return structured_mam.prepare(model, None, example, options)


@pytest.mark.parametrize("build", [
    lambda: (models.create("resnet20", num_classes=10, in_channels=1, image_size=16), torch.randn(2, 1, 16, 16)),
    lambda: (torchvision.models.mobilenet_v3_small(num_classes=10), torch.randn(2, 3, 32, 32)),
    lambda: (models.create("vit", num_classes=10, in_channels=1, image_size=16), torch.randn(2, 1, 16, 16)),
], ids=["resnet20", "mobilenet_v3_small", "vit"])
def test_predicted_widths_are_the_widths_surgery_gives(build):
    model, example = build()
    state = state_of(model.eval(), example)
    split = structured_mam._split_model(state)
    ops = latency_table.census(split, example)
    budget = parse("latency<=50%")
    for name in strategies.names_for(state.roles)[:4]:
        for shift in (-0.4, 0.3, 1.0):
            vector = structured_mam._shifted(strategies.build(name, state.ranges, state.roles), state.ranges, shift)
            small, _ = structured_mam.pruned_copy(state, state.model, vector, budget)
            predicted = latency_table.predicted_widths(ops, state.structure, fractions_from_params(vector),
                                                       structured_mam.rounding(state, budget), split)
            assert predicted == latency_table.widths_of(small, example), (name, shift)


class CountingHost(HostDevice):
    calls = 0

    def time(self, *args, **kwargs):
        CountingHost.calls += 1
        return super().time(*args, **kwargs)


def test_a_table_on_the_host_predicts_held_out_candidates_and_is_cached(tmp_path):
    model = models.create("resnet20", num_classes=10, in_channels=1, image_size=16).eval()
    example = torch.randn(2, 1, 16, 16)
    state = state_of(model, example)
    budget = parse("latency<=50%")
    candidates = lambda: structured_mam._table_candidates(state, budget)  # noqa: E731
    device = CountingHost()
    table = latency_table.cached(structured_mam._split_model(state), example, device, state.structure, candidates)
    assert CountingHost.calls == 2  # one call for every one-layer file, one for the whole models
    assert table.k > 0 and table.c0 >= 0
    assert table.error["fitted_on"] == 7 and len(table.error["held_out"]) == 6
    assert all(p > 0 and m > 0 for m, p in table.error["held_out"])
    dense = latency_table.widths_of(structured_mam._split_model(state), example)
    halved = {n: (max(1, i // 2) if n != "conv1" else i, max(1, o // 2) if n != "fc" else o) for n, (i, o) in dense.items()}
    assert table.predict(halved) < table.predict(dense)
    again = latency_table.cached(structured_mam._split_model(state), example, device, state.structure, candidates)
    assert CountingHost.calls == 2 and again == table  # read from the cache: nothing timed
    assert latency_table.cache_path(table.key).exists()
    latency_table.cached(structured_mam._split_model(state), example, device, state.structure, candidates, rebuild=True)
    assert CountingHost.calls == 4  # timed again, and cached again


def test_a_tampered_table_is_refused_in_one_line(tmp_path):
    table = latency_table.LatencyTable("k", {"name": "host"}, 1, {"fc": {"calls": 1, "cin": [8], "cout": [10],
                                                                         "ms": [[0.01]], "depthwise": False}})
    path = table.save(tmp_path / "t.json")
    assert latency_table.LatencyTable.load(path) == table
    text = json.loads(path.read_text())
    text["c0"] = 5.0
    path.write_text(json.dumps(text))
    with pytest.raises(ConfigError) as err:
        latency_table.LatencyTable.load(path)
    assert "\n" not in str(err.value)


def test_one_layer_files_are_timed_at_their_own_shape_by_the_runner_and_a_command(tmp_path):
    op = latency_table.Op("Conv", 8, 16, 1, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), (12, 12), True)
    latency_table._onnx_file(op, 2, tmp_path / "conv.onnx")
    latency_table._onnx_file(op.at(8, 8), 2, tmp_path / "half.onnx")
    done = subprocess.run([sys.executable, runner.__file__, "--rounds", "3", "--warmup", "1",
                           str(tmp_path / "conv.onnx"), str(tmp_path / "half.onnx")], capture_output=True, text=True)
    out = json.loads(done.stdout)
    assert done.returncode == 0 and [len(t) for t in out["times_ms"]] == [3, 3]
    device = CommandDevice("{python} {runner} --shape {shape} --batch {batch} --rounds 2 {model}", rounds=1)
    times = device.time([tmp_path / "conv.onnx"], None)
    assert len(times) == 1 and times[0][0] > 0
    every = CommandDevice("{python} {runner} --shape {shape} --rounds {rounds} --warmup {warmup} {models}")
    times = every.time([tmp_path / "conv.onnx", tmp_path / "half.onnx"], None, rounds=4, warmup=1)
    assert [len(t) for t in times] == [4, 4]  # one process timed both files in turn


def test_a_command_needs_exactly_one_of_model_and_models():
    with pytest.raises(ConfigError, match="one of them"):
        CommandDevice("{runner} {model} {models}")
    with pytest.raises(ConfigError, match="one of them"):
        CommandDevice("{runner} --shape {shape}")


@pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset (util-linux) is not installed")
def test_a_table_on_a_device_pinned_to_one_core():
    model = models.create("resnet20", num_classes=10, in_channels=1, image_size=8).eval()
    example = torch.randn(2, 1, 8, 8)
    state = state_of(model, example)
    pinned = CommandDevice("taskset -c 0 {python} {runner} --shape {shape} --batch {batch} --rounds {rounds} "
                           "--warmup {warmup} {models}", name="pinned")
    table = latency_table.build(structured_mam._split_model(state), example, pinned, state.structure,
                                structured_mam._table_candidates(state, parse("latency<=50%")))
    assert table.device["name"] == "pinned" and table.reference_ms > 0 and len(table.error["held_out"]) == 6


def test_a_latency_budget_through_the_public_api_is_met_with_a_table():
    digits = data_lib.load("digits")
    model = models.create("resnet20", num_classes=10, in_channels=1, image_size=8)
    pruned = edgeprune.prune(model, digits, method="mix_and_match", granularity="channel", budget="latency<=80%",
                             finetune=0, criteria=["magnitude"], strategies=["balanced", "late_heavy"],
                             deploy_metrics=False)
    for record in pruned.candidates:
        decided = record["decided"]
        assert record["budget_achieved"] == decided["measured"] <= decided["limit"]  # confirmed by a timing
        assert decided["latency_table"]["device"] == "host" and decided["latency_table"]["median_abs_pct"] >= 0
    assert latency_table.cache_path(pruned.candidates[0]["decided"]["latency_table"]["key"]).exists()
