"""md5 checks of dataset files, cached per (path, size, mtime) for the life of the process."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from edgeprune.errors import DataError

_CHUNK = 1 << 20
_cache: dict[tuple[str, int, int], str] = {}


def md5_of(path: str | os.PathLike) -> str:
    """Hex md5 of the file at ``path``; unchanged files (same size and mtime) are hashed only once."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    digest = _cache.get(key)
    if digest is None:
        h = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                h.update(chunk)
        digest = _cache[key] = h.hexdigest()
    return digest


def verify_md5(path: str | os.PathLike, expected: str) -> None:
    """Raise DataError naming the file, the expected and the found md5 unless they match."""
    found = md5_of(path)
    if found != expected.lower():
        raise DataError(
            f"{path} has md5 {found}, expected {expected} (corrupt, truncated or not the official file; "
            f"delete it and fetch it again)"
        )


def clear_cache() -> None:
    """Forget every cached digest (tests; files rewritten within the mtime resolution)."""
    _cache.clear()
