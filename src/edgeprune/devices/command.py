"""``cmd:TEMPLATE``: any command that runs ``{model}`` and prints a time (adb shell, a board vendor's benchmark
tool, ``onnxruntime_perf_test``, ExecuTorch's ``executor_runner``, edgeprune's runner under ``taskset``).

Placeholders: ``{model}`` (the file), ``{batch}``, ``{threads}``, ``{shape}`` (``3,32,32``), ``{runtime}``,
``{python}`` (this Python) and ``{runner}`` (edgeprune's runner script). The time read from the output: the
runner's JSON (its median), a JSON object with ``median_ms`` / ``latency_ms`` / ``ms``, else the last number
with a unit (``0.42 ms``, ``420 us``, ``0.00042 s``). Each round runs the command once per file, in turn; as each
run is a process that times many calls itself, ``rounds`` rounds (default 5) are run whatever the caller asks.

``{models}`` instead of ``{model}``: edgeprune's runner (or anything printing its JSON) gets every file in one run
and times them in turn itself, as on ``host`` and ``ssh://`` devices: one process for a latency table's hundreds
of one-layer files, and candidates timed in alternation with their reference. ``{shape}`` is empty for files
timed at their own static shape; ``{rounds}`` and ``{warmup}`` are the rounds and warm-up calls the caller asks.
"""

from __future__ import annotations

import re
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

from edgeprune.devices import runner
from edgeprune.devices.base import Device, last_json, runtime_of, tail_of
from edgeprune.errors import ConfigError, DeviceError, check_positive
from edgeprune.measure.latency import ALTERNATION_BLOCK_MS

PLACEHOLDERS = ("model", "models", "batch", "threads", "shape", "runtime", "python", "runner", "rounds", "warmup", "block_ms")
_TIME = re.compile(r"([0-9]*\.?[0-9]+(?:e[-+]?\d+)?)\s*(ms|us|µs|s)\b", re.IGNORECASE)
_TO_MS = {"ms": 1.0, "us": 1e-3, "µs": 1e-3, "s": 1e3}


class CommandDevice(Device):
    kind = "cmd"

    def __init__(self, template: str, runtime: str = "onnxruntime", threads: int = 1, name: str | None = None,
                 timeout: float = 600.0, rounds: int = 5):
        super().__init__(name or f"cmd:{template}", runtime, threads)
        if ("{model}" in template) == ("{models}" in template):
            raise ConfigError(f"device command {template!r} must contain {{model}} or {{models}} (one of them); "
                              f"placeholders: {', '.join(PLACEHOLDERS)}")
        try:
            template.format(**dict.fromkeys(PLACEHOLDERS, ""))
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(f"device command {template!r}: unknown placeholder {exc}; allowed: "
                              f"{', '.join(PLACEHOLDERS)}") from None
        self.template, self.timeout, self.rounds = template, float(timeout), int(check_positive("rounds", rounds))

    def time(self, files, shape, batch=1, rounds=20, warmup=5, block_ms=ALTERNATION_BLOCK_MS):
        if "{models}" in self.template:
            return self.run_all([Path(f) for f in files], shape, batch, rounds, warmup, block_ms)
        times: list[list[float]] = [[] for _ in files]
        shapes = [(shape, batch) if shape else static_input(Path(f)) for f in files]
        for _ in range(self.rounds):
            for i, f in enumerate(files):
                times[i].append(self.run_once(Path(f), *shapes[i]))
        return times

    def run_once(self, path: Path, shape: tuple, batch: int) -> float:
        """Milliseconds the command reports for one run of ``path``."""
        return read_time(self.name, self._run(self._command(path, shape, batch)))

    def run_all(self, files: list[Path], shape: tuple | None, batch: int, rounds: int = 20,
                warmup: int = 5, block_ms: float = ALTERNATION_BLOCK_MS) -> list[list[float]]:
        """Per-round milliseconds of every file from one run of a ``{models}`` command (the runner's JSON)."""
        out = last_json(self.name, self._run(self._command(files[0], shape or (), batch, files, rounds, warmup, block_ms)))
        times = (out or {}).get("times_ms")
        if not isinstance(times, list) or len(times) != len(files):
            raise DeviceError(f"device {self.name!r}: a {{models}} command must print the runner's JSON with one list of "
                              f"times per file ({len(files)} files)")
        return times

    def _command(self, path: Path, shape: tuple, batch: int, files: list[Path] | None = None, rounds: int | None = None,
                 warmup: int = 5, block_ms: float = ALTERNATION_BLOCK_MS) -> str:
        values = {"model": str(path), "batch": batch, "threads": self.threads, "shape": ",".join(map(str, shape)),
                  "runtime": runtime_of(path, self.runtime), "python": sys.executable, "runner": runner.__file__,
                  "rounds": rounds or self.rounds, "warmup": warmup, "block_ms": block_ms}
        quoted = {k: shlex.quote(str(v)) for k, v in values.items()}
        quoted["models"] = " ".join(shlex.quote(str(f)) for f in files or [path])
        return self.template.format(**quoted)

    def _run(self, command: str) -> str:
        try:
            done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise DeviceError(f"device {self.name!r}: the command did not finish within {self.timeout:g} s") from None
        if done.returncode != 0:
            tail = " ".join((done.stdout + " " + done.stderr).split())[-240:]
            raise DeviceError(f"device {self.name!r}: the command exited with {done.returncode} ({tail or 'no output'})")
        return done.stdout

    def run_runner(self, args, files):
        raise DeviceError(f"device {self.name!r} runs a command of its own; it lists no runtimes (time a file with it)")

    def check(self, runtime: str | None = None) -> dict:
        return {"command": self.template}


def static_input(path: Path) -> tuple[tuple, int]:
    """(shape without the batch, batch) of an ONNX file's static input (a latency table's one-operator files)."""
    import onnx  # noqa: PLC0415

    if path.suffix != ".onnx":
        raise ConfigError(f"{path.name}: a command's {{shape}} is read from ONNX files only; time ONNX Runtime tables "
                          "with it, or leave {shape} out of the command")

    dims = [d.dim_value for d in onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim]
    if not dims or min(dims) < 1:
        raise ConfigError(f"{path.name} has no static input shape; give the shape")
    return tuple(dims[1:]), dims[0]


def read_time(device: str, text: str) -> float:
    """Milliseconds from a command's output (see the module docstring for the forms read)."""
    out = last_json(device, text) or {}
    if out.get("times_ms"):
        return float(statistics.median(out["times_ms"][0]))
    for key in ("median_ms", "latency_ms", "ms"):
        if isinstance(out.get(key), (int, float)):
            return float(out[key])
    found = _TIME.findall(text)
    if not found:
        raise DeviceError(f"device {device!r}: no time in the command's output ({tail_of(text)}); print e.g. '0.42 ms'")
    number, unit = found[-1]
    return float(number) * _TO_MS[unit.lower()]
