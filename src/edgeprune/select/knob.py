"""A method's own knob (VBP's ratio of MLP neurons, Reconvene's sparsity) calibrated to a measured budget.

The knob removes more as it grows; the least pruning whose measured value fits the budget is found by bisection
(each step prunes a copy of the input model and measures it with the :class:`~edgeprune.select.meter.Meter`).
A budget the knob's largest value cannot meet is a one-line error naming the smallest reachable value.
"""

from __future__ import annotations

from typing import Callable

from edgeprune.errors import ConfigError
from edgeprune.measure.budget import Budget
from edgeprune.select.meter import predictable

STEPS = {"latency": 6, "size": 8}  # bisection steps per measured kind (timings are noisy: fewer, others: DEFAULT)
DEFAULT_STEPS = 10


def calibrate(prune_at: Callable[[float], object], meter, budget: Budget, knob: tuple[float, float], *,
              what: str, knob_name: str):
    """The decision (``prune_at(k).model`` is the pruned copy) at the smallest knob ``k`` in ``knob`` = (low, high)
    whose model fits ``budget``; its ``info`` gains ``measured`` and ``calibrated`` (the knob, the measured value and
    the limit). FP32 ONNX size is bisected on its prediction (:meth:`Meter.predicted`), then measured; should the
    real file exceed the budget (or a longer timing the latency), the least larger knob that fits when measured so is
    bisected for."""
    fits, limit = meter.limit(budget)
    low, high = knob

    def at(k: float, exact: bool = not predictable(budget), confirm: bool = False):
        decision = prune_at(k)
        if not exact:
            return decision, meter.predicted(decision.model, budget)
        return decision, meter.value(decision.model, budget, confirm=confirm)

    best, value = at(high, exact=True)
    if not fits(value):
        raise ConfigError(f"budget {budget} cannot be met by {what}: the smallest reachable {budget.kind} is "
                          f"{budget.describe(value)} ({knob_name} {high:g}, its largest)")
    steps = STEPS.get(budget.kind, DEFAULT_STEPS)

    def least_fitting(low: float, high: float, **how):
        """Bisection of (low, high] for the least knob whose model fits, measured ``how``: that knob (``high`` if no
        other) and its (decision, value), None if no step fitted."""
        found = None
        for _ in range(steps if low < high else 0):
            mid = 0.5 * (low + high)
            decision, measured = at(mid, **how)
            if fits(measured):
                high, found = mid, (decision, measured)
            else:
                low = mid
        return high, found

    chosen = low
    if not fits(at(low)[1]):
        chosen, _ = least_fitting(low, high)
    # a predicted size is a little below the real file's, a latency timed once may have been lucky: the choice is
    # measured again (a latency with longer timing); if it misses, the least knob above it that such a measurement
    # accepts is bisected for (growing halfway to the largest knob at each miss overshot a 4x latency budget to 8x)
    decision, measured = at(chosen, exact=True, confirm=True)
    if fits(measured):
        best, value = decision, measured
    else:  # none fitting: the largest knob's model, measured first
        chosen, found = least_fitting(chosen, high, exact=True, confirm=True)
        best, value = found or (best, value)
    best.info = {**best.info, "measured": value,
                 "calibrated": {"budget": str(budget), "limit": limit, knob_name: round(chosen, 6), "measured": value}}
    return best
