"""The voting baseline (DESIGN.md section 5): knowledge -> labels by score-weighted votes, no learning."""

from __future__ import annotations

import numpy as np

from partdistill_cli.knowledge import Knowledge, Labels


def vote_scores(knowledge: Knowledge, weights: np.ndarray | None = None) -> np.ndarray:
    """(N, C) float32 score[i, c] = sum over units k covering i with label c of the unit's score (or its
    (K,) `weights`)."""
    w = knowledge.scores if weights is None else np.asarray(weights)
    if w.shape != (knowledge.n_units,):
        raise ValueError(f"expected {knowledge.n_units} unit weights, got shape {w.shape}")
    onehot = np.zeros((knowledge.n_units, knowledge.n_parts), dtype=np.float32)
    onehot[np.arange(knowledge.n_units), knowledge.labels] = w
    return np.asarray(knowledge.membership().T @ onehot, dtype=np.float32)


def view_evidence(knowledge: Knowledge, weights: np.ndarray | None = None) -> np.ndarray:
    """(N, C) float64 share of the views that name each part at each point: `vote_scores` (weighted by the
    teacher's scores or `weights`) divided by the number of views with a unit covering the point.

    A part every view that covers a point names there scores its unit weight, one view in ten a tenth of it,
    whatever the number of views; points no unit covers are zero.
    """
    evidence = vote_scores(knowledge, weights).astype(np.float64)
    # Each view counts once at a point, however many of its units (two parts' masks) cover it.
    n_views = np.zeros(knowledge.n_points, dtype=np.int64)
    for view in np.unique(knowledge.views):
        in_view = np.zeros(knowledge.n_points, dtype=bool)
        for k in np.flatnonzero(knowledge.views == view):
            in_view[knowledge.unit(k)] = True
        n_views += in_view
    return evidence / np.maximum(n_views, 1)[:, None]


def vote(knowledge: Knowledge, points: np.ndarray | None = None, fill: bool = False) -> Labels:
    """Label each covered point by its highest vote; uncovered points get -1.

    With `fill`, uncovered points take the label of the nearest covered point in (N, 3) `points`.
    """
    score = vote_scores(knowledge)
    covered = score.sum(axis=1) > 0
    labels = np.where(covered, score.argmax(axis=1), -1).astype(np.int64)
    probs = score / np.maximum(score.sum(axis=1, keepdims=True), 1e-12)
    if fill and covered.any() and not covered.all():
        if points is None:
            raise ValueError("vote with fill needs the points")
        from scipy.spatial import cKDTree

        src = np.flatnonzero(covered)
        _, nearest = cKDTree(points[src]).query(points[~covered], k=1)
        labels[~covered] = labels[src[nearest]]
        probs[~covered] = probs[src[nearest]]
    return Labels(labels, probs.astype(np.float32), list(knowledge.parts))
