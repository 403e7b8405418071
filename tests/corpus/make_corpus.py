"""Bad inputs for every command that reads files, and valid seed files for the fuzzer, made by code.

Nothing here is a hand-edited binary: every file is written by the functions below from a small constructed
shape, so the corpus can be regenerated and read. Run as a script to look at it:

    python tests/corpus/make_corpus.py OUT_DIR

`bad_shapes()` lists the bad shape files (each with a pattern its one-line error must match);
`valid_seeds()` gives a writer of one small valid file per supported format and variant (ASCII / binary, a
multi-node glTF scene, ...), which `tests/corpus/fuzz.py` mutates; `write_all_inputs(folder)` writes both.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make `helpers` (tests/) importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import glb_bytes, gltf_document, gltf_text

# The commands that read shape files. `segment`, `render`: the file itself; `evaluate`: a labeled-mesh folder
# holding it; `train-category`: a folder holding it; `export`: a segment result whose input is the file. A
# folder is searched for shape files by extension, so what has none (or is no file) goes to the first two only.
SHAPE_COMMANDS = ("segment", "render", "evaluate", "train-category", "export")
DIRECT_ONLY = ("segment", "render")


@dataclass(frozen=True)
class BadInput:
    """One bad file: its name, how to write it, a pattern its error line must match (lower case), the commands
    it goes through, and how many labels a labeled-mesh folder gives it (its face count where it has faces, so
    that `evaluate` gets past the label count to the geometry)."""

    name: str
    write: Callable[[Path], None]
    needle: str
    commands: tuple[str, ...] = SHAPE_COMMANDS
    faces: int = 3

    @property
    def is_mesh(self) -> bool:
        """Whether a labeled-mesh folder labels it per face (meshes) rather than per point (clouds)."""
        return Path(self.name).suffix.lower() in {".obj", ".glb", ".gltf", ".off", ".stl"} or "mesh" in self.name


def _box() -> tuple[np.ndarray, np.ndarray]:
    """A unit cube: 8 vertices, 12 triangles."""
    import trimesh

    box = trimesh.creation.box()
    return np.asarray(box.vertices), np.asarray(box.faces)


def _cloud(n: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 3))


def _bytes(data: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(data)


def _text(text: str) -> Callable[[Path], None]:
    return _bytes(text.encode())


def _npy(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=allow_pickle)
    return buf.getvalue()


def _npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _ply(vertices: np.ndarray, faces: np.ndarray | None, encoding: str) -> bytes:
    import trimesh

    geometry = trimesh.PointCloud(vertices) if faces is None else trimesh.Trimesh(vertices, faces, process=False)
    return trimesh.exchange.ply.export_ply(geometry, encoding=encoding, vertex_normal=False)


def _stl_binary() -> bytes:
    import trimesh

    v, f = _box()
    return trimesh.exchange.stl.export_stl(trimesh.Trimesh(v, f, process=False))


def _off() -> str:
    v, f = _box()
    rows = [f"{x:g} {y:g} {z:g}" for x, y, z in v] + [f"3 {a} {b} {c}" for a, b, c in f]
    return f"OFF\n{len(v)} {len(f)} 0\n" + "\n".join(rows) + "\n"


def _obj(vertices: np.ndarray, faces: np.ndarray, materials: bool = False) -> str:
    lines = [f"v {x:g} {y:g} {z:g}" for x, y, z in vertices]
    for i, (a, b, c) in enumerate(faces):
        if materials and i % 6 == 0:
            lines.append(f"usemtl m{i // 6}")
        lines.append(f"f {a + 1} {b + 1} {c + 1}")
    return "\n".join(lines) + "\n"


def _pcd(points: np.ndarray, data: str, rows: int | None = None) -> bytes:
    """A PCD file of `points` (x y z float32) as `data` ascii or binary; `rows` writes only that many rows
    while the header still announces all points (a truncated file)."""
    n = len(points)
    header = (
        "# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\n"
        f"COUNT 1 1 1\nWIDTH {n}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA {data}\n"
    ).encode()
    kept = points[: n if rows is None else rows].astype(np.float32)
    if data == "ascii":
        return header + "".join(f"{x:.6g} {y:.6g} {z:.6g}\n" for x, y, z in kept).encode()
    return header + kept.tobytes()


def _triangle_scene(roots: list[dict]) -> tuple[dict, bytes]:
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=np.float32)
    return gltf_document([[(v, np.array([[0, 1, 2]]))]], roots)


def _glb_with_nodes(nodes: list[dict], roots: list[int]) -> bytes:
    """A GLB of one triangle whose node list and scene roots are as given (any graph, valid or not)."""
    header, blob = _triangle_scene([{"mesh": 0}])
    header["nodes"], header["scenes"] = nodes, [{"nodes": roots}]
    return glb_bytes(header, blob)


def _node_chain(n: int) -> list[dict]:
    return [{"mesh": 0, "children": [i + 1]} for i in range(n - 1)] + [{"mesh": 0}]


def _gltf_with_external_buffer() -> str:
    header, _ = _triangle_scene([{"mesh": 0}])
    header["buffers"][0]["uri"] = "missing.bin"
    return json.dumps(header)


def _random_bytes(n: int, seed: int) -> bytes:
    return np.random.default_rng(seed).bytes(n)


def bad_shapes() -> list[BadInput]:
    """The bad shape files, each with a pattern its one-line error must match (lower case)."""
    v, f = _box()
    binary_ply = _ply(v, f, "binary")
    stl = _stl_binary()
    header_only = b"ply\nformat binary_little_endian 1.0\nelement vertex 100\nproperty float x\nproperty float y\n"
    header_only += b"property float z\nend_header\n"
    huge = b"ply\nformat binary_little_endian 1.0\nelement vertex 999999999999\nproperty float x\n"
    huge += b"property float y\nproperty float z\nend_header\n" + bytes(24)
    return [
        BadInput("empty.obj", _bytes(b""), "empty"),
        BadInput("random.glb", _bytes(_random_bytes(2048, 1)), "not a glb file"),
        BadInput("random.gltf", _bytes(_random_bytes(512, 2)), "not a gltf"),
        BadInput("random.ply", _bytes(_random_bytes(700, 3)), "cannot read"),
        BadInput("random.stl", _bytes(_random_bytes(90, 4)), "cannot read|no triangle faces"),
        BadInput("random.npy", _bytes(_random_bytes(300, 5)), "cannot read the array"),
        BadInput("nan.xyz", _text("0 0 0\n1 nan 0\n0 1 1\n"), "nan or infinite"),
        BadInput("inf.npy", _bytes(_npy(np.array([[0, 0, 0], [1, np.inf, 0], [0, 1, 1]], float))), "infinite"),
        BadInput("one_point.xyz", _text("0 0 0\n"), "at least 2 points"),
        BadInput("same_point.xyz", _text("1 2 3\n1 2 3\n1 2 3\n"), "same position"),
        BadInput("words.xyz", _text("a point cloud\nof words\n"), "not a text point cloud"),
        BadInput("two_columns.txt", _text("0 0\n1 1\n2 2\n"), "at least 3 numbers"),
        BadInput("truncated_mesh.ply", _bytes(binary_ply[: len(binary_ply) // 3]), "cannot read"),
        BadInput("header_only.ply", _bytes(header_only), "cannot read"),
        BadInput("huge_count.ply", _bytes(huge), "cannot read"),
        BadInput("truncated.stl", _bytes(stl[: len(stl) // 2]), "cannot read|no triangle faces"),
        BadInput("face_index_zero.obj", _text(_obj(v, f) + "f 0 1 2\n"), "index 0"),
        BadInput("face_out_of_range.obj", _text(_obj(v, f) + "f 1 2 99\n"), "out of bounds"),
        BadInput("only_vertices.obj", _text("v 0 0 0\nv 1 0 0\nv 0 1 0\n"), "no (triangle )?faces"),
        BadInput("zero_area.obj", _text("v 0 0 0\nv 1 0 0\nv 2 0 0\nf 1 2 3\nf 3 2 1\n"), "no surface area", faces=2),
        BadInput("off_short.off", _text(_off().replace("OFF\n8 12", "OFF\n80 12")), "cannot read"),
        BadInput("complex.npy", _bytes(_npy(_cloud() + 1j)), "complex"),
        BadInput("pickled.npy", _bytes(_npy(np.array([{"x": 1}, None], dtype=object), True)), "pickle"),
        BadInput("object.npz", _bytes(_npz(points=np.array([[1, "a", None]], dtype=object))), "object"),
        BadInput("no_arrays.npz", _bytes(_npz()), "holds no arrays"),
        BadInput("flat.npy", _bytes(_npy(np.arange(12.0))), "at least 3 numbers"),
        BadInput("truncated_ascii.pcd", _bytes(_pcd(_cloud(), "ascii", rows=40)), "64 points"),
        BadInput("truncated_binary.pcd", _bytes(_pcd(_cloud(), "binary", rows=40)), "64 points"),
        BadInput("random.pcd", _bytes(_random_bytes(400, 6)), "not a pcd file"),
        BadInput("node_to_missing_mesh.glb", _bytes(_glb_with_nodes([{"mesh": 0}, {"mesh": 5}], [0, 1])), "mesh 5"),
        BadInput(
            "node_loop.glb", _bytes(_glb_with_nodes([{"mesh": 0, "children": [1]}, {"children": [0]}], [])), "loop"
        ),
        BadInput("deep_nodes.glb", _bytes(_glb_with_nodes(_node_chain(1002), [0])), "more than 1000 levels"),
        BadInput("external_buffer.gltf", _text(_gltf_with_external_buffer()), "missing.bin"),
        BadInput("negative_index.obj", _text(_obj(v, f) + "f -1 -2 -99\n"), "out of bounds"),
        BadInput("shape.abc", _text("0 0 0\n1 1 1\n"), "unknown extension", DIRECT_ONLY),
        BadInput("folder.obj", lambda path: path.mkdir(), "is a folder", DIRECT_ONLY),
        BadInput("loop.obj", lambda path: path.symlink_to(path.name), "no such file", DIRECT_ONLY),
    ]


def valid_seeds() -> dict[str, Callable[[Path], None]]:
    """File name -> writer of one small valid file per supported format and variant (the fuzzer's seeds)."""
    v, f = _box()
    cloud = _cloud(48)
    normals = cloud / np.linalg.norm(cloud, axis=1, keepdims=True)
    import trimesh

    scene = gltf_document(
        [[(v, f[:6]), (v + 2, f[6:])], [(v * 0.5, f)]],
        [{"mesh": 0, "children": [{"mesh": 1, "translation": [0, 3, 0]}]}, {"mesh": 1, "scale": [2, 2, 2]}],
    )
    return {
        "mesh.obj": _text(_obj(v, f)),
        "materials.obj": _text(_obj(v, f, materials=True)),
        "mesh_ascii.ply": _bytes(_ply(v, f, "ascii")),
        "mesh_binary.ply": _bytes(_ply(v, f, "binary")),
        "cloud_ascii.ply": _bytes(_ply(cloud, None, "ascii")),
        "cloud_binary.ply": _bytes(_ply(cloud, None, "binary")),
        "scene.glb": _bytes(glb_bytes(*scene)),
        "single.glb": _bytes(glb_bytes(*gltf_document([[(v, f)]], [{"mesh": 0}]))),
        "scene.gltf": _text(gltf_text(*scene)),
        "mesh.off": _text(_off()),
        "binary.stl": _bytes(_stl_binary()),
        "ascii.stl": _bytes(trimesh.exchange.stl.export_stl_ascii(trimesh.Trimesh(v, f, process=False)).encode()),
        "cloud.xyz": _text("".join(f"{x:.6g} {y:.6g} {z:.6g}\n" for x, y, z in cloud)),
        "normals.txt": _text("".join(" ".join(f"{c:.6g}" for c in row) + "\n" for row in np.hstack([cloud, normals]))),
        "cloud.npy": _bytes(_npy(cloud)),
        "cloud.npz": _bytes(_npz(points=cloud, normals=normals)),
        "ascii.pcd": _bytes(_pcd(cloud, "ascii")),
        "binary.pcd": _bytes(_pcd(cloud, "binary")),
    }


def write_all_inputs(folder: Path) -> tuple[list[tuple[BadInput, Path]], list[Path]]:
    """Write the bad shapes into `folder/bad` and the seeds into `folder/seeds`; return both lists of paths."""
    bad_dir, seed_dir = Path(folder) / "bad", Path(folder) / "seeds"
    bad_dir.mkdir(parents=True, exist_ok=True)
    seed_dir.mkdir(parents=True, exist_ok=True)
    bad = []
    for case in bad_shapes():
        case.write(bad_dir / case.name)
        bad.append((case, bad_dir / case.name))
    seeds = []
    for name, write in valid_seeds().items():
        write(seed_dir / name)
        seeds.append(seed_dir / name)
    return bad, seeds


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/corpus/make_corpus.py OUT_DIR")
    bad, seeds = write_all_inputs(Path(sys.argv[1]))
    print(f"{len(bad)} bad inputs and {len(seeds)} seeds written to {sys.argv[1]}")
