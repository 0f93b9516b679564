"""The ExecuTorch, OpenVINO, LiteRT, sparse-ONNX and side-by-side latency parts of :func:`edgeprune.export` (see :mod:`edgeprune.deploy.pipeline`).

Each part returns ``(record, rows)``: what goes into ``export.json`` and the lines of the printed table.
"""

from __future__ import annotations

from pathlib import Path

from edgeprune.deploy import task_metrics
from edgeprune.errors import ConfigError
from edgeprune.export.et_latency import compare
from edgeprune.export.executorch import calibration_batches, export_executorch
from edgeprune.export.litert import export_litert
from edgeprune.export.openvino import convert_checked, export_openvino
from edgeprune.export.runtimes import RUNTIMES, Runtime, named
from edgeprune.export.sparse_onnx import write_sparse
from edgeprune.report.tables import human_bytes

RUNTIME_FORMATS = tuple(runtime.name for runtime in RUNTIMES)  # onnx, executorch, openvino, litert
# what the CLI's --format takes (also a comma list of RUNTIME_FORMATS: onnx,openvino); Python also takes a tuple
FORMATS = (*RUNTIME_FORMATS, "both")  # both: onnx and executorch
STATIC_INT8 = {"executorch": "PT2E, XNNPACK quantizer", "openvino": "QDQ ONNX, which OpenVINO runs in INT8",
               "litert": "ai-edge-quantizer, INT8 weights and activations calibrated on the training split"}


def check_formats(formats, int8: str | None) -> tuple[str, ...]:
    """The formats to write: ``formats`` a name of FORMATS, a comma list or a tuple of RUNTIME_FORMATS; fails fast
    (one line) without the executorch / openvino / litert extra, and for INT8 that a runtime has no form of."""
    if isinstance(formats, str) and "," not in formats:
        if formats not in FORMATS:
            raise ConfigError(f"--format {formats!r} is not allowed; allowed: {', '.join(FORMATS)} or a comma list "
                              f"of {', '.join(RUNTIME_FORMATS)}")
        chosen = ("onnx", "executorch") if formats == "both" else (formats,)
    else:
        names = ([f.strip() for f in formats.split(",")] if isinstance(formats, str)
                 else list(formats) if isinstance(formats, (list, tuple)) else [formats])
        bad = next((f for f in names if f not in RUNTIME_FORMATS), None) if names else formats
        if bad is not None:
            raise ConfigError(f"format {bad!r} is not allowed; allowed: {', '.join(RUNTIME_FORMATS)} (a tuple or a "
                              f"comma list), or 'both'")
        chosen = tuple(f for f in RUNTIME_FORMATS if f in names)
    for runtime in RUNTIMES[1:]:
        if runtime.name in chosen:
            runtime.package()  # DependencyError: pip install 'edgeprune[edge|openvino|litert]'
            if int8 == "dynamic":
                raise ConfigError(f"--int8 dynamic has no {runtime.title} form; use --int8 static "
                                  f"({STATIC_INT8[runtime.name]}) with --format {runtime.name}"
                                  + ("|both" if runtime.name == "executorch" else ""))
    return chosen


def executorch_part(model, out: Path, inputs, splits, *, batch, max_batch: int, int8: str | None,
                    calib_batches: int, calib_batch_size: int, tolerance: float, evaluation: str | None = "accuracy",
                    task=None) -> tuple[dict, list]:
    """model.pte (+ model.int8.pte): parity in the ExecuTorch runtime, operators outside the delegate, accuracy
    (``evaluation`` "accuracy", with data) or the task's metrics ("metrics")."""
    fp32 = export_executorch(model, out / "model.pte", inputs, batch=batch, max_batch=max_batch, tolerance=tolerance)
    fp32["path"] = "model.pte"
    record = {"fp32": fp32}
    rows = [["model.pte", f"{human_bytes(fp32['bytes'])}, XNNPACK, batch {batch}"
                          + (f" (up to {max_batch})" if batch == "dynamic" else "")],
            ["max |ExecuTorch - torch| (FP32)", f"{fp32['max_abs_diff']:.2e}"]]
    rows += outside_rows(fp32)
    if int8 is not None:
        q = export_executorch(model, out / "model.int8.pte", inputs, batch=batch, max_batch=max_batch, int8=True,
                              calibration=calibration_batches(splits.train, calib_batches, calib_batch_size))
        q["path"] = "model.int8.pte"
        record["int8"] = q
        rows.append(["model.int8.pte", f"{human_bytes(q['bytes'])} (PT2E static INT8, {fp32['bytes'] / q['bytes']:.2f}x "
                                       f"smaller; |ExecuTorch - PT2E reference| {q['max_abs_diff']:.2e})"])
    files = {"fp32_executorch": "model.pte"} | ({"int8_executorch": "model.int8.pte"} if int8 is not None else {})
    rows += evaluate_files(record, named("executorch"), out, files, model, inputs, splits, evaluation, task)
    return record, rows


def openvino_part(model, out: Path, inputs, splits, *, int8: str | None, calib_batches: int, calib_batch_size: int,
                  tolerance: float, evaluation: str | None = "accuracy", task=None) -> tuple[dict, list]:
    """model.xml + model.bin (+ model.int8.xml): converted from the ONNX files of the ONNX part when it wrote them
    (else from an export of their own), parity in OpenVINO, accuracy or the task's metrics there."""
    record: dict = {}
    for precision, onnx_file, xml in [("fp32", "model.onnx", "model.xml")] + ([("int8", "model.int8.onnx", "model.int8.xml")]
                                                                                if int8 is not None else []):
        if (out / onnx_file).is_file():
            info = convert_checked(model, out / onnx_file, out / xml, inputs, int8=precision == "int8", tolerance=tolerance)
            info["converted_from"] = onnx_file
        else:
            info = export_openvino(model, out / xml, inputs, int8=precision == "int8", tolerance=tolerance,
                                   calibration=splits.train if precision == "int8" else None,
                                   calib_batches=calib_batches, calib_batch_size=calib_batch_size)
            info["converted_from"] = "ONNX export (not kept)" + (", static INT8 (QDQ)" if precision == "int8" else "")
        info["path"] = xml
        record[precision] = info
    fp32 = record["fp32"]
    rows = [["model.xml + model.bin", f"{human_bytes(fp32['bytes'])}, FP32, OpenVINO {fp32['openvino'].split('-')[0]} CPU"],
            ["max |OpenVINO - torch| (FP32)", f"{fp32['max_abs_diff']:.2e}"]]
    if int8 is not None:
        q = record["int8"]
        rows.append(["model.int8.xml + .bin", f"{human_bytes(q['bytes'])} (static INT8 QDQ, {fp32['bytes'] / q['bytes']:.2f}x "
                                              f"smaller; max |OpenVINO - torch FP32| {q['max_abs_diff_fp32']:.2e})"])
    files = {"fp32_openvino": "model.xml"} | ({"int8_openvino": "model.int8.xml"} if int8 is not None else {})
    rows += evaluate_files(record, named("openvino"), out, files, model, inputs, splits, evaluation, task)
    return record, rows


def litert_part(model, out: Path, inputs, splits, *, int8: str | None, calib_batches: int, calib_batch_size: int,
                tolerance: float, evaluation: str | None = "accuracy", task=None) -> tuple[dict, list]:
    """model.tflite (+ model.int8.tflite, ai-edge-quantizer static INT8): batch 1, parity in LiteRT's interpreter,
    accuracy or the task's metrics there."""
    fp32 = export_litert(model, out / "model.tflite", inputs, tolerance=tolerance)
    fp32["path"] = "model.tflite"
    record = {"fp32": fp32}
    rows = [["model.tflite", f"{human_bytes(fp32['bytes'])}, FP32, batch 1, litert-torch {fp32['litert_torch']}"],
            ["max |LiteRT - torch| (FP32)", f"{fp32['max_abs_diff']:.2e}"]]
    if int8 is not None:
        q = export_litert(model, out / "model.int8.tflite", inputs, int8=True,
                          calibration=calibration_batches(splits.train, calib_batches, calib_batch_size))
        q["path"] = "model.int8.tflite"
        record["int8"] = q
        rows.append(["model.int8.tflite", f"{human_bytes(q['bytes'])} (static INT8, {fp32['bytes'] / q['bytes']:.2f}x "
                                          f"smaller; max |LiteRT - torch FP32| {q['max_abs_diff_fp32']:.2e})"])
    files = {"fp32_litert": "model.tflite"} | ({"int8_litert": "model.int8.tflite"} if int8 is not None else {})
    rows += evaluate_files(record, named("litert"), out, files, model, inputs, splits, evaluation, task)
    return record, rows


def evaluate_files(record: dict, runtime: Runtime, out: Path, files: dict[str, str], model, inputs, splits,
                   evaluation: str | None, task) -> list:
    """Every file of ``files`` ({record key: file in ``out``}) loaded in ``runtime``: its test top-1 into
    ``record["accuracy"]`` (``evaluation`` "accuracy", with data) or the task's metrics into ``record["metrics"]``
    ("metrics"); the table lines."""
    if splits is not None and evaluation == "accuracy":
        top1 = {key: runtime.accuracy(runtime.load(out / file), splits.test) for key, file in files.items()}
        record["accuracy"] = {key: value[0] if isinstance(value, tuple) else value for key, value in top1.items()}
        return [[f"test top-1 ({runtime.title}) FP32" + (" / INT8" if len(files) > 1 else ""),
                 " / ".join(f"{v:.2%}" for v in record["accuracy"].values())]]
    if evaluation == "metrics":
        record["metrics"] = {key: runtime.metrics(runtime.load(out / file), model, inputs[:1], splits.test, task)
                             for key, file in files.items()}
        return task_metrics.runtime_rows(task, record["metrics"], runtime.title)
    return []


def outside_rows(info: dict) -> list[list[str]]:
    """One table line per operator kind left outside the XNNPACK delegate (portable kernels run them)."""
    outside = info["outside_delegate"]
    if not outside:
        return [["outside the XNNPACK delegate", "nothing: the whole graph is delegated"]]
    return [["outside the XNNPACK delegate" if i == 0 else "", f"{op} ×{count} (portable kernel)"]
            for i, (op, count) in enumerate(outside.items())]


def sparse_onnx_part(out: Path, inputs, int8: bool) -> tuple[dict, list]:
    """model.sparse.onnx (+ model.int8.sparse.onnx): sparse initializers, same ORT outputs as the dense files."""
    record, rows = {}, []
    for dense, sparse in [("model.onnx", "model.sparse.onnx")] + ([("model.int8.onnx", "model.int8.sparse.onnx")] if int8 else []):
        info = write_sparse(out / dense, out / sparse, inputs)
        info.update({"path": sparse, "sparse_tensors": len(info["sparse_tensors"])})
        record[sparse] = info
        rows.append([sparse, f"{human_bytes(info['bytes'])} ({info['ratio_to_dense']:.1f}x smaller than {dense}; "
                             f"{info['sparse_tensors']} sparse initializers; max |diff| {info['max_abs_diff_to_dense']:.1e})"])
    return record, rows


def latency_part(out: Path, files: dict[str, str], threads: int = 1) -> tuple[dict, list]:
    """Batch-1 latency of the written files, timed side by side in interleaved rounds (one thread)."""
    paths = {name: out / file for name, file in files.items() if (out / file).is_file()}
    timed = compare(paths, batch=1, threads=threads)
    record = {"batch": 1, "threads": threads, "method": "interleaved rounds, median of round medians",
              **{name: round(t["median_ms"], 5) for name, t in timed.items()}}
    rows = [[f"latency b1 {name}", f"{t['median_ms']:.3f} ms ({t['runtime']}, {threads} thread)"] for name, t in timed.items()]
    return record, rows
