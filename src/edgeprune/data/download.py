"""Fetch a dataset file from a list of mirrors into place, md5-checked, all or nothing."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Sequence

from edgeprune.errors import ConfigError, DataError
from edgeprune.utils.io import atomic_path

MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
CIFAR_MIRRORS = ("https://www.cs.toronto.edu/~kriz/",)
TIMEOUT_S = 30
_SCHEMES = ("https", "http", "file")
_CHUNK = 1 << 20


def download(url_list: str | Sequence[str], dest: str | os.PathLike, md5: str) -> Path:
    """Download the first mirror in ``url_list`` that answers with a file whose md5 is ``md5``.

    The bytes go to a temporary file next to ``dest`` and are moved onto ``dest`` only after the md5
    matches, so ``dest`` never holds a partial download. Mirrors are tried in order; if none works the
    DataError says where to put the file by hand (machines here have no network).
    """
    urls = [url_list] if isinstance(url_list, str) else list(url_list)
    if not urls:
        raise ConfigError("download needs at least one URL")
    for url in urls:
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme not in _SCHEMES:
            raise ConfigError(f"download URL {url!r} has scheme {scheme!r}; allowed: {', '.join(_SCHEMES)}")
    dest = Path(dest)
    failures = []
    for url in urls:
        try:
            with atomic_path(dest) as tmp:
                found = _fetch(url, tmp)
                if found != md5.lower():
                    raise _ChecksumMismatch(found)
            return dest
        except _ChecksumMismatch as exc:
            failures.append(f"{url}: md5 {exc.found}, expected {md5}")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            failures.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
    raise DataError(
        f"could not download {dest.name} ({'; '.join(failures)}); this machine may have no network: "
        f"copy the file to {dest} yourself and load again without download"
    )


class _ChecksumMismatch(Exception):
    def __init__(self, found: str):
        super().__init__(found)
        self.found = found


def _fetch(url: str, path: Path) -> str:
    """Stream ``url`` into ``path``; returns the md5 of what was written."""
    h = hashlib.md5(usedforsecurity=False)
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, open(path, "wb") as out:
        for chunk in iter(lambda: response.read(_CHUNK), b""):
            h.update(chunk)
            out.write(chunk)
    return h.hexdigest()
