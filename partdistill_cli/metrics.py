"""Part segmentation metrics (DESIGN.md section 6)."""

from __future__ import annotations

import numpy as np


def part_ious(pred: np.ndarray, gt: np.ndarray, n_parts: int, weights: np.ndarray | None = None) -> np.ndarray:
    """(C,) IoU per part between (N,) predicted and ground-truth labels.

    A part absent from both counts 1. An unlabeled prediction (-1) is wrong for every part. Ground-truth
    points labeled -1 (no part of the list) count against any part predicted there. Optional (N,) `weights`
    (e.g. face areas) weigh each element in the intersection and union.
    """
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction has {pred.shape} labels, ground truth {gt.shape}")
    w = np.ones(pred.shape, dtype=np.float64) if weights is None else np.asarray(weights, dtype=np.float64)
    out = np.ones(n_parts, dtype=np.float64)
    for c in range(n_parts):
        p, g = pred == c, gt == c
        union = w[p | g].sum()
        if union > 0:
            out[c] = w[p & g].sum() / union
    return out


def shape_miou(pred: np.ndarray, gt: np.ndarray, n_parts: int) -> float:
    return float(part_ious(pred, gt, n_parts).mean())


def coverage(pred: np.ndarray) -> float:
    pred = np.asarray(pred)
    return float((pred >= 0).mean()) if pred.size else 0.0
