"""Atomic writes: a file appears whole or not at all (temp file in the same folder, fsync, os.replace)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Iterator

from edgeprune.errors import ConfigError


def ensure_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` (and parents); a one-line ConfigError if it cannot be created or written."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"output folder {str(path)!r} cannot be created: {exc.strerror}") from None
    if not os.access(path, os.W_OK):
        raise ConfigError(f"output folder {str(path)!r} is not writable")
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is fsynced and moved onto ``path``."""
    path = Path(path)
    ensure_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | os.PathLike, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj):
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one record as a single line, flushed and fsynced (a crash leaves at most a torn last line)."""
    line = json.dumps(record, default=_json_default, sort_keys=False)
    if "\n" in line:
        raise ValueError("a JSONL record must serialise to one line")
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | os.PathLike, repair: bool = True) -> list[dict]:
    """All records of a file written by :func:`append_jsonl`. A corrupt LAST line (a crash mid-write) is
    dropped with a warning and, with ``repair``, the file truncated to its last good record; a corrupt line
    before it is a ConfigError (the file was edited)."""
    path = Path(path)
    if not path.exists():
        return []
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    records, good_bytes = [], 0
    for i, line in enumerate(lines[: last + 1]):
        if line.strip():
            try:
                records.append(json.loads(line))
            except ValueError:
                if i < last:
                    raise ConfigError(f"{path}: line {i + 1} is not valid JSON (was the file edited?)") from None
                warnings.warn(f"{path}: dropped a corrupt last line (a crash mid-write?); that candidate is recomputed", stacklevel=1)
                break
        good_bytes += len(line) + 1
    if repair and good_bytes != len(raw):
        with open(path, "rb+") as f:
            f.truncate(min(good_bytes, len(raw)))
            if good_bytes > len(raw):  # last record complete but without its newline
                f.seek(0, os.SEEK_END)
                f.write(b"\n")
            f.flush()
            os.fsync(f.fileno())
    return records
