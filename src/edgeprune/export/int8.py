"""INT8 post-training quantization of an exported ONNX model with ``onnxruntime.quantization``.

* ``static``: QDQ format, per-channel symmetric INT8 weights, activations calibrated (MinMax by default)
  on batches of the training split with augmentation off. ``quant_pre_process`` (symbolic shape
  inference + ORT graph optimisation, which folds BatchNorm into the preceding Conv) runs first.
  Activation type follows ORT's CPU guidance: UINT8 on x86 (``reduce_range`` when the CPU lacks VNNI),
  INT8 elsewhere.
* ``dynamic``: weights quantized offline (per-channel INT8), activations quantized at run time.

Accuracy is always measured in ONNX Runtime, never by simulating INT8 in PyTorch.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Literal

from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process
from torch import nn

from edgeprune.data import make_loader
from edgeprune.errors import ConfigError, ModelError, check_positive
from edgeprune.export.onnx import DEFAULT_OPSET, export_verified, fixed_batch, ort_accuracy, ort_session, quiet_exporters
from edgeprune.utils.io import atomic_path

MODES = ("static", "dynamic")
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")

Mode = Literal["static", "dynamic"]


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ConfigError(f"--int8 {mode!r} is not a quantization mode; allowed: {', '.join(MODES)}")
    return mode


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_quant_settings() -> dict:
    """Activation type and reduce_range per ORT's CPU guidance for this machine."""
    x86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")
    if not x86:
        return {"activation_type": "QInt8", "reduce_range": False, "why": "non-x86 CPU: symmetric INT8 activations"}
    vnni = bool({"avx512_vnni", "avx_vnni", "avx_vnni_int8"} & _cpu_flags())
    return {"activation_type": "QUInt8", "reduce_range": not vnni,
            "why": f"x86 CPU {'with' if vnni else 'without'} VNNI: UINT8 activations"
                   f"{'' if vnni else ', 7-bit weights (reduce_range) against saturation'}"}


def calibration_reader(dataset, batches: int, batch_size: int, *, seed: int = 0, input_name: str = "input"):
    """An ORT CalibrationDataReader over ``batches`` shuffled batches of ``dataset`` (augmentation off)."""
    check_positive("calibration batches", batches)
    check_positive("calibration batch size", batch_size)
    plain = dataset.with_augment(False) if hasattr(dataset, "with_augment") else dataset
    loader = make_loader(plain, batch_size, shuffle=True, seed=seed, drop_last=len(plain) >= batch_size)

    class _Reader(CalibrationDataReader):
        def __init__(self):
            self._batches = (
                {input_name: x.numpy()} for i, (x, _) in enumerate(loader) if i < batches
            )

        def get_next(self):
            return next(self._batches, None)

    return _Reader()


def quantize(
    onnx_path: str | Path,
    out_path: str | Path,
    mode: Mode = "static",
    *,
    calibration_data=None,
    calib_batches: int = 16,
    calib_batch_size: int = 32,
    calib_method: str = "minmax",
    seed: int = 0,
    preprocess: bool = True,
) -> dict:
    """Quantize ``onnx_path`` to ``out_path`` (written atomically); returns the settings and sizes.

    ``calibration_data`` (a dataset, normally the training split) is required for ``static``. A model with
    a fixed batch dimension is calibrated with batches of that size.
    """
    check_mode(mode)
    if calib_method not in CALIBRATION_METHODS:
        raise ConfigError(f"calibration method {calib_method!r} is not allowed; allowed: {', '.join(CALIBRATION_METHODS)}")
    if mode == "static" and calibration_data is None:
        raise ConfigError("static INT8 quantization needs calibration data; pass --dataset (its training split is used)")
    onnx_path, out_path = Path(onnx_path), Path(out_path)
    start = time.perf_counter()
    info: dict = {"mode": mode, "format": "QDQ" if mode == "static" else "dynamic (QOperator integer ops)",
                  "per_channel": True, "weight_type": "QInt8"}
    with tempfile.TemporaryDirectory(prefix="edgeprune-int8-") as work:
        source = onnx_path
        if preprocess:
            prepared = Path(work) / "prepared.onnx"
            try:
                with quiet_exporters():
                    quant_pre_process(str(onnx_path), str(prepared), skip_symbolic_shape=False)
                source = prepared
                info["preprocess"] = "quant_pre_process (shape inference + graph optimisation)"
            except Exception as exc:  # noqa: BLE001  (it fails on some graphs; quantizing the raw export still works)
                info["preprocess"] = f"skipped: {type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
        with atomic_path(out_path) as tmp:
            try:
                if mode == "static":
                    cpu = cpu_quant_settings()
                    batch = fixed_batch(ort_session(source)) or calib_batch_size
                    reader = calibration_reader(calibration_data, calib_batches, batch, seed=seed)
                    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                              "percentile": CalibrationMethod.Percentile}[calib_method]
                    with quiet_exporters():  # ORT logs per-tensor fallbacks (e.g. LayerNorm scales) on the root logger
                        quantize_static(
                            str(source), str(tmp), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                            reduce_range=cpu["reduce_range"], activation_type=getattr(QuantType, cpu["activation_type"]),
                            weight_type=QuantType.QInt8, calibrate_method=method,
                            extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
                        )
                    info.update({"activation_type": cpu["activation_type"], "reduce_range": cpu["reduce_range"],
                                 "cpu_rule": cpu["why"], "calibration": {
                                     "method": calib_method, "batches": calib_batches, "batch_size": batch,
                                     "images": min(calib_batches * batch, len(calibration_data)),
                                     "split": "train (augmentation off)", "seed": seed}})
                else:
                    with quiet_exporters():
                        quantize_dynamic(str(source), str(tmp), per_channel=True, weight_type=QuantType.QInt8)
                    info.update({"activation_type": "dynamic (UINT8 at run time)", "reduce_range": False})
            except (ConfigError, ModelError):
                raise
            except Exception as exc:  # noqa: BLE001
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                raise ModelError(f"INT8 {mode} quantization of {str(onnx_path)!r} failed: "
                                 f"{type(exc).__name__}: {first[:200]}") from None
            ort_session(tmp)  # the quantized graph must load before it replaces anything
    info.update({"path": str(out_path), "bytes": out_path.stat().st_size, "seconds": time.perf_counter() - start})
    return info


def evaluate_int8(
    model: nn.Module,
    splits,
    mode: Mode = "static",
    *,
    calib_batches: int = 16,
    calib_batch_size: int = 32,
    workdir: str | os.PathLike | None = None,
    opset: int | None = None,
    batch_size: int = 256,
    seed: int = 0,
) -> dict:
    """FP32 and INT8 top-1 on ``splits.test``, both measured in ONNX Runtime, and the two files' sizes.

    Exports ``model`` (parity-checked on test images), quantizes it (calibration on ``splits.train``) and
    returns ``{"fp32_acc_ort", "int8_acc_ort", "onnx_bytes", "int8_onnx_bytes", "mode", "max_abs_diff", ...}``.
    Files go to ``workdir`` (``model.onnx``, ``model.int8.onnx``), or to a temporary folder removed after.
    """
    check_mode(mode)
    with tempfile.TemporaryDirectory(prefix="edgeprune-eval-int8-") as tmp:
        folder = Path(workdir) if workdir is not None else Path(tmp)
        inputs = next(iter(make_loader(splits.test, 64)))[0]
        fp32 = export_verified(model, folder / "model.onnx", inputs, opset=opset or DEFAULT_OPSET)
        int8 = quantize(folder / "model.onnx", folder / "model.int8.onnx", mode, calibration_data=splits.train,
                        calib_batches=calib_batches, calib_batch_size=calib_batch_size, seed=seed)
        return {
            "mode": mode,
            "fp32_acc_ort": ort_accuracy(ort_session(folder / "model.onnx"), splits.test, batch_size),
            "int8_acc_ort": ort_accuracy(ort_session(folder / "model.int8.onnx"), splits.test, batch_size),
            "onnx_bytes": fp32["bytes"],
            "int8_onnx_bytes": int8["bytes"],
            "max_abs_diff": fp32["max_abs_diff"],
            "int8": {k: v for k, v in int8.items() if k != "path"},
            "test_images": len(splits.test),
        }
