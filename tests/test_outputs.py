"""Segment outputs: NAME.parts.ply / NAME.labels.json / NAME.labels.npy / NAME.preview.png, and reading back.

The builders here (`box_and_cylinder`, `mesh_result`, `cloud_result`) are shared with test_export and
test_preview.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh

from partdistill_cli.io_utils import OutputError
from partdistill_cli.knowledge import Labels
from partdistill_cli.outputs import (
    OTHER_COLOR,
    PALETTE,
    UNLABELED_COLOR,
    ResultError,
    part_colors,
    read_result,
    split_by_part,
    write_all,
    write_segment_outputs,
)
from partdistill_cli.shapes import load_shape

# Original coordinates far from the unit sphere, so that a missing `to_original` shows.
SCALE, OFFSET = 10.0, np.array([5.0, -3.0, 100.0])
PARTS = ["body", "handle"]


def box_and_cylinder() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A box (part 0) with a cylinder on top (part 1), in original coordinates: vertices, faces, face labels."""
    box = trimesh.creation.box(extents=(2.0, 1.0, 1.0))
    cyl = trimesh.creation.cylinder(radius=0.3, height=1.0, sections=12)
    cyl.apply_translation((0.0, 1.0, 0.0))
    vertices = np.concatenate([box.vertices, cyl.vertices]) * SCALE + OFFSET
    faces = np.concatenate([box.faces, cyl.faces + len(box.vertices)])
    labels = np.concatenate([np.zeros(len(box.faces), np.int64), np.ones(len(cyl.faces), np.int64)])
    return vertices, faces, labels


def labels_with_confidence(point_labels: np.ndarray, n_parts: int, p: float, face_labels=None) -> Labels:
    """Labels whose chosen class has probability `p` and the rest share 1 - p (unlabeled rows are zero)."""
    n = len(point_labels)
    probs = np.full((n, n_parts), (1.0 - p) / (n_parts - 1), dtype=np.float32)
    probs[np.arange(n), np.maximum(point_labels, 0)] = p
    probs[point_labels < 0] = 0.0
    return Labels(point_labels.astype(np.int64), probs, list(PARTS[:n_parts]), face_labels)


def mesh_result(tmp_path: Path, **kwargs):
    """Write the box+cylinder as input PLY, segment it with its true face labels; returns a dict of facts."""
    vertices, faces, face_labels = box_and_cylinder()
    inp = tmp_path / "input" / "thing.ply"
    inp.parent.mkdir(parents=True, exist_ok=True)
    trimesh.Trimesh(vertices, faces, process=False).export(inp)
    shape = load_shape(inp, n_points=1024, seed=0)
    labels = labels_with_confidence(face_labels[shape.face_ids], 2, 0.8, face_labels)
    out = tmp_path / "out"
    written = write_segment_outputs(inp, shape, labels, out, meta={"teacher": "test", "method": "truth"}, **kwargs)
    return {
        "input": inp,
        "shape": shape,
        "labels": labels,
        "face_labels": face_labels,
        "vertices": vertices,
        "faces": faces,
        "out": out,
        "written": written,
        "json": out / "thing.labels.json",
    }


def cloud_result(tmp_path: Path, name: str = "cloud", out: Path | None = None):
    """A 500-point cloud saved as input .npy (xyz + normals), labeled by the sign of x (some unlabeled)."""
    rng = np.random.default_rng(0)
    xyz = rng.normal(size=(500, 3))
    normals = xyz / np.linalg.norm(xyz, axis=1, keepdims=True)
    xyz = xyz * SCALE + OFFSET
    inp = tmp_path / "input" / f"{name}.npy"
    inp.parent.mkdir(parents=True, exist_ok=True)
    np.save(inp, np.hstack([xyz, normals]))
    shape = load_shape(inp)
    point_labels = (xyz[:, 0] > OFFSET[0]).astype(np.int64)
    point_labels[:5] = -1
    labels = labels_with_confidence(point_labels, 2, 0.7)
    out = out or tmp_path / "out"
    written = write_segment_outputs(inp, shape, labels, out)
    return {
        "input": inp,
        "xyz": xyz,
        "normals": normals,
        "labels": point_labels,
        "out": out,
        "written": written,
        "json": out / f"{name}.labels.json",
        "shape": shape,
    }


def ply_raw(path: Path) -> dict:
    """The elements of a PLY file as trimesh reads them (structured arrays by element name)."""
    loaded = trimesh.load(path, process=False)
    return {k: v["data"] for k, v in loaded.metadata["_ply_raw"].items()}


def test_palette_has_20_distinct_colors_and_extends_distinctly():
    assert len(PALETTE) >= 20
    assert len(set(PALETTE)) == len(PALETTE)
    assert UNLABELED_COLOR not in PALETTE
    many = part_colors([f"p{i}" for i in range(40)])
    assert many.shape == (40, 3) and many.dtype == np.uint8
    assert len({tuple(c) for c in many}) == 40
    assert [tuple(c) for c in many[: len(PALETTE)]] == PALETTE


def test_background_part_is_drawn_in_its_own_pale_color():
    colors = part_colors(["lid", "other"])
    assert tuple(colors[1]) == OTHER_COLOR and OTHER_COLOR not in PALETTE and OTHER_COLOR != UNLABELED_COLOR
    assert tuple(colors[0]) == PALETTE[0]


def test_split_by_part_duplicates_only_shared_vertices():
    faces = np.array([[0, 1, 2], [1, 3, 2], [2, 3, 4]])
    source, vlab, new_faces = split_by_part(faces, np.array([0, 0, 1]))
    # vertices 2 and 3 are shared by parts 0 and 1: 5 + 2 vertices.
    assert len(source) == 7
    np.testing.assert_array_equal(source[new_faces], faces)
    np.testing.assert_array_equal(vlab[new_faces], [[0, 0, 0], [0, 0, 0], [1, 1, 1]])


def test_mesh_outputs(tmp_path):
    r = mesh_result(tmp_path)
    out, fl, n_faces = r["out"], r["face_labels"], len(r["faces"])
    assert sorted(p.name for p in r["written"]) == ["thing.labels.json", "thing.labels.npy", "thing.parts.ply"]
    assert sorted(p.name for p in out.iterdir()) == ["thing.labels.json", "thing.labels.npy", "thing.parts.ply"]

    doc = json.loads(r["json"].read_text())
    assert doc["version"] == 1 and doc["kind"] == "mesh" and doc["element"] == "face"
    assert doc["parts"] == PARTS and doc["input"] == str(r["input"].resolve())
    assert doc["colors"] == [list(PALETTE[0]), list(PALETTE[1])]
    assert doc["labels"] == fl.tolist() and doc["count"] == n_faces
    np.testing.assert_allclose(doc["confidence"], 0.8, atol=1e-4)
    assert doc["meta"] == {"teacher": "test", "method": "truth"}
    assert doc["part_counts"] == {"body": int((fl == 0).sum()), "handle": int((fl == 1).sum())}
    npy = np.load(out / "thing.labels.npy", allow_pickle=False)
    assert npy.dtype == np.int64
    np.testing.assert_array_equal(npy, fl)

    ply = ply_raw(out / "thing.parts.ply")
    face, vertex = ply["face"], ply["vertex"]
    assert len(face) == n_faces
    np.testing.assert_array_equal(face["label"], fl)
    np.testing.assert_allclose(face["confidence"], 0.8, atol=1e-6)
    palette = np.array(PALETTE, dtype=np.uint8)
    face_rgb = np.stack([face["red"], face["green"], face["blue"]], axis=1)
    np.testing.assert_array_equal(face_rgb, palette[fl])
    # Blender reads vertex colors: every corner of a face must carry the face's part color and label.
    vert_rgb = np.stack([vertex["red"], vertex["green"], vertex["blue"]], axis=1)
    corners = face["vertex_indices"]["f1"]
    np.testing.assert_array_equal(vert_rgb[corners], np.repeat(palette[fl][:, None], 3, axis=1))
    np.testing.assert_array_equal(vertex["label"][corners], np.repeat(fl[:, None], 3, axis=1))
    # Original coordinates, face by face in the input's face order.
    xyz = np.stack([vertex["x"], vertex["y"], vertex["z"]], axis=1)
    np.testing.assert_allclose(xyz[corners], r["vertices"][r["faces"]], atol=1e-4)


def test_cloud_outputs(tmp_path):
    r = cloud_result(tmp_path)
    doc = json.loads(r["json"].read_text())
    assert doc["kind"] == "points" and doc["element"] == "point" and doc["count"] == 500
    assert doc["labels"] == r["labels"].tolist()
    conf = np.array(doc["confidence"])
    np.testing.assert_allclose(conf[r["labels"] >= 0], 0.7, atol=1e-4)
    assert (conf[r["labels"] < 0] == 0).all()
    vertex = ply_raw(r["out"] / "cloud.parts.ply")["vertex"]
    assert len(vertex) == 500
    np.testing.assert_array_equal(vertex["label"], r["labels"])
    np.testing.assert_allclose(np.stack([vertex["x"], vertex["y"], vertex["z"]], 1), r["xyz"], atol=1e-4)
    np.testing.assert_allclose(np.stack([vertex["nx"], vertex["ny"], vertex["nz"]], 1), r["normals"], atol=1e-5)
    rgb = np.stack([vertex["red"], vertex["green"], vertex["blue"]], axis=1)
    expected = np.vstack([np.array(PALETTE[:2], np.uint8), np.array(UNLABELED_COLOR, np.uint8)])[r["labels"]]
    np.testing.assert_array_equal(rgb, expected)
    np.testing.assert_array_equal(np.load(r["out"] / "cloud.labels.npy"), r["labels"])


def test_preview_written_when_asked(tmp_path):
    from PIL import Image

    r = mesh_result(tmp_path, preview=True)
    png = r["out"] / "thing.preview.png"
    assert png in r["written"]
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] == 3 * 384


def test_existing_outputs_are_not_overwritten_without_flag(tmp_path):
    r = mesh_result(tmp_path)
    before = {p.name: p.read_bytes() for p in r["out"].iterdir()}
    with pytest.raises(OutputError, match="already exists"):
        write_segment_outputs(r["input"], r["shape"], r["labels"], r["out"])
    assert {p.name: p.read_bytes() for p in r["out"].iterdir()} == before
    labels = r["labels"]
    flipped = Labels(1 - labels.point_labels, labels.probs[:, ::-1].copy(), labels.parts, 1 - labels.face_labels)
    write_segment_outputs(r["input"], r["shape"], flipped, r["out"], overwrite=True)
    np.testing.assert_array_equal(np.load(r["out"] / "thing.labels.npy"), 1 - r["face_labels"])


def test_a_failing_write_leaves_nothing(tmp_path, monkeypatch):
    import partdistill_cli.outputs as outputs

    def failing_npy(array):
        def write(tmp):
            tmp.write_bytes(b"partial")
            raise OSError("disk full")

        return write

    monkeypatch.setattr(outputs, "_save_npy", failing_npy)
    with pytest.raises(OSError, match="disk full"):
        mesh_result(tmp_path)
    assert list((tmp_path / "out").iterdir()) == []


def test_a_failing_overwrite_keeps_the_old_files(tmp_path, monkeypatch):
    import partdistill_cli.outputs as outputs

    r = mesh_result(tmp_path)
    before = {p.name: p.read_bytes() for p in r["out"].iterdir()}
    monkeypatch.setattr(outputs, "result_ply_bytes", lambda result: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        write_segment_outputs(r["input"], r["shape"], r["labels"], r["out"], overwrite=True)
    assert {p.name: p.read_bytes() for p in r["out"].iterdir()} == before


def test_labels_that_do_not_fit_the_shape_are_refused(tmp_path):
    vertices, faces, face_labels = box_and_cylinder()
    from partdistill_cli.shapes import from_mesh

    shape = from_mesh(vertices, faces, 256)
    good = labels_with_confidence(face_labels[shape.face_ids], 2, 0.9, face_labels)
    short = Labels(good.point_labels, good.probs, good.parts, face_labels[:-1])
    with pytest.raises(ValueError, match="faces"):
        write_segment_outputs(tmp_path / "x.obj", shape, short, tmp_path / "out")
    big = Labels(good.point_labels, good.probs, good.parts, face_labels + 1)
    with pytest.raises(ValueError, match="must lie in"):
        write_segment_outputs(tmp_path / "x.obj", shape, big, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_read_result_round_trip_mesh(tmp_path):
    r = mesh_result(tmp_path)
    res = read_result(r["json"])
    assert res.kind == "mesh" and res.parts == PARTS and res.shape_source == r["input"]
    np.testing.assert_array_equal(res.labels, r["face_labels"])
    np.testing.assert_allclose(res.confidence, 0.8, atol=1e-4)
    np.testing.assert_allclose(res.original_vertices(), r["vertices"], atol=1e-4)
    lab = res.to_labels()
    np.testing.assert_array_equal(lab.point_labels, r["face_labels"][res.shape.face_ids])
    np.testing.assert_array_equal(lab.probs.argmax(1), lab.point_labels)
    # A folder holding one result reads the same.
    np.testing.assert_array_equal(read_result(r["out"]).labels, r["face_labels"])


def test_read_result_falls_back_to_the_ply_when_the_input_is_gone_or_changed(tmp_path):
    r = mesh_result(tmp_path)
    r["input"].write_bytes(r["input"].read_bytes() + b"\n")
    res = read_result(r["json"])
    assert res.shape_source == r["out"] / "thing.parts.ply"
    r["input"].unlink()
    res = read_result(r["json"])
    assert res.shape_source == r["out"] / "thing.parts.ply"
    np.testing.assert_array_equal(res.labels, r["face_labels"])
    np.testing.assert_allclose(res.original_vertices()[res.shape.faces], r["vertices"][r["faces"]], atol=1e-4)


def test_read_result_cloud(tmp_path):
    r = cloud_result(tmp_path)
    res = read_result(r["json"])
    assert res.kind == "points" and res.shape.n_points == 500
    np.testing.assert_array_equal(res.labels, r["labels"])
    np.testing.assert_allclose(res.original_vertices(), r["xyz"], atol=1e-4)


def test_read_result_errors(tmp_path):
    with pytest.raises(ResultError, match="no such file"):
        read_result(tmp_path / "missing.labels.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultError, match="holds no segment results"):
        read_result(tmp_path / "empty")
    bad = tmp_path / "bad.labels.json"
    bad.write_text("{not json")
    with pytest.raises(ResultError, match="cannot read"):
        read_result(bad)
    bad.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ResultError, match="not a partdistill segment result"):
        read_result(bad)
    r = mesh_result(tmp_path)
    doc = json.loads(r["json"].read_text())
    doc["labels"], doc["confidence"] = doc["labels"][:-1], doc["confidence"][:-1]
    r["json"].write_text(json.dumps(doc))
    with pytest.raises(ResultError, match="wrong length"):
        read_result(r["json"])


def test_a_dangling_symlink_at_an_output_path_is_not_replaced_without_overwrite(tmp_path):
    r = mesh_result(tmp_path)
    for p in r["written"]:
        p.unlink()
    link = r["out"] / "thing.labels.npy"
    link.symlink_to(tmp_path / "nowhere.npy")
    with pytest.raises(OutputError, match=f"{link}: already exists"):
        write_segment_outputs(r["input"], r["shape"], r["labels"], r["out"])
    assert link.is_symlink() and sorted(p.name for p in r["out"].iterdir()) == ["thing.labels.npy"]
    write_segment_outputs(r["input"], r["shape"], r["labels"], r["out"], overwrite=True)
    assert not link.is_symlink() and np.array_equal(np.load(link), r["face_labels"])


def test_a_folder_at_an_output_path_is_refused_even_with_overwrite(tmp_path):
    from partdistill_cli.io_utils import check_not_overwriting

    (tmp_path / "report.json").mkdir()
    with pytest.raises(OutputError, match="report.json: is a folder; cannot write the file there"):
        check_not_overwriting([tmp_path / "report.json"], [], overwrite=True)


# A run killed (SIGKILL: no cleanup) the moment it renames the given output into place.
_KILLED_RUN = """
import os, sys
from pathlib import Path
from test_outputs import mesh_result
from partdistill_cli.knowledge import Labels
from partdistill_cli.outputs import write_segment_outputs

r = mesh_result(Path(sys.argv[1]))
flipped = Labels(1 - r["labels"].point_labels, r["labels"].probs[:, ::-1].copy(), r["labels"].parts,
                 1 - r["face_labels"])
replace = os.replace
os.replace = lambda src, dst: os._exit(9) if str(dst).endswith(sys.argv[2]) else replace(src, dst)
write_segment_outputs(r["input"], r["shape"], flipped, r["out"], overwrite=True)
"""


@pytest.mark.parametrize(("killed_at", "next_run"), [("thing.labels.npy", "read"), ("thing.parts.ply", "write")])
def test_a_run_killed_between_renames_leaves_a_set_the_next_reader_or_writer_completes(tmp_path, killed_at, next_run):
    import os
    import subprocess
    import sys

    tests = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", _KILLED_RUN, str(tmp_path), killed_at], env=env, capture_output=True)
    assert proc.returncode == 9, proc.stderr.decode()
    out = tmp_path / "out"
    assert list(out.glob(".partdistill-commit.*.json")), "the killed run left no journal"
    if next_run == "read":
        read_result(out / "thing.labels.json")  # a reader completes the interrupted write first
    else:
        write_all({out / "other.txt": lambda tmp: tmp.write_text("x")})  # so does the next write there
    _, _, face_labels = box_and_cylinder()
    np.testing.assert_array_equal(read_result(out / "thing.labels.json").labels, 1 - face_labels)
    np.testing.assert_array_equal(np.load(out / "thing.labels.npy"), 1 - face_labels)
    np.testing.assert_array_equal(ply_raw(out / "thing.parts.ply")["face"]["label"], 1 - face_labels)
    names = sorted(p.name for p in out.iterdir() if p.name != "other.txt")
    assert names == ["thing.labels.json", "thing.labels.npy", "thing.parts.ply"]


def test_a_forged_journal_cannot_move_files_outside_its_folder(tmp_path):
    import json

    from partdistill_cli.outputs import finish_writes

    (tmp_path / "out").mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("keep me")
    journal = tmp_path / "out" / ".partdistill-commit.forged.json"
    journal.write_text(json.dumps({"format": "partdistill-commit/1", "renames": [["../secret.txt", "x.ply"]]}))
    with pytest.raises(OutputError, match="not a journal partdistill wrote"):
        finish_writes(tmp_path / "out")
    assert secret.read_text() == "keep me" and journal.exists()


def test_the_write_record_removes_only_the_empty_output_folders_a_run_made(tmp_path):
    from partdistill_cli.io_utils import RECORD, check_writable_dir, write_text

    (tmp_path / "was_there").mkdir()
    RECORD.start()
    try:
        empty = check_writable_dir(tmp_path / "new" / "out")
        assert not (tmp_path / "new").exists()  # the check leaves nothing behind
        write_text(empty / "sub" / "a.txt", "a")
        (empty / "sub" / "a.txt").unlink()  # emptied again: everything made for it goes
        kept = check_writable_dir(tmp_path / "kept")
        write_text(kept / "b.txt", "b")
        check_writable_dir(tmp_path / "was_there")
        write_text(tmp_path / "cache" / "c.txt", "c")  # not an output folder: not reported
        (tmp_path / "cache" / "c.txt").unlink()
        RECORD.remove_empty_outputs()
        assert RECORD.written_outputs() == [kept / "b.txt"]
    finally:
        RECORD.stop()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "kept", "was_there"]
    write_text(tmp_path / "later" / "d.txt", "d")  # not recording now
    assert RECORD.files == [tmp_path / "new" / "out" / "sub" / "a.txt", kept / "b.txt", tmp_path / "cache" / "c.txt"]
