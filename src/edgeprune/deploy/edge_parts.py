"""The ExecuTorch, sparse-ONNX and side-by-side latency parts of :func:`edgeprune.export` (see :mod:`edgeprune.deploy.pipeline`).

Each part returns ``(record, rows)``: what goes into ``export.json`` and the lines of the printed table.
"""

from __future__ import annotations

from pathlib import Path

from edgeprune.deploy import task_metrics
from edgeprune.errors import ConfigError
from edgeprune.export.et_latency import compare
from edgeprune.export.executorch import Program, calibration_batches, et_accuracy, et_metrics, executorch, export_executorch
from edgeprune.export.sparse_onnx import write_sparse
from edgeprune.report.tables import human_bytes

FORMATS = ("onnx", "executorch", "both")  # what the CLI's --format takes; Python also takes a tuple of the first two


def check_formats(formats, int8: str | None) -> tuple[str, ...]:
    """The formats to write: ``formats`` a name of FORMATS or a tuple of "onnx" / "executorch"; fails fast (one
    line) without the executorch extra, and for INT8 that ExecuTorch has no form of."""
    if isinstance(formats, str):
        if formats not in FORMATS:
            raise ConfigError(f"--format {formats!r} is not allowed; allowed: {', '.join(FORMATS)}")
        chosen = ("onnx", "executorch") if formats == "both" else (formats,)
    else:
        names = list(formats) if isinstance(formats, (list, tuple)) else [formats]
        bad = next((f for f in names if f not in FORMATS[:2]), None) if names else formats
        if bad is not None:
            raise ConfigError(f"formats {bad!r} is not allowed; allowed: a tuple of {', '.join(FORMATS[:2])} (or 'both')")
        chosen = tuple(f for f in FORMATS[:2] if f in names)
    if "executorch" in chosen:
        executorch()  # DependencyError: pip install 'edgeprune[edge]'
        if int8 == "dynamic":
            raise ConfigError("--int8 dynamic has no ExecuTorch form; use --int8 static (PT2E, XNNPACK quantizer) "
                              "with --format executorch|both")
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
    if splits is not None and evaluation == "accuracy":
        acc = {"fp32_executorch": et_accuracy(Program(out / "model.pte"), splits.test)[0]}
        if int8 is not None:
            acc["int8_executorch"] = et_accuracy(Program(out / "model.int8.pte"), splits.test)[0]
        record["accuracy"] = acc
        rows.append(["test top-1 (ExecuTorch) FP32" + (" / INT8" if int8 else ""),
                     " / ".join(f"{v:.2%}" for v in acc.values())])
    if evaluation == "metrics":
        files = {"fp32_executorch": "model.pte"} | ({"int8_executorch": "model.int8.pte"} if int8 is not None else {})
        record["metrics"] = {key: et_metrics(Program(out / file), model, inputs[:1], splits.test, task)
                             for key, file in files.items()}
        rows += task_metrics.runtime_rows(task, record["metrics"], "ExecuTorch")
    return record, rows


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
