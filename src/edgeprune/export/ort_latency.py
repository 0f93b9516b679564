"""ONNX Runtime CPU latency, timed and reported exactly like :func:`edgeprune.measure.latency`.

The session runs on the CPU execution provider with ``intra_op_num_threads`` = ``threads`` (default:
torch's thread count, so torch and ORT figures compare like for like) and one inter-op thread.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from edgeprune.errors import ConfigError, check_positive
from edgeprune.export.onnx import export_verified, fixed_batch, ort_session
from edgeprune.measure.latency import time_paired, timed_latency


def channel_block() -> int:
    """The channel width ONNX Runtime's CPU convolutions work in on this machine: its NCHWc block (MLAS), 16
    on CPUs with AVX-512 and 8 on the other x86-64 CPUs. A conv whose widths are not multiples of it falls
    back to the slower im2col + GEMM path, so a pruned model with odd widths saves MACs but little time
    (``benchmarks/aligned_widths.py``). Other CPUs get 8, a multiple of their vector width."""
    return 16 if torch.backends.cpu.get_cpu_capability().startswith("AVX512") else 8


def ort_latency(model: str | os.PathLike, input_shape: tuple[int, ...] | None = None, batch_size: int = 1, runs: int = 50,
                warmup: int = 10, threads: int | None = None, max_seconds: float | None = None) -> dict:
    """Median (and p10/p90/mean) milliseconds per ``session.run`` on a random batch of ``batch_size`` (fewer runs where
    they would take more than ``max_seconds``: :func:`edgeprune.measure.latency.time_rounds`).

    ``model`` is an ``.onnx`` path; ``input_shape`` (C, H, W) defaults to the model's input shape. The
    returned dict has the keys of :func:`edgeprune.measure.latency` with ``runtime="onnxruntime"``.
    """

    def make_call(threads: int):
        session = ort_session(Path(model), threads=threads)
        declared = session.get_inputs()[0]
        fixed = fixed_batch(session)
        if fixed is not None and fixed != batch_size:
            raise ConfigError(f"{str(model)!r} was exported with a fixed batch of {fixed}; cannot time batch {batch_size} "
                              f"(re-export with --batch dynamic)")
        shape = input_shape
        if shape is None:
            dims = declared.shape[1:]
            if not all(isinstance(d, int) and d > 0 for d in dims):
                raise ConfigError(f"{str(model)!r} has a symbolic input shape {declared.shape}; pass input_shape")
            shape = tuple(dims)
        feed = {declared.name: np.random.default_rng(0).standard_normal((batch_size, *shape)).astype(np.float32)}
        return lambda: session.run(None, feed)

    return timed_latency("onnxruntime", make_call, batch_size, runs, warmup, threads, max_seconds)


def paired_latency(first: str | os.PathLike, second: str | os.PathLike, batch_size: int = 1, runs: int = 20,
                   warmup: int = 5, threads: int = 1, max_seconds: float | None = None) -> dict:
    """Two ``.onnx`` files timed in alternation (``runs`` rounds; in each, each file runs for at least
    :data:`edgeprune.measure.latency.ALTERNATION_BLOCK_MS`, warm as a deployed model runs), so a change of machine
    load between measurements moves both alike and their ratio stays meaningful: the one way edgeprune times a
    model against a reference (speed-ups, relative latency budgets).

    Returns {"first": {...}, "second": {...}} (median/p10/p90/mean ms and runs of each, as
    :func:`edgeprune.measure.latency.time_paired`),
    ``ratio`` the speed-up of ``second`` over the reference ``first`` (:func:`edgeprune.measure.latency.speedup`),
    ``ratio_p10`` / ``ratio_p90`` of the per-round ratios, and ``runs`` (the rounds timed: fewer where ``runs`` would
    take more than ``max_seconds``, see :func:`edgeprune.measure.latency.time_rounds`), ``batch_size``, ``threads``.
    """
    check_positive("runs", runs)
    check_positive("warmup", warmup, allow_zero=True)
    timed = time_paired(_ort_call(first, batch_size, threads), _ort_call(second, batch_size, threads), runs=runs,
                        warmup=warmup, max_seconds=max_seconds)
    return {**timed, "runs": timed["first"]["runs"], "batch_size": batch_size, "threads": threads}


def _ort_call(path: str | os.PathLike, batch_size: int, threads: int):
    session = ort_session(Path(path), threads=threads)
    declared = session.get_inputs()[0]
    shape = (batch_size, *declared.shape[1:])
    feed = {declared.name: np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
    return lambda: session.run(None, feed)


def exported_latency(model: torch.nn.Module, input_shape: tuple, batches=(1,), runs: int = 30,
                     path: str | os.PathLike | None = None) -> dict[int, float]:
    """Export ``model`` to ONNX (checked against PyTorch) and time it in ONNX Runtime: median ms per batch size.

    The ``.onnx`` file is kept at ``path`` when given (a deployable artifact), else written to a temporary
    folder and removed. Raises the export's ModelError when the model cannot be exported.
    """
    example = torch.randn(4, *input_shape, generator=torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory(prefix="edgeprune-ort-") as folder:
        target = Path(path) if path is not None else Path(folder) / "model.onnx"
        export_verified(model.eval(), target, example)
        return {b: ort_latency(target, input_shape, batch_size=b, runs=runs)["median_ms"] for b in batches}

