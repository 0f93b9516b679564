"""Pareto front and hypervolume for two objectives, both to maximise.

Costs to minimise (bytes, MACs) are turned into savings to maximise before they come here:
``saving = 1 - cost / dense_cost``, so every axis reads "higher is better" and the reference point is
(0, 0): a model that saves nothing at zero accuracy. The hypervolume is the area the front dominates above
the reference point, in units of (fraction saved) × (accuracy), at most 1.
"""

from __future__ import annotations

from typing import Sequence


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point dominates (>= on both axes, > on one), by x ascending."""
    order = sorted(range(len(points)), key=lambda i: (-points[i][0], -points[i][1]))
    front, best_y = [], float("-inf")
    for i in order:  # sweep from the largest x: a point is on the front if its y beats every larger x's
        if points[i][1] > best_y:
            front.append(i)
            best_y = points[i][1]
    return sorted(front, key=lambda i: points[i][0])


def hypervolume(points: Sequence[tuple[float, float]], reference: tuple[float, float] = (0.0, 0.0)) -> float:
    """Area dominated by ``points`` above ``reference`` (both axes maximised)."""
    rx, ry = reference
    front = [points[i] for i in pareto_front(points) if points[i][0] > rx and points[i][1] > ry]
    # Sorted by x ascending, a front has y descending: the strip between consecutive x's is as high as
    # the point at its right edge.
    area, prev_x = 0.0, rx
    for x, y in front:
        area += (x - prev_x) * (y - ry)
        prev_x = x
    return area
