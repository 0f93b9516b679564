"""The chosen model and the input model in every installed runtime (ONNX Runtime always; ExecuTorch, OpenVINO and
LiteRT with their extras): FP32 file bytes and batch-1 latency with 1 thread, and the chosen model in static INT8
(bytes, latency, and its test figures beside the FP32 file's, scored in the same runtime).

Each model is exported (parity checked in its runtime: :mod:`edgeprune.export.runtimes`) to a temporary folder,
then every file is timed in interleaved rounds (:func:`edgeprune.export.et_latency.compare`; medians of round
medians), so each speed-up is a ratio from one measurement. INT8 is calibrated on the training split of the data
set the chosen model records (16 batches of 32, as `edgeprune export --int8 static`) and scored on its test split;
without that data set, INT8 is left out with a note. The result is sealed into ``RUN/edge.json`` with the sha256 of
``chosen.pt`` and of the input model's checkpoint, so a re-rendered report reads it instead of measuring again
unless one of them changed.

The input model is ``RUN/input.pt`` (written by every sweep) or, for runs made before that, the model
`edgeprune prune` trained into ``RUN/dense/model.pt``; its weights must match the run's config.json.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from edgeprune import data as data_lib
from edgeprune import devices
from edgeprune import models as model_lib
from edgeprune import tasks as tasks_lib
from edgeprune.devices import Device
from edgeprune.errors import ConfigError, DamagedFileError, EdgepruneError
from edgeprune.export import runtimes as runtimes_lib
from edgeprune.export.et_latency import compare
from edgeprune.export.onnx import input_shape_of
from edgeprune.measure.latency import machine_info, speedup, spread
from edgeprune.runs.inputs import fingerprint
from edgeprune.utils.io import read_json, write_json

INPUT = "input.pt"  # the input model, saved by the sweep
CACHE = "edge.json"
ROUNDS = 7


def sha256_of(path: Path | None) -> str | None:
    if path is None:
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def input_checkpoint(root: Path) -> Path | None:
    return next((p for p in (root / INPUT, root / "dense" / "model.pt") if p.is_file()), None)


def measure(run_dir: str | Path, *, rounds: int = ROUNDS, device: str | None = None) -> dict:
    """{"models": {"input model": {...}, "chosen": {...}, "chosen INT8": {...}}, "speedup_ort_b1", ...} of a run
    with chosen.pt, from RUN/edge.json when it was measured for the same files and runtimes. A model or a runtime
    that cannot take a model has its one-line error instead of figures (``errors``); a runtime not installed
    is named in ``not_installed`` with its install line. ``device`` (:mod:`edgeprune.devices`): the two models'
    files in its runtime also timed there, in turn (``result["device"]``)."""
    root = Path(run_dir)
    chosen = root / "chosen.pt"
    if not chosen.is_file():
        raise ConfigError(f"{str(root)!r} has no chosen.pt; render its report first")
    source = input_checkpoint(root)
    present = runtimes_lib.installed()
    key = {"chosen_sha256": sha256_of(chosen), "input": source and source.relative_to(root).as_posix(),
           "input_sha256": sha256_of(source), "runtimes": [r.name for r in present], **({"device": device} if device else {})}
    cache = root / CACHE
    if cache.is_file():
        try:
            old = read_json(cache, "edge measurements")
        except DamagedFileError:
            old = None  # a derived file: measured again and rewritten
        if old and old.get("key") == key:
            return old
    target = devices.get(device) if device else None
    try:
        if target is not None:
            target.check()  # reachable and has its runtime, before anything is exported
        result = {"key": key, **_measure(root, chosen, source, rounds, present, target)}
    finally:
        if target is not None:
            target.close()
    write_json(cache, result, sealed=True)
    return result


def _models(root: Path, chosen: Path, source: Path | None, out: dict, notes: list) -> dict:
    """{"input model": module, "chosen": module} of those that load (and, for the input, match config.json)."""
    models = {}
    if source is None:
        notes.append("the input model is not stored in the run directory (input.pt: runs made before it was written)")
    else:
        try:
            model = model_lib.load(source)
            if fingerprint(model)["weights_sha256"] != read_json(root / "config.json", "run config")["model"].get("weights_sha256"):
                notes.append(f"{source.name} does not hold the run's input model (its weights differ from config.json)")
            else:
                models["input model"] = model
        except EdgepruneError as exc:
            notes.append(f"input model: {exc}")
    try:
        models["chosen"] = model_lib.load(chosen)
    except EdgepruneError as exc:
        out["chosen"] = {"error": str(exc)}
    return models


def _write(runtime, model, path: Path, inputs, entry: dict, calibration=None) -> bool:
    """One file written into ``entry`` (bytes, parity), or its one-line error under entry["errors"]."""
    try:
        info = runtime.write(model, path, inputs, calibration=calibration)
    except EdgepruneError as exc:
        entry.setdefault("errors", {})[runtime.title] = str(exc)
        return False
    entry[runtime.bytes_key] = info["bytes"]
    entry.setdefault("max_abs_diff", {})[runtime.name] = info.get("max_abs_diff", info.get("max_abs_diff_fp32"))
    if "outside_delegate" in info:
        entry["outside_delegate"] = info["outside_delegate"]
    return True


def _measure(root: Path, chosen: Path, source: Path | None, rounds: int, present: list, device: Device | None) -> dict:
    start = time.perf_counter()
    out, notes = {}, []
    models = _models(root, chosen, source, out, notes)
    task = tasks_lib.get(read_json(root / "config.json", "run config").get("task"))
    on_device, int8 = None, None
    steps = len(present) * (len(models) + 1) + 1  # every FP32 file, the chosen model's INT8 files, the timing
    with tempfile.TemporaryDirectory(prefix="edgeprune-edge-") as folder, tasks_lib.using(task), _bar() as bar:
        job = bar.add_task("exporting", total=steps)
        paths, shape, inputs = {}, None, None
        for name, model in models.items():
            try:
                shape = input_shape_of(model)
            except EdgepruneError as exc:
                out[name] = {"error": str(exc)}
                continue
            inputs = torch.randn(4, *shape, generator=torch.Generator().manual_seed(0))
            out[name] = entry = {}
            for runtime in present:
                bar.update(job, description=f"{name} to {runtime.title}")
                path = Path(folder) / f"{name.replace(' ', '_')}{runtime.suffix}"
                if _write(runtime, model, path, inputs, entry):
                    paths[(name, runtime.key)] = path
                bar.advance(job)
        if "chosen" in models and inputs is not None:
            int8 = _int8(models["chosen"], present, Path(folder), inputs, paths, out, notes,
                         lambda what: bar.update(job, description=what, advance=1))
        bar.update(job, description=f"timing {len(paths)} files in interleaved rounds")
        if paths:
            timed = compare({f"{n} {k}": p for (n, k), p in paths.items()}, batch=1, threads=1, rounds=rounds)
            for (name, key) in paths:
                t = timed[f"{name} {key}"]
                out[name].update({f"{key}_ms_b1": t["median_ms"], f"{key}_rounds_ms": t["rounds_ms"]})
        if device is not None:
            on_device = _time_on(device, paths, shape, rounds)
    result = {"models": out, "notes": notes, "batch": 1, "threads": 1, "rounds": rounds,
              "runtimes": {r.key: r.title for r in present}, "not_installed": runtimes_lib.missing(),
              "cpu": machine_info()["cpu"], "torch": torch.__version__}
    if int8 is not None:
        result["int8"] = int8
    base = out.get("input model", {})
    for name, prefix in (("chosen", "speedup"), ("chosen INT8", "speedup_int8")):
        small = out.get(name, {})
        for runtime in present:
            k = runtime.key
            if f"{k}_ms_b1" in base and f"{k}_ms_b1" in small:
                # both from the same interleaved rounds: a ratio from one measurement, with its per-round spread
                result[f"{prefix}_{k}_b1"] = speedup(base[f"{k}_rounds_ms"], small[f"{k}_rounds_ms"])
                ratios = spread([b / c for b, c in zip(base[f"{k}_rounds_ms"], small[f"{k}_rounds_ms"])])
                result[f"{prefix}_{k}_b1_spread"] = [ratios["p10_ms"], ratios["p90_ms"]]
    if on_device is not None:
        result["device"] = on_device
    result["seconds"] = time.perf_counter() - start
    return result


def _bar() -> Progress:
    return Progress(TextColumn("edge report: {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True), transient=True)


def _int8(model, present: list, folder: Path, inputs, paths: dict, out: dict, notes: list, step) -> dict | None:
    """The chosen model in static INT8 in every runtime that took it in FP32 (files into ``paths``, figures into
    out["chosen INT8"]) and both precisions scored on the test split: {"data", "scores": {runtime: {"fp32", "int8"}}}.
    ``step(what)`` as each runtime starts."""
    name = (getattr(model, "edgeprune_meta", None) or {}).get("dataset")
    if not name:
        notes.append("INT8 not measured: the chosen model records no data set to calibrate and score it on")
        return None
    try:
        splits = data_lib.load(name)
    except EdgepruneError as exc:
        notes.append(f"INT8 not measured: the data set {name!r} could not be loaded ({exc})")
        return None
    entry, scores, metric = {}, {}, tasks_lib.current().metric
    for runtime in present:
        step(f"chosen INT8 to {runtime.title}, scored")
        fp32 = paths.get(("chosen", runtime.key))
        path = folder / f"chosen.int8{runtime.suffix}"
        if fp32 is None or not _write(runtime, model, path, inputs, entry, calibration=splits.train):
            continue
        paths[("chosen INT8", runtime.key)] = path
        try:
            scores[runtime.key] = {precision: runtime.score(file, model, inputs, splits.test)[metric]
                                   for precision, file in (("fp32", fp32), ("int8", path))}
        except EdgepruneError as exc:
            entry.setdefault("errors", {})[f"{runtime.title} test figures"] = str(exc)
    out["chosen INT8"] = entry
    return {"data": f"{splits.name} test split ({len(splits.test):,} images)", "metric": metric,
            "calibration": f"{runtimes_lib.CALIB_BATCHES} batches of {runtimes_lib.CALIB_BATCH_SIZE} training images",
            "scores": scores}


def _time_on(device: Device, paths: dict, shape, rounds: int) -> dict:
    """The input model's and the chosen model's files in the device's runtime, timed there in turn."""
    runtime = runtimes_lib.named(device.runtime).key
    info = device.describe()
    files = [paths.get(("input model", runtime)), paths.get(("chosen", runtime))]
    if shape is None or None in files:
        return {**info, "error": "both models must export to be timed on the device"}
    times = device.time(files, shape, batch=1, rounds=rounds)
    base, small = (spread(t)["median_ms"] for t in times)
    ratios = spread([b / c for b, c in zip(*times)])
    return {**info, "input_ms_b1": base, "chosen_ms_b1": small, "speedup_b1": speedup(*times),
            "speedup_b1_spread": [ratios["p10_ms"], ratios["p90_ms"]]}
