import gzip

import numpy as np
import pytest

from conftest import write_idx
from edgeprune.data.idx import MAGIC_IMAGES, read_idx
from edgeprune.errors import DataError


def _gz(path, payload: bytes):
    with gzip.open(path, "wb") as f:
        f.write(payload)
    return path


def test_truncated_data_names_file_and_sizes(tmp_path):
    full = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in (4, 5, 5)) + bytes(100)
    path = _gz(tmp_path / "t.gz", full[:-7])
    with pytest.raises(DataError, match=r"t\.gz is truncated: 109 bytes.*\(4, 5, 5\) need 116"):
        read_idx(path, MAGIC_IMAGES)


def test_truncated_header_and_short_file(tmp_path):
    with pytest.raises(DataError, match="header alone needs 16"):
        read_idx(_gz(tmp_path / "h.gz", bytes([0, 0, 8, 3, 0, 0])), MAGIC_IMAGES)
    with pytest.raises(DataError, match="shorter than the 4-byte header"):
        read_idx(_gz(tmp_path / "s.gz", b"\x00\x00"))


def test_bad_magic_and_trailing_bytes(tmp_path):
    with pytest.raises(DataError, match="bad magic number 0x504b0304"):
        read_idx(_gz(tmp_path / "zip.gz", b"PK\x03\x04" + bytes(20)))
    good = write_idx(tmp_path / "g.gz", np.zeros((2, 2, 2)))
    with gzip.open(good) as f:
        payload = f.read()
    with pytest.raises(DataError, match="too long"):
        read_idx(_gz(tmp_path / "long.gz", payload + b"\x00"))


def test_broken_gzip_stream(tmp_path):
    blob = write_idx(tmp_path / "g.gz", np.zeros((50, 8, 8))).read_bytes()
    (tmp_path / "cut.gz").write_bytes(blob[: len(blob) // 2])
    (tmp_path / "junk.gz").write_bytes(b"this is not gzip at all")
    for name in ("cut.gz", "junk.gz"):
        with pytest.raises(DataError, match=f"{name} is not a valid gzip file or is truncated"):
            read_idx(tmp_path / name)
