"""Detection data in COCO format: ``coco:<path>[,size=S]``, and :func:`write_coco`, which writes that format.

Layout: ``<path>/annotations/instances_<split><tag>.json`` for split train (required), val and test (optional;
e.g. ``instances_train2017.json``). Each image's ``file_name`` is looked up, in this order, under ``<path>/<split><tag>/``
(``train2017/``), ``<path>/<split>/``, ``<path>/images/<split><tag>/``, ``<path>/images/<split>/``, ``<path>/images/``
and ``<path>/``. Without a test file a fixed 20% of the train images (seed 0) is the test split; without a val
file val is carved from train with the run's seed.

Boxes: ``bbox`` ``[x, y, w, h]`` becomes ``(x, y, x + w, y + h)``, scaled with the image when it is resized
(stretched, bilinear; ``size=S``: S×S, else as :func:`~edgeprune.data.folders.target_size`); ``iscrowd`` boxes
are dropped; a box may poke out of its image by up to :data:`TOLERANCE` px (then it is clipped). Category ids
of the train file, sorted, become labels 1..K (0 is background); class names are the categories' names.
Images without boxes are kept (no targets). The JSON is read with the standard ``json`` module.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from edgeprune.data import folders
from edgeprune.data.base import Splits
from edgeprune.data.bundle import SPLIT_NAMES, Data
from edgeprune.data.dense import DetectionDataset, limit_pools, task_splits
from edgeprune.errors import ConfigError, DataError
from edgeprune.utils.io import ensure_dir, write_json

TOLERANCE = 1.0


def annotation_files(folder: Path) -> dict[str, Path]:
    """Split -> its ``annotations/instances_<split>*.json``; DataError without a train file or with two of a split."""
    found = {}
    for split in SPLIT_NAMES:
        matches = sorted((folder / "annotations").glob(f"instances_{split}*.json"))
        if len(matches) > 1:
            raise DataError(f"coco folder {folder} has {len(matches)} annotation files for {split}: "
                            f"{', '.join(m.name for m in matches)}; keep one")
        if matches:
            found[split] = matches[0]
    if "train" not in found:
        raise DataError(f"coco folder {folder} has no annotations/instances_train*.json; expected "
                        "annotations/instances_<split>*.json for train (required), val and test (optional)")
    return found


def read_json(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read COCO annotations {path}: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list) or not isinstance(doc.get("annotations", []), list):
        raise DataError(f"COCO annotations {path} is not an object with 'images' and 'annotations' lists")
    return doc


def categories(doc: dict, path: Path) -> tuple[dict[int, int], list[str]]:
    """Category id -> label 1..K (ids sorted) and the class names (index 0: background)."""
    try:
        cats = sorted((int(c["id"]), str(c.get("name", c["id"]))) for c in doc.get("categories") or [])
    except (KeyError, TypeError, ValueError):
        raise DataError(f"COCO annotations {path} has a category without an integer 'id'") from None
    if not cats:
        raise DataError(f"COCO annotations {path} lists no categories; expected 'categories': [{{'id': 1, 'name': ...}}]")
    return {cid: k + 1 for k, (cid, _) in enumerate(cats)}, ["background"] + [name for _, name in cats]


def image_dirs(folder: Path, split: str, json_path: Path) -> list[Path]:
    tag = json_path.stem.removeprefix("instances_")
    names = [folder / tag, folder / split, folder / "images" / tag, folder / "images" / split, folder / "images", folder]
    return list(dict.fromkeys(names))


def records(doc: dict, path: Path, folder: Path, split: str, labels_of: dict[int, int]) -> list[tuple[Path, dict, list]]:
    """(image file, image entry, [(x1, y1, x2, y2, label), ...]) per image of ``doc``, boxes checked."""
    try:
        entries = {int(img["id"]): img for img in doc["images"]}
        for img in entries.values():
            str(img["file_name"])
    except (KeyError, TypeError, ValueError):
        raise DataError(f"COCO annotations {path} has an image without an integer 'id' and a 'file_name'") from None
    boxes: dict[int, list] = {i: [] for i in entries}
    for ann in doc.get("annotations") or []:
        if not isinstance(ann, dict) or ann.get("iscrowd", 0):
            continue
        where = f"annotation {ann.get('id')!r} of {path}"
        if ann.get("image_id") not in boxes:
            raise DataError(f"{where} refers to image_id {ann.get('image_id')!r}, which its 'images' do not list")
        if ann.get("category_id") not in labels_of:
            raise DataError(f"{where} has category_id {ann.get('category_id')!r}; the train categories are {sorted(labels_of)}")
        bbox = ann.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)):
            raise DataError(f"{where} has bbox {bbox!r}; expected [x, y, width, height] numbers")
        x, y, w, h = (float(v) for v in bbox)
        if w <= 0 or h <= 0:
            raise DataError(f"{where} has a degenerate bbox {bbox} (width and height must be > 0)")
        entry = entries[ann["image_id"]]
        check_box(bbox, entry.get("width"), entry.get("height"), where)
        boxes[ann["image_id"]].append((x, y, x + w, y + h, labels_of[ann["category_id"]]))
    dirs, found = image_dirs(folder, split, path), []
    for image_id, entry in entries.items():
        file = next((d / entry["file_name"] for d in dirs if (d / entry["file_name"]).is_file()), None)
        if file is None:
            shown = ", ".join(str(d.relative_to(folder)) + "/" for d in dirs[:-1])
            raise DataError(f"image file {entry['file_name']!r} of {path} is missing: not under {folder} in {shown} nor itself")
        found.append((file, entry, boxes[image_id]))
    return found


def check_box(bbox, width, height, where: str) -> None:
    x, y, w, h = bbox
    if width is not None and height is not None and (x < -TOLERANCE or y < -TOLERANCE or x + w > width + TOLERANCE
                                                     or y + h > height + TOLERANCE):
        raise DataError(f"{where} has bbox {bbox} outside its {width}x{height} image (x, y >= 0, x + w <= width, "
                        f"y + h <= height, {TOLERANCE:g} px tolerance)")


def scaled(boxes: list, size: tuple[int, int], hw: tuple[int, int], where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes of an image of ``size`` (w, h) checked, clipped and scaled to ``hw``; and their labels."""
    table = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    for x1, y1, x2, y2, _ in table:
        check_box([x1, y1, x2 - x1, y2 - y1], size[0], size[1], where)
    xyxy = np.clip(table[:, :4], 0, [size[0], size[1], size[0], size[1]])
    if ((xyxy[:, 2] <= xyxy[:, 0]) | (xyxy[:, 3] <= xyxy[:, 1])).any():
        raise DataError(f"{where} has a box with no area inside the image: {table[:, :4].tolist()}")
    xyxy = np.minimum(xyxy * np.array([hw[1] / size[0], hw[0] / size[1]] * 2), [hw[1], hw[0], hw[1], hw[0]])
    return torch.from_numpy(xyxy.astype(np.float32)), torch.from_numpy(table[:, 4].astype(np.int64))


def build(arg: str | None, root: Path, download: bool, *, limit: int | None, test_limit: int | None, seed: int,
          val_fraction: float) -> Splits:
    """The :class:`Splits` of ``coco:<path>[,size=S]`` (see the module docstring)."""
    path_text, size = folders.parse_path_size(arg, "coco")
    folder = folders.find_folder(path_text, root, "coco")
    files = annotation_files(folder)
    docs = {split: read_json(path) for split, path in files.items()}
    labels_of, classes = categories(docs["train"], files["train"])
    recs = {split: records(doc, files[split], folder, split, labels_of) for split, doc in docs.items()}
    if "test" not in recs:
        rest, held = folders.fixed_test_split(len(recs["train"]))
        recs["test"], recs["train"] = [recs["train"][i] for i in held], [recs["train"][i] for i in rest]
    keep = dict(zip(SPLIT_NAMES, limit_pools(len(recs["train"]), len(recs["test"]), limit, test_limit, len(recs.get("val", [])))))
    recs = {split: [rs[i] for i in keep[split]] for split, rs in recs.items()}
    headers = {file: folders.header(file) for rs in recs.values() for file, _, _ in rs}
    mode, hw = folders.common_mode(m for m, _ in headers.values()), folders.target_size([s for _, s in headers.values()], size)
    parts = {}
    for split, rs in recs.items():
        targets, source = [], files.get(split, files["train"])
        for file, entry, boxes in rs:
            actual = headers[file][1]
            if entry.get("width") not in (None, actual[0]) or entry.get("height") not in (None, actual[1]):
                raise DataError(f"image {file} is {actual[0]}x{actual[1]} but {source} says "
                                f"{entry.get('width')}x{entry.get('height')}")
            targets.append(scaled(boxes, actual, hw, f"image {file} of {source}"))
        images = torch.from_numpy(folders.to_chw([folders.decode(file, mode, hw) for file, _, _ in rs]))
        parts[split] = DetectionDataset(images, [b for b, _ in targets], [t for _, t in targets], (0.0,) * images.shape[1],
                                        (1.0,) * images.shape[1], num_classes=len(classes), classes=classes)
    return task_splits("coco", parts["train"], parts["test"], seed=seed, val_fraction=val_fraction, limit=limit,
                       test_limit=test_limit, val=parts.get("val"))


def write_coco(data, folder: str | Path, *, split: str = "train") -> Path:
    """Write detection data as a COCO folder that ``coco:<folder>`` reads back unchanged.

    ``data``: a :class:`~edgeprune.data.dense.DetectionDataset` (written as ``split``) or a :class:`Data` bundle
    of them (every split it has). Writes ``<folder>/<split>/000000.png ...`` (the stored uint8 pixels) and
    ``<folder>/annotations/instances_<split>.json`` (categories 1..K-1 named by ``classes``). Returns ``folder``.
    """
    parts = {name: data.split(name) for name in SPLIT_NAMES} if isinstance(data, Data) else {split: data}
    parts = {name: part for name, part in parts.items() if part is not None}
    if split not in SPLIT_NAMES:
        raise ConfigError(f"split must be one of {', '.join(SPLIT_NAMES)}, got {split!r}")
    for name, part in parts.items():
        if not isinstance(part, DetectionDataset):
            raise ConfigError(f"write_coco needs DetectionDatasets; the {name} split is a {type(part).__name__}")
    folder = Path(folder)
    for name, part in parts.items():
        out = ensure_dir(folder / name)
        images, annotations = [], []
        h, w = part.images.shape[2:]
        for i in range(len(part)):
            pixels = part.images[i].permute(1, 2, 0).numpy()
            Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels).save(out / f"{i:06d}.png")
            images.append({"id": i + 1, "file_name": f"{i:06d}.png", "width": int(w), "height": int(h)})
            for (x1, y1, x2, y2), label in zip(part.boxes[i].tolist(), part.labels[i].tolist()):
                annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": int(label),
                                    "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
        cats = [{"id": k, "name": part.classes[k]} for k in range(1, part.num_classes)]
        write_json(folder / "annotations" / f"instances_{name}.json",
                   {"images": images, "annotations": annotations, "categories": cats})
    return folder
