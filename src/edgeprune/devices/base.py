"""A device: where latency is measured, with which runtime and how many threads.

Every device times model files with edgeprune's runner (:mod:`edgeprune.devices.runner`) in alternation: the
input model beside a candidate, so load on the device moves both alike. Subclasses only say how the runner is
run there (:meth:`Device.run_runner`): in this process (``host``), over SSH, or inside the user's command.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from edgeprune.errors import ConfigError, DeviceError, check_positive
from edgeprune.measure.latency import ALTERNATION_BLOCK_MS, speedup

RUNTIMES = ("onnxruntime", "executorch", "openvino", "litert")
SUFFIX = {".onnx": "onnxruntime", ".pte": "executorch", ".xml": "openvino", ".tflite": "litert"}
PACKAGES = {"litert": "ai-edge-litert"}  # what to pip install on the device, where it is not the runtime's name


class Device:
    """Base class: ``name`` (as the user gave it), ``runtime`` (the default for files without a suffix of their
    own) and ``threads``."""

    kind = "device"

    def __init__(self, name: str, runtime: str = "onnxruntime", threads: int = 1):
        if runtime not in RUNTIMES:
            raise ConfigError(f"device {name!r}: runtime {runtime!r} is not allowed; allowed: {', '.join(RUNTIMES)}")
        self.name, self.runtime, self.threads = name, runtime, int(check_positive("threads", threads))

    def run_runner(self, args: list[str], files: list[Path]) -> dict:
        """The runner's JSON output for ``args`` followed by ``files`` (as the device sees them)."""
        raise NotImplementedError

    def time(self, files: list[Path], shape: tuple | None, batch: int = 1, rounds: int = 20, warmup: int = 5,
             block_ms: float = ALTERNATION_BLOCK_MS) -> list[list[float]]:
        """Milliseconds per round of each file (all of one runtime), the files run in turn each round, each for at
        least ``block_ms`` where there are several. ``shape`` None: each file's own static input shape, batch
        included (a dynamic batch: ``batch``)."""
        check_positive("batch", batch)
        check_positive("rounds", rounds)
        runtime = runtime_of(files[0], self.runtime)
        if any(runtime_of(f, self.runtime) != runtime for f in files):
            raise ConfigError(f"files timed together must be of one runtime, got {[Path(f).name for f in files]}")
        args = ["--runtime", runtime, *(["--shape", ",".join(str(int(d)) for d in shape)] if shape else []), "--batch", str(batch),
                "--threads", str(self.threads), "--rounds", str(rounds), "--warmup", str(warmup), "--block-ms", str(block_ms)]
        return self.run_runner(args, [Path(f) for f in files])["times_ms"]

    def latency(self, path: Path, shape: tuple, batch: int = 1, runs: int = 20) -> float:
        """Median milliseconds of one file."""
        return statistics.median(self.time([path], shape, batch, rounds=runs)[0])

    def paired(self, reference: Path, candidate: Path, shape: tuple, batch: int = 1, runs: int = 20) -> dict:
        """The two files timed in alternation: medians and ``ratio``, the candidate's :func:`speedup` over the reference."""
        ref, cand = self.time([reference, candidate], shape, batch, rounds=runs)
        return {"reference_ms": statistics.median(ref), "candidate_ms": statistics.median(cand), "ratio": speedup(ref, cand)}

    def check(self, runtime: str | None = None) -> dict:
        """What the device has: its runtimes with versions, cores, CPU; DeviceError when it lacks ``runtime``
        (default: its own)."""
        info = self.run_runner(["--check"], [])
        runtime = runtime or self.runtime
        if runtime not in info.get("runtimes", {}):
            found = ", ".join(info.get("runtimes", {})) or "none"
            raise DeviceError(f"device {self.name!r} has no {runtime} (runtimes found: {found}); install it there "
                              f"(pip install {PACKAGES.get(runtime, runtime)})")
        return info

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind, "runtime": self.runtime, "threads": self.threads}

    def close(self) -> None:
        """Release connections (a no-op for devices without any)."""


def runtime_of(path, default: str) -> str:
    return SUFFIX.get(Path(path).suffix.lower(), default)


def last_json(device: str, text: str) -> dict | None:
    """The last line of ``text`` that is a JSON object (None if none is); DeviceError with its one-line error."""
    for line in reversed(text.strip().splitlines()):
        try:
            out = json.loads(line)
        except ValueError:
            continue
        if isinstance(out, dict):
            if "error" in out:
                raise DeviceError(f"device {device!r}: {out['error']}")
            return out
    return None


def tail_of(text: str) -> str:
    return " ".join(text.split())[-200:] or "no output"


def parse_output(device: str, text: str) -> dict:
    """The runner's JSON line; DeviceError with its one-line error or the output's end."""
    out = last_json(device, text)
    if out is None:
        raise DeviceError(f"device {device!r}: the runner printed no result ({tail_of(text)})")
    return out
