"""Segmentation and detection data: mnist-seg / mnist-det canvases from the real MNIST, masks: and coco: folders
written here with PIL and json, and the batch contract every one of them follows."""

import json
import time

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from edgeprune.data import Data, list_datasets, load, make_loader
from edgeprune.data import canvas as canvas_lib
from edgeprune.data.coco import write_coco
from edgeprune.data.dense import DetectionDataset
from edgeprune.errors import ConfigError, DataError

DIGITS = ["background"] + [str(d) for d in range(10)]


def ink_box(image: torch.Tensor) -> list[float]:
    """Tight (x1, y1, x2, y2) box, x2/y2 exclusive, of the pixels > 127 of a uint8 [H, W] image."""
    rows, cols = torch.nonzero((image > 127).any(1)).flatten(), torch.nonzero((image > 127).any(0)).flatten()
    return [float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)]


# --- mnist-seg / mnist-det ------------------------------------------------------------------------------

def test_mnist_seg_batches_follow_the_contract(mnist_root):
    splits = load("mnist-seg:n=200", mnist_root)
    assert (splits.task, splits.num_classes, splits.classes, splits.input_shape) == ("segmentation", 11, DIGITS, (1, 64, 64))
    assert (len(splits.train), len(splits.val), len(splits.test)) == (180, 20, 40)
    x, y = next(iter(splits.loader("train", 16)))
    assert x.dtype == torch.float32 and x.shape == (16, 1, 64, 64)
    assert y.dtype == torch.int64 and y.shape == (16, 64, 64) and 0 <= int(y.min()) and int(y.max()) <= 10
    whole, _ = splits.train.__getitems__(range(len(splits.train)))
    assert abs(float(whole.mean())) < 1e-3 and abs(float(whole.std()) - 1) < 1e-3  # normalised with the train part's stats
    one_x, one_y = splits.val[3]
    assert one_x.shape == (1, 64, 64) and one_y.shape == (64, 64) and one_y.dtype == torch.int64
    info = json.loads(json.dumps(splits.describe()))
    assert (info["task"], info["train"], info["augment"]) == ("segmentation", 180, False)


def test_mnist_seg_mask_is_the_digit_class_on_its_ink(mnist_root):
    data = load("mnist-seg:n=100,digits=1", mnist_root).train
    ink = data.images[:, 0] > 127
    assert torch.equal(data.masks > 0, ink)  # one digit: the mask covers exactly the image's ink
    classes = [data.masks[i][ink[i]].unique() for i in range(len(data))]
    assert all(len(c) == 1 and 1 <= int(c) <= 10 for c in classes)
    many = load("mnist-seg:n=100,digits=3", mnist_root).train
    assert torch.equal(many.masks > 0, many.images[:, 0] > 127)  # overlaps: the image keeps the brighter pixel


def test_mnist_det_boxes_are_tight_around_the_ink(mnist_root):
    splits = load("mnist-det:n=100,digits=1", mnist_root)
    assert (splits.task, splits.num_classes, splits.classes, splits.input_shape) == ("detection", 11, DIGITS, (1, 128, 128))
    data = splits.train
    for i in range(len(data)):
        assert data.boxes[i].tolist() == [ink_box(data.images[i, 0])]
        assert data.labels[i].dtype == torch.int64 and 1 <= int(data.labels[i][0]) <= 10
    x, y = next(iter(make_loader(splits.test, 8)))
    assert x.shape == (8, 1, 128, 128) and isinstance(y, list) and len(y) == 8
    assert all(t["boxes"].dtype == torch.float32 and t["boxes"].shape == (len(t["labels"]), 4) for t in y)
    one_x, one_t = splits.test[0]
    assert one_x.shape == (1, 128, 128) and torch.equal(one_t["boxes"], y[0]["boxes"])
    one_t["boxes"] += 1  # a consumer changing its targets leaves the data set as it was
    assert torch.equal(splits.test[0][1]["boxes"], y[0]["boxes"])


def test_detection_dataset_refuses_bad_targets():
    images, stats = torch.zeros(2, 1, 8, 8, dtype=torch.uint8), ((0.0,), (1.0,))
    with pytest.raises(DataError, match=r"image 1 has label 0; labels are 1\.\.2 \(0 is background\)"):
        DetectionDataset(images, [[[0, 0, 4, 4]], [[1, 1, 2, 2]]], [[1], [0]], *stats, num_classes=3)
    with pytest.raises(DataError, match=r"image 0 has box \[2\.0, 0\.0, 2\.0, 4\.0\] outside its 8x8 pixels or of no area"):
        DetectionDataset(images, [[[2, 0, 2, 4]], []], [[1], []], *stats, num_classes=3)
    with pytest.raises(DataError, match=r"image 0 has boxes of shape \(1, 5\); expected \[N, 4\]"):
        DetectionDataset(images, [[[0, 0, 1, 1, 1]], []], [[1], []], *stats, num_classes=3)


def test_mnist_det_boxes_lie_inside_and_touch_ink_on_every_side(mnist_root):
    data = load("mnist-det:n=200", mnist_root).train
    counts = [len(b) for b in data.boxes]
    assert min(counts) >= 1 and max(counts) == 4
    for image, boxes in zip(data.images[:, 0], data.boxes):
        for x1, y1, x2, y2 in boxes.int().tolist():
            assert 0 <= x1 < x2 <= 128 and 0 <= y1 < y2 <= 128
            ink = image[y1:y2, x1:x2] > 127  # digits drawn later may add ink inside, never remove it
            assert ink[0].any() and ink[-1].any() and ink[:, 0].any() and ink[:, -1].any()


def test_canvases_repeat_byte_for_byte(mnist_root):
    for spec in ("mnist-seg:n=150", "mnist-det:n=150"):
        a, b = load(spec, mnist_root, seed=3), load(spec, mnist_root, seed=3)
        for split in ("train", "val", "test"):
            assert a.split(split).images.numpy().tobytes() == b.split(split).images.numpy().tobytes()
        if spec.startswith("mnist-seg"):
            assert torch.equal(a.train.masks, b.train.masks)
        else:
            assert all(torch.equal(p, q) for p, q in zip(a.train.boxes + a.train.labels, b.train.boxes + b.train.labels))


def test_test_split_is_fixed_and_drawn_from_mnist_test_images(mnist_root, monkeypatch):
    seen = {}
    real_render = canvas_lib.render

    def spy(kind, images, labels, count, opts, split):
        seen[split] = images
        return real_render(kind, images, labels, count, opts, split)

    monkeypatch.setattr(canvas_lib, "render", spy)
    s0 = load("mnist-seg:n=200,test=40", mnist_root, seed=0)
    mnist = canvas_lib.load_mnist(mnist_root)
    assert torch.equal(seen["train"], mnist.train_images) and torch.equal(seen["test"], mnist.test_images)
    s1 = load("mnist-seg:n=200,test=40", mnist_root, seed=1)
    bigger = load("mnist-seg:n=400,test=80", mnist_root, seed=1)
    assert torch.equal(s0.test.images, s1.test.images) and torch.equal(bigger.test.images[:40], s0.test.images)
    assert not torch.equal(s0.val.images, s1.val.images)  # val moves with the seed, the pool does not
    pool = lambda s: sorted(bytes(im.numpy().tobytes()) for im in torch.cat([s.train.images, s.val.images]))  # noqa: E731
    assert pool(s0) == pool(s1)


def test_limit_and_test_limit_are_fixed_subsets(mnist_root):
    full = load("mnist-det:n=300", mnist_root)
    a = load("mnist-det:n=300", mnist_root, limit=50, test_limit=20, seed=0)
    b = load("mnist-det:n=300", mnist_root, limit=50, test_limit=20, seed=5)
    assert (len(a.train) + len(a.val), len(a.test)) == (50, 20) and len(a.val) == 5
    assert torch.equal(a.test.images, b.test.images)
    pool = {im.numpy().tobytes() for im in torch.cat([full.train.images, full.val.images])}
    assert all(im.numpy().tobytes() in pool for im in torch.cat([a.train.images, a.val.images]))
    assert a.describe()["limit"] == 50


def test_canvas_options_are_checked(mnist_root):
    with pytest.raises(ConfigError, match="allowed: size, digits, n, test"):
        load("mnist-seg:colour=red", mnist_root)
    with pytest.raises(ConfigError, match=r"digits=0 is out of range; allowed 1\.\.32"):
        load("mnist-det:digits=0", mnist_root)
    with pytest.raises(ConfigError, match="has no augmentation"):
        load("mnist-seg", mnist_root, augment=True)
    assert {"mnist-seg", "mnist-det", "masks", "coco"} <= set(list_datasets())


@pytest.mark.slow
def test_defaults_generate_in_under_five_cpu_seconds(mnist_root):
    for spec, train in (("mnist-seg", 9000), ("mnist-det", 9000)):
        start = time.process_time()
        splits = load(spec, mnist_root)
        spent = time.process_time() - start
        assert (len(splits.train), len(splits.test)) == (train, 2000)
        assert spent < 5, f"{spec} took {spent:.1f} s of CPU"


# --- the Data bundle's task ---------------------------------------------------------------------------

def test_data_bundle_keeps_the_task():
    loader = DataLoader(TensorDataset(torch.rand(8, 1, 4, 4), torch.arange(8) % 2), batch_size=4)
    assert Data.from_loaders(loader, loader).task is None
    assert Data.from_loaders(loader, loader, task="classification").task == "classification"
    with pytest.raises(ConfigError, match="task must be one of classification, segmentation, detection, regression"):
        Data.from_loaders(loader, loader, task="colouring")


# --- masks: ---------------------------------------------------------------------------------------------

def write_pair(tree, stem, size=(12, 10), mode="RGB", mask_size=None, values=(0, 1, 2, 255), seed=0):
    rng = np.random.default_rng(seed)
    (tree / "images").mkdir(parents=True, exist_ok=True)
    (tree / "masks").mkdir(parents=True, exist_ok=True)
    w, h = size
    pixels = rng.integers(0, 256, (h, w, 3) if mode == "RGB" else (h, w), dtype=np.uint8)
    Image.fromarray(pixels).save(tree / "images" / f"{stem}.png")
    mw, mh = mask_size or size
    mask = rng.choice(np.asarray(values, dtype=np.uint8), (mh, mw))
    Image.fromarray(mask).save(tree / "masks" / f"{stem}.png")
    return mask


def test_masks_folder_is_read_exactly(tmp_path):
    written = [write_pair(tmp_path, f"img{i}", seed=i) for i in range(10)]
    splits = load(f"masks:{tmp_path}", seed=2)
    assert (splits.task, splits.num_classes, splits.classes) == ("segmentation", 3, ["background", "1", "2"])
    assert (len(splits.train), len(splits.val), len(splits.test), splits.input_shape) == (7, 1, 2, (3, 10, 12))
    read = [m.numpy().tobytes() for s in (splits.train, splits.val, splits.test) for m in s.masks]
    assert sorted(read) == sorted(m.tobytes() for m in written)
    x, y = splits.train.__getitems__([0, 1])
    assert x.shape == (2, 3, 10, 12) and y.dtype == torch.int64 and set(y.unique().tolist()) <= {0, 1, 2, 255}
    assert torch.equal(load(f"masks:{tmp_path}", seed=7).test.masks, splits.test.masks)  # fixed test split


def test_masks_resize_split_trees_and_classes_file(tmp_path):
    for split, count in (("train", 6), ("val", 2), ("test", 3)):
        for i in range(count):
            write_pair(tmp_path / split, f"{split}{i}", mode="L", values=(0, 3, 255), seed=i)
    splits = load(f"masks:{tmp_path},size=8")
    assert (len(splits.train), len(splits.val), len(splits.test), splits.input_shape) == (6, 2, 3, (1, 8, 8))
    assert set(splits.train.masks.unique().tolist()) <= {0, 3, 255} and splits.num_classes == 4
    (tmp_path / "classes.txt").write_text("sky\ntree\nroad\ncar\ndog\n")
    assert load(f"masks:{tmp_path}").classes == ["sky", "tree", "road", "car", "dog"]
    (tmp_path / "classes.txt").write_text("sky\ntree\n")
    with pytest.raises(DataError, match=r"holds class 3; .*classes\.txt names 2 classes"):
        load(f"masks:{tmp_path}")



def test_black_and_white_masks_read_255_as_the_foreground(tmp_path):
    # was: 255 read as "ignore", one class left ("predicts 2 classes per pixel but the data has 1")
    for i in range(6):
        write_pair(tmp_path, f"img{i}", mode="L", values=(0, 255), seed=i)
    with pytest.warns(UserWarning, match="hold only 0 and 255: 255 is read as class 1"):
        splits = load(f"masks:{tmp_path}")
    assert splits.num_classes == 2 and set(splits.train.masks.unique().tolist()) == {0, 1}
    (tmp_path / "classes.txt").write_text("background\nroad\n")  # named classes: 255 is ignore, as documented
    assert set(load(f"masks:{tmp_path}").train.masks.unique().tolist()) == {0, 255}

def test_masks_folder_errors(tmp_path):
    with pytest.raises(DataError, match="has no images/ folder"):
        load(f"masks:{tmp_path}")
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        load(f"masks:{tmp_path}")
    for i in range(3):
        write_pair(tmp_path, f"a{i}", seed=i)
    (tmp_path / "masks" / "a1.png").unlink()
    with pytest.raises(DataError, match=r"image .*a1\.png has no mask .*masks/a1\.png"):
        load(f"masks:{tmp_path}")
    write_pair(tmp_path, "a1", mask_size=(12, 11))
    with pytest.raises(DataError, match=r"mask .*a1\.png is 12x11 but its image .*a1\.png is 12x10"):
        load(f"masks:{tmp_path}")
    Image.new("RGB", (12, 10)).save(tmp_path / "masks" / "a1.png")
    with pytest.raises(DataError, match="has PIL mode RGB; masks are single-channel"):
        load(f"masks:{tmp_path}")
    with pytest.raises(ConfigError, match="needs an argument"):
        load("masks")


# --- coco: ---------------------------------------------------------------------------------------------

def test_coco_round_trip_of_mnist_det(mnist_root, tmp_path):
    source = load("mnist-det:n=60", mnist_root)
    write_coco(source, tmp_path)
    assert sorted(p.name for p in (tmp_path / "annotations").iterdir()) == [
        "instances_test.json", "instances_train.json", "instances_val.json"]
    read = load(f"coco:{tmp_path}")
    assert (read.task, read.classes, read.mean, read.std) == ("detection", DIGITS, source.mean, source.std)
    for split in ("train", "val", "test"):
        a, b = source.split(split), read.split(split)
        assert torch.equal(a.images, b.images)
        assert all(torch.equal(p, q) for p, q in zip(a.boxes + a.labels, b.boxes + b.labels))


def write_coco_folder(root, images_dir, n=5, size=(40, 30), anns=None, cats=((3, "cat"), (7, "dog")), name="train2017"):
    (root / images_dir).mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(exist_ok=True)
    for i in range(n):
        Image.new("RGB", size, (i * 40, 0, 0)).save(root / images_dir / f"{i}.jpg")
    doc = {"images": [{"id": 10 + i, "file_name": f"{i}.jpg", "width": size[0], "height": size[1]} for i in range(n)],
           "annotations": anns if anns is not None else [
               {"id": 1, "image_id": 10, "category_id": 7, "bbox": [4, 2, 10, 20], "iscrowd": 0},
               {"id": 2, "image_id": 10, "category_id": 3, "bbox": [0, 0, 40, 30], "iscrowd": 1},
               {"id": 3, "image_id": 11, "category_id": 3, "bbox": [20.5, 10, 19.5, 20]}],
           "categories": [{"id": cid, "name": cname} for cid, cname in cats]}
    (root / "annotations" / f"instances_{name}.json").write_text(json.dumps(doc))
    return doc


@pytest.mark.parametrize("images_dir", ["train2017", "images", "images/train"])
def test_coco_boxes_categories_and_layouts(tmp_path, images_dir):
    write_coco_folder(tmp_path, images_dir, n=10)
    splits = load(f"coco:{tmp_path}")
    assert (splits.classes, splits.num_classes, splits.input_shape) == (["background", "cat", "dog"], 3, (3, 30, 40))
    assert (len(splits.train) + len(splits.val), len(splits.test)) == (8, 2)
    resized = load(f"coco:{tmp_path},size=20", limit=10, test_limit=2)
    targets = {}
    for part in (resized.train, resized.val, resized.test):
        for i in range(len(part)):
            which = round(int(part.images[i, 0, 0, 0]) / 40)  # image k is red k * 40 (JPEG: nearly)
            targets[which] = (part.boxes[i].tolist(), part.labels[i].tolist())
    assert targets[0][0][0] == pytest.approx([2.0, 4 / 3, 7.0, 44 / 3]) and targets[0][1] == [2]  # xywh -> xyxy scaled by
    assert targets[1][0][0] == pytest.approx([10.25, 20 / 3, 20.0, 20.0]) and targets[1][1] == [1]  # 20/40, 20/30; no crowd
    assert all(targets[r] == ([], []) for r in (2, 3, 4))


def test_coco_errors_name_the_bad_input(tmp_path):
    with pytest.raises(DataError, match=r"has no annotations/instances_train\*\.json"):
        load(f"coco:{tmp_path}")
    bad_boxes = [([1, 1, 0, 5], "degenerate bbox"), ([30, 1, 20, 5], "outside its 40x30 image"),
                 ([-3, 1, 5, 5], "outside its 40x30 image")]
    for bbox, message in bad_boxes:
        write_coco_folder(tmp_path, "train2017", anns=[{"id": 9, "image_id": 12, "category_id": 3, "bbox": bbox}])
        with pytest.raises(DataError, match=f"annotation 9 of .*instances_train2017.json has .*{message}"):
            load(f"coco:{tmp_path}")
    write_coco_folder(tmp_path, "train2017", anns=[{"id": 9, "image_id": 12, "category_id": 5, "bbox": [1, 1, 2, 2]}])
    with pytest.raises(DataError, match=r"category_id 5; the train categories are \[3, 7\]"):
        load(f"coco:{tmp_path}")
    write_coco_folder(tmp_path, "train2017")
    (tmp_path / "train2017" / "3.jpg").unlink()
    with pytest.raises(DataError, match=r"image file '3\.jpg' of .*instances_train2017\.json is missing"):
        load(f"coco:{tmp_path}")
    (tmp_path / "annotations" / "instances_train2017.json").write_text("{not json")
    with pytest.raises(DataError, match="cannot read COCO annotations"):
        load(f"coco:{tmp_path}")
    with pytest.raises(ConfigError, match="write_coco needs DetectionDatasets"):
        write_coco(load("synthetic:n=20,size=8"), tmp_path / "out")
