"""A damaged or foreign .epz is refused with a CheckpointError that says what is wrong."""

import pytest
import torch

from edgeprune import models
from edgeprune.errors import CheckpointError
from edgeprune.export import sparse


@pytest.fixture
def artifact(tmp_path):
    torch.manual_seed(0)
    model = models.create("lenet300", num_classes=10, in_channels=1, image_size=8)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(torch.rand_like(p) > 0.8)
    sparse.save(model, tmp_path / "m.epz")
    return tmp_path / "m.epz"


@pytest.mark.parametrize("where", [0.3, 0.6, 0.99])
def test_flipped_byte_fails_the_checksum(artifact, where):
    blob = bytearray(artifact.read_bytes())
    blob[int(where * len(blob))] ^= 0x5A
    artifact.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="corrupt: checksum mismatch"):
        sparse.load(artifact)


def test_truncated_and_foreign_files(artifact, tmp_path):
    blob = artifact.read_bytes()
    artifact.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CheckpointError, match="checksum"):
        sparse.read(artifact)
    artifact.write_bytes(blob[:10])
    with pytest.raises(CheckpointError, match="truncated"):
        sparse.read(artifact)
    other = tmp_path / "model.pt"
    other.write_bytes(b"PK\x03\x04 not an artifact")
    with pytest.raises(CheckpointError, match="not an edgeprune sparse artifact"):
        sparse.load(other)
    with pytest.raises(CheckpointError, match="does not exist"):
        sparse.load(tmp_path / "missing.epz")
