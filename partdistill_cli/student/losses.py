"""The distillation loss and backward re-scoring (DESIGN.md section 4).

The forward loss is linear in the per-unit cross entropies, so for every point it folds into one soft target
row: `T[i, c] = sum_k M_k(i) w_k [Y_k = c] / max(1, sum_k M_k(i))`, and `L = mean_i -sum_c T[i, c] log p_ic`.
Computing `T` once per weighting makes a training step independent of the number of units.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from partdistill_cli.knowledge import Knowledge

AgreementMeasure = Literal["ratio", "iou", "relative", "relative-score", "support", "soft", "point", "relative-point"]
AGREEMENT_MEASURES: tuple[str, ...] = (
    "ratio", "iou", "relative", "relative-score", "support", "soft", "point", "relative-point",
)  # fmt: skip
# "support": the share of the other views covering a unit that must repeat it before the student's agreement
# with it counts in full. Development set (35 shapes, trained at 0.1): fused at 0.05, 0.1 or 0.2 within 0.1 mIoU
# of each other, 0.4 lower; against no threshold, full per-shape (bench/quality.py): PartNet-Mobility 61.8 -> 63.4,
# ShapeNetPart v0 79.3 -> 80.4, procedural 84.3 -> 86.6, procedural harsh 58.8 -> 57.6.
CORROBORATION = 0.1


def point_targets(
    knowledge: Knowledge,
    weights: np.ndarray,
    class_weights: np.ndarray | None = None,
    member_weights: np.ndarray | None = None,
    sharpen: float = 1.0,
) -> np.ndarray:
    """(N, C) float32 soft targets of the mask-aware, confidence-weighted loss.

    Args:
        knowledge: K units over N points, C parts.
        weights: (K,) float unit weights w_k (the teacher scores in forward distillation).
        class_weights: optional (C,) float per-class factors (balancing rare parts).
        member_weights: optional (nnz,) float factor per (unit, point) membership, aligned with
            `knowledge.indices` (point-level re-scoring); 1 when omitted.
        sharpen: each covered point's row is raised to this power and rescaled to its former sum. The row's
            total (how much, and how confidently, the units claim the point) still weighs the point; only the
            split between parts hardens. At 1 the loss is optimal where the student reproduces a contested
            split (55% door, 45% other), and a student of limited capacity then lets the majority part swallow
            minority ones (small parts, parts seen in few views); above 1 it learns each point's leading claim.

    Rows of points that no unit covers are zero, so those points contribute nothing to the loss.
    """
    n, c = knowledge.n_points, knowledge.n_parts
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (knowledge.n_units,):
        raise ValueError(f"expected {knowledge.n_units} unit weights, got shape {weights.shape}")
    sizes = knowledge.unit_sizes()
    per_member = np.repeat(weights, sizes)
    if member_weights is not None:
        member_weights = np.asarray(member_weights, dtype=np.float64)
        if member_weights.shape != knowledge.indices.shape:
            raise ValueError(f"expected {len(knowledge.indices)} membership weights, got {member_weights.shape}")
        per_member = per_member * member_weights
    member_labels = np.repeat(knowledge.labels, sizes)
    target = np.zeros((n, c), dtype=np.float64)
    np.add.at(target, (knowledge.indices, member_labels), per_member)
    count = np.bincount(knowledge.indices, minlength=n).astype(np.float64)
    target /= np.maximum(count, 1.0)[:, None]
    if sharpen <= 0:
        raise ValueError(f"sharpen must be positive, got {sharpen}")
    if sharpen != 1.0:
        mass = target.sum(axis=1, keepdims=True)
        # Each row divided by its maximum first: powers of small numbers would underflow.
        powered = (target / np.maximum(target.max(axis=1, keepdims=True), 1e-300)) ** sharpen
        target = powered / np.maximum(powered.sum(axis=1, keepdims=True), 1e-300) * mass
    if class_weights is not None:
        target *= np.asarray(class_weights, dtype=np.float64)[None, :]
    return target.astype(np.float32)


def target_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over points of `-sum_c T_ic log softmax(logits)_ic`.

    `logits` and `targets` are (N, C) or (B, C, N) float32 (class axis 1 in the batched form).
    """
    if logits.shape != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} differ in shape")
    per_point = -(targets * torch.log_softmax(logits, dim=1)).sum(dim=1)
    return per_point.mean()


def distillation_loss(
    logits: torch.Tensor,
    knowledge_or_tensors: Knowledge | tuple[np.ndarray, np.ndarray, np.ndarray],
    weights: np.ndarray | torch.Tensor,
    class_weights: np.ndarray | torch.Tensor | None = None,
) -> torch.Tensor:
    """The forward-distillation loss `mean_i sum_k M_k(i) w_k CE(logits_i, Y_k) / max(1, sum_k M_k(i))`.

    Args:
        logits: (N, C) float32 student logits for the knowledge's N points.
        knowledge_or_tensors: a `Knowledge`, or its `(labels (K,), indptr (K+1,), indices (nnz,))` arrays.
        weights: (K,) unit weights (not differentiated).
        class_weights: optional (C,) per-class factors.
    """
    if isinstance(knowledge_or_tensors, Knowledge):
        knowledge = knowledge_or_tensors
    else:
        labels, indptr, indices = (np.asarray(torch.as_tensor(a).cpu()) for a in knowledge_or_tensors)
        n, c = logits.shape
        knowledge = Knowledge(
            labels.astype(np.int64),
            np.ones(len(labels), np.float32),
            np.zeros(len(labels), np.int64),
            indptr.astype(np.int64),
            indices.astype(np.int64),
            int(n),
            [str(i) for i in range(c)],
        )
    if logits.shape != (knowledge.n_points, knowledge.n_parts):
        raise ValueError(
            f"logits have shape {tuple(logits.shape)}, expected ({knowledge.n_points}, {knowledge.n_parts})"
        )
    w = np.asarray(torch.as_tensor(weights).detach().cpu(), dtype=np.float64)
    cw = None if class_weights is None else np.asarray(torch.as_tensor(class_weights).detach().cpu())
    targets = torch.from_numpy(point_targets(knowledge, w, cw)).to(logits.device)
    return target_loss(logits, targets)


def balanced_class_weights(knowledge: Knowledge, weights: np.ndarray) -> np.ndarray:
    """(C,) float32 factors ~ 1/sqrt(weighted coverage of each part), mean 1 over the parts that occur.

    Parts no unit names get 1 (they have no target mass anyway).
    """
    mass = np.bincount(knowledge.labels, weights=weights * knowledge.unit_sizes(), minlength=knowledge.n_parts)
    out = np.ones(knowledge.n_parts, dtype=np.float64)
    seen = mass > 0
    if seen.any():
        out[seen] = 1.0 / np.sqrt(mass[seen])
        out[seen] /= out[seen].mean()
    return out.astype(np.float32)


def _agreement_ratio(knowledge: Knowledge, pred: np.ndarray) -> np.ndarray:
    sizes = knowledge.unit_sizes()
    agree = (pred[knowledge.indices] == np.repeat(knowledge.labels, sizes)).astype(np.float64)
    unit_of = np.repeat(np.arange(knowledge.n_units), sizes)
    return np.bincount(unit_of, weights=agree, minlength=knowledge.n_units) / np.maximum(sizes, 1)


def _agreement_iou(knowledge: Knowledge, pred: np.ndarray) -> np.ndarray:
    """IoU per (view, label) group between the group's points and the student's points of that label, both
    within the points any unit of that view covers (a proxy for the view's visible points).

    Grouping by (view, label) keeps a mask split into components (four legs) from being judged per leg
    against all the legs the student sees.
    """
    out = np.zeros(knowledge.n_units, dtype=np.float64)
    for view in np.unique(knowledge.views):
        in_view = np.flatnonzero(knowledge.views == view)
        seen = np.unique(np.concatenate([knowledge.unit(k) for k in in_view]))
        for label in np.unique(knowledge.labels[in_view]):
            group = in_view[knowledge.labels[in_view] == label]
            pts = np.unique(np.concatenate([knowledge.unit(k) for k in group]))
            student = seen[pred[seen] == label]
            inter = len(np.intersect1d(pts, student, assume_unique=True))
            union = len(pts) + len(student) - inter
            out[group] = inter / max(union, 1)
    return out


def rescore(
    knowledge: Knowledge,
    pred: np.ndarray,
    measure: AgreementMeasure = "ratio",
    probs: np.ndarray | None = None,
) -> np.ndarray:
    """(K,) float32 new unit weights from the student's agreement with each unit (backward distillation).

    Args:
        knowledge: the K units.
        pred: (N,) int student labels of the knowledge's points.
        measure: "ratio" = share of the unit's points the student labels Y_k (DESIGN.md);
            "iou" = IoU of the unit's (view, label) group with the student's Y_k points in that view;
            "relative" = ratio divided by the median ratio of the units of the same label (at least half the
            median over all units), clipped to [0, 1]: a box is never pure, so it is judged against the purity
            the boxes of its label usually reach;
            "soft" = mean student probability of Y_k over the unit (needs `probs`);
            "point" = 1 for every unit: the agreement is applied per point by `member_agreement`;
            "relative-score", "relative-point" = "relative" (`backward_weights` multiplies it by the teacher's
            score, and "relative-point" adds the per-point agreement);
            "support" = the larger of "relative" and the unit's cross-view consistency (`vote.cross_view_support`:
            the share of the other views covering its points that name its part there), so a unit the student
            does not resolve (a part of a few points) keeps its weight when the other views repeat it, while a
            swapped name or a spurious blob, repeated by no view, fades: "relative" counts in full only for a
            unit at least a `CORROBORATION` share of the other views covering it repeat (or that no other view
            covers), since the student also agrees with a one-view hallucination it has memorised
            (`backward_weights` multiplies it by the teacher's score).
        probs: (N, C) float student probabilities ("soft" only).
    """
    pred = np.asarray(pred)
    if pred.shape != (knowledge.n_points,):
        raise ValueError(f"expected {knowledge.n_points} predicted labels, got shape {pred.shape}")
    if knowledge.n_units == 0:
        return np.zeros(0, dtype=np.float32)
    if measure == "ratio":
        out = _agreement_ratio(knowledge, pred)
    elif measure == "iou":
        out = _agreement_iou(knowledge, pred)
    elif measure in ("relative", "relative-score", "relative-point"):
        ratio = _agreement_ratio(knowledge, pred)
        # The floor keeps a label whose units are mostly wrong (a systematic confusion) from being excused.
        floor = 0.5 * float(np.median(ratio))
        out = np.zeros_like(ratio)
        for label in np.unique(knowledge.labels):
            sel = knowledge.labels == label
            typical = max(float(np.median(ratio[sel])), floor)
            out[sel] = np.clip(ratio[sel] / typical, 0.0, 1.0) if typical > 0 else 0.0
    elif measure == "support":
        from partdistill_cli.vote import cross_view_support

        consistency, seen_elsewhere = cross_view_support(knowledge)
        # The student learnt every unit it was taught, a one-view hallucination included, so its agreement alone
        # is no evidence: it counts in full once other views repeat the unit on a CORROBORATION share of the
        # views covering it, and not at all where views cover it and none repeats it (a unit no other view sees
        # keeps it).
        corroborated = np.where(seen_elsewhere, np.minimum(1.0, consistency / CORROBORATION), 1.0)
        out = np.maximum(rescore(knowledge, pred, "relative") * corroborated, consistency)
    elif measure == "soft":
        if probs is None:
            raise ValueError("the 'soft' agreement needs the student's probabilities")
        sizes = knowledge.unit_sizes()
        p = probs[knowledge.indices, np.repeat(knowledge.labels, sizes)].astype(np.float64)
        unit_of = np.repeat(np.arange(knowledge.n_units), sizes)
        out = np.bincount(unit_of, weights=p, minlength=knowledge.n_units) / np.maximum(sizes, 1)
    elif measure == "point":
        out = np.ones(knowledge.n_units)
    else:
        raise ValueError(f"unknown agreement measure {measure!r}; choose from {', '.join(AGREEMENT_MEASURES)}")
    return out.astype(np.float32)


def unresolved_units(knowledge: Knowledge, min_size: float) -> np.ndarray:
    """(K,) bool: the units of fewer than `min_size` points that other views corroborate: at least a
    `CORROBORATION` share of the other views covering the unit name its part there, and at least one of them
    with a unit that small too, sharing a point with it.

    A unit that small is below what the student resolves (`Student.predict` sets `min_size` from the student's
    neighbours and subset size), so the student's low probability of its part says nothing about it; the other
    views, not the student, vouch for it. A small unit no other view repeats (or sees) stays with the student, and
    so does one that only a larger unit of another view overlaps (two views' spurious blobs that happen to touch
    a part's outline: on a 35-shape development set, a laptop's absent camera).
    """
    out = np.zeros(knowledge.n_units, dtype=bool)
    small = knowledge.unit_sizes() < min_size
    if small.sum() < 2:  # none, or one with no small unit to vouch for it: skip the cross-view counts
        return out
    from partdistill_cli.vote import cross_view_support

    consistency, seen_elsewhere = cross_view_support(knowledge)
    candidate = np.flatnonzero(small & seen_elsewhere & (consistency >= CORROBORATION))
    if len(candidate) < 2:
        return out
    members = knowledge.membership()[candidate]
    overlap = (members @ members.T).tocoo()
    a, b = candidate[overlap.row], candidate[overlap.col]
    mutual = (knowledge.views[a] != knowledge.views[b]) & (knowledge.labels[a] == knowledge.labels[b])
    out[a[mutual]] = True
    return out


def member_agreement(knowledge: Knowledge, probs: np.ndarray) -> np.ndarray:
    """(nnz,) float32 student probability of each unit's label at each of its points (point-level rescoring).

    A box labelled "leg" then keeps teaching "leg" only at the points the student already leans to "leg".
    """
    sizes = knowledge.unit_sizes()
    return probs[knowledge.indices, np.repeat(knowledge.labels, sizes)].astype(np.float32)


def backward_weights(
    knowledge: Knowledge, probs: np.ndarray, measure: AgreementMeasure
) -> tuple[np.ndarray, np.ndarray | None]:
    """Backward distillation's re-scoring: (K,) unit weights and the optional (nnz,) per-membership weights that
    `point_targets` takes, from the student's (N, C) probabilities.

    Unit measures ("ratio", "iou", "relative", "soft") replace each unit's score by its agreement;
    "support" (the default of `DistillConfig.agreement`) multiplies the score by the larger of the relative
    agreement and the unit's cross-view consistency: against "relative-score" (with the fusion at 4 against 2),
    full on PartNet-Mobility 58.3 -> 59.3, ShapeNetPart v0 79.6 -> 79.3, its boxes 62.8 -> 62.9, procedural 74.5
    both (bench/quality.py per-shape, 2048 points, before the mesh-piece vote).
    "relative-score" multiplies the score by the relative agreement, so
    a unit the teacher doubted keeps its doubt (full, against "relative", bench/quality.py per-shape, 2048 points:
    PartNet-Mobility 57.0 vs 55.5, its boxes 51.4 vs 52.5, harsh 38.8 vs 36.3; ShapeNetPart v0 79.4 vs 79.3,
    boxes 62.8 both; procedural 74.4 vs 74.3, boxes 65.0 vs 64.3). "point" keeps
    the teacher's scores and weighs each (unit, point) membership by the student's probability of the unit's
    label there. "relative-point" does both: the teacher's score times the relative agreement, and the point
    weights; the unit factor fades a view's wrong answer as a whole, the point factor lets a unit keep
    teaching only where the student already leans its way. Measured against "relative" on the same knowledge
    (bench/quality.py, per-shape, 2048 points): PartNet-Mobility default 56.6 vs 55.5 (faces 56.4 vs 54.9),
    but its boxes 51.0 vs 52.5, ShapeNetPart v0 default 78.5 vs 79.3 (boxes 62.8 both) and procedural 73.6
    vs 74.3 (boxes 64.3 both), so it is an option, not the default.
    """
    scores = knowledge.scores.astype(np.float64)
    pred = probs.argmax(axis=1)
    if measure == "point":
        return scores, member_agreement(knowledge, probs)
    if measure == "support":
        return scores * rescore(knowledge, pred, "support"), None
    if measure in ("relative-score", "relative-point"):
        units = scores * rescore(knowledge, pred, "relative")
        return units, member_agreement(knowledge, probs) if measure == "relative-point" else None
    return rescore(knowledge, pred, measure, probs).astype(np.float64), None
