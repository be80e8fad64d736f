"""Operators whose output shape depends on their input's values: NonZero, Compress, Unique and
NonMaxSuppression. A trace fixes every shape, so the inputs that decide these shapes are read when the
model is traced (load makes such graph inputs static: a new value traces again); values computed inside
the model cannot decide them, and the node says so. Compress's data stays traced: it differentiates."""
import numpy as np

from . import operator


@operator("NonZero")
def non_zero(n, x):
    return np.array(np.nonzero(n.constant(x, "NonZero's input")), dtype=np.int64).reshape(np.ndim(x), -1)


@operator("Compress")
def compress(n, data, condition):
    """The slices of `data` along `axis` (of the flattened data without one) where `condition` holds."""
    keep = np.nonzero(n.constant(condition, "Compress's condition").reshape(-1))[0]
    axis = n.attr("axis")
    if axis is None:
        return np.take(np.reshape(data, (-1,)), keep, axis=0)
    return np.take(data, keep, axis=axis % data.ndim)


@operator("Unique")
def unique(n, x):
    """The unique elements (or slices along `axis`), sorted or in order of first appearance, with their
    first indices, each input's position among them, and their counts."""
    x = n.constant(x, "Unique's input")
    axis = n.attr("axis")
    values, first, inverse, counts = np.unique(x, return_index=True, return_inverse=True, return_counts=True,
                                               axis=axis)
    if not n.attr("sorted", 1):  # by first appearance: renumber the sorted uniques
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        values = np.take(values, order, axis=0 if axis is None else axis)
        first, counts, inverse = first[order], counts[order], rank[np.reshape(inverse, -1)]
    return tuple(np.asarray(v).astype(np.int64) if i else v
                 for i, v in enumerate((values, first, np.reshape(inverse, -1), counts)))


def _corners(boxes, centred):
    """(y1, x1, y2, x2) with y1 <= y2 and x1 <= x2, from corners in any order or from centre and size."""
    if centred:
        x, y, w, h = np.moveaxis(boxes, -1, 0)
        return y - h / 2, x - w / 2, y + h / 2, x + w / 2
    a, b, c, d = np.moveaxis(boxes, -1, 0)
    return np.minimum(a, c), np.minimum(b, d), np.maximum(a, c), np.maximum(b, d)


def _overlapping(boxes, centred, threshold):
    """(boxes, boxes) table of pairs whose intersection over union exceeds `threshold` (pairs that do not
    intersect, or with an empty box, never do)."""
    y1, x1, y2, x2 = _corners(boxes, centred)
    height = np.minimum(y2[:, None], y2[None]) - np.maximum(y1[:, None], y1[None])
    width = np.minimum(x2[:, None], x2[None]) - np.maximum(x1[:, None], x1[None])
    area = (y2 - y1) * (x2 - x1)
    inter = height * width
    union = area[:, None] + area[None] - inter
    valid = (height > 0) & (width > 0) & (area[:, None] > 0) & (area[None] > 0) & (union > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return valid & (inter / np.where(valid, union, 1) > threshold)


@operator("NonMaxSuppression")
def non_max_suppression(n, boxes, scores, most=None, iou=None, least_score=None):
    """Per batch and class, boxes by falling score (ties: lower index first), each kept unless it
    overlaps a kept one by more than `iou`, at most `most` of them: (selected, 3) rows of
    (batch, class, box)."""
    boxes, scores = n.constant(boxes, "the boxes"), n.constant(scores, "the scores")
    most = 0 if most is None or np.size(most) == 0 else max(int(n.ints(most, "the box count")[0]), 0)
    iou = 0.0 if iou is None or np.size(iou) == 0 else float(np.reshape(n.constant(iou, "iou"), -1)[0])
    has_floor = least_score is not None and np.size(least_score) > 0
    floor = float(np.reshape(n.constant(least_score, "score_threshold"), -1)[0]) if has_floor else None
    selected = []
    for b in range(boxes.shape[0]):
        overlaps = _overlapping(boxes[b].astype(np.float64), n.attr("center_point_box", 0), iou)
        for c in range(scores.shape[1]):
            s = scores[b, c]
            order = np.lexsort((np.arange(s.size), -s))
            if floor is not None:
                order = order[s[order] > floor]
            kept = []
            for i in order:
                if len(kept) >= most:
                    break
                if not overlaps[i, kept].any():
                    kept.append(i)
            selected += [(b, c, i) for i in kept]
    return np.array(selected, dtype=np.int64).reshape(-1, 3)
