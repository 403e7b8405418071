import numpy as np
import pytest

from partdistill_cli.cameras import view_set
from partdistill_cli.knowledge import Detection, Knowledge
from partdistill_cli.lift import lift
from partdistill_cli.metrics import part_ious, shape_miou
from partdistill_cli.render import render
from partdistill_cli.shapes import from_mesh
from partdistill_cli.vote import cross_view_support, view_evidence, vote

from helpers import two_box_mesh


@pytest.fixture(scope="module")
def scene():
    v, f, lab = two_box_mesh()
    shape = from_mesh(v, f, 3000, seed=0)
    views = render(shape, view_set(4, 128))
    return shape, views, lab[shape.face_ids], lab


def test_mask_over_one_part_lifts_to_that_parts_visible_points_only(scene):
    shape, views, point_gt, face_gt = scene
    mask = views.part_images(face_gt)[0] == 0
    k = lift([Detection(0, 0, 0.8, mask=mask)], views, ["tower", "base"])
    assert k.n_units == 1 and k.labels[0] == 0 and np.isclose(k.scores[0], 0.8)
    pts = k.unit(0)
    visible = views.pixel_of_point[0] >= 0
    # Only points at the silhouette of the tower against the base may be of the other part.
    assert np.mean(point_gt[pts] == 0) > 0.97 and np.all(visible[pts])
    expected = np.flatnonzero(visible & (point_gt == 0))
    # Points at the part's silhouette may project onto the neighbour's pixels; nearly all must be in.
    assert len(np.intersect1d(pts, expected)) >= 0.97 * len(expected)


def test_two_disjoint_blobs_become_two_units(scene):
    shape, views, point_gt, face_gt = scene
    h, w = views.size
    mask = np.zeros((h, w), bool)
    mask[:, : w // 2 - 10] = True
    mask[:, w // 2 + 10 :] = True
    k = lift([Detection(1, 1, 0.5, mask=mask)], views, ["tower", "base"])
    assert k.n_units == 2
    assert len(np.intersect1d(k.unit(0), k.unit(1))) == 0
    assert (k.views == 1).all() and (k.labels == 1).all()


def test_tiny_components_and_empty_units_are_dropped(scene):
    shape, views, _, _ = scene
    h, w = views.size
    mask = np.zeros((h, w), bool)
    mask[0, 0] = True  # a single background pixel
    assert lift([Detection(0, 0, 0.5, mask=mask)], views, ["a", "b"]).n_units == 0


def test_box_covers_visible_points_inside_it(scene):
    shape, views, point_gt, _ = scene
    h, w = views.size
    k = lift([Detection(2, 0, 0.7, box=np.array([0, 0, w, h / 2]))], views, ["a", "b"])
    pix = views.pixel_of_point[2]
    expected = np.flatnonzero((pix >= 0) & (pix // w < h / 2))
    assert np.array_equal(k.unit(0), expected)


def test_lift_rejects_bad_detections(scene):
    _, views, _, _ = scene
    with pytest.raises(ValueError, match="view"):
        lift([Detection(9, 0, 0.5, box=np.zeros(4))], views, ["a"])
    with pytest.raises(ValueError, match="part"):
        lift([Detection(0, 3, 0.5, box=np.zeros(4))], views, ["a"])
    with pytest.raises(ValueError, match="exactly one"):
        Detection(0, 0, 0.5)


def hand_knowledge():
    # 5 points, 2 parts: unit0 {0,1,2} part0 score .9, unit1 {2,3} part1 score .5, unit2 {2} part1 score .6
    return Knowledge(
        np.array([0, 1, 1]),
        np.array([0.9, 0.5, 0.6], np.float32),
        np.array([0, 0, 1]),
        np.array([0, 3, 5, 6]),
        np.array([0, 1, 2, 2, 3, 2]),
        5,
        ["a", "b"],
    )


def test_vote_known_answer():
    lab = vote(hand_knowledge())
    # point 2: part0 0.9 vs part1 0.5 + 0.6 = 1.1 -> part1; point 4 uncovered -> -1
    assert lab.point_labels.tolist() == [0, 0, 1, 1, -1]
    assert np.allclose(lab.probs[2], [0.9 / 2.0, 1.1 / 2.0])
    assert lab.coverage == 0.8


def test_vote_fill_takes_nearest_labeled_point():
    pts = np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0], [3.2, 0, 0]], np.float32)
    lab = vote(hand_knowledge(), pts, fill=True)
    assert lab.point_labels.tolist() == [0, 0, 1, 1, 1]


def test_knowledge_save_load_round_trip(tmp_path):
    k = hand_knowledge()
    k.save(tmp_path / "k.npz")
    k2 = Knowledge.load(tmp_path / "k.npz")
    for name in ("labels", "scores", "views", "indptr", "indices"):
        assert np.array_equal(getattr(k, name), getattr(k2, name))
    assert k2.parts == ["a", "b"] and k2.n_points == 5
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a partdistill knowledge file"):
        Knowledge.load(tmp_path / "bad.npz")


def test_metrics_known_answers():
    gt = np.array([0, 0, 1, 1, -1])
    pred = np.array([0, 1, 1, 1, 1])
    ious = part_ious(pred, gt, 3)
    assert np.allclose(ious, [1 / 2, 2 / 4, 1.0])  # part 2 absent from both counts 1
    assert shape_miou(np.full(5, -1), gt, 2) == 0.0


def test_view_evidence_is_the_weighted_share_of_the_views_covering_each_point():
    # View 0 names part 0 at points 0-1 (score 0.8) and part 1 at point 1 (0.6); view 1 names part 0 at 0-2
    # (0.4); point 3 is uncovered.
    k = Knowledge(
        np.array([0, 1, 0], np.int64), np.array([0.8, 0.6, 0.4], np.float32), np.array([0, 0, 1], np.int64),
        np.array([0, 2, 3, 6], np.int64), np.array([0, 1, 1, 0, 1, 2], np.int64), 4, ["a", "b"],
    )  # fmt: skip
    np.testing.assert_allclose(view_evidence(k), [[0.6, 0.0], [0.6, 0.3], [0.4, 0.0], [0.0, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(view_evidence(k, np.array([1.0, 0.0, 1.0]))[1], [1.0, 0.0])
    with pytest.raises(ValueError, match="unit weights"):
        view_evidence(k, np.ones(2))


def test_view_consistency_is_the_share_of_the_other_views_that_repeat_a_unit():
    # View 0: a on 0-1, b on 2-3, a on 4, a again on 1. View 1: a on 0-2 (a dilated mask), b on 1. View 2: b on 0
    # (a swapped name), b on 2-3.
    units = [[0, 1], [2, 3], [4], [0, 1, 2], [1], [0], [2, 3], [1]]
    k = Knowledge(
        np.array([0, 1, 0, 0, 1, 1, 1, 0], np.int64), np.full(8, 0.9, np.float32), np.array([0, 0, 0, 1, 1, 2, 2, 0]),
        np.cumsum([0] + [len(u) for u in units]), np.concatenate(units), 5, ["a", "b"],
    )  # fmt: skip
    # Unit 0: at point 0 views 1 (a) and 2 (b) look, one repeats a; at point 1 only view 1 looks, and counts once
    # although two of its units cover the point: 2 / 3. Unit 2 (point 4): no other view, no support. Unit 3: 2 of
    # 5 (view 0 names a at point 1 once, with two units). The swapped unit 5: views 0 and 1 call point 0 a.
    np.testing.assert_allclose(cross_view_support(k)[0], [2 / 3, 2 / 3, 0.0, 0.4, 0.0, 0.0, 2 / 3, 1.0], rtol=1e-6)
    # Unit 2 is the only one no other view covers (0 without being contradicted, unlike the swapped unit 5).
    assert cross_view_support(k)[1].tolist() == [True, True, False, True, True, True, True, True]
    assert cross_view_support(Knowledge.empty(3, ["a"]))[0].shape == (0,)
