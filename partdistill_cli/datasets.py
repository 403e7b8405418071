"""Labelled data sets: ShapeNetPart text clouds, labelled-mesh folders and PartNet-Mobility objects.

Every loader returns `LabeledShape`s: a normalised `Shape` plus ground-truth labels that index into the
shape's ordered part list. Meshes keep their faces in file order, so per-face labels stay aligned; their
evaluation points are `n_points` seeded area-weighted surface samples labelled by the face they lie on.
Point clouds keep all their points in file order (`n_points` does not apply).

Formats (DESIGN.md section 6):
- ``shapenetpart``: text files, one point per line, ``x y z [nx ny nz] label``; the label is a global
  ShapeNetPart id (0-49) or a local one (0..C-1). The category comes from the folder name (a synset such as
  ``03001627``) or the file name (``chair.txt``). The original v0 layout, ``<synset>/points/<id>.pts`` +
  ``<synset>/points_label/<id>.seg`` (1-based local labels, 0 = none), is read too.
- ``labeled-mesh``: ``meta.json`` ``{"category": ..., "parts": [...]}`` beside ``NAME.{obj,ply,glb,off,...}`` +
  ``NAME.face_labels.npy`` (meshes) or ``NAME.{ply,npy,txt,...}`` + ``NAME.point_labels.npy`` (clouds).
- ``partnet-mobility``: an object folder with per-part OBJs in ``textured_objs/`` and either our
  ``parts.json`` (a PartNetE name per OBJ) or PartNet's ``result.json`` part tree + ``meta.json``.
- ``partnete``: PartSLIP's PartNet-Ensembled release, ``<Category>/<id>/pc.ply`` (a colored point cloud) +
  ``label.npy`` (a pickled dict whose ``semantic_seg`` indexes the category's PartNetE part list, -1 = none;
  read by an unpickler that rebuilds numpy arrays and nothing else).
A folder that holds several data sets (e.g. one folder per synset or per object) is read recursively.
"""

from __future__ import annotations

import functools
import importlib
import json
import pickle
import re
from collections.abc import Collection
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import numpy as np

from partdistill_cli.errors import UserError
from partdistill_cli.shapes import (
    CLOUD_SUFFIXES,
    MESH_SUFFIXES,
    Shape,
    ShapeError,
    from_mesh,
    from_points,
    load_shape,
    read_mesh,
)

FORMATS = ("auto", "shapenetpart", "labeled-mesh", "partnet-mobility", "partnete")
FACE_LABELS_SUFFIX = ".face_labels.npy"
POINT_LABELS_SUFFIX = ".point_labels.npy"
SHAPENETPART_SUFFIXES = (".txt",)
# The official ShapeNetPart archive keeps this index of categories beside the synset folders.
SHAPENETPART_INDEX = "synsetoffset2category.txt"
PARTNETE_CLOUD, PARTNETE_LABELS = "pc.ply", "label.npy"
MAX_DEPTH = 4

# How PartNet node names map to PartNetE part names (the rule described in shared/data/README.md, used to
# label PartNet-Mobility objects that come without our parts.json).
PARTNETE_SYNONYMS = {
    "cabinet_door": "door",
    "rotation_door": "door",
    "outside_frame": "frame",
    "foot_pad": "footpedal",
    "rotation_lid": "lid",
    "translation_lid": "lid",
    "rotation": "window",
    "translation": "window",
    "control_button": "button",
    "display_panel": "display",
}


class DatasetError(UserError, ValueError):
    """A data set cannot be read; the message names the file and what is wrong with it."""


@dataclass
class LabeledShape:
    """A shape with ground-truth part labels.

    Attributes:
        shape: the normalised `Shape`; `shape.points` are the evaluation points.
        point_labels: (N,) int64 label of each of `shape.points`, an index into `parts`; -1 = none of them.
        face_labels: (F,) int64 label per face in file order for meshes (-1 allowed), None for clouds.
        category: the object category (e.g. "Chair").
        parts: ordered part names; label i means parts[i].
        name: a name for reports (the file stem or object id).
    """

    shape: Shape
    point_labels: np.ndarray
    face_labels: np.ndarray | None
    category: str
    parts: list[str]
    name: str

    def __post_init__(self) -> None:
        self.point_labels = np.asarray(self.point_labels, dtype=np.int64)
        if self.point_labels.shape != (self.shape.n_points,):
            raise DatasetError(f"{self.name}: {len(self.point_labels)} point labels for {self.shape.n_points} points")
        if self.face_labels is not None:
            self.face_labels = np.asarray(self.face_labels, dtype=np.int64)
            n_faces = 0 if self.shape.faces is None else len(self.shape.faces)
            if self.face_labels.shape != (n_faces,):
                raise DatasetError(f"{self.name}: {len(self.face_labels)} face labels for {n_faces} faces")

    @property
    def primitive_labels(self) -> np.ndarray:
        """(F,) face labels for meshes, else (N,) point labels: what the simulated teacher renders."""
        return self.face_labels if self.face_labels is not None else self.point_labels


# ---------------------------------------------------------------------------------------------------------
# Part vocabularies


@functools.cache
def _asset_json(name: str) -> dict:
    return json.loads(resources.files("partdistill_cli.assets").joinpath(name).read_text())


def shapenetpart_vocabulary() -> dict[str, dict]:
    """ShapeNetPart categories: {Category: {"synset": "02691156", "pid_start": int, "parts": [...]}}."""
    return _asset_json("shapenetpart_parts.json")["categories"]


def partnete_vocabulary() -> dict[str, list[str]]:
    """PartNetE categories (45): {Category: [part names]}."""
    return _asset_json("partnete_parts.json")["categories"]


def _find_key(table: dict, key: str) -> str | None:
    lowered = key.strip().lower()
    return next((k for k in table if k.lower() == lowered), None)


def default_parts(category: str, vocabulary: str = "auto") -> list[str] | None:
    """The shipped part list of `category` (case-insensitive), or None when no vocabulary has it.

    `vocabulary` is "shapenetpart", "partnete" or "auto" (ShapeNetPart first, the paper's main benchmark,
    then PartNetE). A ShapeNetPart synset id (e.g. "03001627") is accepted as a category too.
    """
    if vocabulary not in ("auto", "shapenetpart", "partnete"):
        raise DatasetError(f"unknown vocabulary {vocabulary!r} (choose auto, shapenetpart or partnete)")
    if vocabulary in ("auto", "shapenetpart"):
        name = shapenetpart_category(category)
        if name is not None:
            return list(shapenetpart_vocabulary()[name]["parts"])
    if vocabulary in ("auto", "partnete"):
        key = _find_key(partnete_vocabulary(), category)
        if key is not None:
            return list(partnete_vocabulary()[key])
    return None


def shapenetpart_category(name: str) -> str | None:
    """The ShapeNetPart category named by `name`: a category name (any case) or a synset id, else None."""
    vocab = shapenetpart_vocabulary()
    key = _find_key(vocab, name)
    if key is not None:
        return key
    if name.isdigit():
        return next((c for c, v in vocab.items() if int(v["synset"]) == int(name)), None)
    return None


# ---------------------------------------------------------------------------------------------------------
# Entry point


def load_dataset(
    path: str | Path,
    fmt: str = "auto",
    category: str | None = None,
    parts: list[str] | None = None,
    n_points: int = 2048,
    seed: int = 0,
    keep: Collection[str] | None = None,
) -> list[LabeledShape]:
    """Load every labelled shape under `path` (a folder, a folder of data sets, or a single file).

    Args:
        path: data set folder or file.
        fmt: "auto" (detected from the content), "shapenetpart", "labeled-mesh", "partnet-mobility" or
            "partnete".
        category: keep only shapes of this category (case-insensitive).
        parts: replace the part names (the same number of parts, in label order).
        n_points: surface samples per mesh; point clouds keep all their points.
        seed: seed of the meshes' surface sampling (the same seed gives the same points).
        keep: keep only the shapes of these names (a split, see `read_split`); ShapeNetPart files not
            listed are not even read.
    Returns shapes in a stable order (sorted file names). Raises `DatasetError` on any problem.
    """
    path = Path(path)
    if fmt not in FORMATS:
        raise DatasetError(f"unknown data set format {fmt!r} (choose from {', '.join(FORMATS)})")
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    if n_points < 1:
        raise DatasetError(f"n_points must be at least 1, got {n_points}")
    if path.is_dir() and not any(path.iterdir()):
        raise DatasetError(f"{path}: the folder is empty")
    sources = _collect(path, fmt, 0)
    if not sources:
        if fmt == "auto":
            raise DatasetError(
                f"{path}: cannot tell the data set format (expected ShapeNetPart .txt files, a labelled-mesh "
                f"folder with meta.json, or PartNet-Mobility objects with parts.json / result.json)"
            )
        raise DatasetError(f"{path}: no {fmt} data found")
    keep = None if keep is None else set(keep)
    loaders = {
        "shapenetpart": functools.partial(_load_shapenetpart, keep=keep),
        "labeled-mesh": _load_labeled_mesh,
        "partnet-mobility": _load_partnet_mobility,
        "partnete": _load_partnete,
    }
    shapes: list[LabeledShape] = []
    for kind, source in sources:
        try:
            shapes += loaders[kind](source, category, n_points, seed)
        except ShapeError as exc:
            raise DatasetError(str(exc)) from exc
    if category is not None:
        shapes = [s for s in shapes if s.category.lower() == category.strip().lower()]
        if not shapes:
            raise DatasetError(f"{path}: no shapes of category {category!r}")
    if keep is not None:
        shapes = [s for s in shapes if s.name in keep]
        if not shapes:
            raise DatasetError(f"{path}: none of its shapes is in the split")
    if not shapes:
        raise DatasetError(f"{path}: no labelled shapes found")
    if parts is not None:
        shapes = [_rename_parts(s, parts) for s in shapes]
    return shapes


def _rename_parts(s: LabeledShape, parts: list[str]) -> LabeledShape:
    parts = [str(p) for p in parts]
    if len(parts) != len(s.parts):
        raise DatasetError(
            f"{s.name}: {len(parts)} part names given ({', '.join(parts)}) but its labels have "
            f"{len(s.parts)} parts ({', '.join(s.parts)})"
        )
    return replace(s, parts=parts)


# ---------------------------------------------------------------------------------------------------------
# Format detection


def _looks_like(path: Path, fmt: str) -> bool:
    """Whether `path` (a file, or a folder that is itself one data set) holds data of format `fmt`."""
    if path.is_file():
        if fmt == "partnet-mobility":
            return path.name == "parts.json"
        if fmt == "partnete":
            return path.name == PARTNETE_CLOUD and (path.parent / PARTNETE_LABELS).is_file()
        if fmt == "labeled-mesh":
            return _label_file(path) is not None
        seg = path.parent.parent / "points_label" / f"{path.stem}.seg"
        return path.suffix.lower() in SHAPENETPART_SUFFIXES or (path.suffix == ".pts" and seg.is_file())
    if fmt == "partnet-mobility":
        return (path / "parts.json").is_file() or (
            (path / "result.json").is_file() and (path / "textured_objs").is_dir()
        )
    if fmt == "labeled-mesh":
        return (path / "meta.json").is_file()
    if fmt == "partnete":
        return (path / PARTNETE_CLOUD).is_file() and (path / PARTNETE_LABELS).is_file()
    if (path / "points").is_dir() and (path / "points_label").is_dir():
        return True
    return any(_is_shapenetpart_file(p) for p in path.iterdir())


def _is_shapenetpart_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in SHAPENETPART_SUFFIXES and path.name != SHAPENETPART_INDEX


def _detect(path: Path) -> str | None:
    # PartNet-Mobility objects hold a meta.json too, and labelled-mesh folders may hold .txt clouds, so the
    # most specific layout is tried first.
    return next(
        (f for f in ("partnet-mobility", "partnete", "labeled-mesh", "shapenetpart") if _looks_like(path, f)), None
    )


def _collect(path: Path, fmt: str, depth: int) -> list[tuple[str, Path]]:
    """(format, path) of every data set at or below `path`; a data set's own subfolders are not searched."""
    kind = _detect(path) if fmt == "auto" else (fmt if _looks_like(path, fmt) else None)
    if kind is not None:
        return [(kind, path)]
    if path.is_file() or depth >= MAX_DEPTH:
        return []
    out: list[tuple[str, Path]] = []
    for sub in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
        out += _collect(sub, fmt, depth + 1)
    return out


# ---------------------------------------------------------------------------------------------------------
# ShapeNetPart


def _load_shapenetpart(
    path: Path, category: str | None, n_points: int, seed: int, keep: set[str] | None = None
) -> list[LabeledShape]:
    if path.is_dir() and (path / "points").is_dir() and (path / "points_label").is_dir():
        files = sorted((path / "points").glob("*.pts"))
    else:
        files = [path] if path.is_file() else sorted(p for p in path.iterdir() if _is_shapenetpart_file(p))
    if keep is not None:
        files = [f for f in files if f.stem in keep]
    out = []
    for f in files:
        name = _shapenetpart_file_category(f, category)
        if category is not None and name.lower() != category.strip().lower():
            continue
        out.append(_read_shapenetpart_v0(f, name) if f.suffix == ".pts" else _read_shapenetpart_file(f, name))
    return out


def _shapenetpart_file_category(path: Path, category: str | None) -> str:
    for candidate in (path.parent.name, path.parent.parent.name, path.stem):
        found = shapenetpart_category(candidate)
        if found is not None:
            return found
    if category is not None and shapenetpart_category(category) is not None:
        return shapenetpart_category(category)
    raise DatasetError(
        f"{path}: cannot tell its ShapeNetPart category: name the file or its folder after the category "
        f"(e.g. chair.txt) or its synset (e.g. 03001627/), or pass the category"
    )


def _read_shapenetpart_file(path: Path, category: str) -> LabeledShape:
    try:
        rows = np.loadtxt(path, dtype=np.float64, ndmin=2, comments="#")
    except ValueError as exc:
        raise DatasetError(f"{path}: not a ShapeNetPart text file of numbers ({exc})") from exc
    if rows.shape[0] == 0:
        raise DatasetError(f"{path}: the file holds no points")
    if rows.shape[1] not in (4, 7):
        raise DatasetError(
            f"{path}: expected 4 (x y z label) or 7 (x y z nx ny nz label) numbers per line, got {rows.shape[1]}"
        )
    raw = rows[:, -1]
    if not np.all(raw == np.round(raw)):
        raise DatasetError(f"{path}: the last column must hold integer part labels")
    raw = raw.astype(np.int64)
    entry = shapenetpart_vocabulary()[category]
    n_parts, start = len(entry["parts"]), int(entry["pid_start"])
    if raw.min() >= start and raw.max() < start + n_parts:
        labels = raw - start
    elif raw.min() >= 0 and raw.max() < n_parts:
        labels = raw
    else:
        raise DatasetError(
            f"{path}: labels {sorted(set(raw.tolist()))[:8]} fit neither {category}'s global ids "
            f"{start}..{start + n_parts - 1} nor its local ids 0..{n_parts - 1}"
        )
    normals = rows[:, 3:6] if rows.shape[1] == 7 else None
    shape = from_points(rows[:, :3], normals, name=path.stem, source=path)
    return LabeledShape(shape, labels, None, category, list(entry["parts"]), path.stem)


def _read_shapenetpart_v0(path: Path, category: str) -> LabeledShape:
    """The original v0 layout: <synset>/points/<id>.pts (x y z) + <synset>/points_label/<id>.seg (1-based)."""
    seg = path.parent.parent / "points_label" / f"{path.stem}.seg"
    if not seg.is_file():
        raise DatasetError(f"{path}: no labels at {seg}")
    try:
        xyz = np.loadtxt(path, dtype=np.float64, ndmin=2)
        raw = np.loadtxt(seg, dtype=np.int64, ndmin=1)
    except ValueError as exc:
        raise DatasetError(f"{path}: cannot read the points or their .seg labels ({exc})") from exc
    if xyz.shape[1] != 3 or raw.ndim != 1 or len(raw) != len(xyz):
        raise DatasetError(f"{seg}: {len(raw)} labels for {len(xyz)} points in {path.name}")
    parts = list(shapenetpart_vocabulary()[category]["parts"])
    if raw.min() < 0 or raw.max() > len(parts):
        raise DatasetError(f"{seg}: labels must lie in 1..{len(parts)} ({category}), 0 = none")
    shape = from_points(xyz, None, name=path.stem, source=path)
    return LabeledShape(shape, raw - 1, None, category, parts, path.stem)


# ---------------------------------------------------------------------------------------------------------
# Labelled-mesh folders


def _label_file(path: Path) -> Path | None:
    """The labels file beside shape file `path` (NAME.face_labels.npy or NAME.point_labels.npy), if any."""
    if path.name.endswith((FACE_LABELS_SUFFIX, POINT_LABELS_SUFFIX)) or path.name == "meta.json":
        return None
    for suffix in (FACE_LABELS_SUFFIX, POINT_LABELS_SUFFIX):
        candidate = path.with_name(path.stem + suffix)
        if candidate.is_file():
            return candidate
    return None


def read_meta(folder: Path) -> tuple[str, list[str]]:
    """(category, parts) from a labelled-mesh folder's meta.json."""
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        raise DatasetError(f"{folder}: no meta.json (a labelled-mesh folder needs {{'category', 'parts'}})")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{meta_path}: bad meta.json, not valid JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise DatasetError(f"{meta_path}: bad meta.json, expected an object {{'category': ..., 'parts': [...]}}")
    category, parts = meta.get("category"), meta.get("parts")
    if not isinstance(category, str) or not category.strip():
        raise DatasetError(f"{meta_path}: bad meta.json, 'category' must be a non-empty string")
    if not isinstance(parts, list) or not parts or not all(isinstance(p, str) and p.strip() for p in parts):
        raise DatasetError(f"{meta_path}: bad meta.json, 'parts' must be a non-empty list of part names")
    if len(set(parts)) != len(parts):
        raise DatasetError(f"{meta_path}: bad meta.json, 'parts' lists a name twice")
    return category, parts


def _load_labeled_mesh(path: Path, category: str | None, n_points: int, seed: int) -> list[LabeledShape]:
    folder = path.parent if path.is_file() else path
    cat, parts = read_meta(folder)
    if category is not None and cat.lower() != category.strip().lower():
        return []
    if path.is_file():
        files = [path]
    else:
        files = sorted(
            p
            for p in folder.iterdir()
            if p.is_file()
            and p.suffix.lower() in MESH_SUFFIXES | CLOUD_SUFFIXES
            and not p.name.endswith((FACE_LABELS_SUFFIX, POINT_LABELS_SUFFIX))
        )
    out = []
    for f in files:
        labels_path = _label_file(f)
        if labels_path is None:
            raise DatasetError(
                f"{f}: no labels beside it (expected {f.stem}{FACE_LABELS_SUFFIX} for a mesh or "
                f"{f.stem}{POINT_LABELS_SUFFIX} for a point cloud)"
            )
        labels = _read_labels(labels_path, len(parts))
        if labels_path.name.endswith(FACE_LABELS_SUFFIX):
            vertices, faces = read_mesh(f)
            if len(labels) != len(faces):
                raise DatasetError(
                    f"{labels_path}: {len(labels)} labels but {f.name} has {len(faces)} faces "
                    f"(one label per face, in file order)"
                )
            shape = from_mesh(vertices, faces, n_points, seed, name=f.stem, source=f)
            out.append(LabeledShape(shape, labels[shape.face_ids], labels, cat, list(parts), f.stem))
        else:
            shape = load_shape(f, n_points, seed)
            if shape.is_mesh:
                raise DatasetError(
                    f"{f}: the file is a mesh with faces; label it with {f.stem}{FACE_LABELS_SUFFIX} "
                    f"instead of {labels_path.name}"
                )
            if len(labels) != shape.n_points:
                raise DatasetError(f"{labels_path}: {len(labels)} labels but {f.name} has {shape.n_points} points")
            out.append(LabeledShape(shape, labels, None, cat, list(parts), f.stem))
    return out


def _read_labels(path: Path, n_parts: int) -> np.ndarray:
    try:
        labels = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read the labels ({exc})") from exc
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(f"{path}: expected a 1-D integer array, got {labels.dtype} {labels.shape}")
    labels = labels.astype(np.int64)
    if len(labels) and (labels.min() < -1 or labels.max() >= n_parts):
        raise DatasetError(
            f"{path}: labels must lie in -1..{n_parts - 1} (meta.json lists {n_parts} parts), "
            f"found {labels.min()}..{labels.max()}"
        )
    return labels


# ---------------------------------------------------------------------------------------------------------
# PartNet-Mobility


def _load_partnet_mobility(path: Path, category: str | None, n_points: int, seed: int) -> list[LabeledShape]:
    folder = path.parent if path.is_file() else path
    if (folder / "parts.json").is_file():
        cat, parts, objs = _partnet_parts_json(folder)
    else:
        cat, parts, objs = _partnet_result_json(folder)
    if category is not None and cat.lower() != category.strip().lower():
        return []
    shape, face_counts = _merge_part_meshes(folder, [obj for obj, _ in objs], n_points, seed)
    face_labels = np.repeat(np.array([label for _, label in objs], dtype=np.int64), face_counts)
    return [LabeledShape(shape, face_labels[shape.face_ids], face_labels, cat, parts, folder.name)]


def _merge_part_meshes(folder: Path, obj_files: list[str], n_points: int, seed: int) -> tuple[Shape, list[int]]:
    """One mesh `Shape` named after `folder` of its part OBJs, concatenated in the order given (faces in each
    file's order), and each part's face count."""
    vertices, faces, counts, offset = [], [], [], 0
    for obj_file in obj_files:
        v, f = read_mesh(folder / obj_file)
        vertices.append(v)
        faces.append(f + offset)
        counts.append(len(f))
        offset += len(v)
    shape = from_mesh(np.concatenate(vertices), np.concatenate(faces), n_points, seed, name=folder.name, source=folder)
    return shape, counts


def is_object_folder(path: str | Path) -> bool:
    """Whether `path` is a PartNet-Mobility object folder, which `load_source` reads as one shape."""
    path = Path(path)
    return path.is_dir() and _looks_like(path, "partnet-mobility")


def load_source(path: str | Path, n_points: int = 2048, seed: int = 0) -> Shape:
    """A shape to segment or render: a mesh or point-cloud file (`shapes.load_shape`), or a PartNet-Mobility
    object folder (parts.json, or result.json + textured_objs/), its part meshes merged as `evaluate` reads them
    (same face order, same samples), named after the folder. Raises ShapeError / DatasetError (UserErrors)."""
    path = Path(path)
    if not path.is_dir():
        return load_shape(path, n_points=n_points, seed=seed)
    if (path / "parts.json").is_file():
        objs = [obj for obj, _ in _partnet_parts_json(path)[2]]
    elif _looks_like(path, "partnet-mobility"):
        objs = [f"textured_objs/{o}.obj" for _, names in _partnet_leaves(path) for o in names]
    else:
        raise ShapeError(
            f"{path}: is a folder, expected a shape file or a PartNet-Mobility object folder (parts.json, or "
            "result.json beside textured_objs/)"
        )
    return _merge_part_meshes(path, objs, n_points, seed)[0]


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read the JSON ({exc})") from exc


def _partnet_parts_json(folder: Path) -> tuple[str, list[str], list[tuple[str, int]]]:
    """From our parts.json: category, the PartNetE part list and (OBJ file, label) in parts.json order."""
    data = _read_json(folder / "parts.json")
    try:
        category, parts = str(data["category"]), [str(p) for p in data["partnete_part_names"]]
        objs = []
        for name, entry in data["objs"].items():
            label = entry.get("partnete_label")
            if label is not None and label not in parts:
                raise DatasetError(f"{folder / 'parts.json'}: OBJ {name} has label {label!r}, not in {parts}")
            objs.append((entry.get("file", f"textured_objs/{name}.obj"), -1 if label is None else parts.index(label)))
    except (KeyError, TypeError, AttributeError) as exc:
        raise DatasetError(f"{folder / 'parts.json'}: missing or malformed entry ({exc})") from exc
    if not objs:
        raise DatasetError(f"{folder / 'parts.json'}: lists no OBJ files")
    return category, parts, objs


def _partnet_leaves(folder: Path) -> list[tuple[list[str], list[str]]]:
    """The leaves of PartNet's result.json part tree that list OBJ files, in document order: (node names from
    the root down, OBJ names)."""
    tree = _read_json(folder / "result.json")
    leaves: list[tuple[list[str], list[str]]] = []

    def walk(node: dict, names: list[str]) -> None:
        names = names + [str(node.get("name", ""))]
        if node.get("objs"):
            leaves.append((names, list(node["objs"])))
        for child in node.get("children", []) or []:
            walk(child, names)

    try:
        for root in tree if isinstance(tree, list) else [tree]:
            walk(root, [])
    except (AttributeError, TypeError) as exc:
        raise DatasetError(f"{folder / 'result.json'}: malformed part tree ({exc})") from exc
    if not leaves:
        raise DatasetError(f"{folder / 'result.json'}: no leaf lists OBJ files")
    return leaves


def _partnet_result_json(folder: Path) -> tuple[str, list[str], list[tuple[str, int]]]:
    """From PartNet's result.json + meta.json: leaves labelled by the PartNetE rule (see PARTNETE_SYNONYMS).

    When the category has no PartNetE list, the leaf names themselves become the parts.
    """
    meta = _read_json(folder / "meta.json") if (folder / "meta.json").is_file() else {}
    category = meta.get("model_cat") if isinstance(meta, dict) else None
    if not category:
        raise DatasetError(f"{folder}: meta.json with 'model_cat' is needed to know the object's category")
    leaves = _partnet_leaves(folder)
    key = _find_key(partnete_vocabulary(), category)
    if key is not None:
        parts = list(partnete_vocabulary()[key])

        def label_of(names: list[str]) -> int:
            for n in reversed(names):
                n = PARTNETE_SYNONYMS.get(n, n)
                if n in parts:
                    return parts.index(n)
            return -1
    else:
        parts = list(dict.fromkeys(names[-1] for names, _ in leaves))

        def label_of(names: list[str]) -> int:
            return parts.index(names[-1])

    objs = [(f"textured_objs/{o}.obj", label_of(names)) for names, obj_names in leaves for o in obj_names]
    return str(key or category), parts, objs


# ---------------------------------------------------------------------------------------------------------
# PartNetE (PartSLIP's PartNet-Ensembled)

# The only objects a PartNetE label file may rebuild: numpy arrays (and their dtypes) inside plain containers.
_ARRAY_GLOBALS = {
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """Reads a pickle that holds numpy arrays in dicts, lists and tuples, and refuses any other object, so a
    crafted file cannot name a function to call (the guard `torch.load(weights_only=True)` puts on checkpoints).
    Written here because PartNetE stores its labels as a pickled dict, which `np.load` reads only with
    `allow_pickle=True`, that is by running whatever the file names."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ARRAY_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to rebuild {module}.{name}: only numpy arrays are read")
        return getattr(importlib.import_module(module), name)


def read_partnete_labels(path: Path, n_parts: int) -> np.ndarray:
    """(N,) int64 part labels of a PartNetE `label.npy`: its "semantic_seg" entry, -1 for no part.

    The file is a .npy of a pickled dict (or a plain integer array); see `_ArrayUnpickler` for how it is read
    safely. Raises `DatasetError` for any other content or for labels outside -1..n_parts-1.
    """
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            _, _, dtype = np.lib.format.read_array_header_1_0(f) if version == (1, 0) else (
                np.lib.format.read_array_header_2_0(f)
            )  # fmt: skip
            if dtype.hasobject:
                content = _ArrayUnpickler(f).load()
                content = content.item() if isinstance(content, np.ndarray) and content.shape == () else content
            else:
                content = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, pickle.UnpicklingError, AttributeError, ImportError) as exc:
        raise DatasetError(f"{path}: not a PartNetE label file ({exc})") from exc
    labels = content.get("semantic_seg") if isinstance(content, dict) else content
    if not isinstance(labels, np.ndarray) or labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(f"{path}: expected 'semantic_seg', a 1-D integer array of part labels")
    labels = labels.astype(np.int64)
    if len(labels) and (labels.min() < -1 or labels.max() >= n_parts):
        raise DatasetError(f"{path}: labels must lie in -1..{n_parts - 1}, found {labels.min()}..{labels.max()}")
    return labels


def _load_partnete(path: Path, category: str | None, n_points: int, seed: int) -> list[LabeledShape]:
    folder = path.parent if path.is_file() else path
    cat = _find_key(partnete_vocabulary(), folder.parent.name)
    if cat is None:
        raise DatasetError(
            f"{folder}: a PartNetE object sits in a folder named after its category (e.g. Chair/179), and "
            f"{folder.parent.name!r} is not one of the 45 PartNetE categories"
        )
    if category is not None and cat.lower() != category.strip().lower():
        return []
    parts = list(partnete_vocabulary()[cat])
    shape = replace(load_shape(folder / PARTNETE_CLOUD, n_points, seed), name=folder.name)
    if shape.is_mesh:
        raise DatasetError(f"{folder / PARTNETE_CLOUD}: expected a point cloud, found a mesh")
    labels = read_partnete_labels(folder / PARTNETE_LABELS, len(parts))
    if len(labels) != shape.n_points:
        raise DatasetError(f"{folder / PARTNETE_LABELS}: {len(labels)} labels for {shape.n_points} points")
    return [LabeledShape(shape, labels, None, cat, parts, folder.name)]


def read_split(path: str | Path) -> set[str]:
    """The shape names a split file lists: a JSON list of strings (ShapeNetPart's
    `shuffled_test_file_list.json`, entries "shape_data/<synset>/<id>") or a text file of one entry per line.
    An entry names the shape by its last "/" or whitespace separated part (the file stem or object id)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read the split ({exc})") from exc
    try:
        entries = json.loads(text)
    except json.JSONDecodeError:
        entries = text.splitlines()
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise DatasetError(f"{path}: a split is a JSON list of strings or one entry per line")
    names = {re.split(r"[/\\\s]+", e.strip())[-1] for e in entries if e.strip()}
    if not names:
        raise DatasetError(f"{path}: the split lists no shapes")
    return names
