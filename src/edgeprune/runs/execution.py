"""What both executors share: which candidates are still to run, the progress bar and the plain line per
finished candidate, one-line failures."""

from __future__ import annotations

import contextlib
import time
import warnings

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from edgeprune.tasks import metric_of, val_value
from edgeprune.train import duration_text, log_line


def pending(store, plan):
    """The candidates of ``plan`` without a record in the run directory yet."""
    done = store.finished_ids()
    return [c for c in plan if c.id not in done]


def _bar(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), disable=not enabled)


def candidate_line(position: int, total: int, record: dict, elapsed: float, eta: float | None) -> str:
    """``[12/30] ID  done  val_acc 0.973  params 41,202  elapsed 3m12s  ETA 4m50s`` (or ``failed  reason``)."""
    head = f"[{position}/{total}] {record.get('id')}"
    if record.get("status") == "ok":
        what = (f"done  val_{metric_of(record)[0]} {val_value(record):.3f}  params {record.get('params', 0):,}")
    else:
        what = f"failed  {record.get('error', '')}"
    return f"{head}  {what}  elapsed {duration_text(elapsed)}  ETA {duration_text(eta)}"


class CandidateProgress:
    """The bar (when ``enabled``) and, whether or not the output is a terminal, one flushed line per finished
    candidate on stderr, so a redirected log shows the run as it goes. The ETA extrapolates the mean time of
    the candidates finished in this session."""

    def __init__(self, bar: Progress, task, total: int, done_before: int, enabled: bool):
        self.bar, self.task, self.total, self.done, self.enabled = bar, task, total, done_before, enabled
        self.started, self.finished_here = time.perf_counter(), 0

    def describe(self, text: str) -> None:
        self.bar.update(self.task, description=text)

    def finished(self, record: dict) -> None:
        self.done += 1
        self.finished_here += 1
        self.bar.advance(self.task)
        if self.enabled:
            spent = time.perf_counter() - self.started
            log_line(candidate_line(self.done, self.total, record, spent,
                                    spent / self.finished_here * (self.total - self.done)))


@contextlib.contextmanager
def candidate_progress(enabled: bool, title: str, plan, todo, *, bar: bool = True):
    """What an executor reports progress through: ``describe(text)`` and ``finished(record)``. ``bar=False``:
    the lines only (the caller shows a bar of its own)."""
    with _bar(enabled and bar) as bar:
        done_before = len(plan) - len(todo)
        task = bar.add_task(f"{title} ({done_before} done before)", total=len(todo))
        yield CandidateProgress(bar, task, len(plan), done_before, enabled)


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
