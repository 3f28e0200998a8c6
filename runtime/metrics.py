"""Segmentation metrics from a confusion matrix, in numpy (used by training, run and parity).

``confusion[i, j]`` counts pixels of true class i predicted as j. Pixels whose
label is ``ignore_index`` (255, VOC's "void") count nowhere: the authors' code
trained them as background, we neither train nor score them.
IoU of class c = TP / (TP + FP + FN); mean IoU averages the classes that occur
in the ground truth or the prediction (a class absent from both is undefined,
not 0 or 1).
"""

from __future__ import annotations

import numpy as np

IGNORE_INDEX = 255


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int, *, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """``[K, K]`` int64 counts over all pixels of ``labels`` / ``predictions`` (any equal shapes)."""
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    predictions = np.asarray(predictions).reshape(-1).astype(np.int64)
    keep = labels != ignore_index
    labels, predictions = labels[keep], predictions[keep]
    if labels.size and (labels.max() >= num_classes or labels.min() < 0):
        raise ValueError(f"label values must be in 0..{num_classes - 1} or {ignore_index}, found {labels.max()}")
    return np.bincount(labels * num_classes + predictions, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def iou_per_class(confusion: np.ndarray) -> np.ndarray:
    """IoU of each class, NaN where the class is in neither labels nor predictions."""
    tp = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / np.maximum(union, 1), np.nan)


def mean_iou(confusion: np.ndarray) -> float:
    ious = iou_per_class(confusion)
    return float(np.nanmean(ious)) if np.isfinite(ious).any() else float("nan")


def pixel_accuracy(confusion: np.ndarray) -> float:
    total = confusion.sum()
    return float(np.trace(confusion) / total) if total else float("nan")


def segmentation_scores(confusion: np.ndarray, class_names: list[str] | None = None) -> dict:
    """mIoU, pixel accuracy and per-class IoU as plain JSON-able numbers."""
    ious = iou_per_class(confusion)
    names = class_names or [str(i) for i in range(len(ious))]
    return {
        "miou": mean_iou(confusion),
        "pixel_accuracy": pixel_accuracy(confusion),
        "iou": {name: (None if np.isnan(v) else float(v)) for name, v in zip(names, ious)},
    }
