"""The student: loss, backward re-scoring, training (seeded, resumable) and prediction."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from partdistill_cli.knowledge import Knowledge
from partdistill_cli.metrics import shape_miou
from partdistill_cli.shapes import Shape
from partdistill_cli.student import (
    AGREEMENT_MEASURES,
    DistillConfig,
    Student,
    distill,
    distillation_loss,
    member_agreement,
    point_targets,
    rescore,
)
from partdistill_cli.student import train as train_module
from partdistill_cli.student.losses import backward_weights, unresolved_units

TINY = DistillConfig(
    backbone="dgcnn",
    k=12,
    widths=(32, 32),
    global_dim=32,
    head=(32,),
    points_per_shape=512,
    batch=2,
    min_epoch_steps=10,
    min_forward_epochs=6,
    max_forward_epochs=6,
    backward_epochs=2,
    tta=1,
)


def _knowledge(units: list[list[int]], labels: list[int], scores: list[float], n: int, c: int) -> Knowledge:
    indptr = np.concatenate([[0], np.cumsum([len(u) for u in units])]).astype(np.int64)
    return Knowledge(
        np.asarray(labels, np.int64),
        np.asarray(scores, np.float32),
        np.arange(len(units), dtype=np.int64),
        indptr,
        np.concatenate([np.asarray(u, np.int64) for u in units]),
        n,
        [f"part{i}" for i in range(c)],
    )


def test_loss_equals_hand_computation():
    # unit 0 = {0, 1} label 0 score 0.5; unit 1 = {1} label 1 score 1.0; point 2 is uncovered.
    k = _knowledge([[0, 1], [1]], [0, 1], [0.5, 1.0], n=3, c=2)
    logits = torch.tensor([[2.0, -1.0], [0.3, 0.7], [5.0, -5.0]])
    ce = torch.nn.functional.cross_entropy
    p0 = 0.5 * ce(logits[0:1], torch.tensor([0]))
    p1 = (0.5 * ce(logits[1:2], torch.tensor([0])) + 1.0 * ce(logits[1:2], torch.tensor([1]))) / 2
    expected = (p0 + p1 + 0.0) / 3
    got = distillation_loss(logits, k, k.scores)
    assert torch.allclose(got, expected, atol=1e-6)
    # The same through raw (labels, indptr, indices) arrays, and with class weights (x3 on class 1).
    raw = distillation_loss(logits, (k.labels, k.indptr, k.indices), k.scores)
    assert torch.allclose(raw, expected, atol=1e-6)
    weighted = distillation_loss(logits, k, k.scores, class_weights=np.array([1.0, 3.0]))
    p1w = (0.5 * ce(logits[1:2], torch.tensor([0])) + 3.0 * ce(logits[1:2], torch.tensor([1]))) / 2
    assert torch.allclose(weighted, (p0 + p1w) / 3, atol=1e-6)


def test_uncovered_points_get_zero_gradient():
    k = _knowledge([[0, 3], [3, 4]], [1, 2], [0.9, 0.6], n=6, c=3)
    logits = torch.randn(6, 3, requires_grad=True)
    distillation_loss(logits, k, k.scores).backward()
    grad_norm = logits.grad.abs().sum(dim=1)
    assert torch.all(grad_norm[[1, 2, 5]] == 0)
    assert torch.all(grad_norm[[0, 3, 4]] > 0)


def test_point_targets_rows_and_shapes():
    k = _knowledge([[0, 1], [1]], [0, 1], [0.5, 1.0], n=3, c=2)
    t = point_targets(k, k.scores)
    assert t.shape == (3, 2) and t.dtype == np.float32
    np.testing.assert_allclose(t, [[0.5, 0.0], [0.25, 0.5], [0.0, 0.0]])
    with pytest.raises(ValueError, match="unit weights"):
        point_targets(k, np.ones(5))


def test_sharpened_targets_keep_each_points_weight_and_leading_part():
    # Point 1 is claimed 0.25 : 0.5 (two units), point 0 by one unit, point 2 by none.
    k = _knowledge([[0, 1], [1]], [0, 1], [0.5, 1.0], n=3, c=2)
    t = point_targets(k, k.scores, sharpen=2.0)
    # Row 1: the split 1 : 2 becomes 1 : 4 at the same total 0.75; single-part and empty rows are unchanged.
    np.testing.assert_allclose(t, [[0.5, 0.0], [0.15, 0.6], [0.0, 0.0]], rtol=1e-6)
    very = point_targets(k, k.scores, sharpen=50.0)
    np.testing.assert_allclose(very[1], [0.0, 0.75], atol=1e-6)
    with pytest.raises(ValueError, match="sharpen"):
        point_targets(k, k.scores, sharpen=0.0)
    with pytest.raises(ValueError, match="sharpen"):
        DistillConfig(sharpen=-1.0)


@pytest.mark.parametrize("measure", [m for m in AGREEMENT_MEASURES if m != "point"])
def test_rescoring_fades_a_unit_contradicting_a_consistent_majority(measure):
    # Three views agree that points 0-9 are part 0; a fourth calls the same points part 1.
    units = [list(range(10))] * 4
    k = _knowledge(units, [0, 0, 0, 1], [0.8, 0.7, 0.9, 0.95], n=12, c=2)
    pred = np.zeros(12, dtype=np.int64)
    probs = np.tile([0.9, 0.1], (12, 1)).astype(np.float32)
    w = rescore(k, pred, measure, probs)
    assert w.shape == (4,) and w.dtype == np.float32
    assert w[3] < 0.2 and np.all(w[:3] > 0.8)


def test_point_level_rescoring_weighs_each_member_by_student_probability():
    k = _knowledge([[0, 1, 2]], [1], [0.9], n=3, c=2)
    probs = np.array([[0.1, 0.9], [0.8, 0.2], [0.5, 0.5]], np.float32)
    np.testing.assert_allclose(member_agreement(k, probs), [0.9, 0.2, 0.5])
    t = point_targets(k, k.scores, member_weights=member_agreement(k, probs))
    np.testing.assert_allclose(t[:, 1], [0.81, 0.18, 0.45], rtol=1e-6)


def test_relative_point_rescoring_keeps_the_teachers_scores_and_weighs_each_point():
    # Two views call points 0-9 part 0 (scores 0.8 and 0.4); a third calls them part 1. The student says
    # part 0 everywhere, surely at points 0-4 (0.9) and barely at points 5-9 (0.6).
    k = _knowledge([list(range(10))] * 3, [0, 0, 1], [0.8, 0.4, 0.9], n=10, c=2)
    probs = np.array([[0.9, 0.1]] * 5 + [[0.6, 0.4]] * 5, np.float32)
    units, points = backward_weights(k, probs, "relative-point")
    # The contradicting unit fades; the agreeing ones keep the teacher's scores ("relative" would give 1, 1).
    np.testing.assert_allclose(units, [0.8, 0.4, 0.0], atol=1e-6)
    np.testing.assert_allclose(backward_weights(k, probs, "relative")[0], [1.0, 1.0, 0.0], atol=1e-6)
    # Each membership is weighed by the student's probability of the unit's label at that point.
    np.testing.assert_allclose(points[:10], [0.9] * 5 + [0.6] * 5, rtol=1e-6)
    np.testing.assert_allclose(points[20:], [0.1] * 5 + [0.4] * 5, rtol=1e-6)
    t = point_targets(k, units, member_weights=points)
    np.testing.assert_allclose(t[[0, 5], 0], [1.2 * 0.9 / 3, 1.2 * 0.6 / 3], rtol=1e-5)
    assert np.all(t[:, 1] == 0)
    # "point" alone keeps every unit's score, the contradicting one included.
    units, points = backward_weights(k, probs, "point")
    np.testing.assert_allclose(units, [0.8, 0.4, 0.9], rtol=1e-6)
    assert backward_weights(k, probs, "ratio")[1] is None


def test_relative_score_rescoring_keeps_the_teachers_scores_of_agreeing_units():
    # Units 0 and 1 (scores 0.8, 0.4) call points 0-9 part 0, unit 2 (0.9) calls them part 1, unit 3 (0.6) calls
    # points 10-19 part 1; the student says part 0 on 0-9 and part 1 on 10-19.
    k = _knowledge([list(range(10))] * 3 + [list(range(10, 20))], [0, 0, 1, 1], [0.8, 0.4, 0.9, 0.6], n=20, c=2)
    probs = np.array([[0.9, 0.1]] * 10 + [[0.2, 0.8]] * 10, np.float32)
    units, points = backward_weights(k, probs, "relative-score")
    # Teacher score x relative agreement: agreeing units keep their scores ("relative" gives them all 1), the
    # contradicting one fades, and no point is weighed.
    np.testing.assert_allclose(units, [0.8, 0.4, 0.0, 0.6], atol=1e-6)
    np.testing.assert_allclose(backward_weights(k, probs, "relative")[0], [1.0, 1.0, 0.0, 1.0], atol=1e-6)
    assert points is None
    t = point_targets(k, units)
    np.testing.assert_allclose(t[0], [1.2 / 3, 0.0], rtol=1e-5)
    np.testing.assert_allclose(t[10], [0.0, 0.6], rtol=1e-5)


def test_support_rescoring_keeps_a_part_the_views_repeat_and_the_student_misses():
    # Views 0-2 each name part 0 on points 0-7 and part 1 on points 8-9 (a small part); view 3 calls points 0-3
    # part 1 (a swapped name). The student never says part 1.
    units = [list(range(8))] * 3 + [[8, 9]] * 3 + [[0, 1, 2, 3]]
    k = _knowledge(units, [0, 0, 0, 1, 1, 1, 1], [0.9] * 6 + [0.8], n=10, c=2)
    k.views = np.array([0, 1, 2, 0, 1, 2, 3], np.int64)
    probs = np.array([[0.9, 0.1]] * 8 + [[0.7, 0.3]] * 2, np.float32)
    # "relative-score" judges the small part's units by the student alone: they agree with it nowhere, fade.
    np.testing.assert_allclose(backward_weights(k, probs, "relative-score")[0], [0.9] * 3 + [0.0] * 4, atol=1e-6)
    # "support": the other two views repeat each small-part unit (consistency 1), so it keeps its score; no
    # view repeats the swapped unit (views 0-2 call its points part 0), so it still fades.
    units_w, points = backward_weights(k, probs, "support")
    np.testing.assert_allclose(units_w, [0.9] * 6 + [0.0], atol=1e-6)
    assert points is None
    np.testing.assert_allclose(rescore(k, probs.argmax(axis=1), "support"), [1.0] * 6 + [0.0], atol=1e-6)
    # Fused at strength 4, the small part comes back (log 0.3/0.7 + 4 * 0.9 > 0); "relative-score" loses it.
    fused = train_module.fuse_knowledge(probs, k, 4.0, "support")
    np.testing.assert_array_equal(fused.argmax(axis=1), [0] * 8 + [1] * 2)
    logits = np.log([0.7, 0.3]) + 4.0 * np.array([0.0, 0.9])
    np.testing.assert_allclose(fused[8], np.exp(logits) / np.exp(logits).sum(), rtol=1e-5)
    np.testing.assert_array_equal(train_module.fuse_knowledge(probs, k, 4.0, "relative-score").argmax(axis=1), [0] * 10)


def test_support_gives_no_credit_for_agreeing_with_a_unit_no_other_view_repeats():
    # Views 0-2 name part 0 on points 0-9. View 3 calls points 0-2 part 1 (a one-view hallucination the three
    # other views contradict) and points 10-11, which no other view sees, part 1 too. The student learnt both.
    units = [list(range(10))] * 3 + [[0, 1, 2], [10, 11]]
    k = _knowledge(units, [0, 0, 0, 1, 1], [0.9] * 5, n=12, c=2)
    k.views = np.array([0, 1, 2, 3, 3], np.int64)
    probs = np.array([[0.2, 0.8]] * 3 + [[0.9, 0.1]] * 7 + [[0.2, 0.8]] * 2, np.float32)
    assert np.allclose(rescore(k, probs.argmax(axis=1), "relative"), 1.0)  # the student agrees with every unit
    # The hallucination: covered by three other views, repeated by none -> no weight; the unit no other view
    # covers keeps the student's word; the right units are repeated (consistency 20 / 23) and keep theirs.
    np.testing.assert_allclose(rescore(k, probs.argmax(axis=1), "support"), [1, 1, 1, 0, 1], atol=1e-6)
    fused = train_module.fuse_knowledge(probs, k, 4.0, "support")
    # log(0.2 / 0.8) + 4 * (3 * 0.9 / 4 views) > 0: the views overrule the student on points 0-2.
    np.testing.assert_array_equal(fused.argmax(axis=1), [0] * 10 + [1] * 2)


def test_rescore_rejects_bad_input():
    k = _knowledge([[0, 1]], [0], [0.5], n=3, c=2)
    with pytest.raises(ValueError, match="predicted labels"):
        rescore(k, np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="unknown agreement"):
        rescore(k, np.zeros(3, np.int64), "nope")
    with pytest.raises(ValueError, match="probabilities"):
        rescore(k, np.zeros(3, np.int64), "soft")


def test_config_validation():
    with pytest.raises(ValueError, match="agreement"):
        DistillConfig(agreement="vote")
    with pytest.raises(ValueError, match="points_per_shape"):
        DistillConfig(points_per_shape=0)
    assert DistillConfig.from_dict(TINY.to_dict()) == TINY


def _box_chair():
    """A box-built chair mesh (seat, back, 4 legs) with its per-face part labels."""
    import trimesh

    from partdistill_cli import shapes

    boxes = [([0, 0.5, 0], [1.0, 0.1, 1.0], 0), ([0, 1.0, -0.45], [1.0, 0.9, 0.1], 1)]
    boxes += [([x, 0.225, z], [0.1, 0.45, 0.1], 2) for x in (-0.45, 0.45) for z in (-0.45, 0.45)]
    meshes, labels = [], []
    for center, size, label in boxes:
        b = trimesh.creation.box(extents=size)
        b.apply_translation(center)
        v, f = trimesh.remesh.subdivide(b.vertices, b.faces)
        meshes.append(trimesh.Trimesh(v, f, process=False))
        labels.append(np.full(len(f), label))
    mesh = trimesh.util.concatenate(meshes)
    shape = shapes.from_mesh(mesh.vertices, mesh.faces, n_points=1024, seed=0, name="chair")
    return shape, np.concatenate(labels), ["seat", "back", "leg"]


@pytest.fixture(scope="module")
def chair_case():
    from partdistill_cli import cameras, render
    from partdistill_cli.lift import lift
    from partdistill_cli.teachers.simulated import SimulatedTeacher, load_noise

    shape, face_labels, parts = _box_chair()
    views = render.render(shape, cameras.view_set(6, 128))
    teacher = SimulatedTeacher(face_labels, load_noise("clean"), shape_seed=0)
    knowledge = lift(teacher.detect(views, parts), views, parts)
    return shape, knowledge, face_labels, parts


def test_distill_labels_every_point_and_face(chair_case):
    shape, knowledge, face_labels, parts = chair_case
    student = distill([(shape, knowledge)], TINY, mode="full", show_progress=False)
    labels = student.predict(shape)
    assert labels.point_labels.shape == (shape.n_points,) and labels.point_labels.min() >= 0
    assert labels.probs.shape == (shape.n_points, 3)
    np.testing.assert_allclose(labels.probs.sum(axis=1), 1.0, atol=1e-4)
    assert labels.face_labels.shape == (len(shape.faces),) and labels.face_labels.min() >= 0
    assert student.history["backward_epoch"] == TINY.max_forward_epochs
    assert len(student.history["loss"]) == TINY.max_forward_epochs + TINY.backward_epochs
    # A clean teacher on a chair this simple: the student must recover the parts well.
    assert shape_miou(labels.point_labels, face_labels[shape.face_ids], 3) > 0.85
    assert np.mean(labels.face_labels == face_labels) > 0.8


def test_prediction_fuses_the_knowledge_and_labels_every_point(chair_case):
    shape, knowledge, face_labels, parts = chair_case
    student = distill([(shape, knowledge)], replace(TINY, components=0.0), mode="full", show_progress=False)
    alone = student.predict(shape)
    fused = student.predict(shape, knowledge=knowledge)
    expected = train_module.fuse_knowledge(alone.probs, knowledge, TINY.fuse, TINY.agreement, student.resolution(shape))
    assert np.abs(expected - alone.probs).max() > 0.05  # the evidence moves the probabilities
    np.testing.assert_allclose(fused.probs, expected, atol=1e-6)
    np.testing.assert_array_equal(fused.point_labels, expected.argmax(axis=1))
    assert fused.face_labels.shape == (len(shape.faces),) and fused.face_labels.min() >= 0
    assert shape_miou(fused.point_labels, face_labels[shape.face_ids], 3) > 0.85
    student.config = replace(student.config, fuse=0.0)
    np.testing.assert_array_equal(student.predict(shape, knowledge=knowledge).probs, alone.probs)


def _small_part_case() -> tuple[Knowledge, np.ndarray]:
    # Views 0-2 name part 0 on points 0-35 and part 1 on points 36-39 (a part of 4 points); view 3 calls points
    # 0-39 part 0 and points 0-2 part 1 (a one-view blob the other views contradict). Scores 0.9. The student
    # never says part 1: it cannot resolve 4 points.
    units = [list(range(36))] * 3 + [list(range(36, 40))] * 3 + [list(range(40)), [0, 1, 2]]
    k = _knowledge(units, [0, 0, 0, 1, 1, 1, 0, 1], [0.9] * 8, n=40, c=2)
    k.views = np.array([0, 1, 2, 0, 1, 2, 3, 3], np.int64)
    probs = np.array([[0.999, 0.001]] * 40, np.float32)
    return k, probs


def test_units_below_the_students_resolution_are_judged_by_the_views():
    k, probs = _small_part_case()
    # Each small unit: 2 of the 3 other views covering it repeat it (consistency 2/3); the blob: none of 3.
    np.testing.assert_array_equal(unresolved_units(k, 5), [False] * 3 + [True] * 3 + [False, False])
    assert not unresolved_units(k, 4).any()  # 4 points are not fewer than 4
    assert not unresolved_units(k, 0).any()
    # Without the resolution the student's prior wins: its agreement with the small units is 0, so they keep
    # 0.9 * 2/3 each, 3 * 0.6 / 4 views = 0.45 of evidence against view 3's 0.9 / 4 = 0.225, and
    # log(0.001 / 0.999) + 4 * (0.45 - 0.225) < 0.
    plain = train_module.fuse_knowledge(probs, k, 4.0, "support")
    np.testing.assert_array_equal(plain.argmax(axis=1), [0] * 40)
    np.testing.assert_array_equal(train_module.fuse_knowledge(probs, k, 4.0, "support", 4.0), plain)
    # Below the resolution the small units keep their 0.9 and the student's prior says nothing about part 1:
    # 4 * (3 * 0.9 / 4 - 0.9 / 4) = 1.8 for part 1 at points 36-39. The blob is not corroborated: the student
    # keeps points 0-2.
    fused = train_module.fuse_knowledge(probs, k, 4.0, "support", 5.0)
    np.testing.assert_array_equal(fused.argmax(axis=1), [0] * 36 + [1] * 4)
    logits = np.log([0.999, 0.999]) + 4.0 * np.array([0.9 / 4, 3 * 0.9 / 4])
    np.testing.assert_allclose(fused[37], np.exp(logits) / np.exp(logits).sum(), rtol=1e-5)
    np.testing.assert_allclose(fused[10], plain[10], rtol=1e-6)


def test_a_small_unit_needs_a_small_unit_of_another_view_to_vouch_for_it():
    # Views 0 and 1 name part 0 on points 0-19, view 2 on 10-19. Part 1: view 0 on points 0-2, view 1 on 0-13,
    # view 2 on 12-13.
    units = [list(range(20)), list(range(20)), [0, 1, 2], list(range(14)), list(range(10, 20)), [12, 13]]
    k = _knowledge(units, [0, 0, 1, 1, 0, 1], [0.9] * 6, 20, 2)
    k.views = np.array([0, 1, 0, 1, 2, 2], np.int64)
    # View 1 repeats both small part-1 units, but with a unit the student resolves: neither is below it.
    assert not unresolved_units(k, 5).any()
    # Below 15 points view 1's part-1 unit is small too (views 0 and 2 name part 1 on 5 of the 18 points where
    # they cover it) and vouches for both; view 2's part-0 unit is repeated only by larger units: not below it.
    np.testing.assert_array_equal(unresolved_units(k, 15), [False, False, True, True, False, True])


def test_student_resolution_scales_with_the_shape_and_the_setting():
    config = replace(DistillConfig(), k=16, points_per_shape=1024)
    student = Student.create(["a", "b"], config)
    shape = Shape(np.random.default_rng(0).random((2048, 3)).astype(np.float32))
    assert student.resolution(shape) == pytest.approx(32.0)  # 16 points of a 1024-point subset of 2048
    student.config = replace(config, resolution=2.0)
    assert student.resolution(shape) == pytest.approx(64.0)
    student.config = replace(config, resolution=0.0)
    assert student.resolution(shape) == 0.0
    with pytest.raises(ValueError, match="resolution"):
        replace(config, resolution=-1.0)
    assert "resolution" not in config.model_dict()  # a prediction-time setting: cached students still match


def test_fusion_restores_what_the_views_agree_on_and_ignores_contradicted_units():
    # Views 0-2 each name part 1 on points 0-7 and part 0 on points 8-9 (score 0.9); view 3 names part 1 on
    # points 8-9 (0.9). The student says part 1 on 0-5 (0.9), blurs 6-7 into part 0 (0.6) and is sure of part 0
    # on 8-9 (0.95); point 10 is covered by no unit.
    units = [list(range(8))] * 3 + [[8, 9]] * 3 + [[8, 9]]
    k = _knowledge(units, [1, 1, 1, 0, 0, 0, 1], [0.9] * 7, n=11, c=2)
    k.views = np.array([0, 1, 2, 0, 1, 2, 3], np.int64)
    probs = np.array([[0.1, 0.9]] * 6 + [[0.6, 0.4]] * 2 + [[0.95, 0.05]] * 2 + [[0.7, 0.3]], np.float32)
    fused = train_module.fuse_knowledge(probs, k, 2.0, "relative-score")
    assert fused.shape == (11, 2) and fused.dtype == np.float32
    np.testing.assert_allclose(fused.sum(axis=1), 1.0, atol=1e-6)
    # The three views agree on part 1 at points 6-7 (their units agree with the student on 6 of 8 points, the
    # typical agreement of part 1's units, so they keep their 0.9): part 1 wins there.
    np.testing.assert_array_equal(fused.argmax(axis=1), [1] * 8 + [0] * 3)
    logits = np.log([0.6, 0.4]) + 2.0 * np.array([0.0, 0.9])
    np.testing.assert_allclose(fused[6], np.exp(logits) / np.exp(logits).sum(), rtol=1e-5)
    # View 3's unit contradicts the student everywhere: re-scored to 0, it adds no evidence for part 1 at
    # points 8-9 (it still counts as a view that looked: part 0's share there is 2.7 / 4).
    logits = np.log([0.95, 0.05]) + 2.0 * np.array([2.7 / 4, 0.0])
    np.testing.assert_allclose(fused[8], np.exp(logits) / np.exp(logits).sum(), rtol=1e-5)
    np.testing.assert_allclose(fused[10], probs[10], atol=1e-6)
    # Without re-scoring ("point" keeps every unit's score) view 3's unit does count.
    raw = train_module.fuse_knowledge(probs, k, 2.0, "point")
    logits = np.log([0.95, 0.05]) + 2.0 * np.array([2.7 / 4, 0.9 / 4])
    np.testing.assert_allclose(raw[8], np.exp(logits) / np.exp(logits).sum(), rtol=1e-5)
    np.testing.assert_array_equal(train_module.fuse_knowledge(probs, k, 0.0, "relative-score"), probs)
    with pytest.raises(ValueError, match="probabilities"):
        train_module.fuse_knowledge(probs[:5], k, 2.0, "relative-score")


def test_distill_is_seeded(chair_case):
    shape, knowledge, _, _ = chair_case
    cfg = replace(TINY, max_forward_epochs=1, min_forward_epochs=1, backward_epochs=1)
    a = distill([(shape, knowledge)], cfg, show_progress=False).state_dict()
    b = distill([(shape, knowledge)], cfg, show_progress=False).state_dict()
    c = distill([(shape, knowledge)], replace(cfg, seed=1), show_progress=False).state_dict()
    assert all(torch.equal(a[name], b[name]) for name in a)
    assert not all(torch.equal(a[name], c[name]) for name in a)


def test_interrupted_distillation_resumes_to_the_same_student(chair_case, tmp_path, monkeypatch, capsys):
    shape, knowledge, _, _ = chair_case
    cfg = replace(TINY, max_forward_epochs=2, min_forward_epochs=2, backward_epochs=1, min_epoch_steps=2)
    whole = distill([(shape, knowledge)], cfg, show_progress=False).state_dict()

    real_save = train_module._Checkpoint.save
    calls = {"n": 0}

    def save_then_die(self, *args):
        real_save(self, *args)
        calls["n"] += 1
        if calls["n"] == 2:  # after the second epoch: forward done, backward not started
            raise KeyboardInterrupt

    monkeypatch.setattr(train_module._Checkpoint, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        distill([(shape, knowledge)], cfg, checkpoint_dir=tmp_path, show_progress=False)
    monkeypatch.setattr(train_module._Checkpoint, "save", real_save)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["member0.json", "member0.safetensors"]
    capsys.readouterr()
    resumed = distill([(shape, knowledge)], cfg, checkpoint_dir=tmp_path, show_progress=False)
    assert "resuming student 1 from its checkpoint (forward, epoch 2)" in capsys.readouterr().err
    assert resumed.history["epochs"] == 3
    assert all(torch.equal(whole[name], resumed.state_dict()[name]) for name in whole)
    # A finished training leaves no checkpoint behind (nor the folder it made).
    assert not tmp_path.exists()


def test_a_large_cloud_trains_and_predicts_on_a_bounded_subset(chair_case, monkeypatch):
    shape, knowledge, face_labels, _ = chair_case
    cfg = replace(TINY, points_per_shape=128, min_epoch_steps=1, max_points=300, augment=False, components=0.0)
    big = replace(cfg, max_points=10**6)
    prepared = [train_module._Item(np.zeros((shape.n_points, 6)), knowledge, knowledge.scores, knowledge.scores)]
    assert train_module._epoch_steps(prepared, big) == 4  # ceil(1024 / (128 * 2))
    prepared[0].pool = train_module.subsample(shape.n_points, 300)
    assert train_module._epoch_steps(prepared, cfg) == 2  # ceil(300 / 256): the epoch no longer grows with N

    keep = train_module.subsample(shape.n_points, 300)
    assert keep.shape == (300,) and len(np.unique(keep)) == 300
    assert np.array_equal(keep, train_module.subsample(shape.n_points, 300))
    assert train_module.subsample(300, 300) is None
    drawn = []
    real_batch = train_module._batch

    def spy(items, config, rng):
        x, t = real_batch(items, config, rng)
        drawn.append(x[:, :3].numpy().transpose(0, 2, 1).reshape(-1, 3))
        return x, t

    monkeypatch.setattr(train_module, "_batch", spy)
    student = distill([(shape, knowledge)], replace(cfg, min_epoch_steps=8), mode="full", show_progress=False)
    from scipy.spatial import cKDTree

    feats = student.features(shape)[:, :3]
    dist, drawn_idx = cKDTree(feats).query(np.concatenate(drawn))
    assert dist.max() < 1e-6 and set(drawn_idx) <= set(keep)  # training drew from the subset only
    labels = student.predict(shape)
    assert labels.point_labels.shape == (shape.n_points,) and labels.point_labels.min() >= 0
    # Every point outside the subset carries its nearest subset point's probabilities.
    _, nearest = cKDTree(shape.points[keep]).query(shape.points)
    np.testing.assert_array_equal(labels.probs, labels.probs[keep][nearest])
    assert shape_miou(labels.point_labels, face_labels[shape.face_ids], 3) > 0.6


def test_distill_rejects_mismatched_input(chair_case):
    shape, knowledge, _, _ = chair_case
    other = replace(knowledge, parts=["a", "b", "c"])
    with pytest.raises(ValueError, match="expected"):
        distill([(shape, knowledge), (shape, other)], TINY, show_progress=False)
    with pytest.raises(ValueError, match="no units"):
        distill([(shape, Knowledge.empty(shape.n_points, ["a"]))], TINY, show_progress=False)
    init = Student.create(["x", "y", "z"], TINY)
    with pytest.raises(ValueError, match="initial student"):
        distill([(shape, knowledge)], TINY, init=init, show_progress=False)


def test_point_cloud_without_normals_gets_estimated_normals():
    from partdistill_cli.shapes import from_points

    rng = np.random.default_rng(0)
    xyz = rng.normal(size=(300, 3))
    xyz /= np.linalg.norm(xyz, axis=1, keepdims=True)
    student = Student.create(["a", "b"], TINY)
    feats = student.features(from_points(xyz))
    assert feats.shape == (300, 6)
    # On a sphere the outward normal is the position itself.
    assert np.mean(np.einsum("nc,nc->n", feats[:, 3:], feats[:, :3])) > 0.95


def test_fine_tuning_continues_the_initial_student_without_changing_it(chair_case):
    shape, knowledge, _, _ = chair_case
    forward = distill(
        [(shape, knowledge)], replace(TINY, min_forward_epochs=2, max_forward_epochs=2), "forward", show_progress=False
    )
    before = {name: t.clone() for name, t in forward.state_dict().items()}
    backward_only = replace(TINY, min_forward_epochs=0, max_forward_epochs=0, backward_epochs=1)
    full = distill([(shape, knowledge)], backward_only, "full", init=forward, show_progress=False)
    assert full.history["epochs"] == 3 and full.history["backward_epoch"] == 2
    assert len(full.history["loss"]) == 3 and full.history["loss"][:2] == forward.history["loss"]
    assert all(torch.equal(before[name], t) for name, t in forward.state_dict().items())
    assert not all(torch.equal(before[name], t) for name, t in full.state_dict().items())


def test_prediction_gives_each_small_mesh_piece_its_majority_part(chair_case):
    from partdistill_cli.components import face_components

    shape, knowledge, face_labels, _ = chair_case
    student = distill([(shape, knowledge)], replace(TINY, components=0.0), mode="full", show_progress=False)
    plain = student.predict(shape, knowledge=knowledge)
    student.config = replace(student.config, components=0.5)
    voted = student.predict(shape, knowledge=knowledge)
    comp = face_components(shape)
    assert len(np.unique(comp)) == 6  # seat, back and four legs: separate boxes
    for c in np.unique(comp):
        faces = comp == c
        points = faces[shape.face_ids]
        majority = np.bincount(plain.point_labels[points]).argmax()
        # Every piece is under half the chair, and the plain student already labels most of each one right:
        # the whole piece, faces included, takes that part.
        assert np.all(voted.point_labels[points] == majority) and np.all(voted.face_labels[faces] == majority)
    np.testing.assert_allclose(voted.probs.sum(axis=1), 1.0, atol=1e-4)
    assert np.mean(voted.face_labels == face_labels) >= np.mean(plain.face_labels == face_labels)


def test_prediction_labels_the_faces_of_a_piece_no_sample_lies_on(chair_case):
    import trimesh

    from partdistill_cli import shapes

    shape, knowledge, _, _ = chair_case
    student = distill([(shape, knowledge)], replace(TINY, components=0.0), mode="forward", show_progress=False)
    student.config = replace(student.config, components=0.5)
    # A speck far below the chair, its own piece, which none of the chair's samples lies on.
    speck = trimesh.creation.box(extents=[1e-4] * 3)
    speck.apply_translation([0, -5, 0])
    vertices = np.concatenate([shape.vertices, speck.vertices])
    faces = np.concatenate([shape.faces, len(shape.vertices) + speck.faces])
    with_speck = shapes.Shape(shape.points, shape.normals, vertices, faces, shape.face_ids, name="chair + speck")
    labels = student.predict(with_speck, knowledge=knowledge)
    assert labels.face_labels.shape == (len(faces),) and labels.face_labels.min() >= 0
    np.testing.assert_array_equal(labels.point_labels, student.predict(shape, knowledge=knowledge).point_labels)
