""":func:`export`: a model to ONNX, ExecuTorch, OpenVINO and/or LiteRT, each file verified in its runtime (parity, accuracy or the task's
metrics), optionally INT8, a sparse ONNX and a compressed sparse artifact; ``export.json`` records it all.

``edgeprune export`` (the CLI) is this call with its options parsed from text and the summary printed as a table.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import onnxruntime
import torch

from edgeprune import tasks as tasks_lib
from edgeprune.data import make_loader
from edgeprune.data.loaders import checked
from edgeprune.deploy import edge_parts, task_metrics
from edgeprune.deploy.source import dataset_for, load_for_export, module_of, resolve_checkpoint, with_input_shape
from edgeprune.errors import ConfigError, check_positive
from edgeprune.export import int8 as int8_lib
from edgeprune.export import sparse as sparse_lib
from edgeprune.export.onnx import (
    DEFAULT_OPSET,
    PARITY_TOLERANCE,
    check_opset,
    export_verified,
    input_shape_of,
    ort_accuracy,
    ort_metrics,
    ort_session,
    parse_batch,
)
from edgeprune.measure import accuracy, machine_info
from edgeprune.report.tables import human_bytes
from edgeprune.utils.io import check_output, ensure_dir, write_json
from edgeprune.utils.lazy import OnFirstUse

onnx = OnFirstUse("onnx")

RUNTIMES_NOT_MEASURED = ("the {task} task's files hold {model}'s dense part only (no decoding, no NMS): its metrics "
                         "are measured in PyTorch, its parity on the dense outputs")
LATENCY_FILES = {"onnx": "model.onnx", "executorch": "model.pte", "openvino": "model.xml", "litert": "model.tflite",
                 "onnx int8": "model.int8.onnx", "executorch int8": "model.int8.pte", "openvino int8": "model.int8.xml",
                 "litert int8": "model.int8.tflite"}
EDGE_FORMATS = ("executorch", "openvino", "litert")  # a record without ONNX takes its parity from the first of these


@dataclass
class Exported:
    """What :func:`export` wrote: ``record`` is export.json's content, ``paths`` every file by name."""

    out: Path
    record: dict
    paths: dict[str, Path]
    title: str  # the summary's title and lines, as ``edgeprune export`` prints them
    rows: list[list[str]]

    @property
    def parity(self) -> dict:
        if "parity" in self.record:
            return self.record["parity"]
        return self.record[next(f for f in EDGE_FORMATS if f in self.record)]["fp32"]

    @property
    def accuracy(self) -> dict:
        """Top-1 on the test split per runtime and precision (a classifier with data; else empty)."""
        return self.record.get("accuracy", {})

    @property
    def metrics(self) -> dict:
        """Another task's metrics per runtime and precision (with data; else empty)."""
        return self.record.get("metrics", {})


@dataclass
class _Options:
    formats: tuple[str, ...]
    batch: object
    opset: int
    int8: str | None
    sparse_onnx: bool
    sparse_values: str | None
    et_batch: object
    max_batch: int
    latency: bool
    calib_batches: int
    calib_batch_size: int
    tolerance: float


def export(model_or_run, out: str | os.PathLike, *, formats=("onnx",), int8: str | None = None, sparse=False,
           sparse_onnx: bool = False, data=None, data_dir=None, task=None, candidate: str | None = None,
           opset: int = DEFAULT_OPSET, batch="dynamic", et_batch=1, max_batch: int = 32, latency: bool = True,
           calib_batches: int = 16, calib_batch_size: int = 32, tolerance: float = PARITY_TOLERANCE,
           model_spec: str | None = None, model_args: dict | None = None, input_shape=None) -> Exported:
    """Export ``model_or_run`` into the folder ``out`` and verify every file in its runtime; write ``export.json``.

    ``model_or_run``: an ``nn.Module`` built by edgeprune (a zoo spec, a loaded checkpoint, ``pruned.model``), a
    ``Pruned`` result, a checkpoint (.pt), a sparse artifact (.epz) or a run directory (``candidate``: a record id
    of its results.jsonl; default the chosen one). ``formats``: a tuple (or comma list) of "onnx", "executorch" (needs
    the ``[edge]`` extra), "openvino" (the ``[openvino]`` extra; IR converted from the ONNX file) and "litert" (the
    ``[litert]`` extra; a batch-1 ``.tflite``), or "both" (ONNX and
    ExecuTorch); with two or more, ``latency`` times the files at batch 1 side by side. ``int8``:
    "static" (calibrated on the training split; needs data) or "dynamic" (ONNX only), also writing model.int8.*.
    ``sparse``: True or "fp32" | "fp16" | "int8" also writes the compressed sparse artifact model.epz;
    ``sparse_onnx``: model.sparse.onnx with standard sparse initializers. ``data``: a data set spec ("digits",
    "mnist-seg"...; ``data_dir`` its folder), a data bundle or (train, val, test) loaders, for the parity inputs,
    the test accuracy (or ``task``'s metrics) in every runtime and the calibration; default the checkpoint's
    own, else random inputs. ``batch``: "dynamic" or a fixed ONNX batch; ``et_batch``: ExecuTorch's (default 1,
    or "dynamic" up to ``max_batch``). ``model_spec`` / ``model_args``: a checkpoint of your own class is loaded
    onto a fresh instance built by that ``file.py:factory`` spec. A model of your own class in memory (``pruned.model``
    of your model) takes one input's shape from ``data``, or from ``input_shape`` ((C, H, W), (C, L)...) without data.
    Everything is checked before ``out`` is written.
    """
    options = _checked_options(out, formats=formats, int8=int8, sparse=sparse, sparse_onnx=sparse_onnx, opset=opset,
                               batch=batch, et_batch=et_batch, max_batch=max_batch, latency=latency,
                               calib_batches=calib_batches, calib_batch_size=calib_batch_size, tolerance=tolerance)
    wanted = tasks_lib.get(task) if task is not None else None  # a bad task: one line before any work
    model, head, holder = _source(model_or_run, candidate, model_spec, model_args, data, data_dir, input_shape)
    splits, inputs_note, chosen = dataset_for(model, data, data_dir, holder, wanted)
    if int8 == "static" and splits is None:
        raise ConfigError(f"--int8 static needs calibration data: pass --dataset (and --data-dir); found {inputs_note}")
    out = ensure_dir(out)
    with tasks_lib.using(chosen):
        return _export(model, head, out, splits, inputs_note, chosen, options)


def _checked_options(out, *, formats, int8, sparse, sparse_onnx, opset, batch, et_batch, max_batch, latency,
                     calib_batches, calib_batch_size, tolerance) -> _Options:
    """Every option checked (one line naming the value and what is allowed), in the order the CLI always checked them."""
    check_opset(opset)
    check_output(out, "--out", folder=True)
    batch_value = parse_batch(batch)
    if int8 is not None:
        int8_lib.check_mode(int8)
    chosen = edge_parts.check_formats(formats, int8)
    et_batch_value = parse_batch(et_batch)
    _check_int("--max-batch", max_batch)
    if sparse_onnx and "onnx" not in chosen:
        raise ConfigError(f"--sparse-onnx writes ONNX files; use --format onnx|both, not {formats!r}")
    sparse_values = "fp32" if sparse is True else (None if sparse is False or sparse is None else sparse)
    if sparse_values is not None and sparse_values not in sparse_lib.VALUE_FORMATS:
        raise ConfigError(f"--sparse {sparse_values!r} is not a value format; allowed: {', '.join(sparse_lib.VALUE_FORMATS)}")
    _check_int("--calib-batches", calib_batches)
    _check_int("--calib-batch-size", calib_batch_size)
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not tolerance > 0:
        raise ConfigError(f"--tolerance must be > 0, got {tolerance!r}")
    return _Options(chosen, batch_value, opset, int8, bool(sparse_onnx), sparse_values, et_batch_value, max_batch,
                    bool(latency), calib_batches, calib_batch_size, tolerance)


def _check_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer > 0, got {value!r}")
    check_positive(name, value)


def _source(model_or_run, candidate, model_spec, model_args, data, data_dir, input_shape) -> tuple[object, dict, str]:
    """(the model, the head of export.json, who holds the model for error messages)."""
    model = module_of(model_or_run)
    if model is not None:
        given = next((name for name, v in (("candidate", candidate), ("model_spec", model_spec), ("model_args", model_args))
                      if v is not None), None)
        if given is not None:
            raise ConfigError(f"{given}= picks or rebuilds a saved model; the model given is already in memory "
                              f"({type(model).__name__}): pass a checkpoint or a run directory instead")
        model = with_input_shape(model, input_shape, data, data_dir)
        return model, {"source": None, "checkpoint": None, "candidate": None}, f"model {type(model).__name__}"
    path, cand = resolve_checkpoint(Path(model_or_run), candidate)
    model = load_for_export(path, model_spec, dict(model_args or {}), data if isinstance(data, str) else None, data_dir)
    return model, {"source": str(model_or_run), "checkpoint": str(path), "candidate": cand}, f"checkpoint {str(path)!r}"


def _parity_inputs(model, splits, batch) -> torch.Tensor:
    if splits is not None:
        inputs = next(checked(make_loader(splits.test, 64), "test data", labels=False))[0]
    else:
        inputs = torch.randn(16, *input_shape_of(model), generator=torch.Generator().manual_seed(0))
    if isinstance(batch, int):
        inputs = inputs[:batch] if len(inputs) >= batch else inputs.repeat(batch // len(inputs) + 1, *[1] * (inputs.dim() - 1))[:batch]
    return inputs


def _export(model, head: dict, out: Path, splits, inputs_note: str, task: tasks_lib.Task, o: _Options) -> Exported:
    """Write the files asked for and export.json (under ``task``)."""
    evaluation = task_metrics.evaluation_of(task, model, splits)
    inputs = _parity_inputs(model, splits, o.batch)
    build = model.edgeprune_build
    record: dict = {**head, "model": build["spec"] or build["class"], "build": build, "formats": list(o.formats)}
    rows = [["model", record["model"] + (f" (candidate {head['candidate']})" if head["candidate"] else "")]]
    rows += _torch_part(record, model, splits, task, evaluation)
    if "onnx" in o.formats:
        part, part_rows = _onnx_part(model, out, inputs, splits, inputs_note, o, evaluation=evaluation, task=task)
        _merge(record, part)
        record.update(part)
        rows += part_rows
    if o.sparse_onnx:
        record["sparse_onnx"], part_rows = edge_parts.sparse_onnx_part(out, inputs, o.int8 == "static")
        rows += part_rows
    if "executorch" in o.formats:
        et, part_rows = edge_parts.executorch_part(model, out, inputs, splits, batch=o.et_batch, max_batch=o.max_batch,
                                                   int8=o.int8, calib_batches=o.calib_batches,
                                                   calib_batch_size=o.calib_batch_size, tolerance=o.tolerance,
                                                   evaluation=evaluation, task=task)
        _merge(record, et)
        record["executorch"] = et
        rows += part_rows
    for name, part in (("openvino", edge_parts.openvino_part), ("litert", edge_parts.litert_part)):
        if name in o.formats:
            done, part_rows = part(model, out, inputs, splits, int8=o.int8, calib_batches=o.calib_batches,
                                   calib_batch_size=o.calib_batch_size, tolerance=o.tolerance, evaluation=evaluation,
                                   task=task)
            _merge(record, done)
            record[name] = done
            rows += part_rows
    if len(o.formats) >= 2 and o.latency:
        record["latency"], part_rows = edge_parts.latency_part(out, LATENCY_FILES)
        rows += part_rows
    if o.sparse_values is not None:
        rows.append(_sparse_part(record, model, out, o.sparse_values))
    if not task_metrics.is_classification(task) and not record["accuracy"]:
        del record["accuracy"]  # top-1 is a classifier's: another task's figures are under "metrics"
    record.update({"machine": machine_info(), "versions": _versions(), "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
    write_json(out / "export.json", record)
    rows.append(["written", str(out / "export.json")])
    title = f"export {head['checkpoint'] or f'{type(model).__name__} (in memory)'}"
    return Exported(out, record, _written(out, record), title, rows)


def _merge(record: dict, part: dict) -> None:
    """A runtime's accuracies and task metrics (popped from ``part``) into the record's own blocks."""
    record["accuracy"] = {**record.get("accuracy", {}), **part.pop("accuracy", {})}
    if "metrics" in part:
        record["metrics"].update(part.pop("metrics"))


def _torch_part(record: dict, model, splits, task: tasks_lib.Task, evaluation: str | None) -> list:
    """The model's own test figures in PyTorch, what the files are compared with."""
    rows = []
    if evaluation == "accuracy":
        record["accuracy"] = {"dataset": splits.name, "split": "test", "images": task_metrics.images_in(splits.test),
                              "fp32_torch": accuracy(model, splits.test)}
        rows.append(["test top-1 FP32 (torch)", f"{record['accuracy']['fp32_torch']:.2%}"])
    elif splits is not None:
        metrics, interval = task_metrics.evaluate(task, model, splits.test)
        record["metrics"] = {**task_metrics.record_of(task, splits), "fp32_torch": metrics, "fp32_torch_interval": interval}
        rows.append(["task", task_metrics.task_text(task, task_metrics.images_in(splits.test))])
        rows += task_metrics.metric_rows(task, metrics, " FP32 (torch)", interval)
        if evaluation is None:  # a detector: the files hold its dense part, without decoding and NMS
            record["metrics"]["runtimes"] = RUNTIMES_NOT_MEASURED.format(task=task.name, model=type(model).__name__)
            rows.append(["test metrics in the runtimes", "not measured: " + record["metrics"]["runtimes"]])
    return rows


def _onnx_part(model, out: Path, inputs, splits, inputs_note: str, o: _Options, *, evaluation: str | None,
               task: tasks_lib.Task) -> tuple[dict, list]:
    """model.onnx (+ model.int8.onnx): parity in ONNX Runtime, accuracies (``evaluation`` "accuracy") or the task's
    metrics ("metrics") there."""
    onnx_info = export_verified(model, out / "model.onnx", inputs, opset=o.opset, batch=o.batch, tolerance=o.tolerance)
    onnx_info["path"] = "model.onnx"
    record: dict = {
        "onnx": {k: v for k, v in onnx_info.items() if k not in ("max_abs_diff", "tolerance", "parity_inputs")},
        "parity": {"max_abs_diff": onnx_info["max_abs_diff"], "tolerance": o.tolerance, "inputs": f"{len(inputs)} images: {inputs_note}",
                   "batches_checked": "full batch and batch 1" if o.batch == "dynamic" else f"batch {o.batch}"},
    }
    rows = [["model.onnx", f"{human_bytes(onnx_info['bytes'])}, opset {o.opset}, batch {o.batch}"],
            ["max |ORT - torch| (FP32 logits)", f"{onnx_info['max_abs_diff']:.2e} on {inputs_note}"]]
    if evaluation == "accuracy":
        record["accuracy"] = {"fp32_ort": ort_accuracy(ort_session(out / "model.onnx"), splits.test)}
        rows.append(["test top-1 FP32 (ORT)", f"{record['accuracy']['fp32_ort']:.2%}"])
    if o.int8 is not None:
        q = int8_lib.quantize(out / "model.onnx", out / "model.int8.onnx", o.int8,
                              calibration_data=splits.train if splits is not None else None,
                              calib_batches=o.calib_batches, calib_batch_size=o.calib_batch_size)
        q["path"] = "model.int8.onnx"
        record["int8"] = q
        rows.append(["model.int8.onnx", f"{human_bytes(q['bytes'])} ({o.int8}, {onnx_info['bytes'] / q['bytes']:.2f}x smaller)"])
        if evaluation == "accuracy":
            record["accuracy"]["int8_ort"] = ort_accuracy(ort_session(out / "model.int8.onnx"), splits.test)
            rows.append(["test top-1 INT8 (ORT)", f"{record['accuracy']['int8_ort']:.2%}"])
    if evaluation == "metrics":
        files = {"fp32_ort": "model.onnx"} | ({"int8_ort": "model.int8.onnx"} if o.int8 is not None else {})
        record["metrics"] = {key: ort_metrics(ort_session(out / file), model, inputs[:1], splits.test, task)
                             for key, file in files.items()}
        rows += task_metrics.runtime_rows(task, record["metrics"], "ORT")
    return record, rows


def _sparse_part(record: dict, model, out: Path, values: str) -> list:
    """model.epz, the compressed sparse artifact; its table line."""
    described = sparse_lib.save(model, out / "model.epz", values=values, meta=getattr(model, "edgeprune_meta", None) or {})
    described["path"] = "model.epz"
    record["sparse"] = {k: v for k, v in described.items() if k != "tensors"}
    return ["model.epz", f"{human_bytes(described['bytes'])} ({values} values; {described['ratio_to_bound']:.3f}x "
                         f"the information bound, {described['ratio_to_dense']:.1%} of dense FP32)"]


def _written(out: Path, record: dict) -> dict[str, Path]:
    """Every file the record names, by file name, and export.json."""
    blocks = [record.get("onnx"), record.get("int8"), *(record.get("sparse_onnx") or {}).values(),
              *(record.get("executorch") or {}).values(), *(record.get("openvino") or {}).values(),
              *(record.get("litert") or {}).values(), record.get("sparse")]
    names = [b["path"] for b in blocks if isinstance(b, dict) and "path" in b]
    names += [str(Path(n).with_suffix(".bin")) for n in names if n.endswith(".xml")] + ["export.json"]
    return {name: out / name for name in names}


def _versions() -> dict:
    versions = {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}
    # the optional extras' versions, recorded when a file of theirs was written (they are never imported for it)
    ov, lrt = sys.modules.get("openvino"), sys.modules.get("litert_torch.version")
    return (versions | ({"openvino": ov.get_version()} if ov is not None else {})
            | ({"litert_torch": lrt.__version__} if lrt is not None else {}))
