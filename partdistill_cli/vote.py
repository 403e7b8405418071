"""The voting baseline (DESIGN.md section 5): knowledge -> labels by score-weighted votes, no learning."""

from __future__ import annotations

import numpy as np

from partdistill_cli.knowledge import Knowledge, Labels


def vote_scores(knowledge: Knowledge) -> np.ndarray:
    """(N, C) float32 score[i, c] = sum over units k covering i with label c of the unit's score."""
    onehot = np.zeros((knowledge.n_units, knowledge.n_parts), dtype=np.float32)
    onehot[np.arange(knowledge.n_units), knowledge.labels] = knowledge.scores
    return np.asarray(knowledge.membership().T @ onehot, dtype=np.float32)


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
