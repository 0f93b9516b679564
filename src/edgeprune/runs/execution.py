"""What both executors share: which candidates are still to run, the progress bar, one-line failures."""

from __future__ import annotations

import warnings

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def pending(store, plan):
    """The candidates of ``plan`` without a record in the run directory yet."""
    done = store.finished_ids()
    return [c for c in plan if c.id not in done]


def _bar(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), disable=not enabled)


def describe_failure(exc: BaseException) -> str:
    """One line naming what went wrong (the original exception of a Ray task, not Ray's wrapper)."""
    cause = getattr(exc, "cause", None)  # RayTaskError keeps the task's own exception here
    if isinstance(cause, BaseException):
        exc = cause
    text = " ".join(str(exc).split()) or "no message"
    line = f"{type(exc).__name__}: {text}"
    return line if len(line) <= 300 else line[:297] + "..."


def warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=3)
