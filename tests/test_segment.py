"""`partdistill segment` end to end through the CLI with tiny random models of the real teachers.

The models' masks and boxes are meaningless (random weights): these tests assert structure (files, lengths,
labels within the part list), not quality. Quality is measured with the simulated teacher (evaluate).
"""

import base64
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from partdistill_cli.cli import app
from partdistill_cli.errors import UserError
from partdistill_cli.procedural import generate
from partdistill_cli.shapes import from_mesh

PARTS = ["back", "seat", "leg", "armrest"]
FAST = ["--views", "3", "--resolution", "128", "--points", "512", "--threshold", "0.0", "--epochs", "1"]


@pytest.fixture(scope="module")
def chair_obj(tmp_path_factory):
    import trimesh

    v, f, _, _ = generate("chair", 3)
    path = tmp_path_factory.mktemp("in") / "chair.obj"
    trimesh.Trimesh(v, f, process=False).export(path)
    return path, len(f)


def invoke(args):
    return CliRunner().invoke(app, [str(a) for a in args])


def weight_args(options):
    return [x for k, v in options.items() for x in (f"--{k}", v)]


def test_segment_mesh_with_grounded_sam_full_distillation(tiny, chair_obj, tmp_path):
    path, n_faces = chair_obj
    out = tmp_path / "out"
    args = ["segment", path, "--parts", ",".join(PARTS), "--category", "chair", "--teacher", "grounded-sam",
            *weight_args(tiny["grounded-sam"]), *FAST, "--out", out, "--cache-dir", tmp_path / "cache",
            "--preview", "--explain", "--html"]  # fmt: skip
    result = invoke(args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "chair.explain.png",
        "chair.labels.json",
        "chair.labels.npy",
        "chair.parts.ply",
        "chair.preview.png",
        "chair.viewer.html",
    ]
    explain = base64.b64encode((out / "chair.explain.png").read_bytes()).decode()
    assert f'"explain":"data:image/png;base64,{explain}"' in (out / "chair.viewer.html").read_text()
    labels = np.load(out / "chair.labels.npy")
    assert labels.shape == (n_faces,) and labels.min() >= 0 and labels.max() < len(PARTS)
    doc = json.loads((out / "chair.labels.json").read_text())
    assert doc["parts"] == PARTS and doc["meta"]["teacher"].startswith("grounded-sam(")
    assert "share of surface" in result.output
    assert path.exists()  # the input is untouched beside the outputs


def test_segment_point_cloud_with_clipseg(tiny, tmp_path):
    v, f, _, _ = generate("mug", 0)
    cloud = from_mesh(v, f, 700, seed=1).points
    path = tmp_path / "mug.xyz"
    np.savetxt(path, cloud)
    out = tmp_path / "out"
    args = ["segment", path, "--parts", "handle,body", "--teacher", "clipseg", *weight_args(tiny["clipseg"]), *FAST,
            "--method", "forward", "--out", out, "--cache-dir", tmp_path / "cache"]  # fmt: skip
    result = invoke(args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    labels = np.load(out / "mug.labels.npy")
    assert labels.shape == (700,) and set(np.unique(labels)) <= {0, 1}


@pytest.mark.parametrize("teacher", ["gdino-boxes", "owlv2-boxes"])
def test_segment_with_box_teachers_and_vote(tiny, chair_obj, tmp_path, teacher):
    path, n_faces = chair_obj
    args = ["segment", path, "--parts", ",".join(PARTS), "--teacher", teacher, *weight_args(tiny[teacher]), *FAST,
            "--method", "vote-fill", "--out", tmp_path, "--cache-dir", tmp_path / "cache"]  # fmt: skip
    result = invoke(args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    labels = np.load(tmp_path / "chair.labels.npy")
    assert labels.shape == (n_faces,) and labels.min() >= 0 and labels.max() < len(PARTS)


def test_segment_reuses_a_cached_category_student(tiny, chair_obj, tmp_path):
    from partdistill_cli.knowledge import Knowledge
    from partdistill_cli.pipeline import distill_config
    from partdistill_cli.store import StudentCard, save_student
    from partdistill_cli.student import distill
    from partdistill_cli.teachers import make_teacher

    path, n_faces = chair_obj
    teacher_name = make_teacher("clipseg", device="cpu", mask_threshold=0.0, **tiny["clipseg"]).name
    # A category student trained on another chair's (hand-made) knowledge.
    v, f, lab, _ = generate("chair", 9)
    other = from_mesh(v, f, 512, seed=0)
    gt = lab[other.face_ids]
    members = [np.flatnonzero(gt == c) for c in range(4)]
    k = Knowledge(np.arange(4), np.ones(4, np.float32), np.zeros(4, np.int64),
                  np.concatenate([[0], np.cumsum([len(m) for m in members])]), np.concatenate(members), 512, PARTS)  # fmt: skip
    student = distill([(other, k)], distill_config(0, "cpu", 1), mode="forward", show_progress=False)
    entry = save_student(student, StudentCard("chair", PARTS, teacher_name), root=tmp_path / "cache")
    args = ["segment", path, "--parts", ",".join(PARTS), "--category", "chair", "--teacher", "clipseg",
            *weight_args(tiny["clipseg"]), *FAST, "--out", tmp_path / "out", "--cache-dir", tmp_path / "cache"]  # fmt: skip
    result = invoke(args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "using a cached category student" in result.output
    # A readable student for another part list is refused by the part-list check, never silently reused.
    args = ["segment", path, "--parts", "a,b", "--teacher", "clipseg", *weight_args(tiny["clipseg"]), *FAST,
            "--student", entry / "student.safetensors", "--out", tmp_path / "out2", "--cache-dir", tmp_path / "cache"]  # fmt: skip
    result = invoke(args)
    assert result.exit_code != 0 and isinstance(result.exception, UserError)
    assert f"segments into {PARTS}" in str(result.exception) and "['a', 'b']" in str(result.exception)
    assert not (tmp_path / "out2").exists() or not any((tmp_path / "out2").iterdir())


def test_segment_missing_weights_says_how_to_get_them(chair_obj, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path, _ = chair_obj
    result = invoke(["segment", path, "--parts", "a,b", "--teacher", "clipseg", "--clipseg", tmp_path / "nowhere",
                     "--out", tmp_path / "out"])  # fmt: skip
    assert result.exit_code != 0 and isinstance(result.exception, UserError)
    message = str(result.exception)
    assert "clipseg" in message.lower() and "PARTDISTILL_CLIPSEG" in message
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_segment_nvdiffrast_without_cuda_is_refused(chair_obj, tmp_path):
    path, _ = chair_obj
    result = invoke(["segment", path, "--parts", "a,b", "--renderer", "nvdiffrast", "--out", tmp_path])
    assert result.exit_code != 0 and isinstance(result.exception, UserError)
    assert "nvdiffrast" in str(result.exception) and "CUDA" in str(result.exception)


def test_train_category_with_a_real_teacher_architecture(tiny, chair_obj, tmp_path):
    import shutil

    folder = tmp_path / "chairs"
    folder.mkdir()
    shutil.copy(chair_obj[0], folder / "a.obj")
    shutil.copy(chair_obj[0], folder / "b.obj")
    args = ["train-category", folder, "--category", "chair", "--parts", ",".join(PARTS), "--teacher", "clipseg",
            *weight_args(tiny["clipseg"]), "--views", "2", "--resolution", "96", "--points", "256", "--threshold", "0.0",
            "--epochs", "1", "--cache-dir", tmp_path / "cache"]  # fmt: skip
    result = invoke(args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    cards = list((tmp_path / "cache" / "students").glob("*/card.json"))
    assert len(cards) == 1
    card = json.loads(cards[0].read_text())
    assert card["teacher"].startswith("clipseg(") and card["trained_on"] == ["a", "b"]


def test_train_category_and_segment_share_knowledge_and_student_with_a_background_part(tiny, chair_obj, tmp_path):
    import shutil

    folder = tmp_path / "chairs"
    folder.mkdir()
    shutil.copy(chair_obj[0], folder / "a.obj")
    common = ["--category", "chair", "--parts", "back", "--teacher", "clipseg", *weight_args(tiny["clipseg"]),
              "--views", "2", "--resolution", "64", "--points", "256", "--threshold", "0.0", "--epochs", "1",
              "--cache-dir", tmp_path / "cache"]  # fmt: skip
    trained = invoke(
        ["train-category", folder, *common, "--mode", "forward"]
    )  # one part asked: --other auto adds the background; --mode is the old name of --method
    assert trained.exit_code == 0, trained.output + repr(trained.exception)
    assert "warning: --mode is deprecated; use --method" in trained.output
    (card,) = (tmp_path / "cache" / "students").glob("*/card.json")
    assert json.loads(card.read_text())["parts"] == ["back", "other"]
    result = invoke(["segment", folder / "a.obj", *common, "--out", tmp_path / "out"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    text = " ".join(result.output.split())
    assert "teacher knowledge from the cache" in text and "using a cached category student" in text
    doc = json.loads((tmp_path / "out" / "a.labels.json").read_text())
    assert doc["parts"] == ["back", "other"] and doc["meta"]["other"] is True
    assert set(doc["labels"]) <= {0, 1}


def test_a_knowledge_cache_entry_that_is_a_folder_is_reported_and_the_run_goes_on(tiny, tmp_path):
    v, f, _, _ = generate("mug", 0)
    path = tmp_path / "mug.xyz"
    np.savetxt(path, from_mesh(v, f, 300, seed=1).points)
    args = ["segment", path, "--parts", "handle,body", "--teacher", "clipseg", *weight_args(tiny["clipseg"]), *FAST,
            "--method", "vote-fill", "--out", tmp_path / "out", "--cache-dir", tmp_path / "cache"]  # fmt: skip
    assert invoke(args).exit_code == 0
    (entry,) = (tmp_path / "cache" / "knowledge").rglob("*.npz")
    entry.unlink()
    entry.mkdir()
    (entry / "inside").write_text("a folder where the cache file should be")
    result = invoke([*args, "--overwrite"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert f"ignoring a corrupt knowledge cache entry: {entry}" in result.output
    assert f"could not cache the teacher knowledge at {entry}" in result.output
    assert (entry / "inside").is_file() and np.load(tmp_path / "out" / "mug.labels.npy").shape == (300,)


@pytest.mark.parametrize("command", ["segment", "train-category"])
def test_a_cache_dir_that_cannot_be_a_folder_is_refused_before_any_work(chair_obj, tmp_path, command):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    target = chair_obj[0] if command == "segment" else chair_obj[0].parent
    extra = ["--out", tmp_path / "out"] if command == "segment" else ["--category", "chair"]
    for cache in (blocker, blocker / "cache"):
        result = invoke([command, target, "--parts", "a,b", "--teacher", "clipseg", "--clipseg", tmp_path / "nowhere",
                         "--cache-dir", cache, *extra])  # fmt: skip
        assert result.exit_code != 0 and isinstance(result.exception, UserError), result.output
        assert str(result.exception) == (
            f"{cache}: the cache root cannot be a folder ({blocker} is a file); pass another --cache-dir or set "
            "PARTDISTILL_CACHE"
        )
    assert blocker.read_text() == "not a folder" and not (tmp_path / "out").exists()
