"""One live writer per run directory: RUN_DIR/.lock holds the pid of the search that writes it.

The lock file is created whole or not at all (written to a temp file, then hard-linked into place, which
fails if a lock already exists). A lock whose process is gone — killed with ``kill -9``, a crashed node —
is stale: the next search takes it over with a warning. A process counts as alive when its pid exists,
is not a zombie and (on Linux) still has the start time recorded in the lock, so a recycled pid is not
mistaken for the old search.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from edgeprune.errors import ConfigError
from edgeprune.utils.io import ensure_dir, temp_file, temp_writer, writing

LOCK_NAME = ".lock"


def _proc_start(pid: int) -> int | None:
    """The process start time in clock ticks since boot (Linux /proc), or None where unavailable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces
    return int(fields[19])  # field 22 of proc(5): starttime


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :].startswith("Z")


def pid_alive(pid: int, start: int | None = None) -> bool:
    """True if process ``pid`` runs (and, when ``start`` is given and checkable, is the same process)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        pass
    if _is_zombie(pid):
        return False
    if start is not None:
        now = _proc_start(pid)
        if now is not None and now != start:
            return False  # the pid was recycled
    return True


@dataclass
class LockInfo:
    pid: int
    host: str
    started: float
    proc_start: int | None = None
    command: str = ""

    @property
    def local(self) -> bool:
        return self.host == socket.gethostname()

    def alive(self) -> bool | None:
        """True/False for a lock of this host; None when it belongs to another host (cannot check)."""
        return pid_alive(self.pid, self.proc_start) if self.local else None

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        return f"pid {self.pid} on {self.host}, started {when}"


def read_lock(run_dir: str | os.PathLike) -> LockInfo | None:
    """The lock of ``run_dir``, or None if there is none (or it is unreadable junk)."""
    try:
        data = json.loads((Path(run_dir) / LOCK_NAME).read_text())
        return LockInfo(int(data["pid"]), str(data["host"]), float(data["started"]),
                        data.get("proc_start"), str(data.get("command", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def lock_state(run_dir: str | os.PathLike) -> tuple[str, LockInfo | None]:
    """("none" | "live" | "stale" | "foreign", info): who holds the run directory."""
    info = read_lock(run_dir)
    if info is None:
        return ("stale" if (Path(run_dir) / LOCK_NAME).exists() else "none"), None
    alive = info.alive()
    return ("foreign" if alive is None else "live" if alive else "stale"), info


def check_not_running(run_dir: str | os.PathLike, action: str) -> None:
    """One-line ConfigError if a live process (another one than this) holds ``run_dir``'s lock: ``report`` and
    ``export`` would otherwise read records and checkpoints a running sweep is still writing."""
    state, info = lock_state(run_dir)
    if state == "live" and not (info.pid == os.getpid() and info.local):
        raise ConfigError(f"cannot {action} {str(run_dir)!r}: it is locked by a live search ({info.describe()}) that is "
                          "still writing it; wait for it to finish (edgeprune status shows its progress)")
    if state == "foreign":
        raise ConfigError(f"cannot {action} {str(run_dir)!r}: it is locked by {info.describe()}, which cannot be "
                          f"checked from {socket.gethostname()}; if that sweep is gone, delete {str(Path(run_dir) / LOCK_NAME)!r}")


class RunLock:
    """``with RunLock(run_dir):`` — refuse a run directory another live search writes; take over stale locks."""

    def __init__(self, run_dir: str | os.PathLike):
        self.root = Path(run_dir)
        self.path = self.root / LOCK_NAME
        self.held = False

    def _payload(self) -> str:
        pid = os.getpid()
        return json.dumps({
            "pid": pid, "host": socket.gethostname(), "started": time.time(),
            "proc_start": _proc_start(pid), "command": " ".join(sys.argv)[:500],
        })

    def _try_create(self) -> bool:
        with writing(self.path):
            fd, tmp = temp_file(self.path)
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(self._payload())
                    f.flush()
                    os.fsync(f.fileno())
                os.link(tmp, self.path)  # atomic, and fails if a lock exists
                return True
            except FileExistsError:
                return False
            finally:
                tmp.unlink(missing_ok=True)

    def acquire(self) -> "RunLock":
        ensure_dir(self.root)
        for _ in range(5):
            if self._try_create():
                self.held = True
                return self
            state, info = lock_state(self.root)
            if state == "live":
                raise ConfigError(
                    f"run directory {str(self.root)!r} is locked by a live search ({info.describe()}); "
                    f"wait for it to finish or use another --out"
                )
            if state == "foreign":
                raise ConfigError(
                    f"run directory {str(self.root)!r} is locked by {info.describe()}, which cannot be checked from "
                    f"{socket.gethostname()}; if that search is gone, delete {str(self.path)!r}"
                )
            if state == "stale":
                who = info.describe() if info else "an unreadable lock file"
                warnings.warn(f"{self.root}: took over a stale lock ({who} is not running); resuming", stacklevel=2)
                try:
                    self.path.unlink()
                except FileNotFoundError:
                    pass
            # "none": the holder released it between our two looks; try again
        raise ConfigError(f"run directory {str(self.root)!r}: could not take its lock (another search keeps taking it)")

    def sweep_temp_files(self) -> list[Path]:
        """Delete temp files a killed writer left behind (``.NAME.*.tmp`` from atomic writes).

        Only call while holding the lock: then no other process writes the run, but another one may be
        making its own lock at this very moment (to be refused), so a temp file whose writer is alive stays.
        """
        if not self.held:
            raise RuntimeError("sweep_temp_files needs the lock")
        removed = []
        for tmp in self.root.rglob(".*.tmp"):
            writer = temp_writer(tmp)
            if writer is not None and writer != os.getpid() and pid_alive(writer):
                continue
            if tmp.is_file():
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
        return removed

    def release(self) -> None:
        """Remove the lock if this process still holds it."""
        if self.held:
            info = read_lock(self.root)
            if info is not None and info.pid == os.getpid() and info.local:
                self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
