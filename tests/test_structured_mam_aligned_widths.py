"""Structured Mix-and-Match keeps widths that are multiples of the CPU's ONNX Runtime channel block
(round_to="auto") under latency, MACs, parameter and size budgets alike; an explicit round_to wins."""

import pytest
import torch

from edgeprune import data as data_lib
from edgeprune import models
from edgeprune import strategies as strategies_lib
from edgeprune.errors import ConfigError
from edgeprune.export.ort_latency import channel_block
from edgeprune.measure.budget import parse
from edgeprune.methods import structured_mam
from edgeprune.methods.base import get_method


@pytest.fixture(scope="module")
def state():
    model = models.create("resnet20", num_classes=10, in_channels=1, image_size=8)  # widths 16/32/64
    options = get_method("mix_and_match", granularity="channel", criteria=["magnitude"]).options
    return structured_mam.prepare(model, data_lib.load("digits"), torch.randn(2, 1, 8, 8), options)


def widths_under(state, budget: str, shift: float = 0.5) -> dict:
    vector = structured_mam._shifted(strategies_lib.build("balanced", state.ranges, state.roles), state.ranges, shift)
    small, widths = structured_mam.pruned_copy(state, state.model, vector, parse(budget))
    assert small(torch.randn(1, 1, 8, 8)).shape == (1, 10)
    return {name: w for name, w in widths.items() if w < dict(state.structure.channels)[name]}


def test_channel_block_is_the_cpus_ort_block():
    expected = 16 if torch.backends.cpu.get_cpu_capability().startswith("AVX512") else 8
    assert channel_block() == expected


def test_a_latency_budget_keeps_widths_that_are_multiples_of_the_channel_block(state):
    pruned = widths_under(state, "latency<=50%")
    assert pruned, "nothing was pruned"
    assert all(w % channel_block() == 0 for w in pruned.values()), pruned
    assert structured_mam.rounding(state, parse("latency<=50%@b32")) == channel_block()


@pytest.mark.parametrize("budget", ["macs<=50%", "params<=50%", "size<=50%"])
def test_other_budgets_keep_widths_that_are_multiples_of_the_channel_block_too(state, budget):
    assert structured_mam.rounding(state, parse(budget)) == channel_block()  # odd widths save MACs, not time
    pruned = widths_under(state, budget)
    assert all(w % channel_block() == 0 for w in pruned.values()), pruned


def test_the_block_follows_channel_block(state, monkeypatch):
    monkeypatch.setattr(structured_mam, "channel_block", lambda: 8)
    assert all(w % 8 == 0 for w in widths_under(state, "latency<=50%").values())


def test_an_explicit_round_to_wins(state, monkeypatch):
    monkeypatch.setattr(state, "round_to", 4)
    assert structured_mam.rounding(state, parse("latency<=50%")) == 4
    assert all(w % 4 == 0 for w in widths_under(state, "macs<=50%").values())


@pytest.mark.parametrize("value", [0, -8, "fast", 2.5, True])
def test_a_bad_round_to_is_refused(value):
    with pytest.raises(ConfigError, match="round_to"):
        get_method("mix_and_match", granularity="channel", round_to=value)
