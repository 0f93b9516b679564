"""The Method contract and the one registry of methods.

A method is a small class: it prepares what its candidates share once (scores, statistics, roles), lists
its candidates for the budgets and seeds asked for, and prunes one candidate. Fine-tuning, measuring,
saving and recording belong to the shared runner (:mod:`edgeprune.runs`), so every method's records have
the same schema. A new method is one class decorated with :func:`register`::

    @register
    class MyMethod(Method):
        name = "mine"
        summary = "what it does, in one line"

        def prepare(self, model, data, example): ...
        def prune(self, state, model, candidate) -> Decision: ...
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable, ClassVar

import torch
from torch import nn

from edgeprune.config import Config
from edgeprune.errors import ConfigError, EdgepruneError, ModelError
from edgeprune.measure import budget as budget_lib
from edgeprune.measure.size import prunable_weights
from edgeprune.models import first_line
from edgeprune.prune.masks import Masks


class NoOptions(Config):
    """A method without options of its own."""


class DefaultBudget(float):
    """The method's default budget, taken when the caller named none. A method may lower it to what the model can
    reach (with a warning); a budget the caller named is met or refused."""


@dataclass
class Candidate:
    """One model a method will produce: a budget, a seed and the method's own setting (JSON-able).

    ``budget`` is what the user asked for: the method's own amount (a sparsity, a ratio, Reconvene's p) or a
    measured budget (``latency<=2ms``). ``knob`` is the amount the method prunes by: the budget itself when it
    is a number, the value calibration tries when it is measured."""

    id: str
    budget: float | budget_lib.Budget
    seed: int
    setting: dict = field(default_factory=dict)
    knob: float | None = None

    def __post_init__(self):
        if self.knob is None and isinstance(self.budget, (int, float)):
            self.knob = float(self.budget)


@dataclass
class Decision:
    """What pruning one candidate gave: the pruned model (a copy), its masks if any, what was decided."""

    model: nn.Module
    masks: Masks | None = None
    info: dict = field(default_factory=dict)


class Method:
    """Base class of every registered method; see the module docstring."""

    name: ClassVar[str]
    summary: ClassVar[str]
    budget_name: ClassVar[str] = "sparsity"
    budget_help: ClassVar[str] = "fraction of prunable weights (conv/linear) removed"
    budget_range: ClassVar[tuple[float, float]] = (0.0, 1.0)  # [low, high)
    default_budget: ClassVar[float] = 0.5
    finetune_epochs: ClassVar[int] = 3  # default fine-tune budget
    kd: ClassVar[bool] = False  # distil from the input model while fine-tuning, by default
    from_scratch: ClassVar[bool] = False  # the pruned model is re-initialised and trained, not fine-tuned
    Options: ClassVar[type[Config]] = NoOptions

    def __init__(self, **options):
        self.options = self.Options.build(options)

    @classmethod
    def variant(cls, options: dict) -> tuple[type[Method], dict]:
        """The registered class (and its options) an option selects: ``mix_and_match`` with
        ``granularity="channel"`` is ``structured``. Default: this class, the options unchanged."""
        return cls, options

    # measured budgets (Budget.key of edgeprune.measure.budget: latency, size, size@sparse, macs, params) this method
    # meets by calibrating its own budget quantity (the knob) over ``knob_range`` (edgeprune.select.knob)
    calibrated_kinds: ClassVar[tuple[str, ...]] = ()
    knob_range: ClassVar[tuple[float, float]] = (0.0, 0.95)

    # -- budgets ------------------------------------------------------------------------------------
    def check_budget(self, budget) -> float:
        lo, hi = self.budget_range
        typed = _parsed(budget)
        if isinstance(typed, budget_lib.Budget):
            if typed.key in self.calibrated_kinds:
                return typed
            can = f"{', '.join(self.calibrated_kinds)} budgets or " if self.calibrated_kinds else ""
            raise ConfigError(f"budget {typed} is not allowed for method {self.name!r}: it takes {can}a {self.budget_name} "
                              f"({self.budget_help}) in [{lo:g}, {hi:g})")
        try:
            value = float(budget if typed is None else typed)
        except (TypeError, ValueError):
            value = None
        if isinstance(budget, bool) or value is None or not lo <= value < hi:
            raise ConfigError(
                f"budget {budget!r} is not allowed for method {self.name!r}: a {self.budget_name} "
                f"({self.budget_help}) in [{lo:g}, {hi:g})"
            )
        return value

    @property
    def measured_kinds(self) -> tuple[str, ...]:
        """Every measured budget kind (Budget.key) this method takes, natively or through its knob."""
        return self.calibrated_kinds

    def calibrates(self, budget) -> bool:
        """Whether ``budget`` is met by calibrating this method's knob (the runner then bisects it)."""
        return isinstance(budget, budget_lib.Budget) and budget.key in self.calibrated_kinds

    def achieved(self, dense: nn.Module, decision: Decision) -> float:
        """The budget quantity measured on the pruned model (default: sparsity of prunable weights)."""
        masks = decision.masks or {}
        total = sum(w.numel() for w in prunable_weights(dense).values())
        kept = sum(int(masks[n].count_nonzero()) if n in masks else int(w.count_nonzero())
                   for n, w in prunable_weights(decision.model).items())
        return 1.0 - kept / max(total, 1)

    budget_tolerance: ClassVar[float] = 0.02  # |achieved - budget| the contract test accepts

    # -- the steps ----------------------------------------------------------------------------------
    def check(self, model: nn.Module, example: torch.Tensor) -> None:
        """Refuse, before anything is trained or written, a model this method cannot prune (one-line error).

        Looks at the architecture only: it may be called on an untrained instance of the user's model."""

    def prepare(self, model: nn.Module, data, example: torch.Tensor) -> object:
        """What every candidate shares, computed once on the (unchanged) input model."""
        return None

    def candidates(self, state: object, budgets: list[float], seeds: list[int]) -> list[Candidate]:
        """Every candidate of a sweep; one per (budget, seed) unless the method has settings to vary."""
        return [Candidate(f"{self.name}-b{b:g}-s{s}", b, s) for b in budgets for s in seeds]

    def prune(self, state: object, model: nn.Module, candidate: Candidate) -> Decision:
        """A pruned copy of ``model`` at ``candidate.knob`` (a method that calibrates measured budgets itself,
        as ``structured``, reads ``candidate.budget``)."""
        raise NotImplementedError


def _parsed(budget):
    """A budget string or Budget parsed (a typed Budget or a float); None if it is neither or does not parse."""
    if not isinstance(budget, (str, budget_lib.Budget)):
        return None
    try:
        return budget_lib.parse(budget)
    except ConfigError:
        return None


def optional_parts(names, build: Callable[[str], object], what: str, *, need_one: bool) -> dict:
    """``{name: build(name)}`` over a method's optional parts (its criteria, its baselines).

    A part that cannot run on this model (an operator without the derivative it needs, a layer it cannot
    handle, a ModelError) is left out with a one-line warning naming why, and the call goes on with the rest.
    A user mistake (any other EdgepruneError) is not a part's failure and propagates. ``need_one``: none
    could run is a one-line ModelError."""
    built, failed = {}, {}
    for name in dict.fromkeys(names):
        try:
            built[name] = build(name)
        except Exception as exc:  # noqa: BLE001  whatever the part hit on this model, the others may still run
            if isinstance(exc, EdgepruneError) and not isinstance(exc, ModelError):
                raise
            failed[name] = str(exc) if isinstance(exc, ModelError) else first_line(exc)
            warnings.warn(f"{what} {name!r} cannot run on this model and is left out: {failed[name]}", UserWarning,
                          stacklevel=2)
    if need_one and failed and not built:
        raise ModelError(f"no {what} can run on this model: " + "; ".join(f"{n}: {why}" for n, why in failed.items()))
    return built


# -- the registry ------------------------------------------------------------------------------------

_METHODS: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    """Class decorator adding ``cls`` to the registry under ``cls.name``."""
    if cls.name in _METHODS and _METHODS[cls.name] is not cls:
        raise ValueError(f"method {cls.name!r} is already registered")
    _METHODS[cls.name] = cls
    return cls


def list_methods() -> dict[str, str]:
    """Name -> one-line summary of every registered method."""
    return {name: cls.summary for name, cls in sorted(_METHODS.items())}


def method_class(name: str) -> type[Method]:
    """The registered class of the method ``name`` (its ``Options`` declare its options)."""
    cls = _METHODS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ConfigError(f"unknown method {name!r}; allowed: {', '.join(sorted(_METHODS))}")
    return cls


def get_method(name: str, **options) -> Method:
    """An instance of the method ``name`` with ``options`` validated (ConfigError on a bad one)."""
    cls, options = method_class(name).variant(options)
    return cls(**options)

