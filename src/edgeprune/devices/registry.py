"""Named devices in a small JSON file, and a device from a name or a spec.

    edgeprune devices add pi5 ssh://pi@192.168.1.20 --threads 4
    edgeprune devices list
    edgeprune devices check pi5

The file: ``$EDGEPRUNE_DEVICES`` if set, else ``~/.config/edgeprune/devices.json``. A budget names a device by
its name (``latency<=8ms@pi5``); ``host`` is always there (this machine).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from edgeprune.devices.base import Device
from edgeprune.devices.command import CommandDevice
from edgeprune.devices.host import HostDevice
from edgeprune.devices.ssh import SshDevice
from edgeprune.errors import ConfigError, DamagedFileError
from edgeprune.measure.budget import SUFFIXES
from edgeprune.utils.io import read_json, write_json

NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
RESERVED = set(SUFFIXES)
OPTIONS = ("key", "known_hosts", "python", "connect_timeout", "timeout", "rounds")  # ssh: all but rounds; cmd: timeout, rounds


def path() -> Path:
    return Path(os.environ.get("EDGEPRUNE_DEVICES") or Path.home() / ".config" / "edgeprune" / "devices.json")


def named() -> dict[str, dict]:
    """{name: {"spec", "runtime", "threads", options...}} of the file (empty when there is none)."""
    file = path()
    if not file.exists():
        return {}
    entries = read_json(file, "device file")
    if not all(isinstance(v, dict) and isinstance(v.get("spec"), str) for v in entries.values()):
        raise DamagedFileError(f"device file {str(file)!r} must map names to {{\"spec\": ...}} objects; fix or delete it")
    return entries


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.match(name) or name in RESERVED or re.fullmatch(r"b\d+", name):
        raise ConfigError(f"device name {name!r} is not allowed; allowed: lower-case letters, digits, - and _ "
                          f"(starting with a letter, not b<digits> or one of {', '.join(sorted(RESERVED))})")
    return name


def add(name: str, spec: str, runtime: str = "onnxruntime", threads: int = 1, **options) -> dict:
    """Save a named device (built once, so a bad spec or option is refused before anything is written)."""
    check_name(name)
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ConfigError(f"device option {unknown[0]!r} is not allowed; allowed: {', '.join(OPTIONS)}")
    entry = {"spec": spec, "runtime": runtime, "threads": int(threads),
             **{k: v for k, v in options.items() if v is not None}}
    build(name, entry)
    entries = named()
    entries[name] = entry
    _write(entries)
    return entry


def remove(name: str) -> None:
    entries = named()
    if name not in entries:
        raise ConfigError(f"no device named {name!r}; known: {', '.join(sorted(entries)) or 'none'}")
    del entries[name]
    _write(entries)


def _write(entries: dict) -> None:
    write_json(path(), dict(sorted(entries.items())))


def get(spec: str | Device, *, runtime: str | None = None, threads: int | None = None) -> Device:
    """A device from ``host``, ``ssh://user@host[:port]``, ``cmd:TEMPLATE`` or a saved name (its runtime and threads
    unless given here)."""
    if isinstance(spec, Device):
        return spec
    if not isinstance(spec, str) or not spec:
        raise ConfigError(f"device {spec!r} is not allowed; allowed: host, ssh://user@host[:port], cmd:TEMPLATE or a name "
                          "saved with `edgeprune devices add`")
    entry = {"spec": spec}
    if spec != "host" and not spec.startswith(("ssh://", "cmd:")):
        entries = named()
        if spec not in entries:
            raise ConfigError(f"unknown device {spec!r}; known: {', '.join(['host', *sorted(entries)])} "
                              "(add one with `edgeprune devices add NAME ssh://user@host` or cmd:TEMPLATE)")
        entry = dict(entries[spec])
    if runtime is not None:
        entry["runtime"] = runtime
    if threads is not None:
        entry["threads"] = threads
    return build(spec, entry)


def build(name: str, entry: dict) -> Device:
    spec, options = entry["spec"], {k: v for k, v in entry.items() if k in OPTIONS}
    common = {"runtime": entry.get("runtime", "onnxruntime"), "threads": int(entry.get("threads", 1)), "name": name}
    if spec == "host":
        return HostDevice(**common)
    if spec.startswith("ssh://"):
        return SshDevice(spec, **common, **{k: v for k, v in options.items() if k != "rounds"})
    if spec.startswith("cmd:"):
        return CommandDevice(spec[len("cmd:"):], **common, **{k: v for k, v in options.items() if k in ("timeout", "rounds")})
    raise ConfigError(f"device spec {spec!r} is not allowed; allowed: host, ssh://user@host[:port] or cmd:TEMPLATE")
