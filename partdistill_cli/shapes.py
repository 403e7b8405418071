"""Shapes: loading meshes and point clouds, normalising them, sampling their surface.

A `Shape` is what every later stage reads. Coordinates inside it are *normalised*: the bounding-box centre is
at the origin and the farthest point at distance 1. `Shape.to_original` maps back to the file's coordinates so
that outputs are written where the user's shape lives.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from partdistill_cli.deps import import_open3d
from partdistill_cli.errors import UserError

MESH_SUFFIXES = {".obj", ".ply", ".glb", ".gltf", ".off", ".stl"}
GLTF_SUFFIXES = {".glb", ".gltf"}
CLOUD_SUFFIXES = {".ply", ".xyz", ".txt", ".pts", ".npy", ".npz", ".pcd"}
SUPPORTED_SUFFIXES = MESH_SUFFIXES | CLOUD_SUFFIXES
# Files with a shape's extension that are not shapes: ground-truth labels beside a shape, and segment's outputs.
NOT_SHAPE_SUFFIXES = (".labels.npy", ".face_labels.npy", ".point_labels.npy", ".parts.ply")


class ShapeError(UserError, ValueError):
    """A shape file cannot be used; the message says why in words a user can act on."""


@dataclass
class Shape:
    """One 3D shape in normalised coordinates.

    Attributes:
        points: (N, 3) float32 sample points (a mesh's area-weighted surface samples, or the cloud itself).
        normals: (N, 3) float32 unit normals of the points, or None.
        vertices: (V, 3) float32 mesh vertices, or None for a point cloud.
        faces: (F, 3) int64 triangle vertex indices in the file's face order, or None.
        face_ids: (N,) int64 face each sample point lies on, or None for a point cloud.
        center: (3,) float64 original-space centre; original = normalised * scale + center.
        scale: float, original-space radius.
        name: the file stem (used to name outputs).
    """

    points: np.ndarray
    normals: np.ndarray | None = None
    vertices: np.ndarray | None = None
    faces: np.ndarray | None = None
    face_ids: np.ndarray | None = None
    center: np.ndarray = field(default_factory=lambda: np.zeros(3))
    scale: float = 1.0
    name: str = "shape"

    @property
    def is_mesh(self) -> bool:
        return self.faces is not None

    @property
    def n_points(self) -> int:
        return int(self.points.shape[0])

    def to_original(self, xyz: np.ndarray) -> np.ndarray:
        """(M, 3) normalised coordinates -> (M, 3) float64 coordinates of the input file."""
        return np.asarray(xyz, dtype=np.float64) * self.scale + self.center

    def fingerprint(self) -> str:
        """A content hash (geometry only), used as a cache key for teacher knowledge."""
        h = hashlib.sha256()
        for a in (self.vertices, self.faces, self.points):
            if a is not None:
                h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()[:20]


def _frame(where: str, xyz: np.ndarray, what: str) -> tuple[np.ndarray, float]:
    """Centre and radius of (M, 3) float64 coordinates (see `normalisation`), or ShapeError naming `where` when
    they cannot frame a shape: NaN or infinite, too large to compute with, or all at one position (`what`:
    "vertices" or "points")."""
    if not np.isfinite(xyz).all():
        bad = int((~np.isfinite(xyz)).any(axis=-1).sum())
        raise ShapeError(f"{where}: {bad} coordinate(s) are NaN or infinite")
    center, radius = normalisation(xyz)
    if not (np.isfinite(center).all() and np.isfinite(radius)):
        raise ShapeError(f"{where}: coordinates as large as {np.abs(xyz).max():.3g} are too large to work with")
    if radius <= 0:
        raise ShapeError(f"{where}: all {what} are at the same position")
    return center, radius


def normalisation(xyz: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre (bounding-box centre) and radius (max distance from it) of (M, 3) points.

    Offsets too large to square (beyond ~1e154) are scaled down before the distances are taken, so that any
    finite coordinates give a finite radius unless their extent overflows float64 (then the radius is inf).
    """
    lo, hi = xyz.min(axis=0), xyz.max(axis=0)
    with np.errstate(over="ignore", invalid="ignore"):
        center = lo / 2.0 + hi / 2.0
        offsets = xyz - center
        largest = float(np.abs(offsets).max())
        scale = largest if 1e150 < largest < np.inf else 1.0
        radius = scale * float(np.linalg.norm(offsets / scale, axis=1).max())
    return center.astype(np.float64), radius


def triangle_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F,) float64 area of each of the (F, 3) int triangles `faces` over the (V, 3) `vertices`."""
    import trimesh

    return np.asarray(trimesh.triangles.area(np.asarray(vertices, dtype=np.float64)[faces]), dtype=np.float64)


def sample_surface(
    vertices: np.ndarray, faces: np.ndarray, n: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Area-weighted uniform samples on a triangle mesh.

    Returns (points (n, 3) float32, face_ids (n,) int64, normals (n, 3) float32 face normals).
    Degenerate (zero-area) faces are never sampled; a mesh whose total area is zero is an error.
    """
    import trimesh

    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False, validate=False)
    areas = mesh.area_faces
    if not np.isfinite(areas).all() or areas.sum() <= 0:
        raise ShapeError("the mesh has no surface area (all faces are degenerate)")
    # trimesh.sample.sample_surface does the area-weighted draw with a seed; we keep its face index.
    points, face_ids = trimesh.sample.sample_surface(mesh, n, seed=seed)
    normals = mesh.face_normals[face_ids]
    return points.astype(np.float32), face_ids.astype(np.int64), normals.astype(np.float32)


def from_mesh(
    vertices: np.ndarray,
    faces: np.ndarray,
    n_points: int = 2048,
    seed: int = 0,
    name: str = "shape",
    source: str | Path | None = None,
) -> Shape:
    """Build a normalised mesh `Shape` from raw (V, 3) vertices and (F, 3) faces (face order is kept).

    Errors name `source` (the file the mesh came from) when given, else `name`.
    """
    where = str(source) if source is not None else name
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0:
        raise ShapeError(f"{where}: the mesh has no triangle faces")
    if vertices.ndim != 2 or vertices.shape[1] != 3 or len(vertices) < 3:
        raise ShapeError(f"{where}: the mesh has fewer than 3 vertices")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise ShapeError(f"{where}: a face refers to a vertex that does not exist")
    center, radius = _frame(where, vertices[np.unique(faces)], "vertices")
    v = ((vertices - center) / radius).astype(np.float32)
    try:
        points, face_ids, normals = sample_surface(v, faces, n_points, seed)
    except ShapeError as exc:
        raise ShapeError(f"{where}: {exc}") from exc
    return Shape(points, normals, v, faces, face_ids, center, radius, name)


def from_points(
    xyz: np.ndarray, normals: np.ndarray | None = None, name: str = "shape", source: str | Path | None = None
) -> Shape:
    """Build a normalised point-cloud `Shape` from (N, 3) points and optional (N, 3) normals.

    Errors name `source` (the file the points came from) when given, else `name`.
    """
    where = str(source) if source is not None else name
    xyz = np.asarray(xyz, dtype=np.float64)
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise ShapeError(f"{where}: expected an (N, 3) array of points, got shape {xyz.shape}")
    if len(xyz) < 2:
        raise ShapeError(f"{where}: a point cloud needs at least 2 points, got {len(xyz)}")
    center, radius = _frame(where, xyz, "points")
    n = None
    if normals is not None:
        n = np.asarray(normals, dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            length = np.linalg.norm(n, axis=1, keepdims=True) if n.shape == xyz.shape else None
        # Normals that are missing values or too large to normalise are dropped, as if the file had none.
        if length is None or not np.isfinite(length).all():
            n = None
        else:
            n = (n / np.maximum(length, 1e-12)).astype(np.float32)
    return Shape(((xyz - center) / radius).astype(np.float32), n, None, None, None, center, radius, name)


def _obj_in_file_order(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """(vertices, triangles) of an OBJ in its file's face order, or None when trimesh keeps that order anyway.

    Written by hand because trimesh regroups an OBJ's faces by material (`usemtl`), which breaks the face
    order that per-face label files refer to; none of its loader options keeps it. Polygons are split into
    triangle fans, as trimesh does, so face counts agree with it.
    """
    data = path.read_bytes()
    if data.count(b"usemtl") < 2:
        return None
    vertices: list[list[float]] = []
    faces: list[list[int]] = []
    for raw in data.decode("utf-8", errors="replace").splitlines():
        tokens = raw.split()
        if not tokens:
            continue
        if tokens[0] == "v" and len(tokens) >= 4:
            vertices.append([float(t) for t in tokens[1:4]])
        elif tokens[0] == "f" and len(tokens) >= 4:
            idx = [int(t.split("/")[0]) for t in tokens[1:]]
            idx = [i - 1 if i > 0 else len(vertices) + i for i in idx]
            faces.extend([idx[0], idx[k], idx[k + 1]] for k in range(1, len(idx) - 1))
    return np.asarray(vertices, dtype=np.float64).reshape(-1, 3), np.asarray(faces, dtype=np.int64).reshape(-1, 3)


# An OBJ face token whose vertex index is 0 (OBJ counts from 1; trimesh silently takes 0 as the last vertex).
_OBJ_ZERO_INDEX = re.compile(rb"^[ \t]*f[ \t](?:[^\n]*?[ \t])?[-+]?0+(?=[/ \t\r\n]|$)", re.MULTILINE)


def check_mesh_file(path: Path) -> None:
    """Refuse mesh files that trimesh reads without complaint but wrongly: an OBJ face with vertex index 0, a
    glTF that is not JSON, or a glTF whose nodes refer to meshes or nodes it does not have. ShapeError names
    the file and what is wrong."""
    suffix = path.suffix.lower()
    if suffix == ".obj":
        match = _OBJ_ZERO_INDEX.search(path.read_bytes())
        if match:
            line = match.string.count(b"\n", 0, match.start()) + 1
            raise ShapeError(f"{path}: line {line}: face vertex index 0 (OBJ indices start at 1)")
    elif suffix in GLTF_SUFFIXES:
        _check_gltf_references(path, _gltf_document(path))


def _gltf_document(path: Path) -> dict:
    """The JSON document of a .gltf file, or of a .glb's JSON chunk; ShapeError when there is none."""
    data = path.read_bytes()
    if path.suffix.lower() == ".glb":
        # GLB: 12-byte header (magic, version, length), then a chunk (length, type "JSON", data).
        if len(data) < 20 or data[:4] != b"glTF" or data[16:20] != b"JSON":
            raise ShapeError(f"{path}: not a GLB file (no glTF header followed by a JSON chunk)")
        (length,) = struct.unpack("<I", data[12:16])
        data = data[20 : 20 + length]
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ShapeError(f"{path}: not a glTF file (not JSON: {exc})") from exc
    if not isinstance(doc, dict):
        raise ShapeError(f"{path}: not a glTF file (the JSON is not an object)")
    return doc


# Deeper node trees than any real scene has (a few dozen levels) make open3d's recursive glTF reader overflow
# the stack (measured: a crash at 20,000 levels, none at 10,000).
MAX_GLTF_DEPTH = 1000


def _check_gltf_references(path: Path, doc: dict) -> None:
    """The nodes form trees, as glTF requires, no deeper than MAX_GLTF_DEPTH, and every mesh, child and scene
    root they name exists. trimesh drops dangling references silently and open3d then reads nothing (the two
    would disagree on what the shape is); loops and shared children are not valid glTF either."""

    def listed(owner: dict, key: str, what: str) -> list:
        value = owner.get(key, []) if isinstance(owner, dict) else None
        if not isinstance(value, list):
            raise ShapeError(f"{path}: not a glTF file ({what} has no list of {key})")
        return value

    def check(index, items: list, what: str, noun: str) -> int:
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(items):
            raise ShapeError(f"{path}: {what} {index!r}, but the file has {len(items)} {noun}")
        return index

    meshes, nodes = listed(doc, "meshes", "the document"), listed(doc, "nodes", "the document")
    parent: dict[int, int] = {}
    for i, node in enumerate(nodes):
        if isinstance(node, dict) and "mesh" in node:
            check(node["mesh"], meshes, f"node {i} refers to mesh", "mesh(es)")
        for child in listed(node, "children", f"node {i}"):
            child = check(child, nodes, f"node {i} lists as a child node", "node(s)")
            if child in parent or child == i:
                raise ShapeError(f"{path}: node {child} has two parents or is its own child (glTF nodes form trees)")
            parent[child] = i
    for k, scene in enumerate(listed(doc, "scenes", "the document")):
        for root in listed(scene, "nodes", f"scene {k}"):
            if check(root, nodes, f"scene {k} lists node", "node(s)") in parent:
                raise ShapeError(f"{path}: scene {k} lists node {root} as a root, but it is a child of another node")
    depth = {i: 0 for i in range(len(nodes)) if i not in parent}
    stack = list(depth)
    while stack:
        i = stack.pop()
        for child in nodes[i].get("children", []):
            depth[child] = depth[i] + 1
            if depth[child] > MAX_GLTF_DEPTH:
                raise ShapeError(f"{path}: its nodes nest more than {MAX_GLTF_DEPTH} levels deep; refusing it")
            stack.append(child)
    if len(depth) < len(nodes):
        raise ShapeError(f"{path}: its nodes form a loop (glTF nodes form trees)")


def _gltf_in_file_order(path: Path, scene) -> tuple[np.ndarray, np.ndarray] | None:
    """(vertices, triangles) of a glTF scene in document order, or None when the scene has one mesh instance.

    Document order: nodes depth-first from the scene's roots, children in listed order, each mesh's primitives
    in order. trimesh walks the node tree with a stack (last root first), so a scene of several nodes comes
    out reversed; open3d's glTF reader (tinygltf) visits the nodes in document order and applies their
    transforms, so it is used for the order. The two must agree on the triangle count, or the order cannot be
    trusted.
    """
    instances = scene.graph.nodes_geometry
    if len(instances) < 2:
        return None
    o3d = import_open3d()

    # Triangles per geometry times its instances; `scene.graph[node]` would compose each node's transform from
    # the root, quadratic in the depth of the node tree.
    expected = sum(
        len(getattr(scene.geometry.get(name), "faces", ())) * len(nodes)
        for name, nodes in scene.graph.geometry_nodes.items()
    )
    if expected == 0:
        return None  # no triangles at all: the caller reports it (or reads the points)
    with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):
        mesh = o3d.io.read_triangle_mesh(str(path))
    faces = np.asarray(mesh.triangles, dtype=np.int64)
    if len(faces) != expected:
        from partdistill_cli.console import console

        console.print(
            f"[yellow]warning:[/] {path}: could not establish the glTF document's face order (open3d reads "
            f"{len(faces)} triangles, trimesh {expected}); faces follow trimesh's scene order instead",
            soft_wrap=True,
        )
        return None
    return np.asarray(mesh.vertices, dtype=np.float64), faces


@contextlib.contextmanager
def quiet_trimesh() -> Iterator[None]:
    """Silence trimesh while it reads a file: on a damaged file it logs tracebacks of what it retried (a
    binary STL read as ASCII) and numpy warns about NaN it meets. What matters reaches the user as one
    ShapeError naming the file, and coordinates are checked after loading."""
    logger = logging.getLogger("trimesh")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _load_trimesh(path: Path):
    import trimesh

    try:
        with quiet_trimesh():
            loaded = trimesh.load(str(path), process=False, force=None)
        if isinstance(loaded, trimesh.Scene) and loaded.geometry:
            in_order = _gltf_in_file_order(path, loaded) if path.suffix.lower() in GLTF_SUFFIXES else None
            if in_order is not None:
                return trimesh.Trimesh(in_order[0], in_order[1], process=False)
            # Other scenes: geometries merged in the scene graph's order with their transforms applied.
            loaded = loaded.to_geometry() if hasattr(loaded, "to_geometry") else loaded.dump(concatenate=True)
    except FileNotFoundError as exc:
        raise ShapeError(f"{path}: a file it refers to is missing ({exc})") from exc
    except Exception as exc:  # trimesh raises many types for a bad file; all mean "cannot read"
        raise ShapeError(f"{path}: cannot read the file ({type(exc).__name__}: {_first_line(exc)})") from exc
    if isinstance(loaded, trimesh.Scene):
        raise ShapeError(f"{path}: cannot read any geometry from the file")
    return loaded


def _read_in_file_order(path: Path) -> tuple[np.ndarray | None, np.ndarray | None, object]:
    """(vertices (V, 3) float64, faces (F, 3) int64, trimesh's object or None) of a mesh file, faces in the
    file's order; vertices and faces are None when the file holds no triangles (its points are then read from
    trimesh's object). Files trimesh would misread are refused first (`check_mesh_file`)."""
    check_mesh_file(path)
    if path.suffix.lower() == ".obj":
        try:
            in_order = _obj_in_file_order(path)
        except ValueError as exc:
            raise ShapeError(f"{path}: cannot read the OBJ file ({exc})") from exc
        if in_order is not None:
            return in_order[0], in_order[1], None
    loaded = _load_trimesh(path)
    faces = getattr(loaded, "faces", None)
    if faces is None or len(faces) == 0:
        return None, None, loaded
    return np.asarray(loaded.vertices, dtype=np.float64), np.asarray(faces, dtype=np.int64), loaded


def read_mesh(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(V, 3) float64 vertices and (F, 3) int64 triangles of a mesh file, faces in the file's order.

    The one mesh reader: `load_shape` and the data-set loaders both use it, so per-face ground truth and
    per-face outputs refer to the same faces whichever of them read the file. Raises `ShapeError` when the
    file cannot be read or holds no triangles.
    """
    path = Path(path)
    vertices, faces, _ = _read_in_file_order(path)
    if faces is None:
        raise ShapeError(f"{path}: the file holds no triangle faces")
    return vertices, faces


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


_NPY_MAGIC, _ZIP_MAGIC = b"\x93NUMPY", b"PK"


def _read_numpy(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(array, normals or None) of a .npy, or of a .npz's first of points / xyz / pos (else its first array)
    and its `normals`. Objects are never unpickled; numpy would try to unpickle a file without its magic."""
    with open(path, "rb") as f:
        magic = f.read(6)
        f.seek(0)
        if not (magic == _NPY_MAGIC or magic.startswith(_ZIP_MAGIC)):
            raise ShapeError(f"{path}: cannot read the array file (not in NumPy's .npy or .npz format)")
        try:
            data = np.load(f, allow_pickle=False)
            if isinstance(data, np.ndarray):
                return data, None
            with data:
                keys = [k for k in ("points", "xyz", "pos") if k in data.files] or list(data.files)
                if not keys:
                    raise ShapeError(f"{path}: the .npz holds no arrays")
                return data[keys[0]], (data["normals"] if "normals" in data.files else None)
        except ShapeError:
            raise
        except Exception as exc:  # numpy and zipfile raise many types for a damaged file
            if "allow_pickle" in str(exc):
                raise ShapeError(
                    f"{path}: the array holds Python objects, which partdistill never unpickles; save plain numbers"
                ) from exc
            raise ShapeError(f"{path}: cannot read the array file ({_first_line(exc)})") from exc


def _check_pcd(path: Path) -> None:
    """Refuse a PCD whose data holds fewer points than its header's POINTS: open3d reads a truncated ASCII
    file with the missing points at (0, 0, 0). Written by hand because open3d does not report it. Files with
    compressed data are left to open3d, which checks their sizes itself."""
    header: dict[str, list[str]] = {}
    with open(path, "rb") as f:
        while "DATA" not in header:
            line = f.readline(1 << 16)
            if not line:
                raise ShapeError(f"{path}: not a PCD file (its header has no DATA line)")
            words = line.decode("ascii", errors="replace").split()
            if words and not words[0].startswith("#"):
                header[words[0].upper()] = words[1:]
        body = f.read()
    try:
        points = int(header["POINTS"][0])
        row_bytes = sum(int(s) * int(c) for s, c in zip(header["SIZE"], header["COUNT"], strict=True))
    except (KeyError, IndexError, ValueError) as exc:
        raise ShapeError(f"{path}: not a PCD file (its header lacks POINTS, SIZE or COUNT)") from exc
    kind = header["DATA"][0].lower() if header["DATA"] else ""
    if kind == "ascii":
        rows = sum(1 for row in body.splitlines() if row.strip())
    elif kind == "binary":
        rows = len(body) // max(row_bytes, 1)
    else:
        return
    if rows < points:
        raise ShapeError(f"{path}: the header announces {points} points but the file holds {rows} (truncated?)")


def _read_cloud_array(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    suffix = path.suffix.lower()
    if suffix in (".npy", ".npz"):
        arr, normals = _read_numpy(path)
        return _split_columns(path, arr, normals)
    if suffix == ".pcd":
        _check_pcd(path)
        o3d = import_open3d()

        with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):
            pcd = o3d.io.read_point_cloud(str(path))
        xyz = np.asarray(pcd.points)
        if len(xyz) == 0:
            raise ShapeError(f"{path}: no points could be read")
        return xyz, (np.asarray(pcd.normals) if pcd.has_normals() else None)
    try:
        arr = np.loadtxt(path, dtype=np.float64, ndmin=2, comments="#")
    except Exception as exc:
        raise ShapeError(f"{path}: not a text point cloud of numbers ({_first_line(exc)})") from exc
    return _split_columns(path, arr, None)


def _split_columns(path: Path, arr: np.ndarray, normals: np.ndarray | None):
    arr = np.asarray(arr)
    if arr.ndim != 2 or arr.shape[1] < 3 or len(arr) == 0:
        raise ShapeError(f"{path}: expected rows of at least 3 numbers (x y z ...), got shape {arr.shape}")
    if np.iscomplexobj(arr):
        raise ShapeError(f"{path}: the array holds complex numbers; coordinates must be real")
    if not np.issubdtype(arr.dtype, np.number):
        raise ShapeError(f"{path}: the array is not numeric")
    arr = arr.astype(np.float64)
    if normals is None and arr.shape[1] >= 6:
        normals = arr[:, 3:6]
    return arr[:, :3], normals


def load_shape(path: str | Path, n_points: int = 2048, seed: int = 0, need_mesh: bool = False) -> Shape:
    """Load a mesh (OBJ, PLY, GLB/GLTF, OFF, STL) or a point cloud (PLY, XYZ/TXT, NPY/NPZ, PCD).

    A mesh keeps its file's face order (a glTF scene: nodes depth-first in document order); `n_points`
    area-weighted surface samples (seeded) become its points. A point cloud keeps all its points in file
    order. Raises `ShapeError` with a readable message on any problem (missing file, unknown extension, empty
    or corrupt file, NaN coordinates, too few points).
    """
    path = Path(path)
    if not path.exists():
        raise ShapeError(f"{path}: no such file")
    if path.is_dir():
        raise ShapeError(f"{path}: is a folder, expected a shape file")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ShapeError(
            f"{path}: unknown extension '{suffix}' (meshes: {', '.join(sorted(MESH_SUFFIXES))}; "
            f"point clouds: {', '.join(sorted(CLOUD_SUFFIXES))})"
        )
    if path.stat().st_size == 0:
        raise ShapeError(f"{path}: the file is empty")
    if n_points < 1:
        raise ShapeError(f"--points must be at least 1, got {n_points}")
    name = path.stem
    if suffix in MESH_SUFFIXES:
        vertices, faces, loaded = _read_in_file_order(path)
        if faces is not None:
            return from_mesh(vertices, faces, n_points, seed, name, path)
        if suffix not in CLOUD_SUFFIXES:
            raise ShapeError(f"{path}: the mesh has no faces")
        vertices = np.asarray(getattr(loaded, "vertices", np.zeros((0, 3))))
        if need_mesh:
            raise ShapeError(f"{path}: a mesh with faces is needed here, but the file holds only points")
        if len(vertices) == 0:
            raise ShapeError(f"{path}: no points could be read")
        return from_points(vertices, _ply_normals(loaded), name, path)
    if need_mesh:
        raise ShapeError(f"{path}: a mesh with faces is needed here, but '{suffix}' is a point-cloud format")
    xyz, normals = _read_cloud_array(path)
    return from_points(xyz, normals, name, path)


def _ply_normals(cloud) -> np.ndarray | None:
    """(N, 3) normals of a PLY point cloud read by trimesh, or None when the file has none. trimesh keeps the
    raw vertex data as a structured array for binary files and as a dict of (N, 1) columns for ASCII ones."""
    raw = getattr(cloud, "metadata", {}).get("_ply_raw", {}).get("vertex", {}).get("data")
    columns = raw.dtype.names if isinstance(raw, np.ndarray) else raw if isinstance(raw, dict) else None
    if not columns or not {"nx", "ny", "nz"} <= set(columns):
        return None
    return np.stack([np.asarray(raw[k], dtype=np.float64).reshape(-1) for k in ("nx", "ny", "nz")], axis=1)


def is_shape_file(path: Path) -> bool:
    """Whether `path`'s name is that of a shape file: a supported extension, not hidden (temporaries, journals),
    and not a label array or a segment output (`NOT_SHAPE_SUFFIXES`)."""
    name = path.name
    return (
        path.suffix.lower() in SUPPORTED_SUFFIXES and not name.startswith(".") and not name.endswith(NOT_SHAPE_SUFFIXES)
    )


def find_shape_files(folder: Path, skip: Path | None = None) -> list[Path]:
    """The shape files (`is_shape_file`) under `folder`, recursively, sorted; hidden folders and everything
    under `skip` (an output folder inside the input) are left out."""
    folder = Path(folder)
    skip = Path(skip).resolve() if skip is not None else None
    found = []
    for path in sorted(folder.rglob("*")):
        inside = path.relative_to(folder).parts
        if any(part.startswith(".") for part in inside[:-1]) or not is_shape_file(path) or not path.is_file():
            continue
        if skip is not None and path.resolve().is_relative_to(skip):
            continue
        found.append(path)
    return found


def with_points(shape: Shape, points: np.ndarray, face_ids: np.ndarray | None, normals: np.ndarray | None):
    """A copy of `shape` with other sample points (same mesh, same transform)."""
    return replace(shape, points=points, face_ids=face_ids, normals=normals)
