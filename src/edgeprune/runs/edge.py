"""The chosen model and the input model on the device: FP32 ONNX and ExecuTorch (``.pte``, XNNPACK) bytes,
and batch-1 latency with 1 thread in ONNX Runtime and in ExecuTorch.

Each model is exported (parity checked in its runtime) to a temporary folder, then the four artifacts are
timed in interleaved rounds (:func:`edgeprune.export.et_latency.compare`; medians of round medians). The
result is sealed into ``RUN/edge.json`` with the sha256 of ``chosen.pt`` and of the input model's
checkpoint, so a re-rendered report reads it instead of measuring again unless one of them changed.

The input model is ``RUN/input.pt`` (written by every sweep) or, for runs made before that, the model
`edgeprune prune` trained into ``RUN/dense/model.pt``; its weights must match the run's config.json.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path

import torch

from edgeprune import devices
from edgeprune import models as model_lib
from edgeprune.devices import Device
from edgeprune.errors import ConfigError, DamagedFileError, DependencyError, EdgepruneError
from edgeprune.export.et_latency import compare
from edgeprune.export.executorch import executorch, export_executorch
from edgeprune.export.onnx import export_verified, input_shape_of
from edgeprune.measure.latency import machine_info, spread
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
    """{"models": {"input model": {...}, "chosen": {...}}, "speedup_ort_b1", "speedup_et_b1", ...} of a run
    with chosen.pt, from RUN/edge.json when it was measured for the same files. DependencyError (not cached)
    without the executorch package; a model that cannot be exported has {"error": "..."} instead of figures.
    ``device`` (:mod:`edgeprune.devices`): the two models' files in its runtime also timed there, in turn
    (``result["device"]``)."""
    root = Path(run_dir)
    chosen = root / "chosen.pt"
    if not chosen.is_file():
        raise ConfigError(f"{str(root)!r} has no chosen.pt; render its report first")
    source = input_checkpoint(root)
    key = {"chosen_sha256": sha256_of(chosen), "input": source and source.relative_to(root).as_posix(),
           "input_sha256": sha256_of(source), **({"device": device} if device else {})}
    cache = root / CACHE
    if cache.is_file():
        try:
            old = read_json(cache, "edge measurements")
        except DamagedFileError:
            old = None  # a derived file: measured again and rewritten
        if old and old.get("key") == key:
            return old
    executorch()  # the one-line install hint before anything is exported
    target = devices.get(device) if device else None
    try:
        if target is not None:
            target.check()  # reachable and has its runtime, before anything is exported
        result = {"key": key, **_measure(root, chosen, source, rounds, target)}
    finally:
        if target is not None:
            target.close()
    write_json(cache, result, sealed=True)
    return result


def _measure(root: Path, chosen: Path, source: Path | None, rounds: int, device: Device | None) -> dict:
    start = time.perf_counter()
    models, notes = {}, []
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
    out: dict = {}
    try:
        models["chosen"] = model_lib.load(chosen)
    except EdgepruneError as exc:
        out["chosen"] = {"error": str(exc)}
    on_device = None
    with tempfile.TemporaryDirectory(prefix="edgeprune-edge-") as folder:
        paths, shape = {}, None
        for name, model in models.items():
            try:
                shape = input_shape_of(model)
                x = torch.randn(4, *shape, generator=torch.Generator().manual_seed(0))
                stem = Path(folder) / name.replace(" ", "_")
                onnx = export_verified(model, stem.with_suffix(".onnx"), x)
                pte = export_executorch(model, stem.with_suffix(".pte"), x, batch=1)
            except DependencyError:
                raise
            except EdgepruneError as exc:
                out[name] = {"error": str(exc)}
                continue
            out[name] = {"onnx_bytes": onnx["bytes"], "pte_bytes": pte["bytes"],
                         "outside_delegate": pte["outside_delegate"],
                         "max_abs_diff": {"onnx": onnx["max_abs_diff"], "executorch": pte["max_abs_diff"]}}
            paths[(name, "ort")], paths[(name, "et")] = onnx["path"], pte["path"]
        if paths:
            timed = compare({f"{n} {r}": p for (n, r), p in paths.items()}, batch=1, threads=1, rounds=rounds)
            for (name, runtime) in paths:
                t = timed[f"{name} {runtime}"]
                out[name].update({f"{runtime}_ms_b1": t["median_ms"], f"{runtime}_rounds_ms": t["rounds_ms"]})
        if device is not None:
            on_device = _time_on(device, paths, shape, rounds)
    result = {"models": out, "notes": notes, "batch": 1, "threads": 1, "rounds": rounds,
              "cpu": machine_info()["cpu"], "torch": torch.__version__}
    base, small = out.get("input model", {}), out.get("chosen", {})
    for runtime in ("ort", "et"):
        if f"{runtime}_ms_b1" in base and f"{runtime}_ms_b1" in small:
            # both from the same interleaved rounds: a ratio from one measurement, with its per-round spread
            result[f"speedup_{runtime}_b1"] = base[f"{runtime}_ms_b1"] / small[f"{runtime}_ms_b1"]
            ratios = spread([b / c for b, c in zip(base[f"{runtime}_rounds_ms"], small[f"{runtime}_rounds_ms"])])
            result[f"speedup_{runtime}_b1_spread"] = [ratios["p10_ms"], ratios["p90_ms"]]
    if on_device is not None:
        result["device"] = on_device
    result["seconds"] = time.perf_counter() - start
    return result


def _time_on(device: Device, paths: dict, shape, rounds: int) -> dict:
    """The input model's and the chosen model's files in the device's runtime, timed there in turn."""
    runtime = "et" if device.runtime == "executorch" else "ort"
    info = device.describe()
    files = [paths.get(("input model", runtime)), paths.get(("chosen", runtime))]
    if shape is None or None in files:
        return {**info, "error": "both models must export to be timed on the device"}
    times = device.time(files, shape, batch=1, rounds=rounds)
    base, small = (spread(t)["median_ms"] for t in times)
    ratios = spread([b / c for b, c in zip(*times)])
    return {**info, "input_ms_b1": base, "chosen_ms_b1": small, "speedup_b1": base / small,
            "speedup_b1_spread": [ratios["p10_ms"], ratios["p90_ms"]]}
