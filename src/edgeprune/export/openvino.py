"""OpenVINO export: the ONNX file edgeprune already writes, converted to OpenVINO IR and checked in OpenVINO.

``openvino.convert_model`` reads the ``.onnx`` file (the dynamo export of :func:`~edgeprune.export.onnx.export_verified`,
so a model exports to OpenVINO exactly when it exports to ONNX) and ``openvino.save_model`` writes ``model.xml``
(the graph) beside ``model.bin`` (the weights) with FP32 weights: OpenVINO's default halves them to FP16. The
model is compiled on the CPU with ``INFERENCE_PRECISION_HINT=f32``: on CPUs with AVX512_BF16 or AMX OpenVINO
otherwise runs FP32 models in bfloat16 (logits off by ~1e-2), and parity is checked against PyTorch on every
output as for ONNX Runtime and ExecuTorch. ``INFERENCE_NUM_THREADS`` and the ``LATENCY`` hint set the threads.

INT8: OpenVINO runs a QDQ ONNX model in INT8 (its CPU plugin fuses QuantizeLinear/DequantizeLinear pairs into
integer kernels), so the static INT8 file of :func:`edgeprune.export.int8.quantize` is converted as it is; no
NNCF. Dynamic INT8 (``DynamicQuantizeLinear``, integer ops) has no OpenVINO form here.

``openvino`` is the optional ``[openvino]`` extra; without it every entry point raises DependencyError.
"""

from __future__ import annotations

import functools
import re
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgeprune import tasks as tasks_lib
from edgeprune.errors import ConfigError, DependencyError, ModelError, check_positive
from edgeprune.export.executorch import et_accuracy
from edgeprune.export.int8 import quantize
from edgeprune.export.onnx import (
    OUTPUT_NAME,
    PARITY_TOLERANCE,
    export_verified,
    in_chunks,
    logit_scale,
    max_difference,
    model_name,
    parity_failure,
    parity_limit,
    runner_metrics,
)

SUFFIX = ".xml"
COMPUTE_LAYERS = ("Convolution", "FullyConnected", "MatMul", "Deconvolution")  # the CPU plugin's names for the MAC layers
INSTALL_HINT = "pip install 'edgeprune[openvino]'"


@functools.cache
def openvino():
    """The ``openvino`` module; DependencyError (one line, how to install) without the extra."""
    try:
        import openvino as ov  # noqa: PLC0415  (the optional [openvino] extra, imported only when OpenVINO is asked for)
    except ImportError as exc:
        raise DependencyError(f"OpenVINO export needs the openvino package ({str(exc).splitlines()[0][:120]}); "
                              f"{INSTALL_HINT}") from None
    # OpenVINO's telemetry (unless opted out: docs/openvino.md) forks a child for each HTTP event; once JAX is loaded
    # (the litert extra), JAX warns on every fork. The child only posts the event and is terminated after a timeout.
    warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
    return ov


@functools.cache
def core():
    return openvino().Core()


def describe_conversion_failure(exc: BaseException) -> str:
    """One line naming the operators OpenVINO could not convert, else its first meaningful line."""
    text = str(exc)
    ops = re.findall(r"(?:No conversion rule found for operations|Conversion is failed for|"
                     r"conversion failed for operations?):\s*([^\n]+)", text, flags=re.IGNORECASE)
    names = [re.sub(r"-\d+$", "", op.strip()) for line in ops for op in line.split(",") if op.strip()]  # Det-18: Det
    # why a converter exists but failed here (a kernel larger than its input...): the last line of OpenVINO's detail
    reason = [line.strip() for line in text.split("Summary:")[0].splitlines()
              if line.strip() and not line.strip().startswith(("While validating", "Check ", "--", "[ONNX Frontend]"))]
    if names and "No conversion rule found" not in text and reason:
        return f"OpenVINO failed to convert ONNX op {', '.join(names)}: {reason[-1]}"[:300]
    if names:
        return f"ONNX op{'s' if len(names) > 1 else ''} {', '.join(names)} ha{'ve' if len(names) > 1 else 's'} no OpenVINO conversion"
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.startswith("Check ") and "FrontEnd API failed" not in line]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300]


def convert(onnx_path: str | Path, xml_path: str | Path, name: str = "the model") -> dict:
    """``onnx_path`` converted to OpenVINO IR at ``xml_path`` (+ ``.bin``), FP32 weights kept; ModelError (one line,
    naming the operator when OpenVINO says which) when it cannot be converted."""
    ov = openvino()
    xml_path = Path(xml_path)
    try:
        converted = ov.convert_model(str(onnx_path))
    except Exception as exc:  # noqa: BLE001  (OpConversionFailure, GeneralFailure...: all mean "cannot convert")
        raise ModelError(f"model {name!r} cannot be converted to OpenVINO: {describe_conversion_failure(exc)}") from None
    ov.save_model(converted, str(xml_path), compress_to_fp16=False)
    return {"path": str(xml_path), "bytes": xml_path.stat().st_size + xml_path.with_suffix(".bin").stat().st_size,
            "format": "openvino", "openvino": ov.get_version()}


class Compiled:
    """An IR compiled for the CPU (FP32 precision, ``threads`` inference threads, the LATENCY hint); ``run(x)``
    takes a batch of any size (an IR of a fixed batch runs it in padded chunks)."""

    def __init__(self, xml_path: str | Path, threads: int = 1, batch: int | None = None):
        check_positive("threads", threads)
        try:
            model = core().read_model(str(xml_path))
            if batch is not None:  # a static shape: what a deployment compiles, and what OpenVINO plans best
                shape = model.input(0).get_partial_shape()
                shape[0] = batch
                model.reshape({model.input(0): shape})
            config = {"INFERENCE_NUM_THREADS": int(threads), "PERFORMANCE_HINT": "LATENCY",
                      "INFERENCE_PRECISION_HINT": "f32"}
            self.compiled = core().compile_model(model, "CPU", config)
        except Exception as exc:  # noqa: BLE001  (OpenVINO raises RuntimeError / its own types with its own text)
            lines = [line for line in str(exc).splitlines() if line.strip()]
            raise ModelError(f"OpenVINO cannot load {str(xml_path)!r}: {(lines[-1] if lines else type(exc).__name__)[:200]}") from None
        self.request = self.compiled.create_infer_request()
        shape = self.compiled.input(0).get_partial_shape()
        self.max_batch = shape[0].get_length() if shape[0].is_static else None
        self.input_shape = tuple(d.get_length() if d.is_static else None for d in list(shape)[1:])
        names = [next(iter(o.get_names()), "") for o in self.compiled.outputs]
        self.logits_index = names.index(OUTPUT_NAME) if OUTPUT_NAME in names else 0

    def outputs(self, x: np.ndarray) -> list[np.ndarray]:
        """Every output of one call on exactly ``x``."""
        results = self.request.infer({0: np.ascontiguousarray(x, dtype=np.float32)})
        return [np.array(results[o]) for o in self.compiled.outputs]

    def run_all(self, x: torch.Tensor | np.ndarray) -> list[np.ndarray]:
        x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        return in_chunks(self.outputs, np.ascontiguousarray(x, dtype=np.float32), self.max_batch)

    def run(self, x: torch.Tensor | np.ndarray) -> np.ndarray:
        """The logits (the output named ``logits``, else the first) for a batch of any size."""
        return self.run_all(x)[self.logits_index]


def compute_precisions(compiled: Compiled) -> dict[str, int]:
    """{precision: count} of the layers that do the MACs in the compiled model, as the CPU plugin runs them
    (``u8``/``i8``: integer kernels; ``f32``): evidence that an INT8 IR runs in INT8, not dequantized to FP32."""
    counts: dict[str, int] = {}
    for op in compiled.compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        if info["layerType"].astype(str) in COMPUTE_LAYERS:
            precision = info["runtimePrecision"].astype(str)
            counts[precision] = counts.get(precision, 0) + 1
    return dict(sorted(counts.items()))


ov_accuracy = et_accuracy  # (top-1, images) of a compiled IR: ExecuTorch's count reads any runner with run(x) -> logits
ov_metrics = runner_metrics("OpenVINO IR")  # the task's metrics of a compiled IR; a detector's (its dense part) refused


def ov_parity(model: nn.Module, compiled: Compiled, inputs: torch.Tensor) -> float:
    """Max |OpenVINO - PyTorch| over ``inputs`` and every output of the model (eval mode)."""
    return max_difference(model, inputs, compiled.run_all(inputs), "the OpenVINO IR")


def convert_checked(model: nn.Module, onnx_path: str | Path, xml_path: str | Path, inputs: torch.Tensor, *,
                    int8: bool = False, tolerance: float = PARITY_TOLERANCE) -> dict:
    """Convert ``onnx_path`` (exported from ``model``; a QDQ INT8 file with ``int8``) to ``xml_path`` and check it in
    OpenVINO on ``inputs`` (the whole batch and batch 1). FP32: within ``tolerance`` of PyTorch (relative above
    logits of 1) or ModelError and nothing is kept; INT8: ``max_abs_diff_fp32`` recorded, not enforced (measure the
    accuracy with :func:`ov_accuracy`)."""
    xml_path, name = Path(xml_path), model_name(model)
    model = tasks_lib.current().deployable(model)
    start = time.perf_counter()
    info = convert(onnx_path, xml_path, name)
    try:
        compiled = Compiled(xml_path)
        diff = max(ov_parity(model, compiled, x) for x in (inputs, inputs[:1]))
        scale = logit_scale(model, inputs)
        limit = parity_limit(tolerance, scale)
        if not int8 and not diff <= limit:  # also catches NaN
            raise parity_failure("OpenVINO", name, diff, limit, scale)
        info["compute_precisions"] = compute_precisions(compiled)
    except BaseException:
        xml_path.unlink(missing_ok=True)
        xml_path.with_suffix(".bin").unlink(missing_ok=True)
        raise
    info.update({"device": "CPU", "precision": "INT8 (QDQ ONNX)" if int8 else "FP32", "input_shape": list(inputs.shape[1:]),
                 "max_abs_diff" if not int8 else "max_abs_diff_fp32": diff, "tolerance": None if int8 else limit,
                 "logit_scale": scale, "parity_inputs": len(inputs), "seconds": time.perf_counter() - start})
    return info


def export_openvino(model: nn.Module, path: str | Path, inputs: torch.Tensor, *, int8: bool = False, calibration=None,
                    calib_batches: int = 16, calib_batch_size: int = 32, tolerance: float = PARITY_TOLERANCE) -> dict:
    """Write ``model`` as OpenVINO IR at ``path`` (``.xml`` + ``.bin``), checked in OpenVINO (see :func:`convert_checked`).

    The ONNX file it is converted from is exported (and checked in ONNX Runtime) in a temporary folder; with ``int8``,
    quantized static INT8 (QDQ) on ``calibration`` (a training dataset or DataLoader) first.
    """
    openvino()  # the install hint before any export
    if int8 and calibration is None:
        raise ConfigError("INT8 OpenVINO export needs calibration data; pass --dataset (its training split is used)")
    with tempfile.TemporaryDirectory(prefix="edgeprune-openvino-") as folder:
        onnx_path = Path(folder) / "model.onnx"
        export_verified(model, onnx_path, inputs, tolerance=tolerance)
        if int8:
            quantized = quantize(onnx_path, Path(folder) / "model.int8.onnx", "static", calibration_data=calibration,
                                 calib_batches=calib_batches, calib_batch_size=calib_batch_size)
            onnx_path = Path(quantized["path"])
        return convert_checked(model, onnx_path, path, inputs, int8=int8, tolerance=tolerance)
