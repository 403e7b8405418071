"""`partdistill export`: every result format round-trips, bad inputs fail with one line and write nothing."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import trimesh
from test_outputs import PARTS, cloud_result, mesh_result, ply_raw
from typer.testing import CliRunner

from partdistill_cli.cli import app
from partdistill_cli.errors import UserError
from partdistill_cli.export import ExportError, export_results, file_names, part_submesh
from partdistill_cli.io_utils import OutputError
from partdistill_cli.outputs import PALETTE, ResultError


@pytest.fixture
def mesh(tmp_path):
    return mesh_result(tmp_path)


def _files(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_glb_has_one_named_colored_node_per_part(mesh, tmp_path):
    written = export_results(mesh["json"], "glb", tmp_path / "x")
    assert [p.name for p in written] == ["thing.glb"]
    scene = trimesh.load(written[0], process=False)
    fl = mesh["face_labels"]
    assert sorted(scene.geometry) == PARTS
    assert sorted(scene.graph.nodes_geometry) == PARTS
    for i, part in enumerate(PARTS):
        geom = scene.geometry[part]
        assert len(geom.faces) == int((fl == i).sum())
        assert tuple(geom.visual.material.baseColorFactor[:3]) == PALETTE[i]
        # Original coordinates: the part's faces sit where the input's faces of that part are.
        np.testing.assert_allclose(
            np.sort(geom.vertices[geom.faces].reshape(-1, 3), axis=0),
            np.sort(mesh["vertices"][mesh["faces"][fl == i]].reshape(-1, 3), axis=0),
            atol=1e-4,
        )


def test_parts_files_reassemble_the_mesh(mesh, tmp_path):
    written = export_results(mesh["json"], "parts", tmp_path / "x")
    assert sorted(p.name for p in written) == ["thing.body.obj", "thing.handle.obj"]
    fl, total = mesh["face_labels"], 0
    for i, part in enumerate(PARTS):
        m = trimesh.load(tmp_path / "x" / f"thing.{part}.obj", process=False, maintain_order=True)
        total += len(m.faces)
        assert len(m.vertices) == len(np.unique(mesh["faces"][fl == i]))  # re-indexed, no unused vertices
        np.testing.assert_allclose(m.vertices[m.faces], mesh["vertices"][mesh["faces"][fl == i]], atol=1e-6)
    assert total == len(mesh["faces"])


def test_ply_label_and_confidence_read_back(mesh, tmp_path):
    (path,) = export_results(mesh["json"], "ply", tmp_path / "x")
    face = ply_raw(path)["face"]
    np.testing.assert_array_equal(face["label"], mesh["face_labels"])
    np.testing.assert_allclose(face["confidence"], 0.8, atol=1e-4)


def test_obj_keeps_face_order_with_one_material_per_part(mesh, tmp_path):
    written = export_results(mesh["json"], "obj", tmp_path / "x")
    assert sorted(p.name for p in written) == ["thing.mtl", "thing.obj"]
    names = file_names(PARTS)
    material, labels, vertices, faces = None, [], [], []
    for line in (tmp_path / "x" / "thing.obj").read_text().splitlines():
        tok = line.split()
        if tok and tok[0] == "usemtl":
            material = names.index(tok[1])
        elif tok and tok[0] == "v":
            vertices.append([float(t) for t in tok[1:4]])
        elif tok and tok[0] == "f":
            labels.append(material)
            faces.append([int(t) - 1 for t in tok[1:4]])
    np.testing.assert_array_equal(labels, mesh["face_labels"])
    np.testing.assert_array_equal(faces, mesh["faces"])
    np.testing.assert_allclose(vertices, mesh["vertices"], atol=1e-6)
    mtl = (tmp_path / "x" / "thing.mtl").read_text()
    r, g, b = (c / 255 for c in PALETTE[1])
    assert f"newmtl handle\nKa 0 0 0\nKd {r:.4f} {g:.4f} {b:.4f}" in mtl


def test_json_npy_csv_for_code(mesh, tmp_path):
    out = tmp_path / "x"
    fl = mesh["face_labels"]
    (j,) = export_results(mesh["json"], "json", out)
    doc = json.loads(j.read_text())
    assert doc["parts"] == PARTS and doc["labels"] == fl.tolist() and len(doc["confidence"]) == len(fl)
    export_results(mesh["json"], "npy", out)
    np.testing.assert_array_equal(np.load(out / "thing.labels.npy", allow_pickle=False), fl)
    conf = np.load(out / "thing.confidence.npy", allow_pickle=False)
    assert conf.dtype == np.float32 and conf.shape == fl.shape
    export_results(mesh["json"], "csv", out)
    rows = list(csv.DictReader((out / "thing.csv").open()))
    assert [int(r["face"]) for r in rows] == list(range(len(fl)))
    assert [int(r["label"]) for r in rows] == fl.tolist()
    assert [r["part"] for r in rows] == [PARTS[i] for i in fl]


def test_png_preview(mesh, tmp_path):
    from PIL import Image

    (path,) = export_results(mesh["json"], "png", tmp_path / "x")
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] == 3 * 384


def test_cloud_exports(tmp_path):
    r = cloud_result(tmp_path)
    out = tmp_path / "x"
    (glb,) = export_results(r["json"], "glb", out)
    scene = trimesh.load(glb)
    labels = r["labels"]
    assert sorted(scene.geometry) == sorted([*PARTS, "unlabeled"])
    assert len(scene.geometry["handle"].vertices) == int((labels == 1).sum())
    parts = export_results(r["json"], "parts", out)
    assert sorted(p.name for p in parts) == ["cloud.body.ply", "cloud.handle.ply", "cloud.unlabeled.ply"]
    assert sum(len(ply_raw(p)["vertex"]) for p in parts) == len(labels)
    (ply,) = export_results(r["json"], "ply", out)
    np.testing.assert_array_equal(ply_raw(ply)["vertex"]["label"], labels)
    export_results(r["json"], "csv", out)
    rows = list(csv.DictReader((out / "cloud.csv").open()))
    np.testing.assert_allclose([[float(x[k]) for k in "xyz"] for x in rows], r["xyz"], rtol=1e-6, atol=1e-4)
    assert [int(x["label"]) for x in rows] == labels.tolist()


def test_a_folder_of_results_exports_each(tmp_path):
    m = mesh_result(tmp_path)
    cloud_result(tmp_path, out=m["out"])
    written = export_results(m["out"], "npy", None)
    assert sorted(p.name for p in written) == [
        "cloud.confidence.npy",
        "cloud.labels.npy",
        "thing.confidence.npy",
        "thing.labels.npy",
    ]
    assert all(p.parent == m["out"] / "export" for p in written)


def test_existing_files_need_overwrite_and_inputs_are_never_replaced(mesh, tmp_path):
    out = tmp_path / "x"
    export_results(mesh["json"], "ply", out)
    with pytest.raises(OutputError, match="already exists"):
        export_results(mesh["json"], "ply", out)
    export_results(mesh["json"], "ply", out, overwrite=True)
    # The input is input/thing.ply: a ply export into its folder would replace it.
    before = mesh["input"].read_bytes()
    with pytest.raises(OutputError, match="refusing to write over an input"):
        export_results(mesh["json"], "ply", mesh["input"].parent, overwrite=True)
    assert mesh["input"].read_bytes() == before


def test_a_failing_export_leaves_nothing(mesh, tmp_path, monkeypatch):
    import partdistill_cli.export as export

    def failing(array):
        def write(tmp):
            tmp.write_bytes(b"partial")
            raise OSError("disk full")

        return write

    monkeypatch.setattr(export, "_npy", failing)
    with pytest.raises(OSError, match="disk full"):
        export_results(mesh["json"], "npy", tmp_path / "x")
    assert _files(tmp_path / "x") == []


def test_part_submesh_reindexes():
    v = np.arange(15, dtype=float).reshape(5, 3)
    f = np.array([[0, 1, 2], [2, 3, 4], [1, 3, 4]])
    sv, sf = part_submesh(v, f, np.array([False, True, True]))
    np.testing.assert_array_equal(sv, v[[1, 2, 3, 4]])
    np.testing.assert_array_equal(sv[sf], v[f[1:]])


def test_file_names_are_safe_and_distinct():
    assert file_names(["seat back", "seat/back", "", "Leg"]) == [
        "seat_back",
        "seat_back_1",
        "part2",
        "Leg",
        "unlabeled",
    ]


# ---- bad inputs through the command line ----------------------------------------------------------------


def _cli(*args):
    return CliRunner().invoke(app, ["export", *map(str, args)])


def test_cli_exports(mesh, tmp_path):
    res = _cli(mesh["json"], "--format", "glb", "--out", tmp_path / "x")
    assert res.exit_code == 0, res.output
    assert _files(tmp_path / "x") == ["thing.glb"]


def test_cli_folder_without_results(tmp_path):
    (tmp_path / "empty").mkdir()
    res = _cli(tmp_path / "empty", "--format", "glb", "--out", tmp_path / "x")
    assert isinstance(res.exception, ResultError) and "holds no segment results" in str(res.exception)
    assert not (tmp_path / "x").exists()


def test_cli_labels_of_the_wrong_length(mesh, tmp_path):
    doc = json.loads(mesh["json"].read_text())
    doc["labels"], doc["confidence"] = doc["labels"] + [0], doc["confidence"] + [1.0]
    mesh["json"].write_text(json.dumps(doc))
    res = _cli(mesh["json"], "--format", "ply", "--out", tmp_path / "x")
    assert isinstance(res.exception, ResultError) and "wrong length" in str(res.exception)
    assert not (tmp_path / "x").exists()


def test_cli_unknown_format(mesh, tmp_path):
    res = _cli(mesh["json"], "--format", "fbx", "--out", tmp_path / "x")
    assert isinstance(res.exception, ExportError)
    assert "unknown export format 'fbx'" in str(res.exception) and "glb" in str(res.exception)
    assert not (tmp_path / "x").exists()


def test_cli_unwritable_destination(mesh, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    res = _cli(mesh["json"], "--format", "csv", "--out", blocker / "sub")
    assert isinstance(res.exception, OutputError) and "cannot write here" in str(res.exception)


def test_cli_entry_point_turns_user_errors_into_exit_1(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "partdistill_cli.cli", "export", str(tmp_path / "empty"), "--format", "glb"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "holds no segment results" in proc.stderr and "Traceback" not in proc.stderr
    assert issubclass(ResultError, UserError)


# ---- students ------------------------------------------------------------------------------------------------


def _tiny_student(ensemble: int):
    from partdistill_cli.student import DistillConfig, Student

    config = DistillConfig(k=8, widths=(16, 16), global_dim=32, head=(32,), points_per_shape=256, ensemble=ensemble)
    return Student.create(["body", "handle", "lid"], config)


def _student_logits(student, x: np.ndarray) -> np.ndarray:
    """What the export must reproduce: the member's logits, or the log of an ensemble's mean softmax."""
    import torch

    with torch.no_grad():
        t = torch.from_numpy(x)
        if len(student.modules) == 1:
            return student.modules[0].eval()(t).numpy()
        probs = torch.stack([torch.softmax(m.eval()(t), dim=1) for m in student.modules]).mean(0)
        return torch.log(probs).numpy()


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit is deprecated but still what users load
@pytest.mark.parametrize("ensemble", [1, 2])
def test_torchscript_export_reproduces_the_student(tmp_path, ensemble):
    import torch

    from partdistill_cli.export import student_writers
    from partdistill_cli.outputs import write_all

    student = _tiny_student(ensemble)
    written = write_all(student_writers(student, "torchscript", tmp_path, "chair"))
    assert sorted(p.name for p in written) == ["chair.torchscript.json", "chair.torchscript.pt"]
    model = torch.jit.load(tmp_path / "chair.torchscript.pt")
    x = np.random.default_rng(0).normal(size=(2, 6, 300)).astype(np.float32)
    with torch.no_grad():
        got = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, _student_logits(student, x), atol=1e-4)
    card = json.loads((tmp_path / "chair.torchscript.json").read_text())
    assert card["parts"] == ["body", "handle", "lid"] and card["model_file"] == "chair.torchscript.pt"
    assert card["input"]["shape"] == ["batch", 6, "points"] and card["check"]["max_abs_diff"] <= 1e-4


def test_onnx_export_reproduces_the_student(tmp_path):
    for module in ("onnx", "onnxscript"):
        pytest.importorskip(module, reason=f"ONNX export needs {module} (the [onnx] extra)")
    ort = pytest.importorskip("onnxruntime", reason="checking the ONNX file needs onnxruntime")
    from partdistill_cli.export import student_writers
    from partdistill_cli.outputs import write_all

    student = _tiny_student(1)
    write_all(student_writers(student, "onnx", tmp_path, "chair"))
    session = ort.InferenceSession(str(tmp_path / "chair.onnx"), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).normal(size=(1, 6, 333)).astype(np.float32)
    (got,) = session.run(None, {"features": x})
    np.testing.assert_allclose(got, _student_logits(student, x), atol=1e-4)
    assert json.loads((tmp_path / "chair.onnx.json").read_text())["model_format"] == "onnx"


def test_an_export_that_drifts_from_the_student_is_refused(tmp_path, monkeypatch):
    import partdistill_cli.export as export

    real = export._torchscript_bytes

    def drifting(module, example):
        data, run = real(module, example)
        return data, lambda x: run(x) + 1e-3

    monkeypatch.setattr(export, "_torchscript_bytes", drifting)
    with pytest.raises(ExportError, match="differs from the student"):
        export.student_writers(_tiny_student(1), "torchscript", tmp_path, "chair")
    assert _files(tmp_path) == []


def test_cli_student_format_on_a_segment_result(mesh, tmp_path):
    res = _cli(mesh["json"], "--format", "torchscript", "--out", tmp_path / "x")
    assert isinstance(res.exception, ExportError) and "exports a trained student" in str(res.exception)
    assert not (tmp_path / "x").exists()


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_cli_exports_a_stored_student(tmp_path):
    import torch

    from partdistill_cli.store import StudentCard, save_student

    student = _tiny_student(1)
    entry = save_student(student, StudentCard("mug", student.parts, "simulated"), root=tmp_path / "cache")
    res = _cli(entry, "--format", "torchscript", "--out", tmp_path / "x")
    assert res.exit_code == 0, res.exception
    assert _files(tmp_path / "x") == ["mug.torchscript.json", "mug.torchscript.pt"]
    card = json.loads((tmp_path / "x" / "mug.torchscript.json").read_text())
    assert card["source"]["card"]["category"] == "mug" and card["parts"] == student.parts
    x = np.random.default_rng(2).normal(size=(1, 6, 200)).astype(np.float32)
    with torch.no_grad():
        got = torch.jit.load(tmp_path / "x" / "mug.torchscript.pt")(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, _student_logits(student, x), atol=1e-4)
    res = _cli(entry, "--format", "torchscript", "--out", tmp_path / "x")
    assert isinstance(res.exception, OutputError) and "already exists" in str(res.exception)
    res = _cli(tmp_path / "missing", "--format", "onnx")
    assert isinstance(res.exception, ExportError) and "no such student" in str(res.exception)


# ---- hostile results ---------------------------------------------------------------------------------------


def _rewrite(result_json, **changes):
    doc = json.loads(result_json.read_text())
    doc.update(changes)
    result_json.write_text(json.dumps(doc))


def _all_files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/partdistill-escaped", "..", ".", "", "a/b", "a\\b", "x\0y", 7])
@pytest.mark.parametrize("fmt", ["glb", "ply", "obj", "parts", "json", "npy", "csv", "png"])
def test_a_result_name_that_is_not_a_plain_file_name_is_refused_for_every_format(mesh, tmp_path, name, fmt):
    _rewrite(mesh["json"], name=name)
    before = _all_files(tmp_path)
    res = _cli(mesh["json"], "--format", fmt, "--out", tmp_path / "x" / "y")
    assert isinstance(res.exception, ResultError), res.output
    assert f"the result's name {name!r} is not a plain file name" in str(res.exception)
    assert _all_files(tmp_path) == before
    assert not list(tmp_path.parent.glob("*escaped*")) and not list(
        __import__("pathlib").Path("/tmp").glob("*escaped*")
    )


def test_control_characters_in_names_do_not_break_obj_mtl_or_ply_headers(mesh, tmp_path):
    evil = "seat\nf 1 2 3\nnewmtl evil\r\x1b[31m\x00"
    _rewrite(mesh["json"], parts=[evil, "handle"])
    written = export_results(mesh["json"], "obj", tmp_path / "x") + export_results(mesh["json"], "ply", tmp_path / "y")
    obj, mtl, ply = (p.read_bytes() for p in written)
    n_faces = len(mesh["faces"])
    assert sum(line.startswith(b"f ") for line in obj.splitlines()) == n_faces
    assert sum(line.startswith(b"newmtl ") for line in mtl.splitlines()) == 3  # two parts + unlabeled
    assert b"# part: seat\\nf 1 2 3\\nnewmtl evil\\r\\x1b[31m\\x00\n" in mtl
    header = ply[: ply.index(b"end_header")]
    assert b"\r" not in header and b"\x00" not in header and b"\x1b" not in header
    assert len(trimesh.load(written[2], process=False).faces) == n_faces
    for path in written:
        assert path.parent.parent == tmp_path
