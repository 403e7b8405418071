import numpy as np
import pytest
import trimesh

from partdistill_cli.shapes import ShapeError, from_mesh, from_points, load_shape

from helpers import write_glb


def test_mesh_is_normalised_and_transform_kept(tmp_path):
    mesh = trimesh.creation.box(extents=(2.0, 4.0, 6.0))
    mesh.apply_translation((10.0, -3.0, 5.0))
    path = tmp_path / "box.obj"
    mesh.export(path)
    shape = load_shape(path, n_points=500, seed=1)
    assert shape.is_mesh and shape.points.shape == (500, 3) and shape.points.dtype == np.float32
    assert np.isclose(np.linalg.norm(shape.vertices, axis=1).max(), 1.0, atol=1e-5)
    assert np.allclose(shape.to_original(shape.vertices), mesh.vertices, atol=1e-4)
    assert shape.face_ids.shape == (500,) and shape.face_ids.max() < len(shape.faces)
    # Each sample lies on the face it names.
    tri = shape.vertices[shape.faces[shape.face_ids]]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    assert np.allclose(np.einsum("nc,nc->n", shape.points - tri[:, 0], normal), 0, atol=1e-5)


def test_sampling_is_seeded_and_area_weighted():
    big = trimesh.creation.box(extents=(1, 1, 1))
    small = trimesh.creation.box(extents=(0.1, 0.1, 0.1))
    small.apply_translation((2, 0, 0))
    v = np.concatenate([big.vertices, small.vertices])
    f = np.concatenate([big.faces, small.faces + 8])
    a = from_mesh(v, f, 4000, seed=3)
    b = from_mesh(v, f, 4000, seed=3)
    assert np.array_equal(a.points, b.points)
    share_small = (a.face_ids >= 12).mean()
    assert 0.0 < share_small < 0.03  # area ratio 1:100


def test_face_order_is_kept(tmp_path):
    mesh = trimesh.creation.icosphere(subdivisions=2)
    perm = np.random.default_rng(0).permutation(len(mesh.faces))
    faces = mesh.faces[perm]
    path = tmp_path / "s.obj"
    trimesh.Trimesh(mesh.vertices, faces, process=False).export(path)
    shape = load_shape(path, n_points=10)
    assert np.array_equal(shape.faces, faces)


@pytest.mark.parametrize("suffix", [".xyz", ".txt", ".npy", ".npz", ".ply"])
def test_point_clouds_keep_all_points_in_order(tmp_path, suffix):
    xyz = np.random.default_rng(0).normal(size=(300, 3))
    path = tmp_path / f"c{suffix}"
    if suffix == ".npy":
        np.save(path, xyz)
    elif suffix == ".npz":
        np.savez(path, points=xyz)
    elif suffix == ".ply":
        trimesh.PointCloud(xyz).export(path)
    else:
        np.savetxt(path, xyz)
    shape = load_shape(path)
    assert not shape.is_mesh and shape.n_points == 300
    assert np.allclose(shape.to_original(shape.points), xyz, atol=1e-5)


def test_pcd_cloud(tmp_path):
    import open3d as o3d

    xyz = np.random.default_rng(1).normal(size=(50, 3))
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(xyz))
    path = tmp_path / "c.pcd"
    o3d.io.write_point_cloud(str(path), pcd)
    assert load_shape(path).n_points == 50


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.obj", None, "no such file"),
        ("shape.abc", b"1 2 3\n", "unknown extension"),
        ("empty.obj", b"", "empty"),
        ("garbage.npy", bytes(range(256)) * 4, "cannot read"),
        ("nan.xyz", b"0 0 0\n1 nan 0\n0 1 1\n", "NaN"),
        ("one.xyz", b"0 0 0\n", "at least 2 points"),
        ("text.xyz", b"hello world\n", "not a text point cloud"),
        ("nofaces.stl", b"solid x\nendsolid x\n", "no"),
    ],
)
def test_bad_input_raises_readable_error(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ShapeError, match=message):
        load_shape(path)


def test_truncated_binary_ply(tmp_path):
    mesh = trimesh.creation.icosphere()
    path = tmp_path / "t.ply"
    data = trimesh.exchange.ply.export_ply(mesh, encoding="binary")
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ShapeError):
        load_shape(path)


def test_cloud_where_mesh_needed(tmp_path):
    path = tmp_path / "c.xyz"
    np.savetxt(path, np.random.default_rng(0).normal(size=(10, 3)))
    with pytest.raises(ShapeError, match="mesh with faces is needed"):
        load_shape(path, need_mesh=True)


def test_degenerate_inputs():
    with pytest.raises(ShapeError, match="same position"):
        from_points(np.ones((5, 3)))
    with pytest.raises(ShapeError, match="vertex that does not exist"):
        from_mesh(np.zeros((3, 3)), np.array([[0, 1, 5]]))


def test_multi_material_obj_keeps_file_face_order(tmp_path):
    # trimesh alone regroups these faces by material (a, a, b, b); labels refer to the file's order.
    (tmp_path / "m.mtl").write_text("newmtl a\nKd 1 0 0\nnewmtl b\nKd 0 1 0\n")
    lines = ["mtllib m.mtl"] + [
        f"v {x} {y} {z}" for x, y, z in [(0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 1, 0), (0, 0, 1), (1, 0, 1)]
    ]
    lines += ["usemtl a", "f 1 2 3", "usemtl b", "f 2/1 4/1 3/1", "usemtl a", "f -6 -5 -2", "usemtl b", "f 2 6 5 1"]
    (tmp_path / "mm.obj").write_text("\n".join(lines) + "\n")
    shape = load_shape(tmp_path / "mm.obj", n_points=50)
    assert shape.faces.tolist() == [[0, 1, 2], [1, 3, 2], [0, 1, 4], [1, 5, 4], [1, 4, 0]]


def _strip(n: int, height: float) -> tuple[np.ndarray, np.ndarray]:
    """n separate triangles at one height: a primitive recognisable by its z."""
    x = np.arange(n, dtype=float)[:, None]
    vertices = np.stack(
        [
            np.hstack([x, 0 * x, 0 * x + height]),
            np.hstack([x + 1, 0 * x, 0 * x + height]),
            np.hstack([x, 0 * x + 1, 0 * x + height]),
        ],
        axis=1,
    ).reshape(-1, 3)
    return vertices, np.arange(3 * n).reshape(n, 3)


def test_gltf_scene_keeps_document_face_order_and_node_transforms(tmp_path):
    # Three meshes (the second with two primitives). Nodes: mesh 2 lifted by 10, whose child is mesh 0
    # scaled 2x in z (then lifted with its parent), then mesh 1. trimesh alone returns these reversed.
    meshes = [[_strip(3, 1.0)], [_strip(2, 2.0), _strip(4, 3.0)], [_strip(5, 4.0)]]
    roots = [
        {"mesh": 2, "translation": [0, 0, 10], "children": [{"mesh": 0, "scale": [1, 1, 2]}]},
        {"mesh": 1},
    ]
    write_glb(tmp_path / "scene.glb", meshes, roots)
    shape = load_shape(tmp_path / "scene.glb", n_points=100)
    z = shape.to_original(shape.vertices)[shape.faces][:, :, 2].mean(axis=1)
    assert np.allclose(z, [14.0] * 5 + [12.0] * 3 + [2.0] * 2 + [3.0] * 4, atol=1e-5)
    # The same triangles as trimesh's merge of the scene, only in another order.
    merged = trimesh.load(tmp_path / "scene.glb", process=False).to_geometry()
    ours = np.sort(shape.to_original(shape.vertices)[shape.faces].reshape(-1, 9), axis=1)
    theirs = np.sort(merged.vertices[merged.faces].reshape(-1, 9), axis=1)
    assert np.allclose(ours[np.lexsort(ours.T)], theirs[np.lexsort(theirs.T)], atol=1e-5)


def test_single_mesh_glb_loads(tmp_path):
    write_glb(tmp_path / "one.glb", [[_strip(4, 0.5)]], [{"mesh": 0}])
    shape = load_shape(tmp_path / "one.glb", n_points=20)
    assert shape.faces.shape == (4, 3) and shape.n_points == 20


def test_gltf_order_falls_back_with_a_warning_when_readers_disagree(tmp_path, monkeypatch, capsys):
    import open3d as o3d

    meshes = [[_strip(3, 1.0)], [_strip(2, 2.0)]]
    write_glb(tmp_path / "scene.glb", meshes, [{"mesh": 0}, {"mesh": 1}])
    monkeypatch.setattr(o3d.io, "read_triangle_mesh", lambda *_a, **_k: o3d.geometry.TriangleMesh())
    shape = load_shape(tmp_path / "scene.glb", n_points=20)
    assert len(shape.faces) == 5  # trimesh's merge, every triangle present
    assert "could not establish the glTF document's face order" in " ".join(capsys.readouterr().err.split())


def test_ascii_ply_cloud_loads_with_its_normals(tmp_path):
    xyz = np.random.default_rng(2).normal(size=(40, 3))
    normals = xyz / np.linalg.norm(xyz, axis=1, keepdims=True)
    header = "ply\nformat ascii 1.0\nelement vertex 40\n" + "".join(
        f"property float {c}\n" for c in "x y z nx ny nz".split()
    )
    rows = "".join(" ".join(f"{v:.7f}" for v in row) + "\n" for row in np.hstack([xyz, normals]))
    path = tmp_path / "cloud.ply"
    path.write_text(header + "end_header\n" + rows)
    shape = load_shape(path)
    assert not shape.is_mesh and shape.n_points == 40
    assert np.allclose(shape.to_original(shape.points), xyz, atol=1e-5)
    assert np.allclose(shape.normals, normals, atol=1e-5)


@pytest.mark.parametrize("materials", [False, True], ids=["trimesh-reader", "file-order-reader"])
def test_obj_face_index_0_is_refused_with_its_line(tmp_path, materials):
    lines = ["v 0 0 0", "v 1 0 0", "v 0 1 0", "v 0 0 1"]
    lines += ["usemtl a", "f 1 2 3", "usemtl b"] if materials else ["f 1 2 3"]
    lines += ["f 2/1 0/2 4/3"]
    path = tmp_path / "zero.obj"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        ShapeError, match=rf"^{path}: line {len(lines)}: face vertex index 0 \(OBJ indices start at 1\)$"
    ):
        load_shape(path)


def test_obj_negative_indices_still_load(tmp_path):
    path = tmp_path / "neg.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n# f 0 1 2\nf -3 -2 -1\nf 1/0 2/0 3/0\n")
    assert np.array_equal(load_shape(path, n_points=8).faces, [[0, 1, 2], [0, 1, 2]])


def _pcd(n_header: int, rows: np.ndarray, data: str) -> bytes:
    header = (
        f"VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH {n_header}\nHEIGHT 1\n"
        f"VIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n_header}\nDATA {data}\n"
    ).encode()
    if data == "ascii":
        return header + "".join(f"{x} {y} {z}\n" for x, y, z in rows).encode()
    return header + rows.astype(np.float32).tobytes()


@pytest.mark.parametrize("data", ["ascii", "binary"])
def test_truncated_pcd_is_refused_and_a_whole_one_loads(tmp_path, data):
    xyz = np.random.default_rng(3).normal(size=(30, 3)).astype(np.float32)
    whole, cut = tmp_path / "whole.pcd", tmp_path / "cut.pcd"
    whole.write_bytes(_pcd(30, xyz, data))
    cut.write_bytes(_pcd(30, xyz[:20], data))
    assert np.allclose(load_shape(whole).to_original(load_shape(whole).points), xyz, atol=1e-5)
    with pytest.raises(ShapeError, match=rf"^{cut}: the header announces 30 points but the file holds 20"):
        load_shape(cut)


def test_complex_and_object_arrays_are_refused(tmp_path):
    np.save(tmp_path / "c.npy", np.ones((5, 3)) + 1j)
    np.savez(tmp_path / "o.npz", points=np.array([[1, "a", None]], dtype=object))
    with pytest.raises(ShapeError, match="complex numbers"):
        load_shape(tmp_path / "c.npy")
    with pytest.raises(ShapeError, match="never unpickles"):
        load_shape(tmp_path / "o.npz")


def test_huge_coordinates_normalise_and_an_extent_beyond_float64_is_refused():
    huge = np.array([[0.0, 0, 0], [3e235, 3e235, 0], [0, 1, 1]])
    shape = from_points(huge)
    assert np.isfinite(shape.points).all() and np.isclose(np.linalg.norm(shape.points, axis=1).max(), 1.0)
    assert np.allclose(shape.to_original(shape.points), huge, rtol=0, atol=1e-6 * shape.scale)
    with pytest.raises(ShapeError, match=r"^big: coordinates as large as 1.7e\+308 are too large to work with$"):
        from_points(np.array([[-1.7e308, -1.7e308, 0], [1.7e308, 1.7e308, 0], [0, 1, 1]]), name="big")


def test_gltf_that_is_not_json_or_refers_to_a_missing_mesh(tmp_path):
    (tmp_path / "noise.gltf").write_bytes(bytes(range(7, 200)))
    with pytest.raises(ShapeError, match=r"noise.gltf: not a glTF file \(not JSON"):
        load_shape(tmp_path / "noise.gltf")
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]])
    write_glb(tmp_path / "scene.glb", [[(v, [[0, 1, 2]])]], [{"mesh": 0}, {"mesh": 3}])
    with pytest.raises(ShapeError, match=r"scene.glb: node 1 refers to mesh 3, but the file has 1 mesh"):
        load_shape(tmp_path / "scene.glb")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("nan.xyz", b"0 0 0\n1 nan 0\n0 1 1\n", "1 coordinate(s) are NaN or infinite"),
        ("flat.obj", b"v 0 0 0\nv 1 0 0\nv 2 0 0\nf 1 2 3\n", "the mesh has no surface area"),
        ("same.xyz", b"1 1 1\n1 1 1\n", "all points are at the same position"),
    ],
)
def test_errors_name_the_file_by_its_path(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ShapeError) as info:
        load_shape(path)
    assert str(info.value).startswith(f"{path}: {message}")


def _write_graph(path, nodes: list[dict], roots: list[int]) -> None:
    """A GLB of one triangle mesh with the node list and scene roots given (the node graph as written)."""
    from helpers import glb_bytes, gltf_document

    header, blob = gltf_document([[(np.eye(3), [[0, 1, 2]])]], [{"mesh": 0}])
    header["nodes"], header["scenes"] = nodes, [{"nodes": roots}]
    path.write_bytes(glb_bytes(header, blob))


def _chain(n: int) -> list[dict]:
    """`n` nodes, each holding mesh 0 and the next as its only child."""
    return [{"mesh": 0, "children": [i + 1]} for i in range(n - 1)] + [{"mesh": 0}]


def test_a_deep_gltf_node_tree_loads_quickly_and_a_too_deep_one_is_refused(tmp_path):
    import time

    _write_graph(tmp_path / "deep.glb", _chain(1000), [0])
    started = time.perf_counter()
    assert len(load_shape(tmp_path / "deep.glb", n_points=16).faces) == 1000
    assert time.perf_counter() - started < 5.0  # was 8 s: each node's transform composed from the root
    _write_graph(tmp_path / "deeper.glb", _chain(1002), [0])
    with pytest.raises(ShapeError, match="deeper.glb: its nodes nest more than 1000 levels deep"):
        load_shape(tmp_path / "deeper.glb")


@pytest.mark.parametrize(
    ("nodes", "scene", "message"),
    [
        ([{"mesh": 0, "children": [0]}], [0], "node 0 has two parents or is its own child"),
        ([{"mesh": 0, "children": [1]}, {"children": [0]}], [], "its nodes form a loop"),
        ([{"mesh": 0, "children": [2]}, {"children": [2]}, {"mesh": 0}], [0, 1], "node 2 has two parents"),
        ([{"mesh": 0, "children": [1]}, {"mesh": 0}], [0, 1], "scene 0 lists node 1 as a root, but it is a child"),
        ([{"mesh": 0, "children": [7]}], [0], "node 0 lists as a child node 7, but the file has 1 node"),
        ([{"mesh": 0}], [3], "scene 0 lists node 3, but the file has 1 node"),
        ([{"mesh": 0, "children": {"a": 1}}], [0], "not a glTF file \\(node 0 has no list of children\\)"),
    ],
)
def test_gltf_node_graphs_that_are_not_trees_are_refused(tmp_path, nodes, scene, message):
    _write_graph(tmp_path / "graph.glb", nodes, scene)
    with pytest.raises(ShapeError, match=f"graph.glb: {message}"):
        load_shape(tmp_path / "graph.glb")
