"""LiteRT CPU latency, timed and reported exactly like :func:`edgeprune.export.ort_latency.ort_latency`.

The ``.tflite`` runs in LiteRT's interpreter with ``num_threads`` = ``threads`` (its default XNNPACK delegate on as
many threads), one ``invoke`` per call on a fixed random batch. A LiteRT program keeps the batch it was converted at,
so only that batch is timed (:func:`~edgeprune.export.et_latency.export_for` converts one program per batch).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgeprune.errors import ConfigError
from edgeprune.export.litert import Interpreter
from edgeprune.measure.latency import timed_latency


def lrt_call(path: str | os.PathLike, batch_size: int, threads: int, input_shape: tuple[int, ...] | None = None):
    """A call running the ``.tflite`` at ``path`` once on a fixed random batch of ``batch_size`` (its own batch)."""
    interpreter = Interpreter(path, threads=threads)
    if batch_size != interpreter.max_batch:
        raise ConfigError(f"{str(path)!r} was converted with a fixed batch of {interpreter.max_batch}; cannot time batch "
                          f"{batch_size} (convert it at that batch)")
    shape = tuple(input_shape or interpreter.input_shape)
    x = interpreter.feed(np.random.default_rng(0).standard_normal((batch_size, *shape)).astype(np.float32))
    feed = {interpreter.input_name: x}
    return lambda: interpreter.runner(**feed)


def lrt_latency(model: str | os.PathLike, input_shape: tuple[int, ...] | None = None, batch_size: int = 1, runs: int = 50,
                warmup: int = 10, threads: int | None = None) -> dict:
    """Median (and p10/p90/mean) milliseconds per inference of the ``.tflite`` at ``model`` on a random batch.

    The returned dict has the keys of :func:`edgeprune.measure.latency` with ``runtime="litert"``.
    """
    return timed_latency("litert", lambda threads: lrt_call(Path(model), batch_size, threads, input_shape),
                         batch_size, runs, warmup, threads)
