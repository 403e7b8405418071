"""What `partdistill segment` writes (DESIGN.md section 7), and reading it back for `partdistill export`.

For an input shape NAME, into an output folder:

- `NAME.parts.ply`: the shape in the input's original coordinates, colored by part. Meshes are split by part
  (a vertex shared by faces of two parts is duplicated, one copy per part), so vertex colors and face colors
  agree: Blender's importer reads vertex colors, MeshLab reads either. Faces keep the input's face order and
  carry an int `label` and a float `confidence` property; vertices carry `label` too. Clouds keep the input's
  point order; each point has color, `label` and `confidence` (and normals when the input had them).
- `NAME.labels.json`: format version, input path, kind (mesh | points), part names, colors, per-face (mesh)
  or per-point (cloud) labels and confidences, and `meta` (teacher, method, settings).
- `NAME.labels.npy`: (F,) or (N,) int64 labels, the same as in the json.
- `NAME.preview.png` (optional): the segmented shape from several views with a legend.
- `NAME.explain.png` (optional): per view, the teacher's detections beside the final labels.
- `NAME.viewer.html` (optional): the result as a self-contained web page (`partdistill_cli.viewer`).

All files of one call are written to temporaries first and renamed into place only when every one of them
has been written (`write_all`), so a failure leaves none of them behind, and a kill while renaming leaves a
journal by which the next run or reader completes the set.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from partdistill_cli import __version__

# The colors live below outputs and preview (both use them); importers of the names from here keep working.
from partdistill_cli.colors import OTHER_COLOR as OTHER_COLOR
from partdistill_cli.colors import PALETTE as PALETTE
from partdistill_cli.colors import UNLABELED_COLOR as UNLABELED_COLOR
from partdistill_cli.colors import colors_of, part_colors
from partdistill_cli.errors import UserError
from partdistill_cli.io_utils import (
    RECORD,
    OutputError,
    atomic_path,
    check_not_overwriting,
    check_writable_dir,
    file_sha256,
    give_usual_permissions,
    make_dirs,
)
from partdistill_cli.knowledge import Detection, Labels
from partdistill_cli.shapes import Shape, triangle_areas

if TYPE_CHECKING:
    from partdistill_cli.render.base import Views

RESULT_FORMAT = "partdistill-segmentation"
RESULT_VERSION = 1
LABELS_SUFFIX = ".labels.json"


class ResultError(UserError, ValueError):
    """A segment result cannot be read (missing, corrupt, or its labels do not fit its shape)."""


@dataclass
class SegmentResult:
    """A segmentation as written to disk: per-face (mesh) or per-point (cloud) labels on a shape.

    Attributes:
        name: output stem (the input's stem).
        kind: "mesh" (labels per face, in the file's face order) or "points" (labels per point, file order).
        shape: the labeled shape (normalised; `shape.to_original` gives the file's coordinates).
        parts: the C part names.
        colors: (C, 3) uint8 RGB color per part.
        labels: (M,) int64 part index per face / point in [0, C), or -1 (unlabeled).
        confidence: (M,) float32 in [0, 1], the probability of the chosen label (0 where unlabeled).
        input_path: the segmented file, or None if unknown.
        meta: how the labels were made (teacher, method, settings).
        path: the `NAME.labels.json` it was read from, or None.
        shape_source: the file the shape was loaded from when read back (the input, or `NAME.parts.ply`).
        per_point: the per-point labels with their full probabilities, when the result was just made (None
            when read back from disk, where only the chosen labels and their confidence are stored).
        views: the renderings the teacher saw, when kept (for the explain sheet), else None.
        detections: the teacher's 2D detections in `views`.
    """

    name: str
    kind: Literal["mesh", "points"]
    shape: Shape
    parts: list[str]
    colors: np.ndarray
    labels: np.ndarray
    confidence: np.ndarray
    input_path: Path | None = None
    meta: dict = field(default_factory=dict)
    path: Path | None = None
    shape_source: Path | None = None
    per_point: Labels | None = None
    views: Views | None = None
    detections: list[Detection] = field(default_factory=list)

    @property
    def element(self) -> Literal["face", "point"]:
        return "face" if self.kind == "mesh" else "point"

    @property
    def face_labels(self) -> np.ndarray | None:
        """(F,) int64 part per face in the file's face order (meshes), else None."""
        return self.labels if self.kind == "mesh" else None

    @property
    def point_labels(self) -> np.ndarray:
        """(N,) int64 part per point of `shape.points` (a cloud's own points in file order, a mesh's samples)."""
        return self.to_labels().point_labels

    @property
    def probs(self) -> np.ndarray:
        """(N, C) float32 per-point part probabilities (read back from disk: one-hot rows times confidence)."""
        return self.to_labels().probs

    def element_weights(self) -> np.ndarray:
        """(M,) float64 weight of each face (its area, in the input's units squared) or point (1)."""
        if self.kind != "mesh":
            return np.ones(len(self.labels))
        return triangle_areas(self.original_vertices(), self.shape.faces)

    def part_shares(self) -> np.ndarray:
        """(C,) float64 share of each part in the shape: of the surface area for meshes, of the points for
        clouds (unlabeled elements count in the whole)."""
        weight = self.element_weights()
        ok = self.labels >= 0
        share = np.bincount(self.labels[ok], weights=weight[ok], minlength=len(self.parts))
        return share / max(float(weight.sum()), 1e-12)

    def to_trimesh(self):
        """The result as a trimesh object in the input's coordinates: a `trimesh.Trimesh` whose faces (file
        order) carry their part's color, or a `trimesh.PointCloud` whose points (file order) do."""
        import trimesh

        colors = colors_of(self.labels, self.colors)
        if self.kind == "mesh":
            return trimesh.Trimesh(self.original_vertices(), self.shape.faces, face_colors=colors, process=False)
        return trimesh.PointCloud(self.original_vertices(), colors=colors)

    def save(
        self,
        out_dir: str | Path,
        *,
        overwrite: bool = False,
        preview: bool = False,
        explain: bool = False,
        html: bool = False,
    ) -> list[Path]:
        """Write the files `partdistill segment` writes into `out_dir` (see the module docstring), all or none.

        `explain` adds NAME.explain.png, the teacher's detections beside the labels per view; it needs the
        result's `views`. `html` adds NAME.viewer.html, the result as a self-contained web page (with the
        explain sheet beside the shape when `explain`). Raises `ResultError` if there are no views to explain,
        `OutputError` if `out_dir` is not writable, an output would replace the input or already exists (and
        not `overwrite`). Returns the paths written.
        """
        if explain and self.views is None:
            raise ResultError(
                f"{self.name}: no teacher views to explain (the knowledge came from the cache); segment with "
                "explain / keep_views to keep them"
            )
        explain_png = self.explain_png() if explain else None
        return self.write(out_dir, overwrite=overwrite, preview=preview, html=html, explain_png=explain_png)

    def explain_png(self) -> bytes:
        """The PNG bytes of the explain sheet (`preview.explain_sheet`): per view, the teacher's detections
        beside the final labels. Needs the result's `views`."""
        from partdistill_cli.preview import explain_sheet

        with tempfile.TemporaryDirectory() as tmp:
            explain_sheet(self.views, self.detections, self.to_labels(), self.parts, Path(tmp) / "explain.png")
            return (Path(tmp) / "explain.png").read_bytes()

    def write(
        self,
        out_dir: str | Path,
        *,
        overwrite: bool = False,
        preview: bool = False,
        html: bool = False,
        explain_png: bytes | None = None,
    ) -> list[Path]:
        """`save` with the explain sheet given as PNG bytes (`explain_png`, written as NAME.explain.png and shown
        in the page) rather than drawn from `views`."""
        out_dir = check_writable_dir(out_dir)
        paths = output_paths(out_dir, self.name, preview, html=html, explain=explain_png is not None)
        check_not_overwriting(list(paths.values()), [self.input_path] if self.input_path else [], overwrite)
        # Render before writing anything, so that slow or failing work does not leave half the outputs.
        writers: dict[Path, Callable[[Path], None]] = {
            paths["ply"]: _save_bytes(result_ply_bytes(self)),
            paths["json"]: _save_bytes(
                (json.dumps(result_json(self, out_dir), default=_json_default) + "\n").encode("utf-8")
            ),
            paths["npy"]: _save_npy(self.labels.astype(np.int64)),
        }
        if preview:
            from partdistill_cli.preview import render_preview

            image, _ = render_preview(self.shape, self.to_labels())
            writers[paths["preview"]] = _save_image(image)
        if html:
            from partdistill_cli.viewer import viewer_html

            writers[paths["html"]] = _save_bytes(viewer_html(self, explain_png).encode("utf-8"))
        if explain_png is not None:
            writers[paths["explain"]] = _save_bytes(explain_png)
        return write_all(writers)

    def original_vertices(self) -> np.ndarray:
        """(V, 3) float64 mesh vertices, or (N, 3) cloud points, in the input file's coordinates."""
        xyz = self.shape.vertices if self.kind == "mesh" else self.shape.points
        return self.shape.to_original(xyz)

    def to_labels(self) -> Labels:
        """`Labels` on the shape's points; probabilities are one-hot rows scaled by the stored confidence
        (the full distribution is not stored); the labels it was made from when it was just made."""
        if self.per_point is not None:
            return self.per_point
        if self.kind == "mesh":
            point_labels = self.labels[self.shape.face_ids]
            point_conf = self.confidence[self.shape.face_ids]
            face_labels = self.labels.copy()
        else:
            point_labels, point_conf, face_labels = self.labels.copy(), self.confidence, None
        probs = np.zeros((len(point_labels), len(self.parts)), dtype=np.float32)
        ok = point_labels >= 0
        probs[np.flatnonzero(ok), point_labels[ok]] = point_conf[ok]
        return Labels(point_labels, probs, list(self.parts), face_labels)


def _check_labels(shape: Shape, labels: Labels) -> None:
    n, c = shape.n_points, len(labels.parts)
    if c == 0:
        raise ValueError("labels have no parts")
    if labels.point_labels.shape != (n,):
        raise ValueError(f"point labels have shape {labels.point_labels.shape}, the shape has {n} points")
    if labels.probs.shape != (n, c):
        raise ValueError(f"probabilities have shape {labels.probs.shape}, expected ({n}, {c})")
    arrays = [labels.point_labels]
    if shape.is_mesh:
        if labels.face_labels is None:
            raise ValueError("a mesh needs per-face labels (Labels.face_labels)")
        if labels.face_labels.shape != (len(shape.faces),):
            raise ValueError(
                f"face labels have shape {labels.face_labels.shape}, the mesh has {len(shape.faces)} faces"
            )
        arrays.append(labels.face_labels)
    for a in arrays:
        if len(a) and (a.min() < -1 or a.max() >= c):
            raise ValueError(f"labels must lie in [-1, {c}), got [{a.min()}, {a.max()}]")


def face_confidence(shape: Shape, labels: Labels) -> np.ndarray:
    """(F,) float32 confidence of each face's label.

    The mean, over the sample points lying on the face, of their probability for the face's label; a face
    no sample point lies on takes the probability at the sample point nearest its centroid. 0 for faces
    labeled -1.
    """
    from scipy.spatial import cKDTree

    face_labels = np.asarray(labels.face_labels, dtype=np.int64)
    n_faces = len(face_labels)
    probs = np.asarray(labels.probs, dtype=np.float64)
    safe = np.maximum(face_labels, 0)
    face_ids = shape.face_ids
    p_own = probs[np.arange(len(face_ids)), safe[face_ids]]
    count = np.bincount(face_ids, minlength=n_faces)
    total = np.bincount(face_ids, weights=p_own, minlength=n_faces)
    conf = np.divide(total, count, out=np.zeros(n_faces), where=count > 0)
    empty = np.flatnonzero(count == 0)
    if len(empty):
        centroids = shape.vertices[shape.faces[empty]].mean(axis=1)
        _, nearest = cKDTree(shape.points).query(centroids)
        conf[empty] = probs[nearest, safe[empty]]
    conf[face_labels < 0] = 0.0
    return np.clip(conf, 0.0, 1.0).astype(np.float32)


def point_confidence(labels: Labels) -> np.ndarray:
    """(N,) float32 probability of each point's label (its max probability when labels are the argmax)."""
    lab = np.asarray(labels.point_labels, dtype=np.int64)
    conf = np.asarray(labels.probs, dtype=np.float64)[np.arange(len(lab)), np.maximum(lab, 0)]
    return np.clip(np.where(lab >= 0, conf, 0.0), 0.0, 1.0).astype(np.float32)


def make_result(
    input_path: Path | None, shape: Shape, labels: Labels, meta: dict | None = None, name: str | None = None
) -> SegmentResult:
    """The `SegmentResult` of `labels` on `shape` (per face for meshes, per point for clouds)."""
    _check_labels(shape, labels)
    if shape.is_mesh:
        kind, element_labels, conf = "mesh", labels.face_labels, face_confidence(shape, labels)
    else:
        kind, element_labels, conf = "points", labels.point_labels, point_confidence(labels)
    stem = name or (Path(input_path).stem if input_path is not None else shape.name)
    return SegmentResult(
        stem,
        kind,
        shape,
        list(labels.parts),
        part_colors(labels.parts),
        np.asarray(element_labels, dtype=np.int64).copy(),
        conf,
        Path(input_path) if input_path is not None else None,
        dict(meta or {}),
        per_point=labels,
    )


# ---- PLY -------------------------------------------------------------------------------------------------

_PLY_TYPES = {"f4": "float", "f8": "double", "u1": "uchar", "i4": "int", "u4": "uint", "i1": "char"}


def _ply_element(name: str, columns: list[tuple[str, np.ndarray]]) -> tuple[list[str], bytes]:
    """Header lines and little-endian body of one PLY element; a (M, k) column named `vertex_indices` is
    written as a list property (uchar count, int indices), any other column must be (M,)."""
    n = len(columns[0][1])
    dtype, header = [], [f"element {name} {n}"]
    for prop, arr in columns:
        if prop == "vertex_indices":
            dtype += [("_count", "u1"), (prop, "<i4", (arr.shape[1],))]
            header.append(f"property list uchar int {prop}")
        else:
            code = arr.dtype.newbyteorder("<").str[1:]
            dtype.append((prop, "<" + code))
            header.append(f"property {_PLY_TYPES[code]} {prop}")
    body = np.empty(n, dtype=dtype)
    for prop, arr in columns:
        if prop == "vertex_indices":
            body["_count"] = arr.shape[1]
        body[prop] = arr
    return header, body.tobytes()


def one_line(text: str) -> str:
    """`text` safe for a one-line header comment (PLY, OBJ, MTL): control characters, line breaks included,
    become backslash escapes, so that a part name cannot end the comment and inject header lines."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def ply_bytes(elements: list[tuple[str, list[tuple[str, np.ndarray]]]], comments: list[str] = ()) -> bytes:
    """A binary little-endian PLY file with the given elements (name, [(property, array)])."""
    header = ["ply", "format binary_little_endian 1.0"]
    header += ["comment " + one_line(c) for c in comments]
    bodies = []
    for name, columns in elements:
        lines, body = _ply_element(name, columns)
        header += lines
        bodies.append(body)
    return ("\n".join([*header, "end_header"]) + "\n").encode("ascii", "replace") + b"".join(bodies)


def split_by_part(faces: np.ndarray, face_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Duplicate the vertices shared by faces of different parts.

    Args: faces (F, 3) int vertex indices, face_labels (F,) int in [-1, C).
    Returns: source (V',) int64 original vertex of each new vertex, vertex_labels (V',) int64 the part of
    each new vertex, new_faces (F, 3) int64 in the same face order. Within a part, vertices stay shared.
    """
    faces = np.asarray(faces, dtype=np.int64)
    lab = np.asarray(face_labels, dtype=np.int64) + 1  # -1 (unlabeled) becomes its own group 0
    stride = int(lab.max()) + 1 if len(lab) else 1
    key = faces * stride + lab[:, None]
    unique, inverse = np.unique(key.ravel(), return_inverse=True)
    return unique // stride, unique % stride - 1, inverse.reshape(faces.shape)


def result_ply_bytes(result: SegmentResult) -> bytes:
    """The colored PLY of a result (see the module docstring): original coordinates, `label` per face and
    vertex (mesh) or per point (cloud), `confidence` per face or point."""
    comments = [f"partdistill {__version__}: part labels of {result.name}"]
    comments += [f"part {i} {p}" for i, p in enumerate(result.parts)]
    xyz = result.original_vertices().astype(np.float32)
    if result.kind == "mesh":
        source, vertex_labels, faces = split_by_part(result.shape.faces, result.labels)
        vcol = colors_of(vertex_labels, result.colors)
        fcol = colors_of(result.labels, result.colors)
        vertex = [("x", xyz[source, 0]), ("y", xyz[source, 1]), ("z", xyz[source, 2])]
        vertex += [("red", vcol[:, 0]), ("green", vcol[:, 1]), ("blue", vcol[:, 2])]
        vertex += [("label", vertex_labels.astype(np.int32))]
        face = [("vertex_indices", faces.astype(np.int32))]
        face += [("red", fcol[:, 0]), ("green", fcol[:, 1]), ("blue", fcol[:, 2])]
        face += [("label", result.labels.astype(np.int32)), ("confidence", result.confidence.astype(np.float32))]
        return ply_bytes([("vertex", vertex), ("face", face)], comments)
    col = colors_of(result.labels, result.colors)
    vertex = [("x", xyz[:, 0]), ("y", xyz[:, 1]), ("z", xyz[:, 2])]
    if result.shape.normals is not None:
        nrm = result.shape.normals.astype(np.float32)
        vertex += [("nx", nrm[:, 0]), ("ny", nrm[:, 1]), ("nz", nrm[:, 2])]
    vertex += [("red", col[:, 0]), ("green", col[:, 1]), ("blue", col[:, 2])]
    vertex += [("label", result.labels.astype(np.int32)), ("confidence", result.confidence.astype(np.float32))]
    return ply_bytes([("vertex", vertex)], comments)


# ---- writing ------------------------------------------------------------------------------------------------


JOURNAL_FORMAT = "partdistill-commit/1"
JOURNAL_GLOB = ".partdistill-commit.*.json"


def write_all(writers: dict[Path, Callable[[Path], None]]) -> list[Path]:
    """Write several files of one folder all or nothing, also across a crash or a kill.

    1. Each `writers[path](tmp)` writes its content to a temporary beside `path`. If any fails, every
       temporary is deleted and nothing has changed.
    2. A journal naming each (temporary, target) pair is written into the folder (atomically). From here on
       the new set is committed.
    3. The temporaries are renamed over their targets; then the journal is deleted.

    A kill or failure during step 3 leaves the journal, and the next `write_all` into the folder (a re-run)
    or `find_results` reading it first completes the renames (`finish_writes`), so nobody reads a mix of
    old and new files. Why a journal rather than a manifest read last: the files of a set (a segment's
    ply/json/npy, an export's label and confidence arrays) are read directly by other tools, which know
    nothing of a manifest; the journal exists only while renaming. Returns the paths written.
    """
    paths = [Path(p) for p in writers]
    folder = paths[0].parent if paths else Path(".")
    if any(p.parent != folder for p in paths):
        raise ValueError("write_all writes the files of one folder")
    make_dirs(folder)
    finish_writes(folder)
    temps: list[Path] = []
    try:
        for p in paths:
            fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".part" + p.suffix, dir=folder)
            os.close(fd)
            temps.append(Path(tmp))
            writers[p](temps[-1])
            give_usual_permissions(temps[-1])
        renames = [[t.name, p.name] for t, p in zip(temps, paths, strict=True)]
        journal = folder / f".partdistill-commit.{uuid.uuid4().hex}.json"
        with atomic_path(journal) as tmp:
            tmp.write_text(json.dumps({"format": JOURNAL_FORMAT, "renames": renames}))
    except BaseException:
        for t in temps:
            t.unlink(missing_ok=True)
        raise
    _complete(journal, renames)
    return paths


def finish_writes(folder: Path) -> None:
    """Complete the renames of every interrupted `write_all` into `folder` (see there). A journal that names
    anything but a temporary and its target inside `folder` is refused (OutputError), never followed."""
    folder = Path(folder)
    for journal in sorted(folder.glob(JOURNAL_GLOB)):
        try:
            doc = json.loads(journal.read_text(encoding="utf-8"))
            renames = [(str(t), str(p)) for t, p in doc["renames"]] if doc.get("format") == JOURNAL_FORMAT else None
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            renames = None
        if renames is None or not all(_is_rename_of_ours(t, p) for t, p in renames):
            raise OutputError(f"{journal}: not a journal partdistill wrote; look at it and remove it")
        _complete(journal, renames)


def _is_rename_of_ours(tmp: str, target: str) -> bool:
    """Both plain names in the journal's folder, the first a temporary `write_all` makes for the second."""
    plain = all(n and n not in (".", "..") and "/" not in n and "\\" not in n for n in (tmp, target))
    return plain and tmp.startswith(f".{target}.") and tmp.endswith(".part" + Path(target).suffix)


def _complete(journal: Path, renames: list) -> None:
    folder = journal.parent
    for tmp, target in renames:
        try:
            os.replace(folder / tmp, folder / target)
        except FileNotFoundError:
            continue  # renamed already (by the run that wrote the journal, or by a concurrent reader)
        except OSError as exc:
            raise OutputError(
                f"{folder / target}: cannot put the new file in place ({exc.strerror or exc}); the next run "
                "writing into this folder completes the set"
            ) from exc
        RECORD.add(RECORD.files, folder / target)
    journal.unlink(missing_ok=True)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def result_json(result: SegmentResult, out_dir: Path) -> dict:
    """The content of `NAME.labels.json` for `result` written into `out_dir`."""
    inp = result.input_path
    counts = np.bincount(result.labels[result.labels >= 0], minlength=len(result.parts))
    doc = {
        "format": RESULT_FORMAT,
        "version": RESULT_VERSION,
        "partdistill": __version__,
        "name": result.name,
        "input": str(Path(inp).resolve()) if inp is not None else None,
        "input_relative": os.path.relpath(Path(inp).resolve(), Path(out_dir).resolve()) if inp else None,
        "input_sha256": file_sha256(Path(inp)) if inp is not None and Path(inp).is_file() else None,
        "kind": result.kind,
        "element": result.element,
        "count": int(len(result.labels)),
        "parts": list(result.parts),
        "colors": np.asarray(result.colors).astype(int).tolist(),
        "part_counts": {p: int(c) for p, c in zip(result.parts, counts, strict=True)},
        "coverage": float((result.labels >= 0).mean()) if len(result.labels) else 0.0,
        "labels": result.labels.astype(int).tolist(),
        "confidence": np.round(result.confidence.astype(np.float64), 4).tolist(),
        "meta": result.meta,
    }
    return doc


def output_paths(
    out_dir: Path, name: str, preview: bool = False, *, html: bool = False, explain: bool = False
) -> dict[str, Path]:
    """Where `SegmentResult.save` puts each file: "ply", "json", "npy"[, "preview"][, "html"][, "explain"]."""
    out_dir = Path(out_dir)
    paths = {
        "ply": out_dir / f"{name}.parts.ply",
        "json": out_dir / f"{name}{LABELS_SUFFIX}",
        "npy": out_dir / f"{name}.labels.npy",
    }
    if preview:
        paths["preview"] = out_dir / f"{name}.preview.png"
    if html:
        from partdistill_cli.viewer import viewer_path

        paths["html"] = viewer_path(out_dir, name)
    if explain:
        paths["explain"] = out_dir / f"{name}.explain.png"
    return paths


def _save_npy(array: np.ndarray) -> Callable[[Path], None]:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.save(f, array, allow_pickle=False)

    return write


def _save_bytes(data: bytes) -> Callable[[Path], None]:
    return lambda tmp: tmp.write_bytes(data)


def _save_image(image) -> Callable[[Path], None]:
    return lambda tmp: image.save(tmp, format="PNG")


def write_segment_outputs(
    input_path: Path,
    shape: Shape,
    labels: Labels,
    out_dir: Path,
    *,
    overwrite: bool = False,
    preview: bool = False,
    meta: dict | None = None,
    html: bool = False,
    explain: bytes | None = None,
) -> list[Path]:
    """Write a segmentation of `shape` (loaded from `input_path`) into `out_dir` (see the module docstring).

    `labels.face_labels` (F,) in file face order for meshes, `labels.point_labels` (N,) in file point order
    for clouds. Raises `OutputError` if `out_dir` is not writable, an output would replace the input, or an
    output exists and not `overwrite`; ValueError if the labels do not fit the shape. `explain` (PNG bytes of
    `preview.explain_sheet`) is written as `NAME.explain.png`; with `html`, the viewer page is written too and
    shows that sheet. Returns the paths written (ply, json, npy[, png][, html][, explain png]); nothing is
    written if any of them fails.
    """
    result = make_result(Path(input_path), shape, labels, meta)
    return result.write(out_dir, overwrite=overwrite, preview=preview, html=html, explain_png=explain)


# ---- reading ------------------------------------------------------------------------------------------------


def find_results(path: Path) -> list[Path]:
    """The `NAME.labels.json` files `path` names: itself, or those directly inside a folder (sorted)."""
    path = Path(path)
    if not path.exists():
        raise ResultError(f"{path}: no such file or folder")
    finish_writes(path if path.is_dir() else path.parent)
    if path.is_dir():
        found = sorted(p for p in path.glob(f"*{LABELS_SUFFIX}") if p.is_file())
        if not found:
            raise ResultError(f"{path}: the folder holds no segment results (*{LABELS_SUFFIX})")
        return found
    if not path.name.endswith(LABELS_SUFFIX):
        raise ResultError(f"{path}: not a segment result; expected a NAME{LABELS_SUFFIX} file or a folder of them")
    return [path]


def _read_json(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultError(f"{path}: cannot read the result ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != RESULT_FORMAT:
        raise ResultError(f"{path}: not a partdistill segment result")
    if not isinstance(doc.get("version"), int) or doc["version"] > RESULT_VERSION:
        raise ResultError(
            f"{path}: result format version {doc.get('version')} is newer than this partdistill reads "
            f"({RESULT_VERSION}); upgrade partdistill"
        )
    missing = [k for k in ("name", "kind", "parts", "colors", "labels", "confidence") if k not in doc]
    if missing:
        raise ResultError(f"{path}: the result lacks {', '.join(missing)}")
    if doc["kind"] not in ("mesh", "points"):
        raise ResultError(f"{path}: unknown kind {doc['kind']!r} (expected mesh or points)")
    return doc


def _shape_source(path: Path, doc: dict) -> Path:
    """The input recorded in the result if it is still there and unchanged, else the result's PLY."""
    candidates = []
    if doc.get("input"):
        candidates.append(Path(doc["input"]))
    if doc.get("input_relative"):
        candidates.append(path.parent / doc["input_relative"])
    for cand in candidates:
        if cand.is_file() and (doc.get("input_sha256") in (None, file_sha256(cand))):
            return cand
    ply = path.parent / f"{doc['name']}.parts.ply"
    if ply.is_file():
        return ply
    raise ResultError(
        f"{path}: cannot find the labeled shape: the input {doc.get('input')} is missing or has changed, "
        f"and {ply.name} is not beside the result"
    )


def read_result(path: Path, n_points: int = 2048, seed: int = 0) -> SegmentResult:
    """Read a segment result: `path` is a `NAME.labels.json` or a folder holding exactly one.

    The shape is loaded from the input recorded in the json if it still exists unchanged (same sha256), else
    from `NAME.parts.ply` beside the json. Meshes are re-sampled with `n_points` points and `seed`.
    Raises `ResultError` (one line) if the result is unreadable or its labels do not fit the shape.
    """
    from partdistill_cli.shapes import ShapeError, load_shape

    found = find_results(path)
    if len(found) > 1:
        raise ResultError(f"{path}: the folder holds {len(found)} results; name one NAME{LABELS_SUFFIX} file")
    path = found[0]
    doc = _read_json(path)
    name = doc["name"]
    # The name becomes output file names (NAME.glb, ...): anything but a plain file name could write elsewhere.
    if not isinstance(name, str) or name in ("", ".", "..") or any(c in name for c in "/\\\0"):
        raise ResultError(f"{path}: the result's name {name!r} is not a plain file name")
    parts = [str(p) for p in doc["parts"]]
    try:
        labels = np.asarray(doc["labels"], dtype=np.int64)
        confidence = np.asarray(doc["confidence"], dtype=np.float32)
        colors = np.asarray(doc["colors"], dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise ResultError(f"{path}: labels, confidence or colors are not numbers ({exc})") from exc
    if not parts:
        raise ResultError(f"{path}: the result names no parts")
    if labels.ndim != 1 or len(labels) == 0:
        raise ResultError(f"{path}: the result holds no labels")
    if labels.min() < -1 or labels.max() >= len(parts):
        raise ResultError(f"{path}: labels must lie in [-1, {len(parts)}) for {len(parts)} parts")
    if confidence.shape != labels.shape:
        raise ResultError(f"{path}: {len(confidence)} confidences for {len(labels)} labels")
    if colors.shape != (len(parts), 3) or colors.min() < 0 or colors.max() > 255:
        raise ResultError(f"{path}: expected {len(parts)} RGB colors in 0..255")
    source = _shape_source(path, doc)
    try:
        shape = load_shape(source, n_points=n_points, seed=seed)
    except ShapeError as exc:
        raise ResultError(f"{path}: cannot load its shape: {exc}") from exc
    kind = "mesh" if shape.is_mesh else "points"
    if kind != doc["kind"]:
        raise ResultError(f"{path}: the result labels a {doc['kind']} but {source} holds a {kind}")
    expected = len(shape.faces) if shape.is_mesh else shape.n_points
    if len(labels) != expected:
        element = "faces" if shape.is_mesh else "points"
        raise ResultError(
            f"{path}: labels of the wrong length: {len(labels)} labels, {source} has {expected} {element}"
        )
    inp = Path(doc["input"]) if doc.get("input") else None
    meta = doc.get("meta") if isinstance(doc.get("meta"), dict) else {}
    return SegmentResult(name, kind, shape, parts, colors.astype(np.uint8), labels, confidence, inp, meta, path, source)
