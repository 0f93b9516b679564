"""A method's knob (VBP's ratio, Reconvene's sparsity) is bisected on short latency timings, then its choice is timed
again, longer. When that longer timing misses, the least larger knob it accepts is bisected for: growing the knob
halfway to its largest at each miss overshot a 4x budget to 8x."""

import pytest

from edgeprune.measure.budget import parse
from edgeprune.methods.base import Decision
from edgeprune.select import knob


class Meter:
    """Latency 1 - k ms at knob k; a short timing reads ``luck`` ms fast, a confirming one exactly."""

    def __init__(self, luck: float):
        self.luck, self.timed = luck, []

    def limit(self, budget):
        return (lambda v: v <= 0.5), 0.5

    def value(self, model, budget, confirm=False):
        self.timed.append((model, confirm))
        return 1.0 - model - (0.0 if confirm else self.luck)

    predicted = value


@pytest.mark.parametrize("luck", [0.0, 0.2])
def test_a_choice_the_longer_timing_refuses_is_bisected_up_to_the_least_knob_it_accepts(luck):
    meter = Meter(luck)
    best = knob.calibrate(lambda k: Decision(k), meter, parse("latency<=0.5ms"), (0.0, 1.0), what="test", knob_name="k")
    chosen = best.info["calibrated"]["k"]
    assert 0.5 <= chosen < 0.5 + 1 / 2 ** 5  # the least knob that fits, to the bisection's resolution
    assert best.info["measured"] == pytest.approx(1.0 - best.model) and best.model == pytest.approx(chosen, abs=1e-6)
    assert meter.timed[-1][1] or best.model == 1.0  # what is kept was measured by a confirming timing
