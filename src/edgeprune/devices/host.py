"""The machine edgeprune runs on, timed by the runner in this process."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from edgeprune.devices import runner
from edgeprune.devices.base import Device, parse_output


class HostDevice(Device):
    kind = "host"

    def __init__(self, runtime: str = "onnxruntime", threads: int = 1, name: str = "host"):
        super().__init__(name, runtime, threads)

    def run_runner(self, args: list[str], files: list[Path]) -> dict:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            runner.main([*args, *(str(f) for f in files)])
        return parse_output(self.name, printed.getvalue())
