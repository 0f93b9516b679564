"""Every budget kind measured on a model, beside the input model it is relative to.

    meter = Meter(dense_model, example)
    meter.value(small, parse("latency<=50%"))   # ms: the input model's latency / the ratio timed side by side
    fits, limit = meter.limit(parse("size<=400KB"))
    meter.deploy(small)                          # ONNX bytes (FP32, INT8), ORT latency and paired speed-ups

Latency is timed with one thread in ONNX Runtime, ExecuTorch, OpenVINO or LiteRT. A relative latency budget is one paired
measurement of the candidate and the input model (alternating blocks of calls), scaled to the input model's reference:
machine load that slows both alike does not move it. The input model's exports are written once per meter.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
import weakref
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import torch
from torch import nn

from edgeprune import devices
from edgeprune.devices import Device
from edgeprune.errors import ModelError
from edgeprune.export import sparse
from edgeprune.export.et_latency import FILE_NAMES, compare, export_for, latency_ms
from edgeprune.export.int8 import quantize
from edgeprune.export.onnx import export_for_timing, export_onnx
from edgeprune.export.ort_latency import ort_latency, paired_latency
from edgeprune.measure import macs, param_count, prunable_weights
from edgeprune.measure.budget import Budget, kind_of
from edgeprune.measure.latency import busy_reasons, speedup

LATENCY_BATCHES = (1, 32)  # the batches deploy metrics time
# a deploy timing at one batch (the input model's, or a candidate's beside it) takes about this long at most, in fewer
# rounds than the meter's where calls are slow (timm's HaloNet-26t at 256 px runs 3.3 s a call at batch 32: 20 paired
# rounds took 90 s for every candidate); see measure.latency.time_rounds
DEPLOY_SECONDS = 15.0
CONFIRM_FACTOR = 3  # a confirming latency measurement times this many times the runs
CONFIRM_TIMINGS = 2  # ... that many times over, keeping the worst


class Meter:
    """Measures budgets on pruned copies of ``model`` (the input model) for inputs like ``example``."""

    def __init__(self, model: nn.Module, example: torch.Tensor, latency_runs: int = 20):
        self.model, self.example, self.latency_runs = model, example[:1], latency_runs
        self.dense = {"params": param_count(model), "macs": macs(model, self.example).dense,
                      "prunable": sum(w.numel() for w in prunable_weights(model).values())}
        self.cache: dict = {}  # the input model's measured values and exported files
        self._folder: Path | None = None

    def files(self) -> Path:
        """The folder of the input model's exports: made once, removed with the meter."""
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="edgeprune-dense-"))
            weakref.finalize(self, shutil.rmtree, self._folder, True)
        return self._folder

    @property
    def shape(self) -> tuple:
        return tuple(self.example.shape[1:])

    # -- budgets ------------------------------------------------------------------------------------
    def value(self, model: nn.Module, budget, *, confirm: bool = False, shipped: bool | None = None) -> float:
        """The budget's quantity measured on ``model`` (sparsity: fraction of the input's prunable weights removed).
        ``confirm``: a latency timed :data:`CONFIRM_TIMINGS` times with :data:`CONFIRM_FACTOR` times the runs, the worst
        kept: the last word of a bisection (which keeps the least-pruned model that once timed inside the limit: a noisy
        timing may have let a slow one in, and one timing can be far off: a stalled reference call made a model timed
        at 60 % of the input model's latency read 37 %).
        ``shipped``: an ONNX latency times the shipped exporter's file (default: when confirming), else the fast
        exporter's (equal speed in ONNX Runtime, a tenth of the export time)."""
        kind = kind_of(budget)
        shipped = confirm if shipped is None else shipped
        if kind == "sparsity":
            return 1.0 - sum(w.numel() for w in prunable_weights(model).values()) / max(self.dense["prunable"], 1)
        if kind == "params":
            return float(param_count(model))
        if kind == "macs":
            return float(macs(model, self.example).dense)
        with tempfile.TemporaryDirectory(prefix="edgeprune-budget-") as folder:
            if kind == "latency":
                self._warn_if_busy(budget)
                runs = self.latency_runs * (CONFIRM_FACTOR if confirm else 1)
                timer = self._timer(model, budget, Path(folder), runs, shipped)
                return max(timer() for _ in range(CONFIRM_TIMINGS if confirm else 1))
            if kind == "size" and budget.sparse:
                return float(sparse.save(model, Path(folder) / "model.epz", values=budget.precision)["bytes"])
            path = Path(folder) / "model.onnx"
            export_onnx(model, path, input_shape=self.shape)
            if budget.precision == "int8":
                return float(quantize(path, Path(folder) / "int8.onnx", "dynamic", preprocess=False)["bytes"])
            return float(path.stat().st_size)

    def _warn_if_busy(self, budget) -> None:
        """Once per meter: a warning when a latency budget is timed on this machine while its load average says other
        work runs (a device's load is its own)."""
        if budget.device or "busy" in self.cache:
            return
        self.cache["busy"] = reasons = busy_reasons([])
        if reasons:
            warnings.warn(f"budget {budget} is timed while this machine looks busy ({'; '.join(reasons)}): other work "
                          "slows the input model, whose weights stream from memory, more than a small candidate whose "
                          "weights stay in its core's cache, so speed-ups read high; calibrate on a quiet machine or on "
                          "the device (latency<=...@DEVICE)", stacklevel=2)

    def predicted(self, model: nn.Module, budget) -> float:
        """:meth:`value`, except FP32 ONNX bytes: predicted as the input model's other bytes plus 4 per stored number
        (parameters and floating-point buffers; the export is checked against it when it matters)."""
        if not predictable(budget):
            return self.value(model, budget)
        return self.dense_value(budget) - 4 * stored_numbers(self.model) + 4 * stored_numbers(model)

    def dense_value(self, budget: Budget) -> float:
        """The input model's value of ``budget``'s quantity (measured once)."""
        key = ("dense", budget.quantity)
        if key not in self.cache:
            self.cache[key] = self.dense.get(budget.kind) or self.value(self.model, budget)
        return self.cache[key]

    def limit(self, budget) -> tuple[Callable[[float], bool], float]:
        """(does a measured value fit, the absolute limit) of ``budget``."""
        if kind_of(budget) == "sparsity":
            return (lambda v: v >= float(budget) - 1e-9), float(budget)
        limit = budget.limit(self.dense_value(budget)) if budget.relative else float(budget)
        return (lambda v: v <= limit), limit

    # -- deploy metrics -----------------------------------------------------------------------------
    def deploy(self, model: nn.Module) -> dict:
        """ONNX bytes (FP32, INT8) and ONNX Runtime latency (1 thread, batch 1 and 32) of ``model``; each batch one
        paired measurement beside the input model's file, giving ``speedup_bN`` and the p10/p90 of the per-round
        ratios (``speedup_spread_bN``). The input model's own figures: :meth:`dense_deploy`.
        Timed and quantized on the fast exporter's file, which ONNX Runtime runs as fast as the shipped one (a candidate's
        deploy metrics: 1.4-2.4 s instead of 3-10 s, benchmarks/timing_export.py --part deploy); the bytes are the shipped
        file's (:meth:`_shipped_bytes`)."""
        return self._deploy(model, reference=self.dense_onnx(shipped=False))

    def dense_deploy(self) -> dict:
        if "deploy-dense" not in self.cache:
            self.cache["deploy-dense"] = self._deploy(self.model)
        return self.cache["deploy-dense"]

    def _deploy(self, model: nn.Module, reference: Path | None = None) -> dict:
        with tempfile.TemporaryDirectory(prefix="edgeprune-deploy-") as folder:
            path = self.dense_onnx(shipped=False) if model is self.model else Path(folder) / "model.onnx"
            if model is not self.model:
                export_for_timing(model, path, input_shape=self.shape)
            out = self._shipped_bytes(model, path, Path(folder))
            for b in LATENCY_BATCHES:
                if reference is None:
                    timed = ort_latency(path, batch_size=b, runs=self.latency_runs, threads=1, max_seconds=DEPLOY_SECONDS)
                    out[f"ort_latency_ms_b{b}"] = timed["median_ms"]
                    if timed["runs"] < self.latency_runs:
                        out[f"latency_rounds_b{b}"] = timed["runs"]
                    continue
                timed = paired_latency(reference, path, batch_size=b, runs=self.latency_runs, warmup=5, threads=1,
                                       max_seconds=DEPLOY_SECONDS)
                out[f"ort_latency_ms_b{b}"] = timed["second"]["median_ms"]
                out[f"speedup_b{b}"] = timed["ratio"]
                out[f"speedup_spread_b{b}"] = [timed["ratio_p10"], timed["ratio_p90"]]
                if timed["runs"] < self.latency_runs:
                    out[f"latency_rounds_b{b}"] = timed["runs"]
        return out

    def _shipped_bytes(self, model: nn.Module, fast: Path, folder: Path) -> dict:
        """FP32 and INT8 bytes of ``model``'s shipped ONNX file. Where the two exporters' files of the input model
        quantize alike, predicted without the shipped exporter: the input model's shipped bytes plus what ``fast``
        (the fast exporter's file of ``model``) gained or lost; else measured on a shipped export (timm's MobileViT
        as built: the fast exporter stores layers' equal weights once, behind an Identity node that dynamic
        quantization cannot take)."""
        dense = self._dense_bytes()
        if model is self.model:
            return {k: dense["shipped"][k] for k in ("onnx_bytes", "onnx_bytes_int8")}
        if dense["fast"] is not None:
            try:
                measured = _bytes(fast, folder)
                return {k: dense["shipped"][k] + measured[k] - dense["fast"][k] for k in measured}
            except ModelError:  # this candidate's fast file does not quantize: its shipped file decides
                pass
        export_onnx(model, folder / "shipped.onnx", input_shape=self.shape)
        return _bytes(folder / "shipped.onnx", folder)

    def _dense_bytes(self) -> dict:
        """The FP32 and INT8 bytes of the input model's shipped file and, where both files quantize the same weights
        (within 1 %), of its fast file (else None), measured once."""
        if "dense-bytes" not in self.cache:
            with tempfile.TemporaryDirectory(prefix="edgeprune-deploy-") as folder:
                shipped = _bytes(self.dense_onnx(), Path(folder), count=True)
                try:
                    fast = _bytes(self.dense_onnx(shipped=False), Path(folder), count=True)
                except ModelError:
                    fast = None
                weights = shipped["int8_weights"]
                alike = fast is not None and abs(fast["int8_weights"] - weights) <= 0.01 * weights
                self.cache["dense-bytes"] = {"shipped": shipped, "fast": fast if alike else None}
        return self.cache["dense-bytes"]

    # -- the input model's files ----------------------------------------------------------------------
    def dense_onnx(self, shipped: bool = True) -> Path:
        """The input model's ONNX export (``shipped``: by the shipped exporter, else the fast one that bisections time),
        written once (its folder lives as long as the meter)."""
        key = ("dense-onnx", shipped)
        if key not in self.cache:
            path = self.files() / ("model.onnx" if shipped else "model-for-timing.onnx")
            (export_onnx if shipped else export_for_timing)(self.model, path, input_shape=self.shape)
            self.cache[key] = path
        return self.cache[key]

    def _dense_file(self, runtime: str, batch: int) -> Path:
        """The input model's ExecuTorch or LiteRT program (planned for ``batch``) or OpenVINO IR, written once per meter."""
        key = (f"dense-{runtime}", batch)
        if key not in self.cache:
            path = self.files() / f"{runtime}-b{batch}" / FILE_NAMES[runtime]
            path.parent.mkdir()
            export_for(self.model, path, runtime, batch=batch, input_shape=self.shape)
            self.cache[key] = path
        return self.cache[key]

    def device(self, name: str) -> Device:
        """The device a budget names, connected once per meter."""
        key = ("device", name)
        if key not in self.cache:
            self.cache[key] = devices.get(name)
        return self.cache[key]

    def _timer(self, model: nn.Module, budget: Budget, folder: Path, runs: int, shipped: bool) -> Callable[[], float]:
        """``model`` exported once for the budget's runtime; each call of the returned function times it: milliseconds,
        on the budget's device if it names one. A relative budget times the candidate in alternation with the input
        model (``runs`` rounds) and scales the ratio to the input model's reference, so load that slows both alike
        does not move it. ``shipped``: an ONNX file by the shipped exporter, else the fast one (equal speed in ONNX
        Runtime, a tenth of the export time)."""
        runtime, batch = budget.runtime, budget.batch
        onnx = runtime == "onnxruntime"
        def reference() -> Path:  # the input model's file, written once per meter
            return self.dense_onnx(shipped=shipped) if onnx else self._dense_file(runtime, batch)

        if model is self.model:
            path = reference()
        else:
            path = folder / FILE_NAMES[runtime]
            if onnx:
                (export_onnx if shipped else export_for_timing)(model, path, input_shape=self.shape)
            else:
                export_for(model, path, runtime, batch=batch, input_shape=self.shape)
        relative = budget.relative and model is not self.model
        if budget.device:
            device = self.device(budget.device)
            if relative:
                return lambda: self.dense_value(budget) / device.paired(reference(), path, self.shape, batch, runs)["ratio"]
            return lambda: device.latency(path, self.shape, batch, runs)
        if relative and onnx:
            return lambda: self.dense_value(budget) / paired_latency(reference(), path, batch, runs=runs)["ratio"]
        if relative:
            def paired() -> float:
                timed = compare({"dense": reference(), "candidate": path}, batch, rounds=runs, runs=1, threads=1)
                return self.dense_value(budget) / speedup(timed["dense"]["rounds_ms"], timed["candidate"]["rounds_ms"])
            return paired
        if onnx:
            return lambda: float(ort_latency(path, batch_size=batch, runs=runs, threads=1)["median_ms"])
        return lambda: latency_ms(path, batch, runtime, input_shape=self.shape, runs=runs)


def predictable(budget) -> bool:
    """Whether :meth:`Meter.predicted` predicts ``budget``'s quantity (FP32 ONNX bytes) instead of measuring it."""
    return isinstance(budget, Budget) and budget.kind == "size" and budget.precision == "fp32" and not budget.sparse


def _bytes(path: Path, folder: Path, count: bool = False) -> dict:
    """FP32 and INT8 (dynamic) bytes of the ONNX file ``path``; ``count``: also how many weights INT8 stores."""
    out = {"onnx_bytes": path.stat().st_size,
           "onnx_bytes_int8": quantize(path, folder / "int8.onnx", "dynamic", preprocess=False)["bytes"]}
    if count:
        graph = onnx.load(str(folder / "int8.onnx")).graph
        out["int8_weights"] = sum(int(np.prod(t.dims)) for t in graph.initializer if t.data_type == onnx.TensorProto.INT8)
    return out


def stored_numbers(model: nn.Module) -> int:
    """Numbers an FP32 ONNX file stores: parameters and floating-point buffers (BatchNorm statistics)."""
    return param_count(model) + sum(b.numel() for b in model.buffers() if b.is_floating_point())


def speedup_warning(measured: dict, dense_macs: float) -> str | None:
    """A plain sentence when ONNX Runtime runs the pruned model less than half as much faster as its MACs promise:
    ``speedup_bN - 1 < (dense_macs / macs - 1) / 2`` at batch 1 or 32 (MACs x0.49 promise 2.04x: below 1.52x it
    is said). ``measured``: a record, or deploy metrics with ``macs``; None when nothing falls short, or nothing
    was measured."""
    pruned = measured.get("macs")
    if not pruned or not dense_macs or pruned >= dense_macs:
        return None
    promised = dense_macs / pruned
    short = [(b, measured[f"speedup_b{b}"]) for b in LATENCY_BATCHES
             if isinstance(measured.get(f"speedup_b{b}"), (int, float)) and measured[f"speedup_b{b}"] - 1 < (promised - 1) / 2]
    if not short:
        return None
    return (f"MACs x{pruned / dense_macs:.2f} but ONNX Runtime only "
            + " and ".join(f"{speedup:.2f}x faster at batch {b}" for b, speedup in short))
