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

import itertools
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Literal

import numpy as np
from torch import nn
from torch.utils.data import DataLoader

from edgeprune.data.loaders import batches as checked_batches
from edgeprune.data.loaders import checked, first_batch, make_loader
from edgeprune.errors import ConfigError, DataError, ModelError, check_positive
from edgeprune.export.onnx import DEFAULT_OPSET, export_verified, fixed_batch, ort_run, ort_session, quiet_exporters
from edgeprune.utils.io import atomic_path
from edgeprune.utils.lazy import OnFirstUse

quantization = OnFirstUse("onnxruntime.quantization")  # imports ONNX
shape_inference = OnFirstUse("onnxruntime.quantization.shape_inference")

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
    """An ORT CalibrationDataReader over ``batches`` shuffled batches of ``dataset`` (augmentation off).

    A DataLoader gives its first ``batches`` batches as it yields them (its order, batch size and
    augmentation; ``batch_size`` and ``seed`` are not used). The reader's ``images`` counts what it handed
    out. The first batch is read and checked here: DataError for malformed or empty data.
    """
    check_positive("calibration batches", batches)
    check_positive("calibration batch size", batch_size)
    if isinstance(dataset, DataLoader):
        loader = dataset
    else:
        plain = dataset.with_augment(False) if hasattr(dataset, "with_augment") else dataset
        loader = make_loader(plain, batch_size, shuffle=True, seed=seed, drop_last=len(plain) >= batch_size)
    stream = checked(loader, "calibration data")
    first = next(stream)

    class _Reader(quantization.CalibrationDataReader):
        def __init__(self):
            self._batches = itertools.islice(itertools.chain([first], stream), batches)
            self.images = 0

        def get_next(self):
            x, _ = next(self._batches, (None, None))
            if x is None:
                return None
            self.images += len(x)
            return {input_name: x.numpy()}

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

    ``calibration_data`` (a dataset, normally the training split, or a DataLoader) is required for
    ``static``. A model with a fixed batch dimension is calibrated with batches of that size (a DataLoader
    must yield batches of that size itself).
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
        source = _preprocessed(onnx_path, Path(work) / "prepared.onnx", info) if preprocess else onnx_path
        with atomic_path(out_path) as tmp:
            try:
                if mode == "static":
                    _quantize_static(source, tmp, info, calibration_data, calib_batches, calib_batch_size, calib_method, seed)
                else:
                    with quiet_exporters():
                        quantization.quantize_dynamic(str(source), str(tmp), per_channel=True,
                                                      weight_type=quantization.QuantType.QInt8)
                    info.update({"activation_type": "dynamic (UINT8 at run time)", "reduce_range": False})
            except (ConfigError, DataError, ModelError):
                raise
            except Exception as exc:  # noqa: BLE001
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                raise ModelError(f"INT8 {mode} quantization of {str(onnx_path)!r} failed: "
                                 f"{type(exc).__name__}: {first[:200]}") from None
            ort_session(tmp)  # the quantized graph must load before it replaces anything
    info.update({"path": str(out_path), "bytes": out_path.stat().st_size, "seconds": time.perf_counter() - start})
    return info


def _preprocessed(onnx_path: Path, prepared: Path, info: dict) -> Path:
    """ORT's quantization pre-processing of ``onnx_path`` into ``prepared`` (the raw export when it fails); noted in ``info``."""
    try:
        with quiet_exporters():
            shape_inference.quant_pre_process(str(onnx_path), str(prepared), skip_symbolic_shape=False)
    except Exception as exc:  # noqa: BLE001  (it fails on some graphs; quantizing the raw export still works)
        info["preprocess"] = f"skipped: {type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
        return onnx_path
    info["preprocess"] = "quant_pre_process (shape inference + graph optimisation)"
    return prepared


def _quantize_static(source: Path, out: Path, info: dict, calibration_data, calib_batches: int, calib_batch_size: int,
                     calib_method: str, seed: int) -> None:
    """QDQ static INT8 of ``source`` into ``out``, calibrated on ``calibration_data``; the settings into ``info``."""
    cpu = cpu_quant_settings()
    batch = fixed_batch(ort_session(source)) or calib_batch_size
    reader = calibration_reader(calibration_data, calib_batches, batch, seed=seed)
    method = {"minmax": quantization.CalibrationMethod.MinMax, "entropy": quantization.CalibrationMethod.Entropy,
              "percentile": quantization.CalibrationMethod.Percentile}[calib_method]
    with quiet_exporters():  # ORT logs per-tensor fallbacks (e.g. LayerNorm scales) on the root logger
        quantization.quantize_static(
            str(source), str(out), reader, quant_format=quantization.QuantFormat.QDQ, per_channel=True,
            reduce_range=cpu["reduce_range"], activation_type=getattr(quantization.QuantType, cpu["activation_type"]),
            weight_type=quantization.QuantType.QInt8, calibrate_method=method,
            extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
        )
    info.update({"activation_type": cpu["activation_type"], "reduce_range": cpu["reduce_range"],
                 "cpu_rule": cpu["why"], "calibration": {
                     "method": calib_method, "batches": calib_batches, "images": reader.images,
                     **_calibration_source(calibration_data, batch, seed)}})


def _calibration_source(data, batch: int, seed: int) -> dict:
    if isinstance(data, DataLoader):
        return {"batch_size": data.batch_size, "split": "user DataLoader (its order and augmentation)"}
    return {"batch_size": batch, "split": "train (augmentation off)", "seed": seed}


def _ort_accuracy(session, data, batch_size: int, what: str) -> tuple[float, int]:
    """(top-1 accuracy, images) of an ONNX Runtime session on a dataset or DataLoader."""
    correct = total = 0
    for x, y in checked_batches(data, batch_size, what):
        correct += int((np.asarray(ort_run(session, x)).argmax(1) == y.numpy()).sum())
        total += len(y)
    return correct / total, total


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

    ``splits`` is a :class:`~edgeprune.data.Data` bundle (``data.load`` / ``data.resolve``) whose splits may
    be DataLoaders; without a test split (None) the accuracies are on ``val`` (``"split"`` says which).
    Exports ``model`` (parity-checked on the first evaluation batch), quantizes it (calibration on
    ``splits.train``) and returns ``{"fp32_acc_ort", "int8_acc_ort", "onnx_bytes", "int8_onnx_bytes", "mode",
    "max_abs_diff", "split", "test_images", ...}``. Files go to ``workdir`` (``model.onnx``,
    ``model.int8.onnx``), or to a temporary folder removed after.
    """
    check_mode(mode)
    split = "test" if splits.test is not None else "val"
    evaluation, what = splits.split(split), f"{split} data"
    with tempfile.TemporaryDirectory(prefix="edgeprune-eval-int8-") as tmp:
        folder = Path(workdir) if workdir is not None else Path(tmp)
        inputs = first_batch(evaluation, what)[0]
        fp32 = export_verified(model, folder / "model.onnx", inputs, opset=opset or DEFAULT_OPSET)
        int8 = quantize(folder / "model.onnx", folder / "model.int8.onnx", mode, calibration_data=splits.train,
                        calib_batches=calib_batches, calib_batch_size=calib_batch_size, seed=seed)
        fp32_acc, images = _ort_accuracy(ort_session(folder / "model.onnx"), evaluation, batch_size, what)
        int8_acc, _ = _ort_accuracy(ort_session(folder / "model.int8.onnx"), evaluation, batch_size, what)
        return {
            "mode": mode,
            "fp32_acc_ort": fp32_acc,
            "int8_acc_ort": int8_acc,
            "onnx_bytes": fp32["bytes"],
            "int8_onnx_bytes": int8["bytes"],
            "max_abs_diff": fp32["max_abs_diff"],
            "int8": {k: v for k, v in int8.items() if k != "path"},
            "split": split,
            "test_images": images,
        }
