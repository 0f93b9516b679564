import numpy as np
from PIL import Image

from edgeprune.data import load


def _png(path, size=(6, 6), mode="RGB", value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
    Image.fromarray(np.full(shape, value, dtype=np.uint8), mode).save(path)


def test_train_test_layout_rgb(tmp_path):
    for split, n in (("train", 5), ("test", 2)):
        for k, cls in enumerate(("cat", "dog")):
            for i in range(n):
                _png(tmp_path / split / cls / f"{i}.png", value=40 * k + i)
    (tmp_path / "train" / "cat" / "notes.txt").write_text("ignored")
    s = load(f"imagefolder:{tmp_path}", val_fraction=0.2)
    assert s.classes == ["cat", "dog"] and (s.in_channels, s.image_size) == (3, 6)
    assert (len(s.train), len(s.val), len(s.test)) == (8, 2, 4)
    assert sorted(s.test.labels.tolist()) == [0, 0, 1, 1]
    assert s.test.images[s.test.labels == 1].min() >= 40


def test_single_tree_grayscale_mixed_sizes(tmp_path):
    for k in range(3):
        for i in range(10):
            _png(tmp_path / f"class{k}" / f"{i}.png", size=(8, 8) if i % 2 else (12, 10), mode="L", value=20 * k)
    s = load(f"imagefolder:{tmp_path}")
    assert s.in_channels == 1 and s.image_size == 9  # median shorter side of 8 and 10
    assert len(s.test) == 6 and len(s.train) + len(s.val) == 24  # fixed 20% test split
    assert load(f"imagefolder:{tmp_path},size=4").image_size == 4
    assert load(f"imagefolder:{tmp_path}", seed=7).test.labels.tolist() == s.test.labels.tolist()


def test_one_color_image_makes_everything_rgb(tmp_path):
    for i in range(4):
        _png(tmp_path / "a" / f"{i}.png", mode="L")
        _png(tmp_path / "b" / f"{i}.png", mode="RGB" if i == 0 else "L")
    assert load(f"imagefolder:{tmp_path}").in_channels == 3
