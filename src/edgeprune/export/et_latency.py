"""Latency in ExecuTorch, measured like ONNX Runtime's, and one entry point for budgets to name the runtime.

:func:`et_latency` times ``method.execute`` of a ``.pte`` with the method of
:func:`edgeprune.export.ort_latency.ort_latency`: a fixed thread count (ExecuTorch's thread pool, which
XNNPACK runs on, is sized to ``threads`` before the program is loaded; see :func:`set_et_threads`), warm-up calls, then the median (p10/p90)
of timed calls on one fixed random batch. :func:`latency_ms` is what a budget such as
``latency<=2ms@executorch`` calls: a model or a file, a batch size and a runtime name (ONNX Runtime, ExecuTorch,
OpenVINO: :mod:`edgeprune.export.ov_latency`, or LiteRT: :mod:`edgeprune.export.litert_latency`). :func:`compare` times several artifacts in interleaved rounds so load
changes on a shared machine hit them alike.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgeprune.errors import ConfigError, check_positive
from edgeprune.export.executorch import Program, executorch, export_executorch
from edgeprune.export.litert import export_litert
from edgeprune.export.litert_latency import lrt_call, lrt_latency
from edgeprune.export.onnx import export_for_timing, export_verified, input_shape_of, ort_session
from edgeprune.export.openvino import convert_checked
from edgeprune.export.ort_latency import ort_latency
from edgeprune.export.ov_latency import ov_call, ov_latency
from edgeprune.measure.latency import ALTERNATION_BLOCK_MS, time_rounds, timed_latency
from edgeprune.utils.native import native_output_hidden

RUNTIMES = ("onnxruntime", "executorch", "openvino", "litert")
_SUFFIX = {".onnx": "onnxruntime", ".pte": "executorch", ".xml": "openvino", ".tflite": "litert"}
FILE_NAMES = {runtime: f"model{suffix}" for suffix, runtime in _SUFFIX.items()}


def check_runtime(runtime: str) -> str:
    """``runtime`` if it is one budgets can name (``latency<=2ms@executorch``), else a one-line ConfigError."""
    if runtime not in RUNTIMES:
        raise ConfigError(f"runtime {runtime!r} is not allowed; allowed: {', '.join(RUNTIMES)}")
    return runtime


def set_et_threads(threads: int) -> int:
    """Size ExecuTorch's thread pool (XNNPACK's workers) to ``threads``; returns the previous size.

    XNNPACK binds the pool when a program is loaded, and resizing replaces the pool: a program loaded
    before must not run afterwards (it crashes). So the pool is resized only when its size changes, before
    the programs to be timed are loaded, and it keeps that size for the rest of the process.
    """
    lib = executorch().portable_lib
    before = int(lib._threadpool_get_thread_count())
    if before != int(threads):
        with native_output_hidden():  # "[threadpool.cpp:66] Resetting threadpool to 1 threads."
            lib._unsafe_reset_threadpool(int(threads))
    return before


def _et_call(program: Program, path, batch_size: int, input_shape):
    shape = tuple(input_shape or program.input_shape)
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((batch_size, *shape)).astype(np.float32))
    if batch_size > program.max_batch:
        raise ConfigError(f"{str(path)!r} was exported for batches of at most {program.max_batch}; cannot time batch "
                          f"{batch_size} (re-export with --et-batch {batch_size})")
    try:
        program(x)
    except RuntimeError:
        raise ConfigError(f"{str(path)!r} was exported with a fixed batch of {program.max_batch}; cannot time batch "
                          f"{batch_size} (re-export with --et-batch {batch_size})") from None
    return lambda: program(x)


def et_latency(model: str | Path, input_shape: tuple[int, ...] | None = None, batch_size: int = 1, runs: int = 50,
               warmup: int = 10, threads: int | None = None) -> dict:
    """Median (and p10/p90/mean) milliseconds per ``execute`` of the ``.pte`` at ``model`` on a random batch.

    The returned dict has the keys of :func:`edgeprune.measure.latency` with ``runtime="executorch"``.
    """

    def make_call(threads: int):
        set_et_threads(threads)
        return _et_call(Program(model), model, batch_size, input_shape)

    return timed_latency("executorch", make_call, batch_size, runs, warmup, threads)


def runtime_of(path: str | Path) -> str:
    runtime = _SUFFIX.get(Path(path).suffix.lower())
    if runtime is None:
        raise ConfigError(f"{str(path)!r} is neither an ONNX (.onnx), an ExecuTorch (.pte), an OpenVINO (.xml) nor a "
                          "LiteRT (.tflite) file")
    return runtime


def export_for(model: nn.Module, path: str | Path, runtime: str, batch: int = 1, input_shape=None) -> dict:
    """Export ``model`` for ``runtime`` to ``path`` (ONNX: dynamic batch; ExecuTorch and LiteRT: fixed ``batch``;
    OpenVINO: the fast timing export of ONNX converted, dynamic batch), checked against PyTorch on random inputs."""
    shape = tuple(input_shape or input_shape_of(model))
    example = torch.randn(max(batch, 2), *shape, generator=torch.Generator().manual_seed(0))
    if check_runtime(runtime) == "executorch":
        return export_executorch(model, path, example, batch=batch)
    if runtime == "litert":
        return export_litert(model, path, example, batch=batch)
    if runtime == "openvino":  # the parity check in OpenVINO covers the ONNX step as well
        with tempfile.TemporaryDirectory(prefix="edgeprune-openvino-") as folder:
            export_for_timing(model, Path(folder) / "model.onnx", input_shape=shape)
            return convert_checked(model, Path(folder) / "model.onnx", path, example)
    return export_verified(model, path, example)


def latency_ms(
    model_or_path: nn.Module | str | Path,
    batch: int = 1,
    runtime: str | None = None,
    *,
    input_shape: tuple[int, ...] | None = None,
    threads: int = 1,
    runs: int = 30,
    warmup: int = 10,
) -> float:
    """Median milliseconds per call at ``batch`` in ``runtime`` (``"onnxruntime"``, ``"executorch"``, ``"openvino"`` or
    ``"litert"``).

    ``model_or_path`` is an ``nn.Module`` (exported for that runtime to a temporary file, checked against
    PyTorch, then timed) or an ``.onnx`` / ``.pte`` / ``.xml`` / ``.tflite`` file (its runtime is implied by the suffix; naming
    another one is a ConfigError). One thread by default, as budgets compare like for like.
    """
    check_positive("batch", batch)
    if isinstance(model_or_path, nn.Module):
        runtime = check_runtime(runtime or "onnxruntime")
        with tempfile.TemporaryDirectory(prefix="edgeprune-latency-") as folder:
            path = Path(folder) / FILE_NAMES[runtime]
            export_for(model_or_path, path, runtime, batch=batch, input_shape=input_shape)
            return latency_ms(path, batch, runtime, input_shape=input_shape, threads=threads, runs=runs, warmup=warmup)
    implied = runtime_of(model_or_path)
    if runtime is not None and check_runtime(runtime) != implied:
        raise ConfigError(f"runtime {runtime!r} cannot run {str(model_or_path)!r} (a {implied} file)")
    timer = {"executorch": et_latency, "openvino": ov_latency, "litert": lrt_latency}.get(implied, ort_latency)
    return timer(Path(model_or_path), input_shape, batch_size=batch, runs=runs, warmup=warmup, threads=threads)["median_ms"]


def compare(paths: dict[str, str | Path], batch: int = 1, *, rounds: int = 7, runs: int = 20, warmup: int = 10,
            threads: int = 1, input_shape: tuple[int, ...] | None = None) -> dict[str, dict]:
    """Time every ``.onnx`` / ``.pte`` / ``.xml`` / ``.tflite`` of ``paths`` ({name: path}) in interleaved rounds at ``batch``.

    Each round times ``runs`` calls of every artifact in turn (more where they take less than
    :data:`~edgeprune.measure.latency.ALTERNATION_BLOCK_MS`; after ``warmup`` calls each, once:
    :func:`edgeprune.measure.latency.time_rounds`); the
    figure is the median of the round medians, with the round medians kept. Returns {name: {"median_ms",
    "rounds_ms", "runtime", "batch_size", "threads"}}.
    """
    check_positive("rounds", rounds)
    check_positive("runs", runs)
    if any(runtime_of(p) == "executorch" for p in paths.values()):
        set_et_threads(threads)  # before the programs are loaded (see set_et_threads)
    calls = {}
    for name, path in paths.items():
        if runtime_of(path) == "executorch":
            calls[name] = ("executorch", _et_call(Program(path), path, batch, input_shape))
        elif runtime_of(path) == "openvino":
            calls[name] = ("openvino", ov_call(path, batch, threads, input_shape))
        elif runtime_of(path) == "litert":
            calls[name] = ("litert", lrt_call(path, batch, threads, input_shape))
        else:
            session = ort_session(path, threads=threads)
            declared = session.get_inputs()[0]
            shape = tuple(input_shape or declared.shape[1:])
            feed = {declared.name: np.random.default_rng(0).standard_normal((batch, *shape)).astype(np.float32)}
            calls[name] = ("onnxruntime", lambda s=session, f=feed: s.run(None, f))
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        medians = time_rounds({name: call for name, (_, call) in calls.items()}, rounds=rounds, per_round=runs, warmup=warmup,
                              min_block_ms=ALTERNATION_BLOCK_MS if len(calls) > 1 else 0.0)
    finally:
        torch.set_num_threads(old)
    return {name: {"median_ms": statistics.median(m), "rounds_ms": m, "runtime": calls[name][0], "batch_size": batch,
                   "threads": threads} for name, m in medians.items()}
