"""``edgeprune export`` (ONNX and/or ExecuTorch, optional INT8, sparse ONNX and sparse artifact, each verified in
its runtime) and ``edgeprune bench``."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Optional

import onnx
import onnxruntime
import torch
import typer

from edgeprune import data as data_lib
from edgeprune import models
from edgeprune import tasks as tasks_lib
from edgeprune.cli import app, export_edge, task_metrics
from edgeprune.cli.common import TASK_OPTION, console, human_bytes, parse_int_list, parse_kv, table
from edgeprune.data import make_loader
from edgeprune.errors import CheckpointError, ConfigError, DataError, EdgepruneError, check_positive
from edgeprune.export import int8 as int8_lib
from edgeprune.export import sparse
from edgeprune.export.et_latency import et_latency, export_for
from edgeprune.export.onnx import (
    check_opset,
    export_onnx,
    export_verified,
    input_shape_of,
    ort_accuracy,
    ort_metrics,
    ort_session,
    parse_batch,
)
from edgeprune.export.ort_latency import ort_latency
from edgeprune.measure import accuracy, latency, machine_info
from edgeprune.measure.latency import busy_warning
from edgeprune.runs.lock import check_not_running
from edgeprune.runs.store import RunStore
from edgeprune.utils.io import check_output, ensure_dir, write_json

DATA_DIR = typer.Option(None, "--data-dir", help="Folder holding the data sets (mnist/, cifar tarballs); default $EDGEPRUNE_DATA or ./data.")
RUNTIMES = ("torch", "onnxruntime", "executorch", "both")
RUNTIMES_NOT_MEASURED = ("the {task} task's files hold {model}'s dense part only (no decoding, no NMS): its metrics "
                         "are measured in PyTorch, its parity on the dense outputs")


# ----------------------------------------------------------------------------------------------------
# what to export: a checkpoint, a sparse artifact, or a candidate of a run directory
# ----------------------------------------------------------------------------------------------------


def _run_records(run_dir: Path) -> list[dict]:
    return RunStore(run_dir).records(repair=False)


def resolve_checkpoint(source: Path, candidate: str | None = None) -> tuple[Path, str | None]:
    """The model file named by ``source`` (a checkpoint/.epz file or a run directory) and the candidate id.

    In a run directory (``results.jsonl`` records with ``id`` and ``checkpoint`` relative to it),
    ``candidate`` picks a record; without it ``chosen.pt``, else the record marked ``"chosen": true``,
    else a ``model.pt`` (a ``train`` output folder) is used.
    """
    source = Path(source)
    if not source.exists():
        raise ConfigError(f"{str(source)!r} does not exist; pass a checkpoint (.pt), a sparse artifact (.epz) or a run directory")
    if source.is_file():
        if candidate is not None:
            raise ConfigError(f"--candidate {candidate!r} needs a run directory, but {str(source)!r} is a file")
        return source, None
    check_not_running(source, "export from")  # a sweep still writing it: its chosen model is not decided yet
    records = _run_records(source) if (source / "results.jsonl").exists() else []
    if candidate is not None:
        if not records:
            raise ConfigError(f"--candidate {candidate!r}: {str(source)!r} has no results.jsonl records")
        match = next((r for r in records if str(r.get("id")) == str(candidate)), None)
        if match is None:
            ids = [str(r.get("id")) for r in records if r.get("checkpoint")]
            shown = ", ".join(ids[:5]) + (f", ... ({len(ids)} in all)" if len(ids) > 5 else "")
            raise ConfigError(f"unknown candidate {candidate!r} in {str(source)!r}; candidates with checkpoints: {shown or 'none'}")
        return _record_checkpoint(source, match), str(candidate)
    if (source / "chosen.pt").is_file():
        return source / "chosen.pt", "chosen"
    chosen = next((r for r in records if r.get("chosen") is True and r.get("checkpoint")), None)
    if chosen is not None:
        return _record_checkpoint(source, chosen), str(chosen.get("id"))
    if (source / "model.pt").is_file():
        return source / "model.pt", None
    ids = [str(r.get("id")) for r in records if r.get("checkpoint")][:5]
    raise ConfigError(
        f"{str(source)!r} has no chosen.pt, no record marked chosen and no model.pt; pass --candidate ID"
        + (f" (e.g. {', '.join(ids)})" if ids else "")
    )


def _record_checkpoint(run_dir: Path, record: dict) -> Path:
    rel = record.get("checkpoint")
    if not rel:
        raise ConfigError(f"candidate {record.get('id')!r} in {str(run_dir)!r} has no checkpoint (it was not saved)")
    path = run_dir / rel
    if not path.is_file():
        raise ConfigError(f"checkpoint {rel!r} of candidate {record.get('id')!r} is missing from {str(run_dir)!r}")
    return path


def _is_sparse_artifact(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(len(sparse.MAGIC)) == sparse.MAGIC


def load_model(path: Path):
    """A model from an edgeprune checkpoint or a sparse artifact (chosen by the file's magic bytes)."""
    return sparse.load(path) if _is_sparse_artifact(path) else models.load(path)


def _class_without_spec(path: Path) -> str | None:
    """The class name of a checkpoint's model of the user's own class (no spec to rebuild it from), else None."""
    try:
        build = models.load_meta(path)["build"]
    except EdgepruneError:  # damaged or not a checkpoint: the loader's own error says more
        return None
    return str(build.get("class") or "custom") if build.get("spec") is None else None


def load_for_export(path: Path, user_model: str | None, options: dict, dataset: str | None,
                    data_dir: Path | None):
    """The model to export: ``load_model``, or with ``--model`` the checkpoint's weights and pruned shapes on a
    fresh instance built by that spec (a checkpoint of the user's own class has no spec to rebuild it from)."""
    if user_model is not None:
        return _load_onto_fresh_instance(path, user_model, options, dataset, data_dir)
    if options:
        raise ConfigError("--arg passes arguments to the --model factory; give --model too")
    if _is_sparse_artifact(path):
        return sparse.load(path)
    try:
        return models.load(path)
    except CheckpointError:
        own_class = _class_without_spec(path)
        if own_class is None:
            raise
        raise ConfigError(
            f"checkpoint {str(path)!r} holds a model of your own class {own_class}; pass --model "
            f"path/to/file.py:factory (the file.py:factory spec that builds a fresh {own_class}, "
            "with --arg key=value for its arguments)"
        ) from None


def _load_onto_fresh_instance(path: Path, user_model: str, options: dict, dataset: str | None,
                              data_dir: Path | None):
    """``user_model`` built for the data set's sizes (``--dataset``, else the checkpoint's), the checkpoint loaded onto it."""
    if _is_sparse_artifact(path):
        raise ConfigError(f"--model rebuilds an edgeprune checkpoint (.pt); {str(path)!r} is not one")
    name = dataset or models.load_meta(path).get("dataset")
    if not name:
        raise ConfigError(f"--model {user_model!r} needs the input size and classes of {str(path)!r}: pass --dataset "
                          "(the data set it was pruned on)")
    splits = data_lib.load(name, root=data_dir)
    fresh = models.create(user_model, num_classes=splits.num_classes, in_channels=splits.in_channels,
                          image_size=splits.image_size, **options)
    return models.load(path, model=fresh)


def _dataset_for(model, dataset: str | None, data_dir: Path | None, path: Path,
                 wanted: tasks_lib.Task | None) -> tuple[object | None, str, tasks_lib.Task]:
    """(splits or None, note, task): the named data set, else the checkpoint's own, else none (random inputs); the
    task ``--task`` names, else the data set's own; the data set checked against the model for that task."""
    recorded = (getattr(model, "edgeprune_meta", None) or {}).get("dataset")
    name = dataset or recorded
    if not name:
        return None, "random normal inputs (no --dataset and none recorded in the checkpoint)", tasks_lib.get(wanted)
    try:
        splits = data_lib.load(name, root=data_dir)
    except DataError as exc:
        if dataset:
            raise
        return None, f"random normal inputs (the checkpoint's data set {name!r} could not be loaded: {exc})", \
            tasks_lib.get(wanted)
    task = tasks_lib.get(wanted, splits)
    task_metrics.check_fits(model, splits, name, f"checkpoint {str(path)!r}", task)
    return splits, f"{splits.name} test split", task


# ----------------------------------------------------------------------------------------------------
# edgeprune export
# ----------------------------------------------------------------------------------------------------


@app.command("export")
def export_command(
    source: Path = typer.Argument(..., help="Checkpoint (.pt), sparse artifact (.epz) or run directory."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder for model.onnx / model.pte (+ INT8, sparse) and export.json."),
    fmt: str = typer.Option("onnx", "--format", help="onnx | executorch (a .pte lowered to XNNPACK, needs the [edge] extra) | both."),
    candidate: Optional[str] = typer.Option(None, "--candidate", help="Candidate id in a run directory's results.jsonl; default: the chosen one."),
    opset: int = typer.Option(18, "--opset", help="ONNX opset (18..23)."),
    batch: str = typer.Option("dynamic", "--batch", help="'dynamic' (symbolic batch dimension) or a fixed batch size."),
    int8: Optional[str] = typer.Option(None, "--int8", help="Also write model.int8.onnx: static (QDQ, calibrated on the training split) or dynamic."),
    sparse_values: Optional[str] = typer.Option(None, "--sparse", help="Also write the compressed sparse artifact model.epz with fp32 | fp16 | int8 values."),
    sparse_onnx: bool = typer.Option(False, "--sparse-onnx", help="Also write model.sparse.onnx (+ model.int8.sparse.onnx): standard ONNX sparse initializers."),
    et_batch: str = typer.Option("1", "--et-batch", help="ExecuTorch batch: a fixed size (default 1, what a device runs) or 'dynamic' (up to --max-batch)."),
    max_batch: int = typer.Option(32, "--max-batch", help="ExecuTorch with --et-batch dynamic: the largest batch the program plans memory for."),
    measure_latency: bool = typer.Option(True, "--latency/--no-latency", help="With --format both: time the files at batch 1 side by side."),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Data set for parity inputs, accuracies and calibration; default: the checkpoint's."),
    data_dir: Optional[Path] = DATA_DIR,
    task: Optional[str] = TASK_OPTION,
    calib_batches: int = typer.Option(16, help="Calibration batches for --int8 static (> 0)."),
    calib_batch_size: int = typer.Option(32, help="Calibration batch size (> 0)."),
    tolerance: float = typer.Option(1e-4, help="Largest allowed |ORT - PyTorch| logit difference (FP32)."),
    user_model: Optional[str] = typer.Option(None, "--model", "-m", help="For a model of your own class (a run or checkpoint made from Python): the path/to/file.py:factory spec that builds a fresh instance; the checkpoint's weights and pruned shapes are loaded onto it."),
    arg: Optional[list[str]] = typer.Option(None, "--arg", help="Argument of the --model factory key=value (repeatable), e.g. --arg width=16."),
):
    """Export a model to ONNX and/or ExecuTorch, verify it in each runtime, optionally quantize to INT8; write export.json."""
    check_opset(opset)
    check_output(out, "--out", folder=True)
    batch_value = parse_batch(batch)
    if int8 is not None:
        int8_lib.check_mode(int8)
    formats = export_edge.check_format(fmt, int8)
    et_batch_value = parse_batch(et_batch)
    check_positive("--max-batch", max_batch)
    if sparse_onnx and "onnx" not in formats:
        raise ConfigError(f"--sparse-onnx writes ONNX files; use --format onnx|both, not {fmt!r}")
    if sparse_values is not None and sparse_values not in sparse.VALUE_FORMATS:
        raise ConfigError(f"--sparse {sparse_values!r} is not a value format; allowed: {', '.join(sparse.VALUE_FORMATS)}")
    check_positive("--calib-batches", calib_batches)
    check_positive("--calib-batch-size", calib_batch_size)
    if not tolerance > 0:
        raise ConfigError(f"--tolerance must be > 0, got {tolerance!r}")
    wanted = tasks_lib.get(task) if task is not None else None  # a bad --task: one line before any work
    path, cand = resolve_checkpoint(source, candidate)
    model = load_for_export(path, user_model, parse_kv(arg), dataset, data_dir)
    splits, inputs_note, chosen = _dataset_for(model, dataset, data_dir, path, wanted)
    if int8 == "static" and splits is None:
        raise ConfigError(f"--int8 static needs calibration data: pass --dataset (and --data-dir); found {inputs_note}")
    ensure_dir(out)
    with tasks_lib.using(chosen):
        _export(model, path, source, cand, out, formats, splits, inputs_note, chosen, batch=batch_value, opset=opset,
                int8=int8, sparse_onnx=sparse_onnx, sparse_values=sparse_values, et_batch=et_batch_value,
                max_batch=max_batch, measure_latency=measure_latency, calib_batches=calib_batches,
                calib_batch_size=calib_batch_size, tolerance=tolerance)


def _export(model, path: Path, source: Path, cand: str | None, out: Path, formats: tuple[str, ...], splits,
            inputs_note: str, task: tasks_lib.Task, *, batch, opset: int, int8: str | None, sparse_onnx: bool,
            sparse_values: str | None, et_batch, max_batch: int, measure_latency: bool, calib_batches: int,
            calib_batch_size: int, tolerance: float) -> None:
    """Write the files ``export`` asked for, export.json, and print the table (under ``task``)."""
    evaluation = task_metrics.evaluation_of(task, model, splits)
    if splits is not None:
        inputs = next(iter(make_loader(splits.test, 64)))[0]
    else:
        inputs = torch.randn(16, *input_shape_of(model), generator=torch.Generator().manual_seed(0))
    if isinstance(batch, int):
        inputs = inputs[:batch] if len(inputs) >= batch else inputs.repeat(batch // len(inputs) + 1, *[1] * (inputs.dim() - 1))[:batch]
    record: dict = {
        "source": str(source), "checkpoint": str(path), "candidate": cand, "model": model.edgeprune_build["spec"],
        "build": model.edgeprune_build, "formats": list(formats),
    }
    rows = [["model", record["model"] + (f" (candidate {cand})" if cand else "")]]
    if evaluation == "accuracy":
        record["accuracy"] = {"dataset": splits.name, "split": "test", "images": len(splits.test),
                              "fp32_torch": accuracy(model, splits.test)}
        rows.append(["test top-1 FP32 (torch)", f"{record['accuracy']['fp32_torch']:.2%}"])
    elif splits is not None:
        metrics, interval = task_metrics.evaluate(task, model, splits.test)
        record["metrics"] = {**task_metrics.record_of(task, splits), "fp32_torch": metrics, "fp32_torch_interval": interval}
        rows.append(["task", task_metrics.task_text(task, len(splits.test))])
        rows += task_metrics.metric_rows(task, metrics, " FP32 (torch)", interval)
        if evaluation is None:  # a detector: the files hold its dense part, without decoding and NMS
            record["metrics"]["runtimes"] = RUNTIMES_NOT_MEASURED.format(task=task.name, model=type(model).__name__)
            rows.append(["test metrics in the runtimes", "not measured: " + record["metrics"]["runtimes"]])
    if "onnx" in formats:
        part, part_rows = _onnx_part(model, out, inputs, splits, inputs_note, opset=opset, batch=batch, int8=int8,
                                     calib_batches=calib_batches, calib_batch_size=calib_batch_size, tolerance=tolerance,
                                     evaluation=evaluation, task=task)
        record["accuracy"] = {**record.get("accuracy", {}), **part.pop("accuracy", {})}
        if "metrics" in part:
            record["metrics"].update(part.pop("metrics"))
        record.update(part)
        rows += part_rows
    if sparse_onnx:
        record["sparse_onnx"], part_rows = export_edge.sparse_onnx_part(out, inputs, int8 == "static")
        rows += part_rows
    if "executorch" in formats:
        et, part_rows = export_edge.executorch_part(model, out, inputs, splits, batch=et_batch, max_batch=max_batch,
                                                    int8=int8, calib_batches=calib_batches,
                                                    calib_batch_size=calib_batch_size, tolerance=tolerance,
                                                    evaluation=evaluation, task=task)
        record["accuracy"] = {**record.get("accuracy", {}), **et.pop("accuracy", {})}
        if "metrics" in et:
            record["metrics"].update(et.pop("metrics"))
        record["executorch"] = et
        rows += part_rows
    if len(formats) == 2 and measure_latency:
        files = {"onnx": "model.onnx", "executorch": "model.pte", "onnx int8": "model.int8.onnx",
                 "executorch int8": "model.int8.pte"}
        record["latency"], part_rows = export_edge.latency_part(out, files)
        rows += part_rows
    if sparse_values is not None:
        described = sparse.save(model, out / "model.epz", values=sparse_values,
                                meta=getattr(model, "edgeprune_meta", None) or {})
        described["path"] = "model.epz"
        record["sparse"] = {k: v for k, v in described.items() if k != "tensors"}
        rows.append(["model.epz", f"{human_bytes(described['bytes'])} ({sparse_values} values; {described['ratio_to_bound']:.3f}x "
                                  f"the information bound, {described['ratio_to_dense']:.1%} of dense FP32)"])
    if not task_metrics.is_classification(task) and not record["accuracy"]:
        del record["accuracy"]  # top-1 is a classifier's: another task's figures are under "metrics"
    record.update({"machine": machine_info(), "versions": _versions(), "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
    write_json(out / "export.json", record)
    rows.append(["written", str(out / "export.json")])
    console.print(table(f"export {path}", ["item", "value"], rows))


def _onnx_part(model, out: Path, inputs, splits, inputs_note: str, *, opset: int, batch, int8: str | None,
               calib_batches: int, calib_batch_size: int, tolerance: float, evaluation: str | None = None,
               task: tasks_lib.Task | None = None) -> tuple[dict, list]:
    """model.onnx (+ model.int8.onnx): parity in ONNX Runtime, accuracies (``evaluation`` "accuracy") or the task's
    metrics ("metrics") there."""
    onnx_info = export_verified(model, out / "model.onnx", inputs, opset=opset, batch=batch, tolerance=tolerance)
    onnx_info["path"] = "model.onnx"
    record: dict = {
        "onnx": {k: v for k, v in onnx_info.items() if k not in ("max_abs_diff", "tolerance", "parity_inputs")},
        "parity": {"max_abs_diff": onnx_info["max_abs_diff"], "tolerance": tolerance, "inputs": f"{len(inputs)} images: {inputs_note}",
                   "batches_checked": "full batch and batch 1" if batch == "dynamic" else f"batch {batch}"},
    }
    rows = [["model.onnx", f"{human_bytes(onnx_info['bytes'])}, opset {opset}, batch {batch}"],
            ["max |ORT - torch| (FP32 logits)", f"{onnx_info['max_abs_diff']:.2e} on {inputs_note}"]]
    if evaluation == "accuracy":
        record["accuracy"] = {"fp32_ort": ort_accuracy(ort_session(out / "model.onnx"), splits.test)}
        rows.append(["test top-1 FP32 (ORT)", f"{record['accuracy']['fp32_ort']:.2%}"])
    if int8 is not None:
        q = int8_lib.quantize(out / "model.onnx", out / "model.int8.onnx", int8,
                              calibration_data=splits.train if splits is not None else None,
                              calib_batches=calib_batches, calib_batch_size=calib_batch_size)
        q["path"] = "model.int8.onnx"
        record["int8"] = q
        rows.append(["model.int8.onnx", f"{human_bytes(q['bytes'])} ({int8}, {onnx_info['bytes'] / q['bytes']:.2f}x smaller)"])
        if evaluation == "accuracy":
            record["accuracy"]["int8_ort"] = ort_accuracy(ort_session(out / "model.int8.onnx"), splits.test)
            rows.append(["test top-1 INT8 (ORT)", f"{record['accuracy']['int8_ort']:.2%}"])
    if evaluation == "metrics":
        files = {"fp32_ort": "model.onnx"} | ({"int8_ort": "model.int8.onnx"} if int8 is not None else {})
        record["metrics"] = {key: ort_metrics(ort_session(out / file), model, inputs[:1], splits.test, task)
                             for key, file in files.items()}
        rows += task_metrics.runtime_rows(task, record["metrics"], "ORT")
    return record, rows


def _versions() -> dict:
    return {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}


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
) -> dict:
    """Latency of a checkpoint / artifact / run-dir candidate (torch and/or ORT, or ExecuTorch) or of an .onnx
    (ORT) / .pte (ExecuTorch) file."""
    check_positive("--runs", runs)
    check_positive("--warmup", warmup, allow_zero=True)
    if threads is not None:
        check_positive("--threads", threads)
    source = Path(source)
    is_onnx = source.suffix.lower() == ".onnx"
    is_pte = source.suffix.lower() == ".pte"
    runtime = runtime or ("onnxruntime" if is_onnx else "executorch" if is_pte else "torch")
    if runtime not in RUNTIMES:
        raise ConfigError(f"--runtime {runtime!r} is not allowed; allowed: {', '.join(RUNTIMES)}")
    results, info = [], {"source": str(source)}
    if is_pte:
        if not source.is_file():
            raise ConfigError(f"{str(source)!r} does not exist")
        if runtime != "executorch":
            raise ConfigError(f"--runtime {runtime!r} cannot run {str(source)!r}, an ExecuTorch program (use executorch)")
        for b in batches:
            results.append(et_latency(source, batch_size=b, runs=runs, warmup=warmup, threads=threads))
    elif is_onnx:
        if not source.is_file():
            raise ConfigError(f"{str(source)!r} does not exist")
        if runtime != "onnxruntime":
            raise ConfigError(f"--runtime {runtime!r} needs a PyTorch checkpoint; {str(source)!r} is an ONNX file (use onnxruntime)")
        for b in batches:
            results.append(ort_latency(source, batch_size=b, runs=runs, warmup=warmup, threads=threads))
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
        if runtime == "executorch":  # one program per batch size: ExecuTorch plans a fixed batch
            with tempfile.TemporaryDirectory(prefix="edgeprune-bench-") as folder:
                for b in batches:
                    export_for(model, Path(folder) / f"b{b}.pte", "executorch", batch=b)
                    results.append(et_latency(Path(folder) / f"b{b}.pte", batch_size=b, runs=runs, warmup=warmup,
                                              threads=threads))
    info.update({"runs": runs, "warmup": warmup, "results": results, "machine": machine_info(),
                 "torch_threads_default": torch.get_num_threads()})
    return info


@app.command("bench")
def bench_command(
    source: Path = typer.Argument(..., help="Checkpoint (.pt), sparse artifact (.epz), run directory, .onnx or .pte file."),
    runtime: Optional[str] = typer.Option(None, "--runtime", help="torch | onnxruntime | executorch | both (torch + ORT); default torch (onnxruntime for .onnx, executorch for .pte)."),
    batch: str = typer.Option("1,32", "--batch", help="Batch sizes, comma-separated."),
    threads: int = typer.Option(1, "--threads", help="CPU threads (> 0; ORT: intra_op_num_threads); default 1, like the records and budgets."),
    runs: int = typer.Option(50, "--runs", help="Timed runs per batch size after warm-up (> 0)."),
    warmup: int = typer.Option(10, "--warmup", help="Untimed warm-up runs (>= 0)."),
    candidate: Optional[str] = typer.Option(None, "--candidate", help="Candidate id in a run directory."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the figures to this JSON file."),
):
    """Median latency and spread (p10/p90) per batch size after warm-up, with threads and CPU recorded; one
    warning line when the machine looks busy (p90/p10 > 1.5 or the load average above the number of cores)."""
    check_positive("--threads", threads)
    if json_out is not None:
        check_output(json_out, "--json")  # before measuring, not after
    info = bench(source, runtime=runtime, batches=parse_int_list(batch, "--batch"), threads=threads, runs=runs,
                 warmup=warmup, candidate=candidate)
    rows = [[r["runtime"], r["batch_size"], r["median_ms"], r["p10_ms"], r["p90_ms"], r["median_ms"] / r["batch_size"],
             r["threads"]] for r in info["results"]]
    console.print(table(f"latency of {info.get('model', source)} on {info['machine']['cpu']} ({runs} runs after {warmup} warm-up)",
                        ["runtime", "batch", "median ms", "p10 ms", "p90 ms", "ms / image", "threads"], rows))
    busy = busy_warning(info["results"])
    if busy:
        typer.echo(f"warning: {busy}", err=True)
    if json_out is not None:
        write_json(json_out, info | {"busy": busy})
