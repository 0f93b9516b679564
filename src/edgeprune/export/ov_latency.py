"""OpenVINO CPU latency, timed and reported exactly like :func:`edgeprune.export.ort_latency.ort_latency`.

The IR is compiled with ``INFERENCE_NUM_THREADS`` = ``threads``, the LATENCY hint and FP32 precision
(:class:`~edgeprune.export.openvino.Compiled`), reshaped to the batch timed: a deployment compiles a static shape,
and OpenVINO's CPU plugin plans a static shape better than a dynamic one.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgeprune.errors import ConfigError
from edgeprune.export.openvino import Compiled
from edgeprune.measure.latency import timed_latency


def ov_call(path: str | os.PathLike, batch_size: int, threads: int, input_shape: tuple[int, ...] | None = None):
    """A call running the IR at ``path`` once on a fixed random batch of ``batch_size``."""
    compiled = Compiled(path, threads=threads, batch=batch_size)
    shape = tuple(input_shape or compiled.input_shape)
    if not all(isinstance(d, int) and d > 0 for d in shape):
        raise ConfigError(f"{str(path)!r} has a symbolic input shape {shape}; pass input_shape")
    x = np.random.default_rng(0).standard_normal((batch_size, *shape)).astype(np.float32)
    return lambda: compiled.request.infer({0: x})


def ov_latency(model: str | os.PathLike, input_shape: tuple[int, ...] | None = None, batch_size: int = 1, runs: int = 50,
               warmup: int = 10, threads: int | None = None) -> dict:
    """Median (and p10/p90/mean) milliseconds per inference of the IR at ``model`` (``.xml``) on a random batch.

    The returned dict has the keys of :func:`edgeprune.measure.latency` with ``runtime="openvino"``.
    """
    return timed_latency("openvino", lambda threads: ov_call(Path(model), batch_size, threads, input_shape),
                         batch_size, runs, warmup, threads)
