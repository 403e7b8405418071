"""Shapes: loading meshes and point clouds, normalising them, sampling their surface.

A `Shape` is what every later stage reads. Coordinates inside it are *normalised*: the bounding-box centre is
at the origin and the farthest point at distance 1. `Shape.to_original` maps back to the file's coordinates so
that outputs are written where the user's shape lives.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from partdistill_cli.errors import UserError

MESH_SUFFIXES = {".obj", ".ply", ".glb", ".gltf", ".off", ".stl"}
GLTF_SUFFIXES = {".glb", ".gltf"}
CLOUD_SUFFIXES = {".ply", ".xyz", ".txt", ".pts", ".npy", ".npz", ".pcd"}
SUPPORTED_SUFFIXES = MESH_SUFFIXES | CLOUD_SUFFIXES


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


def _check_finite(name: str, a: np.ndarray) -> None:
    if not np.isfinite(a).all():
        bad = int((~np.isfinite(a)).any(axis=-1).sum())
        raise ShapeError(f"{name}: {bad} coordinate(s) are NaN or infinite")


def normalisation(xyz: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre (bounding-box centre) and radius (max distance from it) of (M, 3) points."""
    lo, hi = xyz.min(axis=0), xyz.max(axis=0)
    center = (lo + hi) / 2.0
    radius = float(np.linalg.norm(xyz - center, axis=1).max())
    return center.astype(np.float64), radius


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
    vertices: np.ndarray, faces: np.ndarray, n_points: int = 2048, seed: int = 0, name: str = "shape"
) -> Shape:
    """Build a normalised mesh `Shape` from raw (V, 3) vertices and (F, 3) faces (face order is kept)."""
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0:
        raise ShapeError(f"{name}: the mesh has no triangle faces")
    if vertices.ndim != 2 or vertices.shape[1] != 3 or len(vertices) < 3:
        raise ShapeError(f"{name}: the mesh has fewer than 3 vertices")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise ShapeError(f"{name}: a face refers to a vertex that does not exist")
    _check_finite(name, vertices)
    used = vertices[np.unique(faces)]
    center, radius = normalisation(used)
    if radius <= 0:
        raise ShapeError(f"{name}: all vertices are at the same position")
    v = ((vertices - center) / radius).astype(np.float32)
    points, face_ids, normals = sample_surface(v, faces, n_points, seed)
    return Shape(points, normals, v, faces, face_ids, center, radius, name)


def from_points(xyz: np.ndarray, normals: np.ndarray | None = None, name: str = "shape") -> Shape:
    """Build a normalised point-cloud `Shape` from (N, 3) points and optional (N, 3) normals."""
    xyz = np.asarray(xyz, dtype=np.float64)
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise ShapeError(f"{name}: expected an (N, 3) array of points, got shape {xyz.shape}")
    if len(xyz) < 2:
        raise ShapeError(f"{name}: a point cloud needs at least 2 points, got {len(xyz)}")
    _check_finite(name, xyz)
    center, radius = normalisation(xyz)
    if radius <= 0:
        raise ShapeError(f"{name}: all points are at the same position")
    n = None
    if normals is not None:
        n = np.asarray(normals, dtype=np.float64)
        if n.shape != xyz.shape or not np.isfinite(n).all():
            n = None
        else:
            length = np.linalg.norm(n, axis=1, keepdims=True)
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
    import open3d as o3d

    expected = sum(len(getattr(scene.geometry[scene.graph[node][1]], "faces", ())) for node in instances)
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


def _load_trimesh(path: Path):
    import warnings

    import trimesh

    try:
        with warnings.catch_warnings():
            # Textures named by an OBJ's .mtl are often missing; they do not matter for geometry.
            warnings.simplefilter("ignore")
            loaded = trimesh.load(str(path), process=False, force=None)
    except Exception as exc:  # trimesh raises many types for a bad file; all mean "cannot read"
        raise ShapeError(f"{path}: cannot read the file ({type(exc).__name__}: {exc})") from exc
    if isinstance(loaded, trimesh.Scene):
        if not loaded.geometry:
            raise ShapeError(f"{path}: the file holds no geometry")
        in_order = _gltf_in_file_order(path, loaded) if path.suffix.lower() in GLTF_SUFFIXES else None
        if in_order is not None:
            return trimesh.Trimesh(in_order[0], in_order[1], process=False)
        # Other scenes: geometries merged in the scene graph's order with their transforms applied.
        loaded = loaded.to_geometry() if hasattr(loaded, "to_geometry") else loaded.dump(concatenate=True)
    return loaded


def _read_in_file_order(path: Path) -> tuple[np.ndarray | None, np.ndarray | None, object]:
    """(vertices (V, 3) float64, faces (F, 3) int64, trimesh's object or None) of a mesh file, faces in the
    file's order; vertices and faces are None when the file holds no triangles (its points are then read from
    trimesh's object)."""
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


def _read_cloud_array(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    suffix = path.suffix.lower()
    if suffix in (".npy", ".npz"):
        try:
            data = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise ShapeError(f"{path}: cannot read the array file ({exc})") from exc
        if suffix == ".npz":
            keys = [k for k in ("points", "xyz", "pos") if k in data.files] or list(data.files)
            if not keys:
                raise ShapeError(f"{path}: the .npz holds no arrays")
            arr = data[keys[0]]
            normals = data["normals"] if "normals" in data.files else None
            return _split_columns(path, arr, normals)
        return _split_columns(path, data, None)
    if suffix == ".pcd":
        import open3d as o3d

        pcd = o3d.io.read_point_cloud(str(path))
        xyz = np.asarray(pcd.points)
        if len(xyz) == 0:
            raise ShapeError(f"{path}: no points could be read")
        return xyz, (np.asarray(pcd.normals) if pcd.has_normals() else None)
    try:
        arr = np.loadtxt(path, dtype=np.float64, ndmin=2, comments="#")
    except Exception as exc:
        raise ShapeError(f"{path}: not a text point cloud of numbers ({exc})") from exc
    return _split_columns(path, arr, None)


def _split_columns(path: Path, arr: np.ndarray, normals: np.ndarray | None):
    arr = np.asarray(arr)
    if arr.ndim != 2 or arr.shape[1] < 3 or len(arr) == 0:
        raise ShapeError(f"{path}: expected rows of at least 3 numbers (x y z ...), got shape {arr.shape}")
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
            return from_mesh(vertices, faces, n_points, seed, name)
        if suffix not in CLOUD_SUFFIXES:
            raise ShapeError(f"{path}: the mesh has no faces")
        vertices = np.asarray(getattr(loaded, "vertices", np.zeros((0, 3))))
        if need_mesh:
            raise ShapeError(f"{path}: a mesh with faces is needed here, but the file holds only points")
        normals = None
        if hasattr(loaded, "metadata"):
            ply = loaded.metadata.get("_ply_raw", {}).get("vertex", {}).get("data")
            if ply is not None and ply.dtype.names and {"nx", "ny", "nz"} <= set(ply.dtype.names):
                normals = np.stack([ply["nx"], ply["ny"], ply["nz"]], axis=1)
        if len(vertices) == 0:
            raise ShapeError(f"{path}: no points could be read")
        return from_points(vertices, normals, name)
    if need_mesh:
        raise ShapeError(f"{path}: a mesh with faces is needed here, but '{suffix}' is a point-cloud format")
    xyz, normals = _read_cloud_array(path)
    return from_points(xyz, normals, name)


def with_points(shape: Shape, points: np.ndarray, face_ids: np.ndarray | None, normals: np.ndarray | None):
    """A copy of `shape` with other sample points (same mesh, same transform)."""
    return replace(shape, points=points, face_ids=face_ids, normals=normals)
