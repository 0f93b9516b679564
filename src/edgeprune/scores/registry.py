"""The registry of weight-score criteria: one decorated function per criterion.

A criterion function has the signature ``fn(model, batches, *, loss_fn, seed, <options>)`` and returns
``{param name: score tensor}`` for the prunable weights; its keyword-only parameters after ``seed`` are
the options :func:`edgeprune.scores.compute` accepts for it.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

ScoreFn = Callable[..., dict]

# keyword-only parameters every criterion receives from ``compute`` (not user options)
_COMMON = ("loss_fn", "seed")


@dataclass(frozen=True)
class Criterion:
    name: str
    description: str
    needs_data: bool
    fn: ScoreFn

    @property
    def options(self) -> tuple[str, ...]:
        params = inspect.signature(self.fn).parameters.values()
        return tuple(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in _COMMON)


REGISTRY: dict[str, Criterion] = {}
CRITERIA: dict[str, str] = {}  # name -> one-line description (public view of REGISTRY)


def criterion(name: str, description: str, *, needs_data: bool) -> Callable[[ScoreFn], ScoreFn]:
    """Register ``fn`` as the criterion ``name`` (``needs_data``: whether calibration batches are required)."""

    def decorator(fn: ScoreFn) -> ScoreFn:
        if name in REGISTRY and REGISTRY[name].fn is not fn:
            raise ValueError(f"score criterion {name!r} is already registered")
        REGISTRY[name] = Criterion(name, description, needs_data, fn)
        CRITERIA[name] = description
        return fn

    return decorator
