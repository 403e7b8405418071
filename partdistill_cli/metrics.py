"""Part segmentation metrics (DESIGN.md section 6)."""

from __future__ import annotations

import numpy as np


def part_ious(pred: np.ndarray, gt: np.ndarray, n_parts: int) -> np.ndarray:
    """(C,) IoU per part between (N,) predicted and ground-truth labels.

    A part absent from both counts 1. An unlabeled prediction (-1) is wrong for every part. Ground-truth
    points labeled -1 (no part of the list) count against any part predicted there.
    """
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction has {pred.shape} labels, ground truth {gt.shape}")
    out = np.ones(n_parts, dtype=np.float64)
    for c in range(n_parts):
        p, g = pred == c, gt == c
        union = np.count_nonzero(p | g)
        if union:
            out[c] = np.count_nonzero(p & g) / union
    return out


def shape_miou(pred: np.ndarray, gt: np.ndarray, n_parts: int) -> float:
    return float(part_ious(pred, gt, n_parts).mean())


def coverage(pred: np.ndarray) -> float:
    pred = np.asarray(pred)
    return float((pred >= 0).mean()) if pred.size else 0.0
