"""Every runtime edgeprune exports to, in one table: its file, how a model is written to it (FP32 or static INT8,
checked in the runtime), how a file is scored there, and whether its package is installed.

    for runtime in installed():
        info = runtime.write(model, folder / f"model{runtime.suffix}", inputs)              # parity checked
        q = runtime.write(model, folder / f"model.int8{runtime.suffix}", inputs, calibration=train_split)
        runtime.score(folder / f"model.int8{runtime.suffix}", model, inputs, test_split)   # {"acc": ...}

The record keys follow the file and the runtime: ``onnx_bytes`` / ``ort_ms_b1``, ``pte_bytes`` / ``et_ms_b1``,
``xml_bytes`` / ``ov_ms_b1`` (the ``.bin`` counted in), ``tflite_bytes`` / ``lrt_ms_b1``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from edgeprune import tasks as tasks_lib
from edgeprune.errors import DependencyError
from edgeprune.export import executorch as et_lib
from edgeprune.export import litert as lrt_lib
from edgeprune.export import openvino as ov_lib
from edgeprune.export.int8 import quantize
from edgeprune.export.onnx import export_verified, ort_accuracy, ort_metrics, ort_session

CALIB_BATCHES, CALIB_BATCH_SIZE = 16, 32  # what `edgeprune export --int8 static` calibrates on by default


def _write_onnx(model: nn.Module, path: Path, inputs: torch.Tensor, calibration) -> dict:
    if calibration is None:
        return export_verified(model, path, inputs)
    with tempfile.TemporaryDirectory(prefix="edgeprune-int8-") as folder:
        export_verified(model, Path(folder) / "model.onnx", inputs)
        return quantize(Path(folder) / "model.onnx", path, "static", calibration_data=calibration,
                        calib_batches=CALIB_BATCHES, calib_batch_size=CALIB_BATCH_SIZE)


def _program_writer(export: Callable) -> Callable:
    """ExecuTorch's and LiteRT's writer: ``export(model, path, inputs, ...)``; INT8 calibrated on batches of the
    training split."""
    def write(model: nn.Module, path: Path, inputs: torch.Tensor, calibration) -> dict:
        if calibration is None:
            return export(model, path, inputs)
        batches = et_lib.calibration_batches(calibration, CALIB_BATCHES, CALIB_BATCH_SIZE)
        return export(model, path, inputs, int8=True, calibration=batches)
    return write


def _write_openvino(model: nn.Module, path: Path, inputs: torch.Tensor, calibration) -> dict:
    return ov_lib.export_openvino(model, path, inputs, int8=calibration is not None, calibration=calibration,
                                  calib_batches=CALIB_BATCHES, calib_batch_size=CALIB_BATCH_SIZE)


@dataclass(frozen=True)
class Runtime:
    name: str  # the export format: onnx, executorch, openvino, litert
    key: str  # in latency keys: ort_ms_b1, et_ms_b1, ov_ms_b1, lrt_ms_b1
    title: str
    suffix: str  # the file: its bytes are f"{suffix[1:]}_bytes"
    package: Callable  # raises DependencyError (one line, how to install) when the extra is missing
    writer: Callable
    load: Callable  # a file -> the runtime's session
    accuracy: Callable  # (session, test data) -> top-1 (a float or (top-1, images))
    metrics: Callable  # (session, model, example, test data, task) -> the task's metrics

    @property
    def bytes_key(self) -> str:
        return f"{self.suffix[1:]}_bytes"

    def installed(self) -> bool:
        try:
            self.package()
        except DependencyError:
            return False
        return True

    def write(self, model: nn.Module, path: str | Path, inputs: torch.Tensor, *, calibration=None) -> dict:
        """``model`` written to ``path`` and checked in this runtime on ``inputs``: FP32 within the parity tolerance
        (else ModelError, nothing written), or static INT8 calibrated on ``calibration`` (a training split)."""
        return self.writer(model, Path(path), inputs, calibration)

    def score(self, path: str | Path, model: nn.Module, inputs: torch.Tensor, data) -> dict[str, float]:
        """The current task's test figures of the file at ``path`` on ``data``, run in this runtime: top-1 for a
        classifier ({"acc": ...}), else the task's metrics (ModelError for a file holding part of the model)."""
        session = self.load(Path(path))
        task = tasks_lib.current()
        if isinstance(task, tasks_lib.Classification):
            top1 = self.accuracy(session, data)
            return {task.metric: top1[0] if isinstance(top1, tuple) else top1}
        return self.metrics(session, model, inputs[:1], data, task)


RUNTIMES = (
    Runtime("onnx", "ort", "ONNX Runtime", ".onnx", lambda: None, _write_onnx, ort_session, ort_accuracy, ort_metrics),
    Runtime("executorch", "et", "ExecuTorch", ".pte", et_lib.executorch,  # export_executorch looked up at each call
            _program_writer(lambda *args, **kwargs: et_lib.export_executorch(*args, **kwargs)), et_lib.Program,
            et_lib.et_accuracy, et_lib.et_metrics),
    Runtime("openvino", "ov", "OpenVINO", ".xml", ov_lib.openvino, _write_openvino, ov_lib.Compiled, ov_lib.ov_accuracy,
            ov_lib.ov_metrics),
    Runtime("litert", "lrt", "LiteRT", ".tflite", lrt_lib.litert, _program_writer(lrt_lib.export_litert), lrt_lib.Interpreter,
            lrt_lib.lrt_accuracy, lrt_lib.lrt_metrics),
)

BY_KEY = {runtime.key: runtime for runtime in RUNTIMES}


def named(runtime: str) -> Runtime:
    """The runtime a budget or a device names: "onnxruntime", "executorch", "openvino" or "litert"."""
    return next(r for r in RUNTIMES if r.name == ("onnx" if runtime == "onnxruntime" else runtime))


def installed() -> list[Runtime]:
    """The runtimes whose packages are installed here, ONNX Runtime first."""
    return [r for r in RUNTIMES if r.installed()]


def missing() -> list[str]:
    """The one-line install hint of every runtime that is not installed."""
    hints = []
    for runtime in RUNTIMES:
        try:
            runtime.package()
        except DependencyError as exc:
            hints.append(str(exc))
    return hints
