"""Executors run a plan of candidates and stream their records into the run directory.

Two executors share one contract, ``run(job, plan, *, progress, title) -> list[dict]``, over a *job* that
knows its own candidates (a :class:`~edgeprune.runs.job.Job` of any method, or Mix-and-Match's search
context). A job provides ``store`` (the run directory), ``train(cand) -> (record, trained or None)`` (writes
nothing), ``portable(trained)`` (what a Ray task sends back), ``finish(cand, record, trained) -> record``
(driver side: artifact, then record), ``failed(cand, reason, attempts, seconds) -> record`` and
``for_workers()`` (the part shipped to Ray workers):

* :class:`LocalExecutor` trains the candidates one after another in this process;
* :class:`~edgeprune.runs.ray_executor.RayExecutor` runs each candidate as a Ray task.

Either way the driver (this process) is the only writer of the run directory: for each finished candidate
it first moves the checkpoint into place (temp file + os.replace), then appends the record to
results.jsonl (flush + fsync). A killed search loses at most the candidates still running; candidates
already in results.jsonl are skipped. A candidate that raises (or whose Ray worker dies) is retried once,
then recorded with ``status: "failed"`` and its reason, and the search goes on.
"""

from __future__ import annotations

import contextlib
import time

import torch

from edgeprune.errors import ConfigError, check_positive
from edgeprune.runs.execution import candidate_progress, describe_failure, pending, warn
from edgeprune.runs.ray_executor import RayExecutor

__all__ = ["EXECUTORS", "LocalExecutor", "RayExecutor", "describe_failure", "make_executor", "pending", "torch_threads", "warn"]

EXECUTORS = ("local", "ray")


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Intra-op threads for the block (restored afterwards); ``None`` keeps torch's setting."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class LocalExecutor:
    """Run candidates one after another in this process (``threads`` torch threads each)."""

    name = "local"

    def __init__(self, threads: int | None = None, retries: int = 1):
        self.threads = check_positive("--cpus-per-candidate", threads) if threads is not None else None
        self.retries = check_positive("retries", retries, allow_zero=True)

    def run(self, ctx, plan, *, progress: bool = True, title: str = "candidates") -> list[dict]:
        todo = pending(ctx.store, plan)
        records = []
        with candidate_progress(progress, title, plan, todo) as shown, torch_threads(self.threads):
            for cand in todo:
                shown.describe(f"{title}: {cand.id}")
                started = time.perf_counter()
                for attempt in range(1, self.retries + 2):
                    try:
                        record, trained = ctx.train(cand)
                        break
                    except Exception as exc:  # noqa: BLE001  a bug in one candidate must not end the search
                        reason = describe_failure(exc)
                        if attempt <= self.retries:
                            warn(f"candidate {cand.id} failed ({reason}); retrying")
                            continue
                        warn(f"candidate {cand.id} failed again ({reason}); recorded as failed")
                        record, trained = ctx.failed(cand, reason, attempt, time.perf_counter() - started), None
                records.append(ctx.finish(cand, record, trained))
                shown.finished(records[-1])
        return records

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def make_executor(
    kind: str = "local",
    *,
    ray_address: str | None = None,
    workers: int | None = None,
    cpus_per_candidate: int | None = None,
    gpus_per_candidate: float | None = None,
):
    """An executor from the CLI flags, checked up front (one-line ConfigError/DependencyError on bad input)."""
    if kind not in EXECUTORS:
        raise ConfigError(f"--executor {kind!r} is not one of: {', '.join(EXECUTORS)}")
    if workers is not None:
        check_positive("--workers", workers)
    if cpus_per_candidate is not None:
        check_positive("--cpus-per-candidate", cpus_per_candidate)
    if gpus_per_candidate is not None:
        check_positive("--gpus-per-candidate", gpus_per_candidate, allow_zero=True)
    if kind == "local":
        if ray_address is not None:
            raise ConfigError("--ray-address needs --executor ray")
        if workers not in (None, 1):
            raise ConfigError(f"--workers {workers} needs --executor ray (the local executor runs one candidate at a time)")
        if gpus_per_candidate and gpus_per_candidate > torch.cuda.device_count():
            raise ConfigError(
                f"--gpus-per-candidate {gpus_per_candidate:g}: this machine has {torch.cuda.device_count()} GPU(s)"
            )
        return LocalExecutor(threads=cpus_per_candidate)
    return RayExecutor(
        address=ray_address, workers=workers, cpus_per_candidate=cpus_per_candidate or 1,
        gpus_per_candidate=gpus_per_candidate or 0,
    )


EXECUTOR_KEYS = ("kind", "ray_address", "workers", "cpus_per_candidate", "gpus_per_candidate")


def executor_of(executor) -> tuple[object, bool]:
    """(executor, made here): "local" / "ray", a dict of :func:`make_executor`'s keywords, or the caller's object
    (used as it is; the caller closes it)."""
    if isinstance(executor, str):
        return make_executor(executor), True
    if isinstance(executor, dict):
        unknown = sorted(set(executor) - set(EXECUTOR_KEYS))
        if unknown:
            raise ConfigError(f"executor setting {unknown[0]!r} is not allowed; allowed: {', '.join(EXECUTOR_KEYS)}")
        return make_executor(**executor), True
    return executor, False
