"""``ssh://user@host[:port]``: the runner and the model files are copied to the device and timed there.

One SSH connection per device object (asyncssh, the ``[devices]`` extra), reused for every timing; the runner
and each file are copied once (files by content hash) into a temporary folder that :meth:`SshDevice.close`
removes. The device needs Python 3 and the runtime (``pip install onnxruntime`` or ``executorch``).
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import shlex
import threading
from pathlib import Path
from urllib.parse import urlsplit

from edgeprune.devices import runner
from edgeprune.devices.base import Device, parse_output
from edgeprune.errors import ConfigError, DependencyError, DeviceError


def parse_url(url: str) -> tuple[str | None, str, int]:
    """(user, host, port) of ``ssh://user@host[:port]``; ConfigError naming the value otherwise."""
    parts = urlsplit(url)
    try:
        port = parts.port or 22
    except ValueError:
        port = None
    if parts.scheme != "ssh" or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise ConfigError(f"device {url!r} is not allowed; allowed: ssh://user@host[:port]")
    return parts.username, parts.hostname, port


class SshDevice(Device):
    kind = "ssh"

    def __init__(self, url: str, runtime: str = "onnxruntime", threads: int = 1, name: str | None = None, *,
                 key: str | None = None, known_hosts: str | None = None, python: str = "python3",
                 connect_timeout: float = 10.0, timeout: float = 600.0):
        super().__init__(name or url, runtime, threads)
        self.url, (self.user, self.host, self.port) = url, parse_url(url)
        self.key, self.known_hosts, self.python = key, known_hosts, python
        self.connect_timeout, self.timeout = float(connect_timeout), float(timeout)
        self._loop = self._conn = self._folder = None
        self._copied: set[str] = set()

    # -- the connection ---------------------------------------------------------------------------
    def _run(self, coroutine):
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            threading.Thread(target=self._loop.run_forever, daemon=True, name=f"edgeprune-ssh-{self.host}").start()
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    async def _connect(self):
        if self._conn is not None:
            return self._conn
        asyncssh = _asyncssh()
        options = {"port": self.port, "username": self.user, "connect_timeout": self.connect_timeout}
        if self.key:
            options["client_keys"] = [self.key]
        if self.known_hosts is not None:
            options["known_hosts"] = None if self.known_hosts == "none" else self.known_hosts
        try:
            self._conn = await asyncssh.connect(self.host, **options)
        except (OSError, asyncssh.Error, asyncio.TimeoutError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise DeviceError(f"device {self.name!r} is unreachable at {self.host}:{self.port} ({reason})") from None
        self._folder = (await self._checked("mktemp -d -t edgeprune-XXXXXX")).strip()  # in the device's $TMPDIR or /tmp
        atexit.register(self.close)  # the device's temporary folder goes even when no caller closes the device
        return self._conn

    async def _checked(self, command: str) -> str:
        try:
            done = await asyncio.wait_for(self._conn.run(command), self.timeout)
        except asyncio.TimeoutError:
            raise DeviceError(f"device {self.name!r}: {command.split()[0]} did not finish within {self.timeout:g} s") from None
        if done.exit_status == 127:
            raise DeviceError(f"device {self.name!r} has no {command.split()[0]!r} ({' '.join(str(done.stderr).split())[:160]})")
        if done.exit_status not in (0, 2):  # 2: the runner's own one-line error, printed as JSON
            tail = " ".join(f"{done.stdout} {done.stderr}".split())[-240:]
            ended = "ended without an exit status" if done.exit_status is None else f"exited with {done.exit_status}"
            raise DeviceError(f"device {self.name!r}: {command.split()[0]} {ended} ({tail})")
        return str(done.stdout)

    async def _copy(self, files: list[Path]) -> list[str]:
        """The device's paths of ``files`` (and the runner), copied once each."""
        conn = await self._connect()
        remote, todo = [], []
        for f in [Path(runner.__file__), *files]:
            name = "runner.py" if f == Path(runner.__file__) else _content_name(f)
            if name not in self._copied:
                todo.append((f, name))
                if f.suffix.lower() == ".xml":  # an OpenVINO IR reads its weights from the .bin of the same name
                    todo.append((f.with_suffix(".bin"), str(Path(name).with_suffix(".bin"))))
            remote.append(f"{self._folder}/{name}")
        if todo:
            async with conn.start_sftp_client() as sftp:
                for f, name in todo:
                    await sftp.put(str(f), f"{self._folder}/{name}")
                    self._copied.add(name)
        return remote[1:]

    # -- the Device contract --------------------------------------------------------------------------
    def run_runner(self, args: list[str], files: list[Path]) -> dict:
        async def go():
            remote = await self._copy(files)
            command = " ".join(shlex.quote(a) for a in [self.python, f"{self._folder}/runner.py", *args, *remote])
            return await self._checked(command)

        errors = (OSError, _asyncssh().Error)
        try:
            return parse_output(self.name, self._run(go()))
        except errors:
            self._forget()  # a connection that dropped is opened again, once
        try:
            return parse_output(self.name, self._run(go()))
        except errors as exc:
            self._forget()
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise DeviceError(f"device {self.name!r}: the connection to {self.host}:{self.port} failed ({reason})") from None

    def _forget(self) -> None:
        self._conn = self._folder = None
        self._copied.clear()

    def describe(self) -> dict:
        return {**super().describe(), "url": self.url}

    def close(self) -> None:
        atexit.unregister(self.close)
        if self._loop is None:
            return

        async def go():
            if self._conn is not None:
                if self._folder:
                    await self._conn.run(f"rm -rf {shlex.quote(self._folder)}")
                self._conn.close()
                await self._conn.wait_closed()

        try:
            self._run(go())
        except Exception:  # noqa: BLE001  (closing a connection that already broke)
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop = None
        self._forget()


def _asyncssh():
    try:
        import asyncssh  # noqa: PLC0415  (optional: the [devices] extra)
    except ImportError:
        raise DependencyError("ssh:// devices need asyncssh: pip install 'edgeprune[devices]'") from None
    return asyncssh


def _content_name(path: Path) -> str:
    """A name from the file's bytes (an OpenVINO IR's ``.bin`` counted in), so each content is copied once."""
    path = Path(path)
    digest = hashlib.sha256(path.read_bytes())
    if path.suffix.lower() == ".xml" and path.with_suffix(".bin").is_file():
        digest.update(path.with_suffix(".bin").read_bytes())
    return f"{digest.hexdigest()[:16]}{path.suffix}"
