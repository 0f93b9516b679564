"""``edgeprune export`` (the options of :func:`edgeprune.export`, parsed from text; its summary printed as a table)
and ``edgeprune bench``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional

import torch
import typer

from edgeprune import devices
from edgeprune.cli import app
from edgeprune.cli.common import TASK_OPTION, console, parse_int_list, parse_kv, table
from edgeprune.deploy import export  # edgeprune.export itself, without the method catalog edgeprune.api loads
from edgeprune.deploy.source import load_model, resolve_checkpoint
from edgeprune.devices.base import runtime_of
from edgeprune.errors import ConfigError, check_positive
from edgeprune.export.et_latency import FILE_NAMES, et_latency, export_for
from edgeprune.export.executorch import Program
from edgeprune.export.litert import Interpreter
from edgeprune.export.litert_latency import lrt_latency
from edgeprune.export.onnx import export_onnx, input_shape_of, onnx
from edgeprune.export.openvino import Compiled
from edgeprune.export.ort_latency import ort_latency
from edgeprune.export.ov_latency import ov_latency
from edgeprune.measure import latency, machine_info
from edgeprune.measure.latency import busy_warning, spread
from edgeprune.utils.io import check_output, write_json

DATA_DIR = typer.Option(None, "--data-dir", help="Folder holding the data sets (mnist/, cifar tarballs); default $EDGEPRUNE_DATA or ./data.")
RUNTIMES = ("torch", "onnxruntime", "executorch", "openvino", "litert", "both")
#: a file bench times as it is, by suffix: (the runtime that runs it, its timer, what it is)
FILE_RUNTIMES = {".onnx": ("onnxruntime", ort_latency, "an ONNX file"), ".pte": ("executorch", et_latency, "an ExecuTorch program"),
                 ".xml": ("openvino", ov_latency, "an OpenVINO IR"), ".tflite": ("litert", lrt_latency, "a LiteRT program")}


# ----------------------------------------------------------------------------------------------------
# edgeprune export
# ----------------------------------------------------------------------------------------------------


@app.command("export")
def export_command(
    source: Path = typer.Argument(..., help="Checkpoint (.pt), sparse artifact (.epz) or run directory."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder for model.onnx / model.pte / model.xml / model.tflite (+ INT8, sparse) and export.json."),
    fmt: str = typer.Option("onnx", "--format", help="onnx | executorch (a .pte lowered to XNNPACK, needs the [edge] extra) | openvino (model.xml + .bin, needs the [openvino] extra) | litert (model.tflite, batch 1, needs the [litert] extra) | both (onnx and executorch), or a comma list: onnx,openvino,litert."),
    candidate: Optional[str] = typer.Option(None, "--candidate", help="Candidate id in a run directory's results.jsonl; default: the chosen one."),
    opset: int = typer.Option(18, "--opset", help="ONNX opset (18..23)."),
    batch: str = typer.Option("dynamic", "--batch", help="'dynamic' (symbolic batch dimension) or a fixed batch size."),
    int8: Optional[str] = typer.Option(None, "--int8", help="Also write model.int8.onnx: static (QDQ, calibrated on the training split) or dynamic."),
    sparse_values: Optional[str] = typer.Option(None, "--sparse", help="Also write the compressed sparse artifact model.epz with fp32 | fp16 | int8 values."),
    sparse_onnx: bool = typer.Option(False, "--sparse-onnx", help="Also write model.sparse.onnx (+ model.int8.sparse.onnx): standard ONNX sparse initializers."),
    et_batch: str = typer.Option("1", "--et-batch", help="ExecuTorch batch: a fixed size (default 1, what a device runs) or 'dynamic' (up to --max-batch)."),
    max_batch: int = typer.Option(32, "--max-batch", help="ExecuTorch with --et-batch dynamic: the largest batch the program plans memory for."),
    measure_latency: bool = typer.Option(True, "--latency/--no-latency", help="With two formats or more: time the files at batch 1 side by side."),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Data set for parity inputs, accuracies and calibration; default: the checkpoint's."),
    data_dir: Optional[Path] = DATA_DIR,
    task: Optional[str] = TASK_OPTION,
    calib_batches: int = typer.Option(16, help="Calibration batches for --int8 static (> 0)."),
    calib_batch_size: int = typer.Option(32, help="Calibration batch size (> 0)."),
    tolerance: float = typer.Option(1e-4, help="Largest allowed |ORT - PyTorch| logit difference (FP32)."),
    user_model: Optional[str] = typer.Option(None, "--model", "-m", help="For a model of your own class (a run or checkpoint made from Python): the path/to/file.py:factory spec that builds a fresh instance; the checkpoint's weights and pruned shapes are loaded onto it."),
    arg: Optional[list[str]] = typer.Option(None, "--arg", help="Argument of the --model factory key=value (repeatable), e.g. --arg width=16."),
):
    """Export a model to ONNX, ExecuTorch, OpenVINO and/or LiteRT, verify it in each runtime, optionally quantize to INT8; write export.json."""
    result = export(source, out, formats=fmt, int8=int8, sparse=sparse_values, sparse_onnx=sparse_onnx, data=dataset,
                    data_dir=data_dir, task=task, candidate=candidate, opset=opset, batch=batch,
                    et_batch=et_batch, max_batch=max_batch, latency=measure_latency, calib_batches=calib_batches,
                    calib_batch_size=calib_batch_size, tolerance=tolerance, model_spec=user_model, model_args=parse_kv(arg))
    console.print(table(result.title, ["item", "value"], result.rows))


# ----------------------------------------------------------------------------------------------------
# edgeprune bench
# ----------------------------------------------------------------------------------------------------


def bench(
    source: Path,
    *,
    runtime: str | None = None,
    batches: list[int] = (1, 32),
    threads: int | None = None,
    runs: int = 50,
    warmup: int = 10,
    candidate: str | None = None,
    device: str | None = None,
) -> dict:
    """Latency of a checkpoint / artifact / run-dir candidate (torch and/or ORT, ExecuTorch, OpenVINO or LiteRT) or of an
    .onnx (ORT) / .pte (ExecuTorch) / .xml (OpenVINO IR) / .tflite (LiteRT) file; ``device``: on that device (:mod:`edgeprune.devices`) instead of here."""
    check_positive("--runs", runs)
    check_positive("--warmup", warmup, allow_zero=True)
    if threads is not None:
        check_positive("--threads", threads)
    source = Path(source)
    if device is not None:
        return bench_on_device(source, devices.get(device, runtime=runtime, threads=threads), batches, runs, candidate)
    file_runtime = FILE_RUNTIMES.get(source.suffix.lower())
    runtime = runtime or (file_runtime[0] if file_runtime else "torch")
    if runtime not in RUNTIMES:
        raise ConfigError(f"--runtime {runtime!r} is not allowed; allowed: {', '.join(RUNTIMES)}")
    results, info = [], {"source": str(source)}
    if file_runtime:
        needed, time_file, kind = file_runtime
        if not source.is_file():
            raise ConfigError(f"{str(source)!r} does not exist")
        if runtime != needed:
            raise ConfigError(f"--runtime {runtime!r} cannot run {str(source)!r}, {kind} (use {needed})")
        for b in batches:
            results.append(time_file(source, batch_size=b, runs=runs, warmup=warmup, threads=threads))
    else:
        path, cand = resolve_checkpoint(source, candidate)
        model = load_model(path)
        shape = input_shape_of(model)
        info.update({"checkpoint": str(path), "candidate": cand, "model": model.edgeprune_build["spec"]})
        if runtime in ("torch", "both"):
            for b in batches:
                results.append(latency(model, shape, batch_size=b, runs=runs, warmup=warmup, threads=threads))
        if runtime in ("onnxruntime", "both"):
            with tempfile.TemporaryDirectory(prefix="edgeprune-bench-") as folder:
                onnx_path = Path(folder) / "model.onnx"
                export_onnx(model, onnx_path)
                for b in batches:
                    results.append(ort_latency(onnx_path, shape, batch_size=b, runs=runs, warmup=warmup, threads=threads))
        if runtime in ("executorch", "litert"):  # one program per batch size: both keep a fixed batch
            suffix, timer = (".pte", et_latency) if runtime == "executorch" else (".tflite", lrt_latency)
            with tempfile.TemporaryDirectory(prefix="edgeprune-bench-") as folder:
                for b in batches:
                    export_for(model, Path(folder) / f"b{b}{suffix}", runtime, batch=b)
                    results.append(timer(Path(folder) / f"b{b}{suffix}", batch_size=b, runs=runs, warmup=warmup,
                                         threads=threads))
        if runtime == "openvino":  # one IR with a dynamic batch, compiled for each batch size timed
            with tempfile.TemporaryDirectory(prefix="edgeprune-bench-") as folder:
                export_for(model, Path(folder) / "model.xml", "openvino")
                for b in batches:
                    results.append(ov_latency(Path(folder) / "model.xml", batch_size=b, runs=runs, warmup=warmup,
                                              threads=threads))
    info.update({"runs": runs, "warmup": warmup, "results": results, "machine": machine_info(),
                 "torch_threads_default": torch.get_num_threads()})
    return info


def file_input_shape(path: Path) -> tuple[int, ...]:
    """One example's shape (no batch) an .onnx or .pte file declares; ConfigError when it is symbolic."""
    if path.suffix.lower() == ".pte":
        return Program(path).input_shape
    if path.suffix.lower() == ".xml":
        return Compiled(path).input_shape
    if path.suffix.lower() == ".tflite":
        return Interpreter(path).input_shape
    dims = [d.dim_value if d.HasField("dim_value") else None
            for d in onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim][1:]
    if not dims or not all(dims):
        raise ConfigError(f"{str(path)!r} has a symbolic input shape; export it with fixed sizes to time it on a device")
    return tuple(dims)


def bench_on_device(source: Path, device, batches, runs: int, candidate: str | None) -> dict:
    """:func:`bench` on a device: the file as it is, or a checkpoint exported for the device's runtime."""
    info = {"source": str(source), "device": device.describe()}
    try:
        info["device"].update({k: v for k, v in device.check().items() if k in ("cores", "cpu", "runtimes", "command")})
        with tempfile.TemporaryDirectory(prefix="edgeprune-bench-") as folder:
            files = {}
            if source.suffix.lower() in FILE_RUNTIMES:
                if not source.is_file():
                    raise ConfigError(f"{str(source)!r} does not exist")
                files = dict.fromkeys(batches, source)
                shape = file_input_shape(source)
            else:
                path, cand = resolve_checkpoint(source, candidate)
                model = load_model(path)
                shape = input_shape_of(model)
                info.update({"checkpoint": str(path), "candidate": cand, "model": model.edgeprune_build["spec"]})
                for b in batches:
                    if device.runtime == "onnxruntime":  # one file of dynamic batch
                        files[b] = Path(folder) / "model.onnx"
                        if not files[b].exists():
                            export_onnx(model, files[b])
                    else:  # a program (or IR) per batch, as the device would load it
                        files[b] = Path(folder) / f"b{b}{Path(FILE_NAMES[device.runtime]).suffix}"
                        export_for(model, files[b], device.runtime, batch=b)
            results = []
            for b, file in files.items():
                timed = spread(device.time([file], shape, batch=b, rounds=runs)[0])
                results.append({**timed, "batch_size": b, "threads": device.threads,
                                "runtime": runtime_of(file, device.runtime), "device": device.name})
    finally:
        device.close()
    return info | {"runs": runs, "results": results, "machine": machine_info()}


@app.command("bench")
def bench_command(
    source: Path = typer.Argument(..., help="Checkpoint (.pt), sparse artifact (.epz), run directory, .onnx, .pte, OpenVINO .xml or LiteRT .tflite file."),
    runtime: Optional[str] = typer.Option(None, "--runtime", help="torch | onnxruntime | executorch | openvino | litert | both (torch + ORT); default torch (onnxruntime for .onnx, executorch for .pte, openvino for .xml, litert for .tflite)."),
    batch: str = typer.Option("1,32", "--batch", help="Batch sizes, comma-separated."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads (> 0; ORT: intra_op_num_threads); default 1, like the records and budgets (with --device: the device's own)."),
    runs: int = typer.Option(50, "--runs", help="Timed runs per batch size after warm-up (> 0)."),
    warmup: int = typer.Option(10, "--warmup", help="Untimed warm-up runs (>= 0)."),
    candidate: Optional[str] = typer.Option(None, "--candidate", help="Candidate id in a run directory."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the figures to this JSON file."),
    device: Optional[str] = typer.Option(None, "--device", help="Time it on this device: a name of `edgeprune devices list`, ssh://user@host[:port] or cmd:TEMPLATE (default: here)."),
):
    """Median latency and spread (p10/p90) per batch size after warm-up, with threads and CPU recorded; one
    warning line when the machine looks busy (p90/p10 > 1.5 or the load average above the number of cores)."""
    if threads is not None:
        check_positive("--threads", threads)
    threads = threads if threads is not None or device is not None else 1
    if json_out is not None:
        check_output(json_out, "--json")  # before measuring, not after
    info = bench(source, runtime=runtime, batches=parse_int_list(batch, "--batch"), threads=threads, runs=runs,
                 warmup=warmup, candidate=candidate, device=device)
    rows = [[r["runtime"], r["batch_size"], r["median_ms"], r["p10_ms"], r["p90_ms"], r["median_ms"] / r["batch_size"],
             r["threads"]] for r in info["results"]]
    where = f"device {device} ({info['device'].get('cpu', 'its command')})" if device else info["machine"]["cpu"]
    console.print(table(f"latency of {info.get('model', source)} on {where} ({runs} runs after {warmup} warm-up)",
                        ["runtime", "batch", "median ms", "p10 ms", "p90 ms", "ms / image", "threads"], rows))
    busy = busy_warning(info["results"]) if device is None else None  # the host's load says nothing of a device
    if busy:
        typer.echo(f"warning: {busy}", err=True)
    if json_out is not None:
        write_json(json_out, info | {"busy": busy})
