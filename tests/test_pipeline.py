"""The stages together: procedural shape -> render -> simulated teacher -> lift -> vote, and the evaluate harness."""

import json

import numpy as np
import pytest

from partdistill_cli.evaluate import EvalConfig, expand_methods, run_evaluation
from partdistill_cli.pipeline import OTHER, RenderSettings, save_teach_result, teach
from partdistill_cli.procedural import generate, procedural_dataset
from partdistill_cli.shapes import from_mesh
from partdistill_cli.teachers.simulated import SimulatedTeacher, load_noise
from partdistill_cli.vote import vote


def test_clean_vote_is_right_on_99_percent_of_covered_points_of_a_procedural_chair():
    vertices, faces, face_labels, parts = generate("chair", seed=0)
    shape = from_mesh(vertices, faces, 4000, seed=0)
    teacher = SimulatedTeacher(face_labels, load_noise("clean"))
    result = teach(shape, teacher, parts, RenderSettings(n_views=10, resolution=512))
    labels = vote(result.knowledge)
    gt = face_labels[shape.face_ids]
    covered = labels.point_labels >= 0
    assert covered.mean() > 0.9
    assert (labels.point_labels[covered] == gt[covered]).mean() >= 0.99


def test_other_units_claim_what_no_detection_claims():
    vertices, faces, face_labels, parts = generate("mug", seed=1)
    shape = from_mesh(vertices, faces, 2000, seed=0)
    # Only the first part is asked for; the rest of the mug must go to the background part.
    only_first = np.where(face_labels == 0, 0, -1)
    result = teach(
        shape, SimulatedTeacher(only_first, load_noise("clean")), parts[:1], RenderSettings(6, 192), other=True
    )
    k = result.knowledge
    assert k.parts == [parts[0], OTHER]
    labels = vote(k).point_labels
    gt = only_first[shape.face_ids]
    covered = labels >= 0
    assert (np.where(labels[covered] == 1, -1, labels[covered]) == gt[covered]).mean() > 0.97


def test_evaluate_report_format_and_values(tmp_path):
    data = procedural_dataset(["chair", "table"], per_category=2, seed=0, n_points=1024)
    config = EvalConfig(expand_methods("vote,vote-fill"), load_noise("default"), "default", RenderSettings(6, 192))
    report = run_evaluation(data, config, save_knowledge=tmp_path / "k")
    json.dumps(report)  # serialisable as it is
    assert {(r["method"], r["category"]) for r in report["results"]} == {
        (m, c) for m in ("vote", "vote-fill") for c in ("chair", "table")
    }
    for r in report["results"]:
        assert 0 <= r["miou"] <= 1 and 0 <= r["coverage"] <= 1 and len(r["shapes"]) == 2
        for s in r["shapes"]:
            assert set(s) == {"name", "miou", "coverage", "part_iou", "part_share", "face_miou", "face_part_iou"}
            assert np.isclose(s["face_miou"], np.mean(list(s["face_part_iou"].values())))
            assert np.isclose(s["miou"], np.mean(list(s["part_iou"].values())))
    fill = [r for r in report["results"] if r["method"] == "vote-fill"]
    assert all(r["coverage"] == 1.0 for r in fill)
    saved = sorted((tmp_path / "k").iterdir())
    assert len(saved) == 4
    assert {p.name for p in saved[0].iterdir()} == {"cameras.json", "pixel_map.npy", "detections.npz", "knowledge.npz"}


def test_save_teach_result_round_trip(tmp_path):
    from partdistill_cli.knowledge import Knowledge

    vertices, faces, face_labels, parts = generate("table", seed=0)
    shape = from_mesh(vertices, faces, 1000, seed=0)
    result = teach(shape, SimulatedTeacher(face_labels, load_noise("default")), parts, RenderSettings(4, 128))
    save_teach_result(result, tmp_path)
    k = Knowledge.load(tmp_path / "knowledge.npz")
    assert np.array_equal(k.indices, result.knowledge.indices)
    assert np.array_equal(np.load(tmp_path / "pixel_map.npy"), result.views.pixel_of_point)
    d = np.load(tmp_path / "detections.npz")
    masks = np.unpackbits(d["masks_packed"], axis=-1)[..., :128].astype(bool)
    first = next(x.mask for x in result.detections if x.mask is not None)
    assert np.array_equal(masks[0], first)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown method"):
        expand_methods("vote,magic")
