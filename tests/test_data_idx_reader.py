import numpy as np
import pytest

from conftest import write_idx
from edgeprune.data.idx import MAGIC_IMAGES, MAGIC_LABELS, read_idx
from edgeprune.errors import DataError


def test_reads_images_and_labels_written_in_idx(tmp_path):
    images = np.arange(5 * 3 * 4, dtype=np.uint8).reshape(5, 3, 4)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    got_images = read_idx(write_idx(tmp_path / "img.gz", images), MAGIC_IMAGES)
    got_labels = read_idx(write_idx(tmp_path / "lab.gz", labels), MAGIC_LABELS)
    assert got_images.shape == (5, 3, 4) and np.array_equal(got_images, images)
    assert np.array_equal(got_labels, labels) and got_labels.flags.writeable


def test_reads_uncompressed_and_big_endian_int32(tmp_path):
    values = np.array([[1, -2], [70000, 4]], dtype=">i4")
    raw = bytes([0, 0, 0x0C, 2]) + (2).to_bytes(4, "big") * 2 + values.tobytes()
    (tmp_path / "x.idx").write_bytes(raw)
    got = read_idx(tmp_path / "x.idx")
    assert got.dtype == np.int32 and got.tolist() == [[1, -2], [70000, 4]]


def test_magic_must_match_what_is_expected(tmp_path):
    path = write_idx(tmp_path / "lab.gz", np.zeros(4, dtype=np.uint8))
    with pytest.raises(DataError, match="0x801, expected 0x803"):
        read_idx(path, MAGIC_IMAGES)
