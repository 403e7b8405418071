"""Data set loaders: labelled-mesh round trips, ShapeNetPart text files, PartNet-Mobility, vocabularies, errors.

The last group loads every labelled set in the shared data folder and checks it against the counts in that
folder's README (skipped when the folder is absent).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from partdistill_cli import procedural
from partdistill_cli.datasets import (
    DatasetError,
    LabeledShape,
    default_parts,
    load_dataset,
    partnete_vocabulary,
    read_mesh,
    shapenetpart_vocabulary,
)
from partdistill_cli.errors import UserError
from partdistill_cli.shapes import normalisation

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA / "README.md").is_file(), reason=f"shared data folder not found at {DATA}")


def _write_meta(folder: Path, category="thing", parts=("a", "b")) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meta.json").write_text(json.dumps({"category": category, "parts": list(parts)}))


# A quad and a triangle whose vertices are listed out of spatial order: a loader that merged or reordered
# vertices or faces would change the face array.
_OBJ = """v 1 0 0
v 0 0 0
v 1 1 0
v 0 1 0
v 0.5 0.5 1
f 2 1 3 4
f 5 1 2
f 3 5 4
"""


def _write_obj(folder: Path, name="m") -> Path:
    path = folder / f"{name}.obj"
    path.write_text(_OBJ)
    return path


# ---------------------------------------------------------------------------------------------------------
# Labelled-mesh folders


def test_read_mesh_keeps_obj_vertex_and_face_order(tmp_path):
    vertices, faces = read_mesh(_write_obj(tmp_path))
    assert np.array_equal(vertices[:, 0], [1, 0, 1, 0, 0.5])
    # The quad "2 1 3 4" becomes two triangles in place, before the next face of the file.
    assert faces.tolist() == [[1, 0, 2], [2, 3, 1], [4, 0, 1], [2, 4, 3]]


def test_labeled_mesh_folder_round_trip_keeps_faces_and_labels(tmp_path):
    written = procedural.write_labeled_mesh_folder(tmp_path / "chairs", "chair", 2, seed=3)
    assert [p.name for p in written] == ["chair_0.obj", "chair_1.obj"]
    shapes = load_dataset(tmp_path / "chairs", n_points=500, seed=1)
    assert [s.name for s in shapes] == ["chair_0", "chair_1"]
    for i, s in enumerate(shapes):
        vertices, faces, labels, parts = procedural.generate("chair", 3 + i)
        assert s.category == "chair" and s.parts == parts
        assert np.array_equal(s.shape.faces, faces)
        assert np.array_equal(s.face_labels, labels)
        assert np.array_equal(s.primitive_labels, labels)
        assert s.shape.n_points == 500 and s.point_labels.dtype == np.int64
        assert np.array_equal(s.point_labels, labels[s.shape.face_ids])
        # The written vertices, mapped back to the file's coordinates, are the generated ones.
        assert np.allclose(s.shape.to_original(s.shape.vertices), vertices, atol=1e-5)
    again = load_dataset(tmp_path / "chairs", fmt="labeled-mesh", n_points=500, seed=1)
    assert np.array_equal(again[0].shape.points, shapes[0].shape.points)
    single = load_dataset(written[1], n_points=64)
    assert len(single) == 1 and single[0].name == "chair_1"


def _one_chair_three_files(root: Path) -> dict[str, Path]:
    """The same labeled chair as a PLY, a multi-node GLB (one node per part, one node a child with its own
    transform) and a multi-material OBJ, each in its own labelled-mesh folder with the same face labels.

    Faces are grouped by part so that the GLB's document order (node by node) is the file order of all three.
    Vertices are float32 values, which every format stores exactly.
    """
    from helpers import write_glb

    vertices, faces, labels, parts = procedural.generate("chair", 0)
    order = np.argsort(labels, kind="stable")
    faces, labels = faces[order], labels[order]
    vertices = vertices.astype(np.float32).astype(np.float64)
    present = list(dict.fromkeys(labels.tolist()))
    lift = np.array([0.0, 0.5, 0.0])
    meshes = []
    for i, part in enumerate(present):
        own = faces[labels == part]
        used, local = np.unique(own, return_inverse=True)
        # The first node is moved up by its transform, so its stored vertices sit lower by as much.
        meshes.append([(vertices[used] - (lift if i == 0 else 0.0), local.reshape(-1, 3))])
    roots = [{"mesh": 0, "translation": lift.tolist(), "children": [{"mesh": 1, "translation": (-lift).tolist()}]}]
    roots += [{"mesh": i} for i in range(2, len(present))]
    folders = {fmt: root / fmt for fmt in ("ply", "glb", "obj")}
    for folder in folders.values():
        _write_meta(folder, "chair", parts)
        np.save(folder / "chair.face_labels.npy", labels)
    import trimesh

    trimesh.Trimesh(vertices, faces, process=False).export(folders["ply"] / "chair.ply")
    write_glb(folders["glb"] / "chair.glb", meshes, roots)
    # Two materials alternating by part: a reader that groups faces by material reorders them.
    (folders["obj"] / "chair.mtl").write_text("newmtl a\nKd 1 0 0\nnewmtl b\nKd 0 1 0\n")
    lines = ["mtllib chair.mtl"] + [f"v {x!r} {y!r} {z!r}" for x, y, z in vertices.tolist()]
    for i, part in enumerate(present):
        lines.append(f"usemtl {'ab'[i % 2]}")
        lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces[labels == part].tolist()]
    (folders["obj"] / "chair.obj").write_text("\n".join(lines) + "\n")
    return folders


def test_one_labeled_shape_gives_the_same_face_labels_and_score_from_ply_glb_and_obj(tmp_path):
    from partdistill_cli.evaluate import EvalConfig, run_evaluation
    from partdistill_cli.pipeline import RenderSettings
    from partdistill_cli.teachers.simulated import load_noise

    folders = _one_chair_three_files(tmp_path)
    loaded = {fmt: load_dataset(folder, n_points=1500, seed=0)[0] for fmt, folder in folders.items()}
    reference = loaded["ply"]
    triangles = reference.shape.to_original(reference.shape.vertices)[reference.shape.faces]
    config = EvalConfig(["vote-fill"], load_noise("clean"), "clean", RenderSettings(6, 128))
    scores = {
        fmt: run_evaluation([ls], config)["summary"]["vote-fill"]["mean_over_shapes"] for fmt, ls in loaded.items()
    }
    for fmt, ls in loaded.items():
        assert np.array_equal(ls.face_labels, reference.face_labels), fmt
        # Face i is the same triangle whichever file it was read from, so label i names the same surface.
        assert np.allclose(ls.shape.to_original(ls.shape.vertices)[ls.shape.faces], triangles, atol=1e-5), fmt
        assert np.array_equal(ls.point_labels, reference.point_labels), fmt
    assert scores["ply"] > 0.9
    assert scores["glb"] == pytest.approx(scores["ply"], abs=1e-6)
    assert scores["obj"] == pytest.approx(scores["ply"], abs=1e-6)


def test_labeled_mesh_handwritten_obj(tmp_path):
    _write_meta(tmp_path, "box", ["bottom", "roof"])
    _write_obj(tmp_path)
    np.save(tmp_path / "m.face_labels.npy", np.array([0, 0, 1, -1]))
    (s,) = load_dataset(tmp_path, n_points=300)
    assert s.face_labels.tolist() == [0, 0, 1, -1]
    assert s.parts == ["bottom", "roof"] and s.category == "box"
    assert np.array_equal(s.point_labels, s.face_labels[s.shape.face_ids])
    assert set(np.unique(s.point_labels)) <= {-1, 0, 1}


@pytest.mark.parametrize("suffix", [".npy", ".txt"])
def test_labeled_point_cloud_folder(tmp_path, suffix):
    rng = np.random.default_rng(0)
    xyz = rng.normal(size=(50, 3))
    labels = (xyz[:, 1] > 0).astype(np.int64)
    _write_meta(tmp_path)
    if suffix == ".npy":
        np.save(tmp_path / "cloud.npy", xyz)
    else:
        np.savetxt(tmp_path / "cloud.txt", xyz)
    np.save(tmp_path / "cloud.point_labels.npy", labels)
    (s,) = load_dataset(tmp_path, n_points=7)
    assert s.face_labels is None and s.shape.n_points == 50
    assert np.array_equal(s.point_labels, labels) and np.array_equal(s.primitive_labels, labels)
    center, radius = normalisation(xyz)
    assert np.allclose(s.shape.points, (xyz - center) / radius, atol=1e-6)


def test_parts_override_and_category_filter(tmp_path):
    procedural.write_labeled_mesh_folder(tmp_path / "mug", "mug", 1, seed=0)
    procedural.write_labeled_mesh_folder(tmp_path / "knife", "knife", 1, seed=0)
    both = load_dataset(tmp_path, n_points=64)
    assert sorted(s.category for s in both) == ["knife", "mug"]
    (mug,) = load_dataset(tmp_path, category="MUG", parts=["grip", "vessel"], n_points=64)
    assert mug.parts == ["grip", "vessel"] and mug.category == "mug"
    with pytest.raises(DatasetError, match="3 part names given .* but its labels have 2 parts"):
        load_dataset(tmp_path, category="mug", parts=["a", "b", "c"], n_points=64)
    with pytest.raises(DatasetError, match="no shapes of category 'lamp'"):
        load_dataset(tmp_path, category="lamp", n_points=64)


# ---------------------------------------------------------------------------------------------------------
# ShapeNetPart text


def test_shapenetpart_global_and_local_labels(tmp_path):
    rng = np.random.default_rng(1)
    xyz = rng.uniform(-1, 1, size=(40, 3))
    local = rng.integers(0, 3, size=40)
    normals = np.tile([0.0, 0.0, 2.0], (40, 1))
    np.savetxt(tmp_path / "chair.txt", np.column_stack([xyz, local + 12]), fmt="%.6f")
    folder = tmp_path / "03001627"
    folder.mkdir()
    np.savetxt(folder / "abc.txt", np.column_stack([xyz, normals, local]), fmt="%.6f")
    (by_name,) = load_dataset(tmp_path / "chair.txt", n_points=5)
    (by_synset,) = load_dataset(folder)
    for s in (by_name, by_synset):
        assert s.category == "Chair" and s.parts == ["back", "seat", "leg", "armrest"]
        assert s.shape.n_points == 40 and s.face_labels is None
        assert np.array_equal(s.point_labels, local)
        center, radius = normalisation(xyz)
        assert np.allclose(s.shape.points, (xyz - center) / radius, atol=1e-5)
    assert by_name.shape.normals is None
    assert np.allclose(by_synset.shape.normals, [0, 0, 1])
    assert by_synset.name == "abc"


def test_shapenetpart_v0_points_and_seg(tmp_path):
    folder = tmp_path / "03797390"
    (folder / "points").mkdir(parents=True)
    (folder / "points_label").mkdir()
    xyz = np.random.default_rng(2).normal(size=(6, 3))
    np.savetxt(folder / "points" / "m1.pts", xyz)
    np.savetxt(folder / "points_label" / "m1.seg", [1, 2, 2, 0, 1, 2], fmt="%d")
    for path in (tmp_path, folder / "points" / "m1.pts"):
        (s,) = load_dataset(path)
        assert s.category == "Mug" and s.parts == ["handle", "cup"] and s.name == "m1"
        assert s.point_labels.tolist() == [0, 1, 1, -1, 0, 1] and s.shape.n_points == 6
    np.savetxt(folder / "points_label" / "m1.seg", [1, 2, 3, 0, 1, 2], fmt="%d")
    with pytest.raises(DatasetError, match=r"labels must lie in 1\.\.2 \(Mug\)"):
        load_dataset(tmp_path)


def test_shapenetpart_errors(tmp_path):
    np.savetxt(tmp_path / "thing.txt", np.zeros((3, 4)))
    with pytest.raises(DatasetError, match="cannot tell its ShapeNetPart category"):
        load_dataset(tmp_path / "thing.txt")
    np.savetxt(tmp_path / "mug.txt", np.column_stack([np.eye(3), [36, 37, 40]]))
    with pytest.raises(DatasetError, match="fit neither Mug's global ids 36..37 nor its local ids 0..1"):
        load_dataset(tmp_path / "mug.txt")
    np.savetxt(tmp_path / "knife.txt", np.zeros((3, 5)))
    with pytest.raises(DatasetError, match="expected 4 .* or 7 .* numbers per line, got 5"):
        load_dataset(tmp_path / "knife.txt")


# ---------------------------------------------------------------------------------------------------------
# PartNet-Mobility (constructed)


def _box_obj(path: Path, lo: float) -> None:
    import trimesh

    mesh = trimesh.creation.box(bounds=[[lo, 0, 0], [lo + 1, 1, 1]])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(trimesh.exchange.obj.export_obj(mesh, include_normals=False, include_texture=False))


def test_partnet_mobility_parts_json(tmp_path):
    obj = tmp_path / "123"
    for name, lo in (("a", 0), ("b", 2), ("c", 4)):
        _box_obj(obj / "textured_objs" / f"{name}.obj", lo)
    parts_json = {
        "category": "Kettle",
        "partnete_part_names": ["lid", "handle", "spout"],
        "objs": {
            "b": {"file": "textured_objs/b.obj", "partnete_label": "handle"},
            "a": {"file": "textured_objs/a.obj", "partnete_label": None},
            "c": {"file": "textured_objs/c.obj", "partnete_label": "lid"},
        },
    }
    (obj / "parts.json").write_text(json.dumps(parts_json))
    (s,) = load_dataset(tmp_path, n_points=400)
    assert s.category == "Kettle" and s.parts == ["lid", "handle", "spout"] and s.name == "123"
    # OBJs are concatenated in parts.json order: b (handle), a (none), c (lid), 12 triangles each.
    assert s.face_labels.tolist() == [1] * 12 + [-1] * 12 + [0] * 12
    original = s.shape.to_original(s.shape.points)
    assert np.all(s.point_labels[original[:, 0] < 1 - 1e-6] == -1)
    assert np.all(s.point_labels[original[:, 0] > 4 + 1e-6] == 0)


def test_partnet_mobility_result_json_uses_partnete_rule(tmp_path):
    obj = tmp_path / "9"
    for name, lo in (("x1", 0), ("x2", 2)):
        _box_obj(obj / "textured_objs" / f"{name}.obj", lo)
    (obj / "meta.json").write_text(json.dumps({"model_cat": "Box"}))
    tree = [
        {"name": "box", "id": 0, "children": [
            {"name": "box_body", "id": 1, "objs": ["x1"]},
            {"name": "rotation_lid", "id": 2, "children": [{"name": "panel", "id": 3, "objs": ["x2"]}]},
        ]}
    ]  # fmt: skip
    (obj / "result.json").write_text(json.dumps(tree))
    (s,) = load_dataset(obj, fmt="partnet-mobility", n_points=100)
    assert s.parts == ["lid"] and s.face_labels.tolist() == [-1] * 12 + [0] * 12


# ---------------------------------------------------------------------------------------------------------
# Errors


def test_error_missing_empty_unknown(tmp_path):
    with pytest.raises(DatasetError, match="no such file or folder"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="the folder is empty"):
        load_dataset(tmp_path / "empty")
    with pytest.raises(DatasetError, match="unknown data set format 'ply'"):
        load_dataset(tmp_path, fmt="ply")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.md").write_text("hello")
    with pytest.raises(DatasetError, match="cannot tell the data set format"):
        load_dataset(tmp_path / "other")
    with pytest.raises(DatasetError, match="no partnet-mobility data found"):
        load_dataset(tmp_path / "other", fmt="partnet-mobility")
    assert issubclass(DatasetError, UserError) and issubclass(DatasetError, ValueError)


def test_error_label_length_mismatch(tmp_path):
    _write_meta(tmp_path)
    _write_obj(tmp_path)
    np.save(tmp_path / "m.face_labels.npy", np.zeros(3, dtype=np.int64))
    with pytest.raises(DatasetError, match="3 labels but m.obj has 4 faces"):
        load_dataset(tmp_path)
    cloud = tmp_path / "clouds"
    _write_meta(cloud)
    np.save(cloud / "c.npy", np.random.default_rng(0).normal(size=(10, 3)))
    np.save(cloud / "c.point_labels.npy", np.zeros(9, dtype=np.int64))
    with pytest.raises(DatasetError, match="9 labels but c.npy has 10 points"):
        load_dataset(cloud)


def test_error_labels_out_of_range_or_missing(tmp_path):
    _write_meta(tmp_path, parts=["only"])
    _write_obj(tmp_path)
    np.save(tmp_path / "m.face_labels.npy", np.array([0, 1, 0, 0]))
    with pytest.raises(DatasetError, match=r"labels must lie in -1\.\.0"):
        load_dataset(tmp_path)
    np.save(tmp_path / "m.face_labels.npy", np.array([0.0, 0, 0, 0]))
    with pytest.raises(DatasetError, match="expected a 1-D integer array"):
        load_dataset(tmp_path)
    (tmp_path / "m.face_labels.npy").unlink()
    with pytest.raises(DatasetError, match="no labels beside it"):
        load_dataset(tmp_path)


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ("{not json", "not valid JSON"),
        ('["a"]', "expected an object"),
        ('{"parts": ["a"]}', "'category' must be a non-empty string"),
        ('{"category": "x", "parts": []}', "'parts' must be a non-empty list"),
        ('{"category": "x", "parts": ["a", "a"]}', "'parts' lists a name twice"),
    ],
)
def test_error_bad_meta_json(tmp_path, meta, message):
    (tmp_path / "meta.json").write_text(meta)
    _write_obj(tmp_path)
    np.save(tmp_path / "m.face_labels.npy", np.zeros(4, dtype=np.int64))
    with pytest.raises(DatasetError, match=f"bad meta.json, {message}"):
        load_dataset(tmp_path)


def test_labeled_shape_checks_lengths():
    from partdistill_cli.shapes import from_points

    shape = from_points(np.eye(3))
    with pytest.raises(DatasetError, match="2 point labels for 3 points"):
        LabeledShape(shape, np.zeros(2), None, "c", ["p"], "n")


# ---------------------------------------------------------------------------------------------------------
# Vocabularies


def test_shipped_vocabularies():
    spp = shapenetpart_vocabulary()
    assert len(spp) == 16
    # Global ids are contiguous: each category starts where the previous one ends, 50 ids in all.
    ordered = sorted(spp.values(), key=lambda v: v["pid_start"])
    starts = np.cumsum([0] + [len(v["parts"]) for v in ordered])
    assert [v["pid_start"] for v in ordered] == starts[:-1].tolist() and starts[-1] == 50
    assert spp["Lamp"]["parts"] == ["base", "lampshade", "canopy", "tube"]
    assert len(partnete_vocabulary()) == 45
    assert default_parts("chair") == ["back", "seat", "leg", "armrest"]
    assert default_parts("03001627") == ["back", "seat", "leg", "armrest"]
    assert default_parts("CHAIR", vocabulary="partnete") == ["arm", "back", "leg", "seat", "wheel"]
    assert default_parts("kettle") == ["lid", "handle", "spout"]
    assert default_parts("spaceship") is None
    # Every procedural category that ShapeNetPart has uses its exact part list.
    for category, parts in procedural.CATEGORIES.items():
        if category.capitalize() in spp:
            assert parts == default_parts(category)


# ---------------------------------------------------------------------------------------------------------
# The shared data folder, checked against its README


def _readme() -> str:
    return (DATA / "README.md").read_text()


def _histogram(text: str) -> dict[int, int]:
    return {int(k): int(v) for k, v in (item.split(":") for item in text.split(","))}


@needs_data
def test_shared_shapenetpart_v0_normal_matches_readme():
    rows = re.findall(r"^\| (\d{8})/(\w+)\.txt \| (\w+) \| (\d+) \| \d+ \| ([\d:, ]+) \|$", _readme(), re.M)
    assert len(rows) == 21
    shapes = {s.name: s for s in load_dataset(DATA / "shapenetpart_v0_normal")}
    assert len(shapes) == 21
    for synset, model, category, n_points, hist in rows:
        s = shapes[model]
        assert s.category == category and s.shape.n_points == int(n_points)
        start = shapenetpart_vocabulary()[category]["pid_start"]
        assert shapenetpart_vocabulary()[category]["synset"] == synset
        assert dict(Counter((s.point_labels + start).tolist())) == _histogram(hist)
        assert s.shape.normals is not None
    by_category = Counter(s.category for s in shapes.values())
    assert len(by_category) == 12 and by_category["Chair"] == 1 and by_category["Mug"] == 2


@needs_data
def test_shared_shapenetpart_pointtree_matches_readme():
    rows = re.findall(r"^\| (\w+)\.txt \| (\w+) \| (\d{8}) \| ([\d:, ]+) \|$", _readme(), re.M)
    assert len(rows) == 7
    shapes = {s.name: s for s in load_dataset(DATA / "shapenetpart_pointtree", n_points=10)}
    for stem, category, _synset, hist in rows:
        s = shapes[stem]
        start = shapenetpart_vocabulary()[category]["pid_start"]
        assert s.category == category and s.shape.n_points == 2048
        assert dict(Counter((s.point_labels + start).tolist())) == _histogram(hist)


@pytest.fixture(scope="module")
def partnet_mobility():
    return load_dataset(DATA / "partnet_mobility", n_points=1024)


@needs_data
def test_shared_partnet_mobility_matches_readme(partnet_mobility):
    section = _readme().split("### Objects", 1)[1]
    rows = [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in section.splitlines()
        if re.match(r"^\| \d+ \|", line)
    ]
    assert len(rows) == 41
    shapes = {s.name: s for s in partnet_mobility}
    assert len(shapes) == 41 and len({s.category for s in partnet_mobility}) == 28
    for obj_id, category, _source, _kb, n_objs, _semantics, present, _urdf in rows:
        s = shapes[obj_id]
        parts_json = json.loads((DATA / "partnet_mobility" / obj_id / "parts.json").read_text())
        assert s.category == category and len(parts_json["objs"]) == int(n_objs)
        assert s.parts == partnete_vocabulary()[category]
        labelled = {s.parts[i] for i in np.unique(s.face_labels) if i >= 0}
        assert labelled == {p.strip() for p in present.split(",")}
        assert len(s.face_labels) == len(s.shape.faces) and s.shape.n_points == 1024
        assert np.array_equal(s.point_labels, s.face_labels[s.shape.face_ids])


@needs_data
def test_shared_partnet_mobility_genesis_bottle():
    sizes = re.findall(r"original-(\d) \((\w+)\) (\d+) v / (\d+) f", _readme())
    assert len(sizes) == 3
    (s,) = load_dataset(DATA / "partnet_mobility_genesis", n_points=2048)
    assert s.category == "Bottle" and s.parts == ["lid"] and s.name == "3763"
    faces = {name: int(f) for _, name, _, f in sizes}
    assert len(s.face_labels) == sum(faces.values())
    assert int((s.face_labels == 0).sum()) == faces["lid"]
    # The labelled point sample shipped with the object (id 7 = lid) agrees with our per-face labels.
    from scipy.spatial import cKDTree

    from partdistill_cli.shapes import sample_surface

    folder = DATA / "partnet_mobility_genesis" / "3763" / "point_sample"
    pts = np.loadtxt(folder / "pts-10000.txt")
    ids = np.loadtxt(folder / "label-10000.txt", dtype=np.int64)
    dense, face_ids, _ = sample_surface(s.shape.vertices, s.shape.faces, 60000, seed=0)
    _, nearest = cKDTree(dense).query((pts - s.shape.center) / s.shape.scale)
    ours = s.face_labels[face_ids[nearest]]
    assert np.mean((ours == 0) == (ids == 7)) > 0.97


@needs_data
def test_whole_shared_folder_loads():
    shapes = load_dataset(DATA, n_points=256)
    assert len(shapes) == 21 + 7 + 41 + 1
    assert all(isinstance(s, LabeledShape) and len(s.point_labels) == s.shape.n_points for s in shapes)


# ---------------------------------------------------------------------------------------------------------
# PartNetE and splits


def _partnete_object(root: Path, category: str, ident: str, labels: np.ndarray) -> Path:
    import trimesh

    folder = root / category / ident
    folder.mkdir(parents=True)
    xyz = np.random.default_rng(int(ident)).normal(size=(len(labels), 3))
    trimesh.PointCloud(xyz).export(folder / "pc.ply")
    # PartSLIP stores its labels as a pickled dict of arrays, as np.save writes one.
    np.save(folder / "label.npy", {"semantic_seg": labels, "instance_seg": np.maximum(labels, -1)})
    return folder


def test_partnete_objects_load_with_their_category_parts(tmp_path):
    kettle = _partnete_object(tmp_path, "Kettle", "101305", np.array([0, 1, 2, -1, 1, 0]))
    _partnete_object(tmp_path, "Chair", "179", np.array([3, 3, 0, -1]))
    shapes = load_dataset(tmp_path)
    assert [(s.category, s.name) for s in shapes] == [("Chair", "179"), ("Kettle", "101305")]
    chair, k = shapes
    assert chair.parts == partnete_vocabulary()["Chair"] and chair.point_labels.tolist() == [3, 3, 0, -1]
    assert k.shape.n_points == 6 and k.face_labels is None and k.shape.name == "101305"
    assert load_dataset(kettle, fmt="partnete")[0].name == "101305"
    assert [s.name for s in load_dataset(tmp_path, category="kettle")] == ["101305"]


def test_partnete_labels_are_read_without_running_what_a_pickle_names(tmp_path):
    folder = _partnete_object(tmp_path, "Kettle", "1", np.array([0, 1]))

    class Boom:
        def __reduce__(self):
            return (print, ("this must never run",))

    np.save(folder / "label.npy", {"semantic_seg": Boom()}, allow_pickle=True)
    with pytest.raises(DatasetError, match=r"refusing to rebuild builtins\.print"):
        load_dataset(tmp_path)
    np.save(folder / "label.npy", {"semantic_seg": np.array([0, 7])})
    with pytest.raises(DatasetError, match=r"labels must lie in -1\.\.2"):
        load_dataset(tmp_path)
    np.save(folder / "label.npy", np.array([0, 1, 1]))
    with pytest.raises(DatasetError, match="3 labels for 2 points"):
        load_dataset(tmp_path)
    (tmp_path / "Spaceship").mkdir()
    (tmp_path / "Kettle" / "1").rename(tmp_path / "Spaceship" / "1")
    with pytest.raises(DatasetError, match="'Spaceship' is not one of the 45 PartNetE categories"):
        load_dataset(tmp_path)


def test_a_split_keeps_only_its_shapes_and_skips_the_shapenetpart_index(tmp_path):
    from partdistill_cli.datasets import read_split

    root = tmp_path / "shapenetcore_partanno_segmentation_benchmark_v0_normal"
    (root / "03001627").mkdir(parents=True)
    (root / "synsetoffset2category.txt").write_text("Chair\t03001627\n")
    rows = "\n".join(f"{x} 0 {x % 3} 0 1 0 {12 + x % 4}" for x in range(8))
    for name in ("aaa", "bbb", "ccc"):
        (root / "03001627" / f"{name}.txt").write_text(rows + "\n")
    split = tmp_path / "shuffled_test_file_list.json"
    split.write_text(json.dumps(["shape_data/03001627/bbb", "shape_data/03001627/zzz"]))
    assert read_split(split) == {"bbb", "zzz"}
    assert [s.name for s in load_dataset(root)] == ["aaa", "bbb", "ccc"]
    assert [s.name for s in load_dataset(root, keep=read_split(split))] == ["bbb"]
    lines = tmp_path / "test.txt"
    lines.write_text("Chair/ccc\n\nChair aaa\n")
    assert read_split(lines) == {"ccc", "aaa"}
    with pytest.raises(DatasetError, match="none of its shapes is in the split"):
        load_dataset(root, keep={"nothing"})
    (tmp_path / "bad.json").write_text('{"a": 1}')
    with pytest.raises(DatasetError, match="a JSON list of strings"):
        read_split(tmp_path / "bad.json")


def _kettle(folder: Path) -> Path:
    """A PartNet-Mobility object folder: three box OBJs (12 triangles each) and our parts.json."""
    for name, lo in (("a", 0), ("b", 2), ("c", 4)):
        _box_obj(folder / "textured_objs" / f"{name}.obj", lo)
    objs = {n: {"file": f"textured_objs/{n}.obj", "partnete_label": lab} for n, lab in (("b", "handle"), ("a", None),
                                                                                          ("c", "lid"))}  # fmt: skip
    doc = {"category": "Kettle", "partnete_part_names": ["lid", "handle", "spout"], "objs": objs}
    (folder / "parts.json").write_text(json.dumps(doc))
    return folder


def test_a_partnet_mobility_object_folder_is_a_shape_to_segment(tmp_path, tiny):
    from partdistill_cli import Segmenter
    from partdistill_cli.config import RenderSettings
    from partdistill_cli.datasets import load_source

    folder = _kettle(tmp_path / "123")
    (labeled,) = load_dataset(folder, n_points=400)
    shape = load_source(folder, n_points=400)
    # The same merge evaluate reads: part meshes in parts.json order, faces and samples alike.
    assert shape.name == "123" and np.array_equal(shape.faces, labeled.shape.faces)
    assert np.allclose(shape.points, labeled.shape.points)
    seg = Segmenter(teacher="clipseg", weights=tiny["clipseg"], threshold=0.0, render=RenderSettings(2, 64),
                    points=400, method="forward", epochs=1, cache_dir=tmp_path / "cache", verbose=False)  # fmt: skip
    result = seg(folder, "lid,handle")
    assert result.name == "123" and result.face_labels.shape == (36,)
    assert [p.name for p in result.save(tmp_path / "out")] == ["123.parts.ply", "123.labels.json", "123.labels.npy"]
    (tmp_path / "plain").mkdir()
    with pytest.raises(UserError, match="plain: is a folder, expected a shape file or a PartNet-Mobility object"):
        load_source(tmp_path / "plain")
