import pytest
from PIL import Image

from edgeprune.data import load
from edgeprune.errors import ConfigError, DataError


def test_missing_empty_and_classless_folders(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load(f"imagefolder:{tmp_path / 'nope'}")
    with pytest.raises(DataError, match="is empty"):
        load(f"imagefolder:{tmp_path}")
    (tmp_path / "loose.png").write_bytes(b"x")
    with pytest.raises(DataError, match="has no class folders"):
        load(f"imagefolder:{tmp_path}")
    (tmp_path / "cls").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        load(f"imagefolder:{tmp_path}")


def test_unreadable_image_is_named(tmp_path):
    (tmp_path / "a").mkdir()
    for i in range(3):
        Image.new("RGB", (4, 4)).save(tmp_path / "a" / f"{i}.png")
    bad = tmp_path / "a" / "broken.jpg"
    bad.write_bytes(b"not really a jpeg")
    with pytest.raises(DataError, match=r"cannot read image .*broken\.jpg"):
        load(f"imagefolder:{tmp_path}")


def test_spec_needs_path_and_test_classes_must_exist_in_train(tmp_path):
    with pytest.raises(ConfigError, match="needs an argument"):
        load("imagefolder")
    for split, cls in (("train", "a"), ("test", "zebra")):
        (tmp_path / split / cls).mkdir(parents=True)
        Image.new("L", (4, 4)).save(tmp_path / split / cls / "0.png")
    with pytest.raises(DataError, match=r"class folders \['zebra'\]"):
        load(f"imagefolder:{tmp_path}")
