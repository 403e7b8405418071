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
    return evidence / np.maximum(views_covering(knowledge), 1)[:, None]


def views_covering(knowledge: Knowledge) -> np.ndarray:
    """(N,) int64 number of views with a unit covering each point: each view counts once at a point, however
    many of its units (two parts' masks) cover it."""
    n_views = np.zeros(knowledge.n_points, dtype=np.int64)
    for view in np.unique(knowledge.views):
        in_view = np.zeros(knowledge.n_points, dtype=bool)
        for k in np.flatnonzero(knowledge.views == view):
            in_view[knowledge.unit(k)] = True
        n_views += in_view
    return n_views


def cross_view_support(knowledge: Knowledge) -> tuple[np.ndarray, np.ndarray]:
    """(K,) float64 cross-view consistency of each unit and (K,) bool whether any other view covers one of its
    points.

    The consistency is, over the unit's points, the other views that name the unit's part there, divided by the
    other views that have any unit there (0 where no other view covers it, which the second array tells apart
    from a unit the other views contradict). A right answer is repeated by the views that see the same surface;
    a swapped name or a spurious blob is not, whatever the student learnt. It needs only the knowledge: each view
    counts once at a point, however many of its units cover it (sparse (view, part) coverage maps, no
    (N, views, parts) array; `views_covering` counts the views at each point).
    """
    from scipy.sparse import csr_matrix

    n_units, n_parts = knowledge.n_units, knowledge.n_parts
    if n_units == 0:
        return np.zeros(0, dtype=np.float64), np.zeros(0, dtype=bool)
    members = knowledge.membership()
    _, view_of = np.unique(knowledge.views, return_inverse=True)
    n_views = int(view_of.max()) + 1
    group = view_of * n_parts + knowledge.labels
    ones = np.ones(n_units, dtype=np.float32)
    names = csr_matrix((ones, (group, np.arange(n_units))), shape=(n_views * n_parts, n_units)) @ members
    names.data[:] = 1.0  # view v names part c at point i (once, however many of its units do)
    groups = np.arange(n_views * n_parts)
    per_part = csr_matrix((np.ones(len(groups)), (groups % n_parts, groups)), shape=(n_parts, len(groups))) @ names
    covering = views_covering(knowledge).astype(np.float64)
    sizes = knowledge.unit_sizes().astype(np.float64)
    # Every point of a unit is named by its own view: subtract it from both counts.
    same = np.asarray((members @ per_part.T).todense())[np.arange(n_units), knowledge.labels] - sizes
    other = members @ covering - sizes
    return np.where(other > 0, same / np.maximum(other, 1e-12), 0.0), other > 0


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
