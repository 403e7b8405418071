"""Scoring in the evaluation harness: area-weighted face IoU, part shares, face labels of a vote."""

import numpy as np

from partdistill_cli.evaluate import face_areas, face_prediction, score_shape
from partdistill_cli.knowledge import Labels
from partdistill_cli.metrics import part_ious
from partdistill_cli.shapes import from_mesh

from helpers import two_box_mesh


def test_weighted_iou_counts_area_not_elements():
    pred = np.array([0, 0, 1])
    gt = np.array([0, 1, 1])
    # Unweighted: part 0 = 1/2, part 1 = 1/2. The wrong element weighs 8 of 10 -> IoU 1/9 and 1/9.
    assert np.allclose(part_ious(pred, gt, 2), [0.5, 0.5])
    assert np.allclose(part_ious(pred, gt, 2, weights=np.array([1.0, 8.0, 1.0])), [1 / 9, 1 / 9])


def test_score_shape_reports_shares_and_face_miou():
    gt = np.array([0, 0, 0, 1, -1])
    s = score_shape(np.array([0, 0, 0, 1, 2]), gt, ["a", "b"], other_index=2, faces=(gt[:4], gt[:4], np.ones(4)))
    assert s["part_share"] == {"a": 0.6, "b": 0.2}
    assert s["miou"] == 1.0 and s["face_miou"] == 1.0
    wrong = score_shape(gt, gt, ["a", "b"], None, faces=(np.array([1, 0, 0, 1]), gt[:4], np.array([3.0, 1, 1, 1])))
    assert np.isclose(wrong["face_part_iou"]["a"], 2 / 5) and np.isclose(wrong["face_part_iou"]["b"], 1 / 4)


def test_face_prediction_of_a_vote_leaves_unvoted_faces_unlabeled():
    v, f, lab = two_box_mesh()
    shape = from_mesh(v, f, 400, seed=0)
    probs = np.zeros((shape.n_points, 2), dtype=np.float32)
    tower = lab[shape.face_ids] == 0
    probs[tower, 0] = 1.0  # only the tower's samples were voted
    labels = Labels(np.where(tower, 0, -1), probs, ["tower", "base"])
    faces = face_prediction(shape, labels)
    sampled = np.unique(shape.face_ids)
    assert (faces[np.intersect1d(sampled, np.flatnonzero(lab == 1))] == -1).all()
    assert (faces[np.intersect1d(sampled, np.flatnonzero(lab == 0))] == 0).all()


def test_face_areas_match_trimesh():
    import trimesh

    v, f, _ = two_box_mesh()
    shape = from_mesh(v, f, 100, seed=0)
    areas = face_areas(shape)
    assert areas.shape == (len(f),)
    assert np.allclose(areas, trimesh.Trimesh(shape.vertices, shape.faces, process=False).area_faces, atol=1e-6)


def test_student_settings_of_the_eval_config_reach_every_student_method(monkeypatch):
    import partdistill_cli.student as student_pkg
    from partdistill_cli.evaluate import EvalConfig, run_evaluation
    from partdistill_cli.pipeline import RenderSettings
    from partdistill_cli.procedural import procedural_dataset
    from partdistill_cli.teachers.simulated import load_noise

    seen = []
    distill = student_pkg.distill
    monkeypatch.setattr(
        student_pkg, "distill", lambda items, config, **kw: seen.append(config) or distill(items, config, **kw)
    )
    tiny = {"max_forward_epochs": 1, "min_forward_epochs": 1, "backward_epochs": 1, "min_epoch_steps": 1,
            "points_per_shape": 128, "k": 4, "tta": 1}  # fmt: skip
    data = procedural_dataset(["mug"], per_category=1, seed=0, n_points=256)
    for methods, protocol, calls in ((["forward", "full"], "per-shape", 2), (["forward"], "category", 1)):
        seen.clear()
        config = EvalConfig(methods, load_noise("clean"), "clean", RenderSettings(3, 64), protocol, 7, "auto", tiny)
        report = run_evaluation(data, config)
        assert report["config"]["student"] == tiny and len(seen) == calls, methods
        # `full` continues the forward student with its forward epochs set to 0; every other setting is as asked.
        same = [k for k in tiny if not k.endswith("_forward_epochs")]
        assert all(c.seed == 7 and all(getattr(c, k) == tiny[k] for k in same) for c in seen)
        assert seen[0].min_forward_epochs == seen[0].max_forward_epochs == 1


def _quality_bench():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "quality.py"
    spec = importlib.util.spec_from_file_location("bench_quality", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quality_bench_names_reports_of_a_noise_file(tmp_path):
    quality = _quality_bench()
    noise = tmp_path / "sub dir" / "my-noise.json"
    noise.parent.mkdir()
    noise.write_text('{"miss": 0.3, "boundary_px": 2}')
    # A noise file (documented as a --noises value) must give a report name without its folders.
    assert quality.noise_label(str(noise)) == "my-noise"
    assert quality.noise_label(f"{noise}-box") == "my-noise-box"
    assert quality.noise_label("harsh-box") == "harsh-box" and quality.noise_label("default") == "default"
    cfg = quality.noise_config(f"{noise}-box")
    assert cfg.box and cfg.miss == 0.3 and cfg.boundary_px == 2
