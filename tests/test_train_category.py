"""`partdistill train-category` with the simulated teacher: a cached student that segment can find."""

import json

import numpy as np
from typer.testing import CliRunner

from partdistill_cli.cli import app
from partdistill_cli.procedural import write_labeled_mesh_folder


def test_train_category_caches_a_student_with_its_card(tmp_path, monkeypatch):
    folder = tmp_path / "chairs"
    write_labeled_mesh_folder(folder, "chair", 2, seed=0)
    few = tmp_path / "few"
    write_labeled_mesh_folder(few, "chair", 1, seed=50)
    cache = tmp_path / "cache"
    args = [
        "train-category", str(folder), "--category", "Chair", "--teacher", "simulated", "--epochs", "1",
        "--views", "4", "--resolution", "128", "--points", "512", "--cache-dir", str(cache),
        "--labeled", str(few), "--out", str(tmp_path / "student"),
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "evaluation teacher" in result.output
    card = json.loads((tmp_path / "student.json").read_text())
    assert card["category"] == "chair" and card["parts"] == ["back", "seat", "leg", "armrest"]
    assert card["teacher"] == "simulated:default" and len(card["trained_on"]) == 3
    assert card["loss"] and all(np.isfinite(card["loss"]))
    # Knowledge was cached once per shape; a second run reuses it and asks the teacher nothing.
    assert len(list((cache / "knowledge").rglob("*.npz"))) == 2
    from partdistill_cli import pipeline

    taught = []
    monkeypatch.setattr(pipeline, "teach", lambda *a, **k: taught.append(a[0].name))
    again = CliRunner().invoke(app, args[:-4])
    assert again.exit_code == 0, again.output
    assert taught == [] and len(list((cache / "knowledge").rglob("*.npz"))) == 2

    from partdistill_cli.procedural import generate
    from partdistill_cli.shapes import from_mesh
    from partdistill_cli.store import load_student

    student = load_student(tmp_path / "student.safetensors", parts=card["parts"])
    v, f, _, _ = generate("chair", 7)
    labels = student.predict(from_mesh(v, f, 300, seed=0))
    assert labels.face_labels.shape == (len(f),) and labels.face_labels.min() >= 0
    assert labels.face_labels.max() < 4


def test_train_category_refuses_a_folder_without_shapes(tmp_path):
    from partdistill_cli.errors import UserError

    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(
        app, ["train-category", str(tmp_path / "empty"), "--category", "chair", "--teacher", "simulated"]
    )
    assert result.exit_code != 0 and isinstance(result.exception, UserError)
