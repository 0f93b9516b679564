"""COCO box mAP from per-image matches, so a bootstrap over images costs a re-weighting, not a re-evaluation.

COCO's evaluation (pycocotools, faster-coco-eval, torchmetrics) matches detections to ground truth per image
and class, independently of every other image: at each IoU threshold 0.50:0.05:0.95 the detections, by
descending score (at most 100 per image and class), take the unmatched ground-truth box of highest IoU at or
above the threshold (ties: the last). :func:`match` does that once per image; :func:`average_precision` then
accumulates as COCO does (area "all", maxDets 100): per class, every selected image's detections sorted by score,
cumulative true and false positives, precision made monotone, sampled at 101 recall points; classes without
ground truth are left out of the mean. An image drawn k times by the bootstrap weighs k: the same AP as COCO on
the data set holding k copies of it (ties among equal scores of different images aside), at a fraction of the
time. The test suite checks it against torchmetrics' ``MeanAveragePrecision`` (faster-coco-eval backend) given
COCO's thresholds: torchmetrics' defaults are float32 (a recall point of 0.7 becomes 0.69999999), so they
differ from pycocotools, and from this module, wherever a recall lands exactly on one.
"""

from __future__ import annotations

import numpy as np

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
MAX_DETECTIONS = 100


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU [len(a), len(b)] of xyxy boxes (COCO's: no +1 on widths, 0 for an empty union)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(2)
    area = lambda boxes: np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _match_class(iou: np.ndarray) -> np.ndarray:
    """hits [detections, thresholds] of one image and class; ``iou`` [detections by score, ground truth]."""
    thresholds = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)
    n_thr, n_gt = len(thresholds), iou.shape[1]
    hits = np.zeros((len(iou), n_thr), dtype=bool)
    taken = np.zeros((n_thr, n_gt), dtype=bool)
    rows = np.arange(n_thr)
    for d in np.flatnonzero(iou.max(1, initial=0.0) >= thresholds[0]):  # the rest miss at every threshold
        cand = np.where(taken | (iou[d][None, :] < thresholds[:, None]), -1.0, iou[d][None, :])
        best = n_gt - 1 - cand[:, ::-1].argmax(1)  # COCO keeps the last of equal IoUs
        found = cand[rows, best] >= 0
        hits[d] = found
        taken[rows[found], best[found]] = True
    return hits


def match(pred_boxes, pred_scores, pred_labels, gt_boxes, gt_labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's detections as (labels, scores, hits [detections, 10 thresholds]), in COCO's per-class order."""
    labels_out, scores_out, hits_out = [], [], []
    for c in np.unique(np.asarray(pred_labels)):
        mine = np.flatnonzero(pred_labels == c)
        mine = mine[np.argsort(-pred_scores[mine], kind="mergesort")][:MAX_DETECTIONS]
        gt = gt_boxes[gt_labels == c]
        hits = _match_class(box_iou(pred_boxes[mine], gt)) if len(gt) else np.zeros((len(mine), len(IOU_THRESHOLDS)), bool)
        labels_out.append(np.full(len(mine), c, dtype=np.int64))
        scores_out.append(pred_scores[mine])
        hits_out.append(hits)
    if not labels_out:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros((0, len(IOU_THRESHOLDS)), bool)
    return np.concatenate(labels_out), np.concatenate(scores_out).astype(np.float64), np.concatenate(hits_out)


class Matches:
    """Every image's matched detections in one table, sorted as COCO accumulates them (class, score, image)."""

    def __init__(self, per_image: list[tuple[np.ndarray, np.ndarray, np.ndarray]], gt_labels: list[np.ndarray]):
        self.n = len(per_image)
        classes = max([int(g.max()) for g in gt_labels if len(g)] + [int(p[0].max()) for p in per_image if len(p[0])] + [0]) + 1
        self.gt_counts = np.zeros((self.n, classes))
        for i, g in enumerate(gt_labels):
            np.add.at(self.gt_counts[i], g.astype(np.int64), 1)
        image = np.concatenate([np.full(len(p[0]), i) for i, p in enumerate(per_image)] + [np.zeros(0, np.int64)]).astype(np.int64)
        label = np.concatenate([p[0] for p in per_image] + [np.zeros(0, np.int64)])
        score = np.concatenate([p[1] for p in per_image] + [np.zeros(0)])
        hits = np.concatenate([p[2] for p in per_image] + [np.zeros((0, len(IOU_THRESHOLDS)), bool)])
        order = np.lexsort((-score, label))  # stable: equal scores keep image order, as COCO's mergesort does
        self.image, label, hits = image[order], label[order], hits[order]
        # Only rows that hit at some threshold can set a point of a precision/recall curve that AP reads (a miss
        # adds a point at the same recall with lower precision), but every row counts in the running totals.
        self.hit_rows = np.flatnonzero(hits.any(1))
        self.hits = np.ascontiguousarray(hits[self.hit_rows].T, dtype=np.float64)  # [thresholds, hit rows]
        self.segments = {}  # class -> (first row, first hit row, end of its hit rows)
        for c in np.unique(label):
            first, end = np.searchsorted(label, c, "left"), np.searchsorted(label, c, "right")
            self.segments[int(c)] = (int(first), *(int(i) for i in np.searchsorted(self.hit_rows, [first, end])))

    def __len__(self) -> int:
        return self.n


def average_precision(m: Matches, weights: np.ndarray | None = None) -> np.ndarray:
    """AP [thresholds, classes] over the images weighted by ``weights`` (NaN for classes without ground truth)."""
    w = np.ones(m.n) if weights is None else np.asarray(weights, dtype=np.float64)
    n_gt = w @ m.gt_counts
    row_w = w[m.image]
    seen = np.concatenate([[0.0], np.cumsum(row_w)])  # weight of the rows before each row
    tp_all = np.cumsum(m.hits * row_w[m.hit_rows], 1)
    ap = np.full((len(IOU_THRESHOLDS), len(n_gt)), np.nan)
    for c in np.flatnonzero(n_gt > 0):
        first, s, e = m.segments.get(int(c), (0, 0, 0))
        ap[:, c] = 0.0
        if s == e:  # no true positive at any threshold
            continue
        tp = tp_all[:, s:e] - (tp_all[:, s - 1 : s] if s else 0.0)
        total = seen[m.hit_rows[s:e] + 1] - seen[first]  # detections so far, true or false
        recall = tp / n_gt[c]
        precision = np.maximum.accumulate((tp / (total + np.spacing(1)))[:, ::-1], 1)[:, ::-1]
        for t in range(len(IOU_THRESHOLDS)):
            at = np.searchsorted(recall[t], RECALL_POINTS, side="left")
            ap[t, c] = precision[t, at[at < e - s]].sum() / len(RECALL_POINTS)
    return ap


def summary(ap: np.ndarray) -> dict[str, float]:
    """mAP@[.5:.95], mAP@.5 and mAP@.75 (NaN when no class has ground truth)."""
    if np.isnan(ap).all():
        return {"map": float("nan"), "map50": float("nan"), "map75": float("nan")}
    return {"map": float(np.nanmean(ap)), "map50": float(np.nanmean(ap[0])), "map75": float(np.nanmean(ap[5]))}
