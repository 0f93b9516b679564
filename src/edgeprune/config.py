"""Typed configuration objects, validated up front (pydantic), with one-line errors.

Every config in edgeprune (training, recipes, method settings) is a :class:`Config`. Unknown keys are
rejected and a validation failure becomes a :class:`~edgeprune.errors.ConfigError` that names the field,
the bad value and what is allowed.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import pydantic

from edgeprune.errors import ConfigError

C = TypeVar("C", bound="Config")

# Sane upper bounds: a value above them is a typo (``--epochs 99999999999999999999999``), not a plan; a
# longer run is a benchmark script, not a command line.
MAX_EPOCHS = 10_000
MAX_BATCH_SIZE = 65_536
MAX_BATCHES = 1_000_000  # batches per epoch (max_batches) or for calibration
MAX_SEEDS = 1_000  # seeds per budget
MAX_SEED = 2**32 - 1  # a seed value (numpy's limit)


class Config(pydantic.BaseModel):
    # nan / inf are never a setting (lr=inf trains until the loss is nan; a nan bound compares false)
    model_config = pydantic.ConfigDict(extra="forbid", validate_assignment=True, frozen=False, allow_inf_nan=False)
    label: ClassVar[str | None] = None  # what errors call it ("mix_and_match options"); default the class name

    @classmethod
    def build(cls: type[C], data: dict[str, Any] | None = None, /, **overrides) -> C:
        """Validate ``data`` updated with the non-None ``overrides``; ConfigError on the first problem."""
        values = dict(data or {})
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls.model_validate(values)
        except pydantic.ValidationError as exc:
            raise ConfigError(describe_validation_error(exc, cls.label or cls.__name__)) from None

    def replace(self: C, **changes) -> C:
        return type(self).build(self.model_dump(), **changes)


def describe_validation_error(exc: pydantic.ValidationError, where: str = "config") -> str:
    """One line: the first error's field path, the value given and what pydantic expected."""
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err.get("loc", ())) or "(root)"
    if err.get("type") == "extra_forbidden":
        return f"{where}: unknown key {field!r}"
    value = err.get("input")
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    msg = err.get("msg", "invalid value")
    return f"{where}: {field}={shown} is not allowed ({msg})"
