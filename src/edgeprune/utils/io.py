"""Atomic writes (a file appears whole or not at all: temp file in the same folder, fsync, os.replace) and the
one checked reader of JSON / JSONL / YAML: damage (not UTF-8, invalid syntax, the wrong shape, a content
hash that does not match) is a one-line :class:`~edgeprune.errors.DamagedFileError` naming the file and line.

Run records are *sealed*: :func:`seal` adds ``"_sha256"``, the hash of the record's canonical JSON, and the
readers verify and strip it. Records written before seals existed (no ``_sha256``) are accepted as they are.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import warnings
from pathlib import Path
from typing import Iterator

import yaml

from edgeprune.errors import ConfigError, DamagedFileError, WriteError

SEAL = "_sha256"
# the OS refusing a write: an OSError with one of these errnos is about the file being written even when it
# names no file (a full disk never does)
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS, errno.EACCES, errno.EPERM}
_NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def ensure_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` (and parents); a one-line ConfigError if it cannot be created or written."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"output folder {str(path)!r} cannot be created: {exc.strerror}") from None
    if not os.access(path, os.W_OK):
        read_only = os.statvfs(path).f_flag & os.ST_RDONLY
        raise refused(path, errno.EROFS if read_only else errno.EACCES)
    return path


def check_output(path: str | os.PathLike, option: str, *, folder: bool = False) -> Path:
    """Refuse (one line) an output path that cannot be written, before any measuring or training: a file
    where a folder is wanted or the other way round, a file in the way of a parent folder, a parent that
    is not writable. Creates nothing."""
    path = Path(path)
    if path.is_dir() and not folder:
        raise ConfigError(f"{option} {str(path)!r} is a directory; expected the path of a file to write")
    if path.exists() and not path.is_dir() and folder:
        raise ConfigError(f"{option} {str(path)!r} is a file; expected a folder")
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and existing != path and not existing.is_dir():
        raise ConfigError(f"{option} {str(path)!r} cannot be created: {str(existing)!r} is a file")
    if existing is not None and not os.access(existing if existing.is_dir() else existing.parent, os.W_OK):
        raise ConfigError(f"{option} {str(path)!r} cannot be written: {str(existing)!r} is not writable")
    return path


def refused(path: str | os.PathLike, code: int, reason: str | None = None) -> WriteError:
    """The one line for the OS refusing (errno ``code``) to write ``path``, with what to do about it."""
    hint = "free some space" if code in _NO_ROOM else "make it writable (or write elsewhere)"
    return WriteError(f"cannot write {str(path)!r}: {reason or os.strerror(code)} (errno {code}); "
                      f"{hint} and re-run the same command: finished work is kept")


def _os_error_in(exc: BaseException | None) -> OSError | None:
    """``exc`` or the OSError it was raised from (torch turns a failed write into a RuntimeError)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def write_error(exc: BaseException, path: str | os.PathLike) -> WriteError | None:
    """The one-line WriteError for ``exc`` raised while writing ``path``; None if ``exc`` is not the operating
    system refusing that write (an input that cannot be read, a network error, a bug)."""
    path = Path(path)
    refusal = _os_error_in(exc)
    if isinstance(exc, WriteError) or refusal is None or refusal.errno is None:
        return None
    if refusal.filename is not None:
        named = Path(os.fsdecode(refusal.filename))
        if path.parent not in (named, named.parent):
            return None  # about another file
    elif refusal.errno not in _WRITE_ERRNOS:
        return None
    return refused(path, refusal.errno, refusal.strerror)


@contextlib.contextmanager
def writing(path: str | os.PathLike) -> Iterator[None]:
    """Turn the operating system refusing to write ``path`` (disk full, quota, I/O error, read-only,
    permission) into a one-line :class:`~edgeprune.errors.WriteError`; anything else passes through."""
    try:
        yield
    except Exception as exc:
        error = write_error(exc, path)
        if error is None:
            raise
        raise error from None


def temp_file(path: Path) -> tuple[int, Path]:
    """A new temp file next to ``path``, open (fd, path): ``.NAME.PID.RANDOM.tmp``. The writer's pid in the
    name tells the sweep of orphaned temp files (runs.lock) which ones a live process is still writing. It is
    created as ``open`` creates files: mode 0666 less the user's umask (mkstemp's owner-only 0600 would stay
    on the file the temp file is renamed to)."""
    while True:
        tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:  # a name taken already: draw another
            continue


def temp_writer(tmp: Path) -> int | None:
    """The pid of the process that made temp file ``tmp`` (:func:`temp_file`); None for a name without one."""
    parts = tmp.name.split(".")
    return int(parts[-3]) if len(parts) >= 5 and parts[-3].isdigit() else None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is fsynced and moved onto ``path``."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{str(path)!r} is a directory; expected the path of a file to write")
    ensure_dir(path.parent)
    with writing(path):
        fd, tmp = temp_file(path)
        os.close(fd)
        try:
            yield tmp
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | os.PathLike, obj, *, sealed: bool = False) -> Path:
    """``obj`` as indented JSON, atomically; ``sealed``: with its content hash (run records)."""
    return write_text(path, json.dumps(seal(obj) if sealed else obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj):
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _digest(obj) -> str:
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def seal(record: dict) -> dict:
    """``record`` (as JSON would read it back) plus ``_sha256``, the hash of its canonical JSON."""
    plain = json.loads(json.dumps({k: v for k, v in record.items() if k != SEAL}, default=_json_default))
    return {**plain, SEAL: _digest(plain)}


def unseal(record, where: str):
    """Verify and strip the seal of a dict read from a file (``where`` names file and line for the error)."""
    if not isinstance(record, dict) or SEAL not in record:
        return record  # not sealed: a file from before seals, or not a record
    record = dict(record)
    stored = record.pop(SEAL)
    if stored != _digest(record):
        raise DamagedFileError(f"{where} is damaged: its content does not match its hash (changed on disk?)")
    return record


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one sealed record as a single line, flushed and fsynced (a crash leaves at most a torn last line)."""
    line = json.dumps(seal(record), default=_json_default, sort_keys=False)
    if "\n" in line:
        raise ValueError("a JSONL record must serialise to one line")
    path = Path(path)
    size = path.stat().st_size if path.is_file() else 0
    try:
        with writing(path), open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
    except WriteError:
        with contextlib.suppress(OSError):  # a refused append leaves the records as they were, not a torn line
            os.truncate(path, size)
        raise


def _bytes_of(path: Path, what: str) -> bytes:
    if path.is_dir():
        raise ConfigError(f"{what} {str(path)!r} is a directory, not a file")
    if not path.exists():
        raise ConfigError(f"{what} {str(path)!r} does not exist")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{what} {str(path)!r} cannot be read: {exc.strerror}") from None


def _text_of(path: Path, what: str) -> str:
    raw = _bytes_of(path, what)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DamagedFileError(f"{what} {str(path)!r} is damaged: line {line} is not UTF-8 text") from None


def read_json(path: str | os.PathLike, what: str = "file", *, kind: type = dict):
    """The JSON value in ``path`` (a ``kind``, default an object), its seal verified; one-line errors."""
    path = Path(path)
    text = _text_of(path, what)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DamagedFileError(f"{what} {str(path)!r} is damaged: line {exc.lineno} is not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise DamagedFileError(f"{what} {str(path)!r} is damaged: nested too deeply to be JSON edgeprune wrote") from None
    if not isinstance(obj, kind):
        raise DamagedFileError(f"{what} {str(path)!r} is damaged: it holds a JSON {type(obj).__name__}, "
                               f"expected a {'JSON object' if kind is dict else kind.__name__}")
    return unseal(obj, f"{what} {str(path)!r}")


def read_yaml(path: str | os.PathLike, what: str = "recipe") -> dict:
    """A YAML mapping (``safe_load``: no code) from ``path``; damage is one line naming the file and line."""
    path = Path(path)
    text = _text_of(path, what)
    try:
        obj = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "it"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise DamagedFileError(f"{what} {str(path)!r} is not valid YAML: {where}: {problem}") from None
    except RecursionError:
        raise DamagedFileError(f"{what} {str(path)!r} is not valid YAML: nested too deeply") from None
    if obj is None:
        obj = {}
    if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
        raise DamagedFileError(f"{what} {str(path)!r} must be a mapping of settings (name: value), "
                               f"got {type(obj).__name__}")
    return obj


def read_jsonl(path: str | os.PathLike, repair: bool = True, *, with_lines: bool = False, key: str | None = None) -> list:
    """All records of a file written by :func:`append_jsonl` (seals verified and stripped). A corrupt LAST
    line (a crash mid-write) is dropped with a warning and, with ``repair``, the file truncated to its last
    good record; a corrupt line before it, or a line that is not a JSON object, is a DamagedFileError
    naming the line (the file was edited or damaged). ``key``: a string field every record must have.
    ``with_lines``: (line number, record) pairs."""
    path = Path(path)
    if not path.exists():
        return []
    raw = _bytes_of(path, "record file")
    lines = raw.split(b"\n")
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    records, good_bytes = [], 0
    for i, line in enumerate(lines[: last + 1]):
        if line.strip():
            where = f"{str(path)!r} line {i + 1}"
            try:
                obj = json.loads(line.decode("utf-8"))
            except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
                if i < last:
                    raise DamagedFileError(f"{where} is not valid JSON (was the file edited or damaged?)") from None
                warnings.warn(f"{path}: dropped a corrupt last line (a crash mid-write?); that candidate is recomputed", stacklevel=1)
                break
            if not isinstance(obj, dict) or (key is not None and not isinstance(obj.get(key), str)):
                wanted = "a JSON object" + (f" with a string {key!r}" if key else "")
                raise DamagedFileError(f"{where} is not a record ({wanted}); was the file edited?")
            obj = unseal(obj, where)
            records.append((i + 1, obj) if with_lines else obj)
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
