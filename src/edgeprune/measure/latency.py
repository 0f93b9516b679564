"""Latency: median wall time of N forward passes after warm-up, thread count and CPU recorded.

:func:`time_rounds` is the one place that times calls; every latency figure (PyTorch, ONNX Runtime, ExecuTorch,
alone or side by side) comes from it."""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
from typing import Callable

import torch
from torch import nn

from edgeprune.errors import check_positive


def machine_info() -> dict:
    """The machine line stored beside every measured figure."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass

    return {
        "cpu": cpu or "unknown",
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
    }


def spread(times: list[float]) -> dict:
    """Median, p10, p90, mean and minimum of ``times`` (milliseconds, or ratios) and how many there are."""
    ordered = sorted(times)
    # inclusive: p10/p90 stay within the data (the default extrapolates below the fastest call for few runs)
    q = statistics.quantiles(ordered, n=10, method="inclusive") if len(ordered) >= 2 else [ordered[0]] * 9
    return {"median_ms": statistics.median(ordered), "p10_ms": q[0], "p90_ms": q[-1],
            "mean_ms": statistics.fmean(ordered), "min_ms": ordered[0], "runs": len(ordered)}


def speedup(reference: list[float], candidate: list[float]) -> float:
    """How many times faster ``candidate`` runs than ``reference`` from their calls timed in alternation: the ratio of
    their fastest calls. Other work on the core only ever adds time to a call, so each one's fastest call stays near
    its own time while the medians move apart: beside torch work on the same core, one pair's ratio of medians
    strayed up to 52 % from its quiet value, the ratio of the fastest calls 2 % (benchmarks/paired_ratio.py)."""
    return min(reference) / min(candidate)


MAX_BLOCK_CALLS = 1000
ALTERNATION_BLOCK_MS = 10.0  # calls timed in alternation run in blocks of at least this long each (see time_rounds)
MIN_ROUNDS = 3  # a timing cut short by ``max_seconds`` still has this many rounds


def time_rounds(calls: dict[str, Callable[[], object]], rounds: int, per_round: int = 1, warmup: int = 10,
                min_block_ms: float = 0.0, max_seconds: float | None = None) -> dict[str, list[float]]:
    """The one latency timer of edgeprune: ``warmup`` untimed calls of each of ``calls`` ({name: call}), then
    ``rounds`` rounds in which each call runs ``per_round`` timed times in turn, so a change of machine load moves
    them all alike. Returns {name: the median milliseconds of each round} (with ``per_round=1``: every call's time).

    ``min_block_ms``: each call runs at least this long per round, in as many calls as its warm-up calls say that
    takes (TVM's ``time_evaluator`` grows its ``number`` to ``min_repeat_ms`` alike). A model that runs once after
    another model finds the caches full of the other's weights: one call each in turn timed a small MobileNetV2 at
    twice its time when run on its own, which a deployed model never sees (benchmarks/paired_warm.py).

    ``max_seconds``: the whole timing takes about this long at most where calls are slow: the warm-up stops after a
    quarter of it (one call at least) and the rounds are cut to what the rest holds (:data:`MIN_ROUNDS` at least).
    A MaxViT-T at 224 px runs about 5 s a call at batch 32 on one core: 30 calls took minutes of a default call."""
    check_positive("runs", rounds)
    check_positive("runs per round", per_round)
    check_positive("warmup", warmup, allow_zero=True)
    if max_seconds is not None:
        check_positive("max_seconds", max_seconds)
    started = time.perf_counter()
    counts, call_ms = {}, {}
    for name, fn in calls.items():
        warm = []
        for _ in range(max(warmup, 1 if min_block_ms > 0 or max_seconds else 0)):
            warm.append(_ms(fn))
            if max_seconds and sum(warm) > max_seconds * 250 / len(calls):
                break
        call_ms[name] = statistics.median(warm) if warm else 0.0
        fill = math.ceil(min_block_ms / max(call_ms[name], 1e-6)) if min_block_ms > 0 else 1
        counts[name] = max(per_round, min(MAX_BLOCK_CALLS, fill))
    if max_seconds:
        left_ms = max_seconds * 1e3 - (time.perf_counter() - started) * 1e3
        round_ms = sum(counts[name] * call_ms[name] for name in calls)
        rounds = max(min(rounds, MIN_ROUNDS), min(rounds, int(left_ms / max(round_ms, 1e-6))))
    medians: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            medians[name].append(statistics.median(_ms(fn) for _ in range(counts[name])))
    return medians


def _ms(fn: Callable[[], object]) -> float:
    """Milliseconds one call of ``fn`` takes."""
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def time_calls(fn: Callable[[], object], runs: int = 50, warmup: int = 10, max_seconds: float | None = None) -> dict:
    """Time ``fn`` ``runs`` times after ``warmup`` calls (fewer of both where they would take more than ``max_seconds``,
    see :func:`time_rounds`); milliseconds: median, p10, p90, mean, and the runs timed."""
    return spread(time_rounds({"fn": fn}, rounds=runs, warmup=warmup, max_seconds=max_seconds)["fn"])


def time_paired(first: Callable[[], object], second: Callable[[], object], runs: int = 20, warmup: int = 5,
                max_seconds: float | None = None) -> dict:
    """Two calls timed in alternation (a block of at least :data:`ALTERNATION_BLOCK_MS` of each in turn, ``runs``
    rounds, after ``warmup`` calls each): a load change moves both alike, so their ratio stays meaningful.
    {"first": ..., "second": ...} (as :func:`time_calls`, over the rounds' medians), ``ratio`` the :func:`speedup` of
    second over first, ``ratio_p10`` / ``ratio_p90`` of the per-round ratios."""
    times = time_rounds({"first": first, "second": second}, rounds=runs, warmup=warmup, min_block_ms=ALTERNATION_BLOCK_MS,
                        max_seconds=max_seconds)
    a, b = spread(times["first"]), spread(times["second"])
    ratios = spread([x / y for x, y in zip(times["first"], times["second"])])
    return {"first": a, "second": b, "ratio": speedup(times["first"], times["second"]), "ratio_p10": ratios["p10_ms"],
            "ratio_p90": ratios["p90_ms"]}


BUSY_SPREAD = 1.5  # p90 / p10 of one timing above this: the calls were not timed alike
BUSY_LOAD_PER_CORE = 1.0  # 1-minute load average above this many per core: other work competes for the CPU


def busy_reasons(results: list[dict], load: float | None = None, cores: int | None = None) -> list[str]:
    """Why the timings in ``results`` (dicts with p10_ms/p90_ms) look disturbed by other work: some p90/p10 above
    :data:`BUSY_SPREAD`, or the 1-minute load average (``load``, default ``os.getloadavg``) above
    :data:`BUSY_LOAD_PER_CORE` per core (``cores``, default ``os.cpu_count``). Empty when neither holds."""
    load = os.getloadavg()[0] if load is None else load
    cores = cores or os.cpu_count() or 1
    reasons = []
    widest = max((r["p90_ms"] / r["p10_ms"] for r in results if r.get("p10_ms")), default=0.0)
    if widest > BUSY_SPREAD:
        reasons.append(f"p90/p10 = {widest:.2f} > {BUSY_SPREAD:g}")
    if load > BUSY_LOAD_PER_CORE * cores:
        reasons.append(f"load average {load:.2f} > {BUSY_LOAD_PER_CORE * cores:g} ({cores} cores)")
    return reasons


def busy_warning(results: list[dict], load: float | None = None, cores: int | None = None) -> str | None:
    """One line when the timings in ``results`` look disturbed by other work (:func:`busy_reasons`), else None."""
    reasons = busy_reasons(results, load, cores)
    if not reasons:
        return None
    return f"the machine looks busy ({'; '.join(reasons)}): these latencies are upper bounds, time again when it is quiet"


def timed_latency(runtime: str, make_call: Callable[[int], Callable[[], object]], batch_size: int = 1, runs: int = 50,
                  warmup: int = 10, threads: int | None = None, max_seconds: float | None = None) -> dict:
    """The latency record of every runtime: ``batch_size`` and ``threads`` checked, ``threads`` by default torch's
    thread count, ``make_call(threads)`` the call to time (see :func:`time_calls` for ``max_seconds``); its
    median/p10/p90/mean ms and runs with the batch size, threads, ``runtime`` and CPU."""
    check_positive("batch size", batch_size)
    if threads is not None:
        check_positive("threads", threads)
    threads = int(threads or torch.get_num_threads())
    result = time_calls(make_call(threads), runs=runs, warmup=warmup, max_seconds=max_seconds)
    return {**result, "batch_size": batch_size, "threads": threads, "runtime": runtime, "cpu": machine_info()["cpu"]}


@torch.no_grad()
def latency(
    model: nn.Module,
    input_shape: tuple[int, ...],
    batch_size: int = 1,
    runs: int = 50,
    warmup: int = 10,
    threads: int | None = None,
) -> dict:
    """PyTorch CPU latency of ``model`` on a random batch of shape (batch_size, *input_shape)."""
    old_threads, was_training = torch.get_num_threads(), model.training
    model.eval()

    def make_call(threads: int):
        torch.set_num_threads(threads)
        x = torch.randn(batch_size, *input_shape)
        return lambda: model(x)

    try:
        return timed_latency("torch", make_call, batch_size, runs, warmup, threads)
    finally:
        model.train(was_training)
        torch.set_num_threads(old_threads)
