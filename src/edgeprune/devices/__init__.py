"""Devices: where latency is measured, with which runtime and how many threads.

    dev = devices.get("host")                                   # this machine, ONNX Runtime, 1 thread
    dev = devices.get("ssh://pi@192.168.1.20", threads=4)        # copied there and timed by edgeprune's runner
    dev = devices.get("cmd:taskset -c 0 {python} {runner} --shape {shape} {model}")   # any command printing a time
    devices.add("pi5", "ssh://pi@192.168.1.20", threads=4)      # then budgets say latency<=8ms@pi5
    dev.paired(dense_onnx, small_onnx, shape=(3, 32, 32))       # {"reference_ms", "candidate_ms", "ratio"}

Kinds: ``host``, ``ssh://user@host[:port]`` (the ``[devices]`` extra), ``cmd:TEMPLATE`` (placeholders
``{model}``, ``{batch}``, ``{threads}``, ``{shape}``, ``{runtime}``, ``{python}``, ``{runner}``), or a name saved
with :func:`add` (``edgeprune devices add``).
"""

from edgeprune.devices.base import Device
from edgeprune.devices.command import CommandDevice
from edgeprune.devices.host import HostDevice
from edgeprune.devices.registry import add, get, named, remove
from edgeprune.devices.ssh import SshDevice

__all__ = ["Device", "HostDevice", "CommandDevice", "SshDevice", "get", "add", "remove", "named"]
