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

from helpers import check_report


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
    # Per view, the background unit is exactly the visible points no detection of that view covers.
    for v in range(result.views.n_views):
        units = np.flatnonzero(k.views == v)
        found = [k.unit(u) for u in units if k.labels[u] == 0]
        (background,) = [k.unit(u) for u in units if k.labels[u] == 1]
        claimed = np.concatenate(found) if found else np.zeros(0, np.int64)
        visible = np.flatnonzero(result.views.pixel_of_point[v] >= 0)
        assert np.array_equal(np.sort(background), np.setdiff1d(visible, claimed)), v
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
    check_report(report, meshes=True)
    assert all(len(r["shapes"]) == 2 for r in report["results"])
    # Default noise leaves votes far from useless and far from perfect: a summary of zeros or ones is wrong.
    assert all(0.3 < v["mean_over_shapes"] < 1.0 for v in report["summary"].values())
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


def test_evaluate_with_a_tiny_clipseg_teacher_writes_the_standard_report(tiny, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from partdistill_cli.cli import app
    from partdistill_cli.procedural import write_labeled_mesh_folder
    from partdistill_cli.teachers.clipseg import ClipSegTeacher

    asked = []
    detect = ClipSegTeacher.detect
    monkeypatch.setattr(
        ClipSegTeacher, "detect", lambda self, v, p, c=None: asked.append((p, c)) or detect(self, v, p, c)
    )
    folder = tmp_path / "chairs"
    write_labeled_mesh_folder(folder, "chair", 2, seed=0)
    args = ["evaluate", folder, "--teacher", "clipseg", "--clipseg", tiny["clipseg"]["clipseg"], "--threshold", "0.0",
            "--views", "2", "--resolution", "64", "--points", "256", "--method", "vote,vote-fill",
            "--cache-dir", tmp_path / "cache"]  # fmt: skip
    first = CliRunner().invoke(
        app, [str(a) for a in [*args, "--out", tmp_path / "r1.json", "--save-knowledge", tmp_path / "k"]]
    )
    assert first.exit_code == 0, first.output + repr(first.exception)
    report = json.loads((tmp_path / "r1.json").read_text())
    check_report(report, meshes=True)
    assert (
        report["config"]["teacher"].startswith("clipseg(") and tiny["clipseg"]["clipseg"] in report["config"]["teacher"]
    )
    assert {(r["method"], r["category"]) for r in report["results"]} == {("vote", "chair"), ("vote-fill", "chair")}
    assert [s["name"] for s in report["results"][0]["shapes"]] == ["chair_0", "chair_1"]
    # Prompts from the data set's part names and category, one question per shape.
    assert asked == [(["back", "seat", "leg", "armrest"], "chair")] * 2
    assert len(list((tmp_path / "cache" / "knowledge").rglob("*.npz"))) == 2
    assert sorted(p.name for p in (tmp_path / "k").iterdir()) == ["0000_chair_0", "0001_chair_1"]
    # A second run takes the teacher's answers from the cache and reports the same numbers.
    second = CliRunner().invoke(app, [str(a) for a in [*args, "--out", tmp_path / "r2.json"]])
    assert second.exit_code == 0, second.output + repr(second.exception)
    assert len(asked) == 2
    assert json.loads((tmp_path / "r2.json").read_text())["results"] == report["results"]


def test_a_cloud_above_the_students_point_budget_is_labeled_whole_and_the_user_is_told(tmp_path, monkeypatch, capsys):
    from dataclasses import replace

    from partdistill_cli.config import SegmentConfig
    from partdistill_cli.pipeline import Pipeline
    from partdistill_cli.shapes import from_points

    vertices, faces, face_labels, parts = generate("mug", seed=0)
    mesh_shape = from_mesh(vertices, faces, 3000, seed=0)
    cloud = from_points(mesh_shape.points, mesh_shape.normals)
    teacher = SimulatedTeacher(face_labels[mesh_shape.face_ids], load_noise("clean"))
    knowledge = teach(cloud, teacher, parts, RenderSettings(4, 128)).knowledge
    pipeline = Pipeline(SegmentConfig(method="forward", student="none", epochs=1, cache_dir=tmp_path))
    small = replace(pipeline.distill_config(), max_points=1000, points_per_shape=256, min_epoch_steps=2)
    monkeypatch.setattr(Pipeline, "distill_config", lambda self: small)
    capsys.readouterr()
    labels = pipeline.label(cloud, knowledge, teacher_name="simulated")
    said = " ".join(capsys.readouterr().err.split())
    assert "3,000 points: the student trains on and predicts 1,000 of them" in said
    assert labels.point_labels.shape == (3000,) and 0 <= labels.point_labels.min()
    assert labels.point_labels.max() < len(parts)


def test_no_pieces_turns_the_mesh_piece_vote_off_for_fresh_and_cached_students(tmp_path, monkeypatch):
    from dataclasses import replace

    from partdistill_cli.components import face_components
    from partdistill_cli.config import ConfigError, SegmentConfig
    from partdistill_cli.pipeline import Pipeline
    from partdistill_cli.student import distill

    vertices, faces, face_labels, parts = generate("mug", seed=0)
    shape = from_mesh(vertices, faces, 1500, seed=0)
    teacher = SimulatedTeacher(face_labels, load_noise("default"), shape_seed=3)
    knowledge = teach(shape, teacher, parts, RenderSettings(4, 128)).knowledge
    with pytest.raises(ConfigError, match="pieces"):
        SegmentConfig(pieces="no")
    on = Pipeline(SegmentConfig(method="forward", student="none", epochs=1, cache_dir=tmp_path))
    off = Pipeline(SegmentConfig(method="forward", student="none", epochs=1, cache_dir=tmp_path, pieces=False))
    assert on.distill_config().components == 0.5 and off.distill_config().components == 0.0
    fast = dict(points_per_shape=256, min_epoch_steps=2, widths=(16,), global_dim=16, head=(16,), k=8)
    student = distill([(shape, knowledge)], replace(off.distill_config(), **fast), mode="forward", show_progress=False)
    # A cached student predicts with this run's setting, whatever it was trained with: with pieces, the handle
    # (its own piece, under half the mug) takes one set of probabilities; without, the student's own.
    monkeypatch.setattr(Pipeline, "student", lambda self, *args: student)
    with_pieces = on.label(shape, knowledge, teacher_name="simulated")
    without = off.label(shape, knowledge, teacher_name="simulated")
    handle = face_components(shape)[shape.face_ids] == face_components(shape)[np.flatnonzero(face_labels == 0)[0]]
    assert 0 < handle.mean() < 0.5
    assert np.ptp(with_pieces.probs[handle], axis=0).max() < 1e-6 < np.ptp(without.probs[handle], axis=0).max()
    np.testing.assert_allclose(without.probs, student.predict(shape, knowledge=knowledge).probs, atol=1e-6)
