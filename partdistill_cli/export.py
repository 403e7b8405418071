"""`partdistill export`: turn segment results into files other tools read.

Formats of a result (`NAME.labels.json`, see `outputs.py`), written into the output folder:

- `glb`: `NAME.glb`, one scene node per part named by the part, each with its own material color, in the
  input's original coordinates (clouds: one colored point cloud per part).
- `ply`: `NAME.ply`, the colored mesh / cloud with int `label` and float `confidence` per face (mesh) or
  point (cloud), as `NAME.parts.ply`.
- `obj`: `NAME.obj` + `NAME.mtl`, the mesh in its face order with one material per part (clouds: colored
  vertices).
- `parts`: `NAME.<part>.obj`, one mesh per part holding that part's faces only, vertices re-indexed
  (clouds: `NAME.<part>.ply`); unlabeled faces or points go to `NAME.unlabeled.*`.
- `json` / `npy` / `csv`: labels and confidences for code (`NAME.json`; `NAME.labels.npy` int64 and
  `NAME.confidence.npy` float32; `NAME.csv` one row per face or point).
- `png`: `NAME.preview.png`, the preview sheet.
- `html`: `NAME.viewer.html`, a self-contained page that shows the result in 3D in any browser
  (`partdistill_cli.viewer`); a folder of results also gets `index.html`, a grid of thumbnails linking to
  each page.

A trained student exports as `torchscript` (`NAME.torchscript.pt`) or `onnx` (`NAME.onnx`), each with a JSON
card (`NAME.torchscript.json` / `NAME.onnx.json`: parts, input and output layout, settings, history). The
exported network must reproduce the student's logits on sample clouds within 1e-4, or nothing is written.

Label arrays keep the mesh's face order or the cloud's point order. All files of one export are written
together or not at all (`outputs.write_all`).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from partdistill_cli.console import counted
from partdistill_cli.errors import UserError
from partdistill_cli.io_utils import check_not_overwriting, check_writable_dir
from partdistill_cli.outputs import (
    LABELS_SUFFIX,
    UNLABELED_COLOR,
    SegmentResult,
    colors_of,
    find_results,
    one_line,
    ply_bytes,
    read_result,
    result_ply_bytes,
    write_all,
)

RESULT_FORMATS = ("glb", "ply", "obj", "parts", "json", "npy", "csv", "png", "html")
STUDENT_FORMATS = ("torchscript", "onnx")
FORMATS = RESULT_FORMATS + STUDENT_FORMATS
UNLABELED_PART = "unlabeled"

Writers = dict[Path, Callable[[Path], None]]


class ExportError(UserError, ValueError):
    """An export cannot be made (unknown format, unsuitable source)."""


def check_format(fmt: str) -> str:
    """`fmt` lower-cased if it is a known export format, else ExportError naming the choices."""
    f = str(fmt).strip().lower()
    if f not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return f


def file_names(parts: list[str]) -> list[str]:
    """A distinct, file-name-safe word for each part name (characters other than letters, digits, - and _
    become _), plus `UNLABELED_PART` last for unlabeled faces or points."""
    out: list[str] = []
    for i, part in enumerate([*parts, UNLABELED_PART]):
        word = re.sub(r"[^\w\-]+", "_", part).strip("_") or f"part{i}"
        while word.lower() in {w.lower() for w in out}:
            word = f"{word}_{i}"
        out.append(word)
    return out


def part_submesh(vertices: np.ndarray, faces: np.ndarray, select: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The faces `select` (bool (F,) or indices) of a mesh with only the vertices they use, re-indexed.

    Returns (vertices (V', 3), faces (F', 3) int64); faces keep their relative order.
    """
    sub = np.asarray(faces, dtype=np.int64)[select]
    used, inverse = np.unique(sub.ravel(), return_inverse=True)
    return np.asarray(vertices)[used], inverse.reshape(sub.shape)


def _groups(result: SegmentResult) -> list[tuple[int, str, np.ndarray]]:
    """(label, file-safe name, (M,) bool selection) of every part present in the result, unlabeled last."""
    names = file_names(result.parts)
    out = []
    for label in [*range(len(result.parts)), -1]:
        sel = result.labels == label
        if sel.any():
            out.append((label, names[label] if label >= 0 else names[-1], sel))
    return out


def _part_name(result: SegmentResult, label: int) -> str:
    return result.parts[label] if label >= 0 else UNLABELED_PART


def _color(result: SegmentResult, label: int) -> tuple[int, int, int]:
    return tuple(int(c) for c in (result.colors[label] if label >= 0 else UNLABELED_COLOR))


def glb_bytes(result: SegmentResult) -> bytes:
    """A binary glTF scene: one node (and geometry) per present part, named by the part, with its color."""
    import trimesh
    from trimesh.visual.material import PBRMaterial

    xyz = result.original_vertices()
    scene = trimesh.Scene()
    for label, _, sel in _groups(result):
        name = _part_name(result, label)
        rgba = [*_color(result, label), 255]
        if result.kind == "mesh":
            v, f = part_submesh(xyz, result.shape.faces, sel)
            geom = trimesh.Trimesh(v, f, process=False, validate=False)
            geom.visual = trimesh.visual.TextureVisuals(
                material=PBRMaterial(name=name, baseColorFactor=rgba, metallicFactor=0.0, roughnessFactor=0.8)
            )
        else:
            geom = trimesh.PointCloud(xyz[sel], colors=np.tile(rgba, (int(sel.sum()), 1)).astype(np.uint8))
        scene.add_geometry(geom, node_name=name, geom_name=name)
    return scene.export(file_type="glb")


def _fmt_rows(array: np.ndarray, prefix: str, fmt: str) -> str:
    if len(array) == 0:
        return ""
    buf = io.StringIO()
    np.savetxt(buf, array, fmt=fmt, delimiter=" ")
    return "".join(prefix + line + "\n" for line in buf.getvalue().splitlines())


def obj_text(
    vertices: np.ndarray,
    faces: np.ndarray | None = None,
    face_labels: np.ndarray | None = None,
    materials: list[str] | None = None,
    mtllib: str | None = None,
    vertex_colors: np.ndarray | None = None,
    header: str = "",
) -> str:
    """Wavefront OBJ text of (V, 3) vertices and optional (F, 3) faces (0-based, written 1-based).

    With `face_labels` (F,) and `materials` (one name per label, the last for -1), a `g`/`usemtl` line
    starts every run of equal labels, so that the faces keep their order. `vertex_colors` (V, 3) uint8 are
    written as the common `v x y z r g b` extension.
    """
    lines = [f"# {one_line(header)}\n"] if header else []
    if mtllib:
        lines.append(f"mtllib {mtllib}\n")
    v = np.asarray(vertices, dtype=np.float64)
    if vertex_colors is not None:
        v = np.hstack([v, np.asarray(vertex_colors, dtype=np.float64) / 255.0])
        lines.append(_fmt_rows(v, "v ", "%.9g"))
    else:
        lines.append(_fmt_rows(v, "v ", "%.9g"))
    if faces is not None:
        f = np.asarray(faces, dtype=np.int64) + 1
        if face_labels is None:
            lines.append(_fmt_rows(f, "f ", "%d"))
        else:
            lab = np.asarray(face_labels, dtype=np.int64)
            starts = np.r_[0, np.flatnonzero(np.diff(lab)) + 1, len(lab)]
            for a, b in zip(starts[:-1], starts[1:], strict=True):
                name = materials[lab[a]]  # label -1 picks the last name, the unlabeled material
                lines.append(f"g {name}\nusemtl {name}\n")
                lines.append(_fmt_rows(f[a:b], "f ", "%d"))
    return "".join(lines)


def mtl_text(result: SegmentResult) -> str:
    """One diffuse material per part (and one for unlabeled), named as in `file_names`."""
    names = file_names(result.parts)
    out = [f"# part materials of {one_line(result.name)} (partdistill)\n"]
    for label in [*range(len(result.parts)), -1]:
        r, g, b = (c / 255.0 for c in _color(result, label))
        out.append(
            f"newmtl {names[label]}\nKa 0 0 0\nKd {r:.4f} {g:.4f} {b:.4f}\nKs 0 0 0\nd 1\nillum 1\n"
            f"# part: {one_line(_part_name(result, label))}\n\n"
        )
    return "".join(out)


def _cloud_ply(result: SegmentResult, sel: np.ndarray) -> bytes:
    xyz = result.original_vertices()[sel].astype(np.float32)
    lab = result.labels[sel]
    col = colors_of(lab, result.colors)
    vertex = [("x", xyz[:, 0]), ("y", xyz[:, 1]), ("z", xyz[:, 2])]
    vertex += [("red", col[:, 0]), ("green", col[:, 1]), ("blue", col[:, 2])]
    vertex += [("label", lab.astype(np.int32)), ("confidence", result.confidence[sel].astype(np.float32))]
    return ply_bytes([("vertex", vertex)], [f"partdistill part of {result.name}"])


def csv_text(result: SegmentResult) -> str:
    """One row per face (mesh: index,label,part,confidence) or point (cloud: index,x,y,z,label,part,confidence);
    coordinates in the input's units."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    names = [*result.parts, ""]
    conf = [f"{c:.4f}" for c in result.confidence]
    if result.kind == "mesh":
        writer.writerow(["face", "label", "part", "confidence"])
        writer.writerows(
            (i, int(lab), names[lab], c) for i, (lab, c) in enumerate(zip(result.labels, conf, strict=True))
        )
    else:
        writer.writerow(["point", "x", "y", "z", "label", "part", "confidence"])
        xyz = result.original_vertices()
        writer.writerows(
            (i, f"{p[0]:.7g}", f"{p[1]:.7g}", f"{p[2]:.7g}", int(lab), names[lab], c)
            for i, (p, lab, c) in enumerate(zip(xyz, result.labels, conf, strict=True))
        )
    return buf.getvalue()


def json_doc(result: SegmentResult) -> dict:
    """Labels and confidences for code: {"name", "kind", "element", "parts", "colors", "labels", "confidence"}."""
    return {
        "name": result.name,
        "kind": result.kind,
        "element": result.element,
        "parts": list(result.parts),
        "colors": result.colors.astype(int).tolist(),
        "labels": result.labels.astype(int).tolist(),
        "confidence": np.round(result.confidence.astype(np.float64), 4).tolist(),
    }


def _text(s: str) -> Callable[[Path], None]:
    return lambda tmp: tmp.write_text(s, encoding="utf-8")


def _data(b: bytes) -> Callable[[Path], None]:
    return lambda tmp: tmp.write_bytes(b)


def _npy(a: np.ndarray) -> Callable[[Path], None]:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.save(f, a, allow_pickle=False)

    return write


def result_writers(result: SegmentResult, fmt: str, out_dir: Path) -> Writers:
    """The files (path -> writer of a temporary path) that exporting `result` as `fmt` produces in `out_dir`.

    Content that takes work (meshes, images) is built here, before anything is written.
    """
    out_dir, name = Path(out_dir), result.name
    if fmt == "glb":
        return {out_dir / f"{name}.glb": _data(glb_bytes(result))}
    if fmt == "ply":
        return {out_dir / f"{name}.ply": _data(result_ply_bytes(result))}
    if fmt == "obj":
        xyz = result.original_vertices()
        if result.kind == "mesh":
            header = f"{name}: one material per part (partdistill)"
            text = obj_text(
                xyz, result.shape.faces, result.labels, file_names(result.parts), f"{name}.mtl", None, header
            )
            return {out_dir / f"{name}.obj": _text(text), out_dir / f"{name}.mtl": _text(mtl_text(result))}
        cols = colors_of(result.labels, result.colors)
        return {out_dir / f"{name}.obj": _text(obj_text(xyz, vertex_colors=cols, header=f"{name} (partdistill)"))}
    if fmt == "parts":
        writers: Writers = {}
        xyz = result.original_vertices()
        for label, word, sel in _groups(result):
            if result.kind == "mesh":
                v, f = part_submesh(xyz, result.shape.faces, sel)
                text = obj_text(v, f, header=f"{name}: part {_part_name(result, label)} (partdistill)")
                writers[out_dir / f"{name}.{word}.obj"] = _text(text)
            else:
                writers[out_dir / f"{name}.{word}.ply"] = _data(_cloud_ply(result, sel))
        return writers
    if fmt == "json":
        return {out_dir / f"{name}.json": _text(json.dumps(json_doc(result)) + "\n")}
    if fmt == "npy":
        return {
            out_dir / f"{name}.labels.npy": _npy(result.labels.astype(np.int64)),
            out_dir / f"{name}.confidence.npy": _npy(result.confidence.astype(np.float32)),
        }
    if fmt == "csv":
        return {out_dir / f"{name}.csv": _text(csv_text(result))}
    if fmt == "png":
        from partdistill_cli.preview import render_preview

        image, _ = render_preview(
            result.shape, result.to_labels(), title=f"{name}: {counted(len(result.parts), 'part')}"
        )
        return {out_dir / f"{name}.preview.png": lambda tmp: image.save(tmp, format="PNG")}
    if fmt == "html":
        from partdistill_cli.viewer import explain_png_of, viewer_html, viewer_path

        return {viewer_path(out_dir, name): _text(viewer_html(result, explain_png_of(result)))}
    raise ExportError(f"{fmt!r} is not a format for segment results; choose one of {', '.join(RESULT_FORMATS)}")


def default_out_dir(source: Path) -> Path:
    """`export/` beside the result (or inside the folder of results)."""
    source = Path(source)
    return (source if source.is_dir() else source.parent) / "export"


def export_results(source: Path, fmt: str, out_dir: Path | None = None, overwrite: bool = False) -> list[Path]:
    """Export the segment result(s) at `source` (a `NAME.labels.json` or a folder of them) as `fmt`.

    Every result is read and checked, and every file built, before anything is written; then all files are
    written together or none. Raises a `UserError` subclass (one line) on an unknown format, a source with
    no results, labels that do not fit their shape, an unwritable `out_dir`, or files that exist (unless
    `overwrite`). Returns the files written.
    """
    fmt = check_format(fmt)
    if fmt in STUDENT_FORMATS:
        raise ExportError(f"--format {fmt} exports a student; {source} is a segment result")
    results = [read_result(p) for p in find_results(source)]
    out_dir = check_writable_dir(out_dir if out_dir is not None else default_out_dir(source))
    writers: Writers = {}
    for result in results:
        for path, write in result_writers(result, fmt, out_dir).items():
            if path in writers:
                raise ExportError(f"{path}: two results would both write this file (same name {result.name!r})")
            writers[path] = write
    if fmt == "html" and Path(source).is_dir():
        from partdistill_cli.viewer import INDEX_NAME, folder_index_html

        writers[out_dir / INDEX_NAME] = _text(
            folder_index_html(results, f"{Path(source).resolve().name}: segmentations")
        )
    inputs = []
    for r in results:
        inputs += [r.path, r.shape_source, r.path.parent / f"{r.name}.parts.ply"]
        if r.input_path is not None:
            inputs.append(r.input_path)
    check_not_overwriting(list(writers), inputs, overwrite)
    return write_all(writers)


# ---- students ---------------------------------------------------------------------------------------------

STUDENT_CARD_FORMAT = "partdistill-exported-student"
CHECK_TOLERANCE = 1e-4


def _ensemble_module(student):
    """One torch module for the student: a single member as is; an ensemble as the log of its members' mean
    softmax (so that softmax of the output is the ensemble's probability, as `Student.predict` averages)."""
    import torch
    from torch import nn

    if len(student.modules) == 1:
        return student.modules[0].eval()

    class MeanProbability(nn.Module):
        def __init__(self, members: list[nn.Module]):
            super().__init__()
            self.members = nn.ModuleList(members)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            probs = []
            for member in self.members:
                probs.append(torch.softmax(member(x), dim=1))
            return torch.log(torch.stack(probs).mean(dim=0).clamp_min(1e-12))

    return MeanProbability([m.eval() for m in student.modules]).eval()


def sample_features(student, sizes: tuple[int, ...] = (1024, 1061), seed: int = 0) -> list[np.ndarray]:
    """(1, D, n) float32 student inputs of seeded sample clouds (points on a capsule with normals), one per
    size; two sizes check that the exported network accepts any number of points."""
    import trimesh

    from partdistill_cli.shapes import from_points

    mesh = trimesh.creation.capsule(height=1.0, radius=0.5, count=[16, 16])
    out = []
    for i, n in enumerate(sizes):
        pts, faces = trimesh.sample.sample_surface(mesh, n, seed=seed + i)
        shape = from_points(pts, mesh.face_normals[faces], name="sample")
        out.append(student.features(shape).T[None].astype(np.float32))
    return out


@contextlib.contextmanager
def _quiet():
    """Send the exporters' progress chatter to stderr (stdout stays clean for data) and silence their
    deprecation warnings: what they produce is checked numerically afterwards."""
    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _torchscript_bytes(module, example) -> tuple[bytes, Callable[[np.ndarray], np.ndarray]]:
    """Serialised TorchScript of `module` (scripted, or traced if it cannot be scripted) and a runner that
    loads it back from those bytes (so that the check runs what users will load)."""
    import torch

    with _quiet():
        try:
            compiled = torch.jit.script(module)
        except Exception:  # some backbones use Python TorchScript cannot compile; tracing still works for them
            compiled = torch.jit.trace(module, torch.from_numpy(example), check_trace=False)
        buf = io.BytesIO()
        torch.jit.save(compiled, buf)
        data = buf.getvalue()
        loaded = torch.jit.load(io.BytesIO(data), map_location="cpu")

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return loaded(torch.from_numpy(x)).numpy()

    return data, run


def _onnx_bytes(module, example) -> tuple[bytes, Callable[[np.ndarray], np.ndarray]]:
    """ONNX bytes of `module` (batch and point count dynamic) and a runner (onnxruntime, else onnx's
    reference evaluator)."""
    import importlib.util
    import tempfile

    import torch

    missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
    if missing:
        raise ExportError(
            f"ONNX export needs {' and '.join(missing)}: pip install 'partdistill[onnx]' (or onnx onnxscript)"
        )
    dims = {0: torch.export.Dim("batch"), 2: torch.export.Dim("points", min=2)}
    with _quiet(), tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "student.onnx"
        try:
            program = torch.onnx.export(
                module,
                (torch.from_numpy(example),),
                input_names=["features"],
                output_names=["logits"],
                dynamic_shapes=({**dims},),
                dynamo=True,
                verbose=False,
            )
            program.save(str(path))
        except Exception as exc:
            raise ExportError(f"torch.onnx could not export this student ({type(exc).__name__}: {exc})") from exc
        data = path.read_bytes()
    if importlib.util.find_spec("onnxruntime") is not None:
        import onnxruntime

        session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        return data, lambda x: session.run(None, {"features": x})[0]
    import onnx
    from onnx.reference import ReferenceEvaluator

    evaluator = ReferenceEvaluator(onnx.load_from_string(data))
    return data, lambda x: evaluator.run(None, {"features": x})[0]


def student_card(student, fmt: str, model_file: str, max_diff: float, sizes: list[int], origin: dict | None) -> dict:
    """The JSON card written beside an exported student: what goes in, what comes out, how it was checked."""
    import torch

    from partdistill_cli import __version__

    config = student.config
    channels = ["x", "y", "z", "nx", "ny", "nz"][: config.in_dim]
    return {
        "format": STUDENT_CARD_FORMAT,
        "version": 1,
        "partdistill": __version__,
        "torch": torch.__version__,
        "model_file": model_file,
        "model_format": fmt,
        "parts": list(student.parts),
        "input": {
            "name": "features",
            "shape": ["batch", config.in_dim, "points"],
            "dtype": "float32",
            "channels": channels,
            "coordinates": "normalised: subtract the bounding-box centre, divide by the largest distance "
            "from it (the shape fits the unit sphere)",
            "normals": "unit normals (estimated by local PCA for clouds without them)" if config.use_normals else None,
            "points_per_call": config.points_per_shape,
            "note": "the student was trained on subsets of about points_per_call points: split larger clouds "
            "into random subsets of that size and run each alone",
        },
        "output": {
            "name": "logits",
            "shape": ["batch", len(student.parts), "points"],
            "dtype": "float32",
            "meaning": "per-point part logits (softmax over dim 1 gives part probabilities)"
            + ("; for an ensemble, the log of the members' mean probability" if len(student.modules) > 1 else ""),
        },
        "check": {"max_abs_diff": max_diff, "tolerance": CHECK_TOLERANCE, "points": sizes},
        "student": student.meta(),
        "source": origin,
    }


def student_paths(fmt: str, out_dir: Path, name: str) -> tuple[Path, Path]:
    """(model file, JSON card) an export of student `name` as `fmt` writes into `out_dir`."""
    if fmt not in STUDENT_FORMATS:
        raise ExportError(f"{fmt!r} is not a format for students; choose one of {', '.join(STUDENT_FORMATS)}")
    stem = f"{name}.torchscript" if fmt == "torchscript" else f"{name}.onnx"
    model = Path(out_dir) / (f"{stem}.pt" if fmt == "torchscript" else stem)
    return model, Path(out_dir) / f"{stem}.json"


def student_writers(student, fmt: str, out_dir: Path, name: str, origin: dict | None = None) -> Writers:
    """Export `student`'s network as `fmt` (torchscript | onnx) plus its card, checked before anything is
    written: the exported model must reproduce the student's logits on sample clouds within 1e-4.
    `origin` (JSON-able: where the student was stored, its store card) is recorded in the card."""
    import torch

    model_path, card_path = student_paths(fmt, out_dir, name)
    module = _ensemble_module(student)
    samples = sample_features(student)
    with torch.no_grad():
        expected = [module(torch.from_numpy(x)).numpy() for x in samples]
    exporter = _torchscript_bytes if fmt == "torchscript" else _onnx_bytes
    data, run = exporter(module, samples[0])
    max_diff = 0.0
    for x, want in zip(samples, expected, strict=True):
        got = np.asarray(run(x))
        if got.shape != want.shape:
            raise ExportError(f"the exported {fmt} model gives logits of shape {got.shape}, expected {want.shape}")
        max_diff = max(max_diff, float(np.abs(got - want).max()))
    if not max_diff <= CHECK_TOLERANCE:
        raise ExportError(
            f"the exported {fmt} model differs from the student by {max_diff:.2g} (> {CHECK_TOLERANCE}); not written"
        )
    card = student_card(student, fmt, model_path.name, max_diff, [x.shape[2] for x in samples], origin)
    return {model_path: _data(data), card_path: _text(json.dumps(card, indent=1) + "\n")}


def export_student(source: Path, fmt: str, out_dir: Path | None = None, overwrite: bool = False) -> list[Path]:
    """Export the student stored at `source` (a cache entry folder, or a `.safetensors` file with its card;
    see `partdistill_cli.store.load_student`) as `fmt` (torchscript | onnx), with its JSON card.

    Files are named after the student's category and go to `out_dir`; by default `export/` beside a
    `.safetensors` file, or in the current folder for a cache entry. Returns the files written.
    """
    from dataclasses import asdict

    fmt = check_format(fmt)
    if fmt not in STUDENT_FORMATS:
        raise ExportError(f"--format {fmt} exports segment results; {source} is a student")
    source = Path(source)
    if not source.exists():
        raise ExportError(f"{source}: no such student")
    if source.name.endswith(LABELS_SUFFIX) or (source.is_dir() and any(source.glob(f"*{LABELS_SUFFIX}"))):
        raise ExportError(f"{source}: a segment result; --format {fmt} exports a trained student")
    try:
        from partdistill_cli.store import load_student, read_card
    except ImportError as exc:
        raise ExportError("this partdistill cannot load stored students (partdistill_cli.store is missing)") from exc
    card = read_card(source)
    name = file_names([card.category])[0] if card.category else source.stem
    if out_dir is None:
        out_dir = Path.cwd() / "export" if source.is_dir() else source.parent / "export"
    out_dir = check_writable_dir(out_dir)
    check_not_overwriting(list(student_paths(fmt, out_dir, name)), [source], overwrite)
    student = load_student(source)
    origin = {"path": str(source.resolve()), "card": asdict(card)}
    return write_all(student_writers(student, fmt, out_dir, name, origin))
