"""`partdistill segment`: one shape in, named parts out."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from partdistill_cli.commands import options as opt


class TeacherChoice(str, Enum):
    grounded_sam = "grounded-sam"
    gdino_boxes = "gdino-boxes"
    owlv2_boxes = "owlv2-boxes"
    clipseg = "clipseg"


class MethodChoice(str, Enum):
    full = "full"
    forward = "forward"
    vote = "vote"


class DeviceChoice(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class OtherChoice(str, Enum):
    auto = "auto"
    on = "on"
    off = "off"


# Which teacher takes which weight option (the others would reject it), and what its threshold is called.
WEIGHT_OPTIONS = {
    "grounded-sam": ("detector", "segmenter"),
    "gdino-boxes": ("detector",),
    "owlv2-boxes": ("detector",),
    "clipseg": ("clipseg",),
}
THRESHOLD_OPTION = {
    "grounded-sam": "box_threshold",
    "gdino-boxes": "box_threshold",
    "owlv2-boxes": "box_threshold",
    "clipseg": "mask_threshold",
}


def teacher_options(teacher: str, threshold: float | None, **weights: str | None) -> dict:
    """Keyword options for `make_teacher(teacher, ...)` from the command-line values that apply to it."""
    options = {k: weights[k] for k in WEIGHT_OPTIONS[teacher] if weights.get(k) is not None}
    if threshold is not None:
        options[THRESHOLD_OPTION[teacher]] = threshold
    return options


def segment(
    shape: Annotated[
        Path, typer.Argument(help="Mesh (OBJ, PLY, GLB/GLTF, OFF, STL) or point cloud (PLY, XYZ/TXT, NPY/NPZ, PCD).")
    ],
    parts: Annotated[
        str | None,
        typer.Option("--parts", help="Comma-separated part names, e.g. arm,back,seat,leg (default: the category's)."),
    ] = None,
    category: Annotated[
        str | None,
        typer.Option("--category", help="Object category, e.g. chair: used in prompts, student lookup, default parts."),
    ] = None,
    teacher: Annotated[
        TeacherChoice,
        typer.Option(
            "--teacher",
            help="grounded-sam: Grounding DINO boxes + SAM masks (best); gdino-boxes / owlv2-boxes: boxes only; "
            "clipseg: light dense masks.",
        ),
    ] = TeacherChoice.grounded_sam,
    method: Annotated[
        MethodChoice,
        typer.Option(
            "--method",
            help="full: student with forward + backward distillation; forward: forward only; vote: direct "
            "back-projection votes (fast baseline, unseen points from their nearest neighbour).",
        ),
    ] = MethodChoice.full,
    student: Annotated[
        str,
        typer.Option(
            "--student",
            help="auto: use a cached category student that matches parts and teacher, else distill one on this "
            "shape; none: always distill on this shape; or a path to a student (.safetensors with its card).",
        ),
    ] = "auto",
    finetune_steps: Annotated[
        int,
        typer.Option(
            "--finetune-steps", min=0, help="With a cached student: fine-tune epochs on this shape's knowledge."
        ),
    ] = 0,
    other: Annotated[
        OtherChoice,
        typer.Option(
            "--other",
            help="Add a background part 'other' for surface no listed part claims; auto: on when only one part is "
            "asked for.",
        ),
    ] = OtherChoice.auto,
    views: opt.Views = 10,
    resolution: opt.Resolution = 512,
    renderer: opt.Renderer = opt.RendererChoice.auto,
    up: opt.Up = opt.UpAxis.y,
    points: opt.Points = 10000,
    device: Annotated[
        DeviceChoice, typer.Option("--device", help="Where models run; auto: CUDA when available, else CPU.")
    ] = DeviceChoice.auto,
    detector: Annotated[
        str | None,
        typer.Option("--detector", help="Detector weights: hub id or local folder (Grounding DINO or OWLv2)."),
    ] = None,
    segmenter: Annotated[
        str | None, typer.Option("--segmenter", help="SAM checkpoint: vit_b/vit_l/vit_h or a local .pth file.")
    ] = None,
    clipseg: Annotated[str | None, typer.Option("--clipseg", help="CLIPSeg weights: hub id or local folder.")] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            min=0.0,
            max=1.0,
            help="Teacher confidence threshold: detector box score (default 0.3 Grounding DINO, 0.1 OWLv2) or CLIPSeg "
            "mask probability (default 0.4). Lower finds more, with more false positives.",
        ),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            "--epochs",
            min=1,
            help="Distillation epochs (fixed; backward runs half as many); default: until the loss flattens.",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default: next to the input; never over it).")
    ] = None,
    preview: Annotated[
        bool, typer.Option("--preview", help="Also write NAME.preview.png: the parts from 6 views.")
    ] = False,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain", help="Also write NAME.explain.png: the teacher's raw masks per view beside the result."
        ),
    ] = False,
    html: Annotated[
        bool,
        typer.Option(
            "--html",
            help="Also write NAME.viewer.html: the result in 3D in any browser, one self-contained file "
            "(with --explain, the teacher's views beside it).",
        ),
    ] = False,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            "--cache-dir",
            help="Cache root for knowledge and students (default $PARTDISTILL_CACHE or ~/.cache/partdistill).",
        ),
    ] = None,
    seed: opt.Seed = 0,
    overwrite: opt.Overwrite = False,
) -> None:
    """Segment SHAPE into named parts.

    Renders the shape, asks a vision-language model for each part in every view, lifts the answers to 3D and
    distills them into a 3D student that labels every point and face. Writes NAME.parts.ply (colored),
    NAME.labels.json and NAME.labels.npy (per face for meshes, per point for clouds).
    """
    from partdistill_cli.console import console
    from partdistill_cli.errors import UserError
    from partdistill_cli.io_utils import check_not_overwriting, check_writable_dir
    from partdistill_cli.outputs import output_paths
    from partdistill_cli.shapes import load_shape
    from partdistill_cli.store import check_cache_root

    category = category.strip().lower() if category else None
    part_list = _parts(parts, category)
    check_cache_root(cache_dir)
    use_other = other == OtherChoice.on or (other == OtherChoice.auto and len(part_list) == 1)
    s = load_shape(shape, n_points=points, seed=seed)
    out_dir = out if out is not None else shape.parent
    check_writable_dir(out_dir)
    targets = list(output_paths(out_dir, s.name, preview, html).values())
    if explain:
        targets.append(out_dir / f"{s.name}.explain.png")
    check_not_overwriting(targets, [shape], overwrite)
    if student not in ("auto", "none") and not Path(student).exists():
        raise UserError(f"--student {student}: no such file (use auto, none or a path to a student)")

    from partdistill_cli.pipeline import RenderSettings
    from partdistill_cli.render import resolve_renderer

    settings = RenderSettings(views, resolution, renderer.value, up.value)
    try:
        resolve_renderer(settings.renderer, s)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    from partdistill_cli.teachers import make_teacher

    kwargs = teacher_options(teacher.value, threshold, detector=detector, segmenter=segmenter, clipseg=clipseg)
    with console.status(f"loading the {teacher.value} teacher"):
        vlm = make_teacher(teacher.value, device=None if device == DeviceChoice.auto else device.value, **kwargs)

    result = _teach(s, vlm, part_list, settings, category, use_other, cache_dir, explain)
    knowledge = result.knowledge
    console.print(f"{knowledge.n_units} pieces of 2D knowledge from {views} views ({vlm.name})")
    if knowledge.n_units == 0:
        raise UserError(
            f"the {teacher.value} teacher found none of the parts ({', '.join(part_list)}) in any view; try other "
            "part names, --category, more --views, or another --teacher"
        )
    labels = _label(
        s, knowledge, method.value, student, category, vlm.name, finetune_steps, cache_dir, seed, device, epochs
    )

    from partdistill_cli.outputs import write_segment_outputs

    meta = {
        "teacher": vlm.name,
        "method": method.value,
        "category": category,
        "render": settings.to_dict(),
        "points": points,
        "seed": seed,
        "other": use_other,
    }
    explain_png = None
    if explain:
        import tempfile

        from partdistill_cli.preview import explain_sheet

        with tempfile.TemporaryDirectory() as tmp:
            explain_sheet(result.views, result.detections, labels, knowledge.parts, Path(tmp) / "explain.png")
            explain_png = (Path(tmp) / "explain.png").read_bytes()
    written = write_segment_outputs(
        shape, s, labels, out_dir, overwrite=overwrite, preview=preview, meta=meta, html=html, explain=explain_png
    )
    _summary(s, labels)
    for path in written:
        console.print(f"wrote [bold]{path}[/]")


def _parts(parts: str | None, category: str | None) -> list[str]:
    from partdistill_cli.errors import UserError

    if parts:
        names = [p.strip() for p in parts.split(",") if p.strip()]
        if len(set(names)) != len(names):
            raise UserError(f"--parts lists a part twice: {parts}")
        if "other" in names:
            raise UserError("'other' is reserved for the background part (see --other)")
        if names:
            return names
    if category:
        from partdistill_cli.datasets import default_parts

        names = default_parts(category)
        if names:
            return names
        raise UserError(f"no default parts known for category {category!r}: give them with --parts")
    raise UserError("give the part names with --parts (e.g. --parts arm,back,seat,leg) or a known --category")


def _teach(shape, vlm, parts, settings, category, use_other, cache_dir, need_views):
    """Teacher knowledge for the shape, from the cache when the same shape/teacher/prompts/views were seen."""
    from partdistill_cli.console import console
    from partdistill_cli.pipeline import TeachResult, teach
    from partdistill_cli.store import knowledge_path, read_knowledge, write_knowledge

    key_parts = [*parts, "+other"] if use_other else list(parts)
    path = knowledge_path(
        shape.fingerprint(), vlm.name, key_parts, {**settings.to_dict(), "category": category}, cache_dir
    )
    knowledge = None if need_views else read_knowledge(path, shape.n_points)
    if knowledge is not None:
        console.print(f"[dim]teacher knowledge from the cache ({path})[/]")
        return TeachResult(None, [], knowledge)
    with console.status(f"rendering {settings.n_views} views and asking the teacher"):
        result = teach(shape, vlm, parts, settings, category, other=use_other)
    write_knowledge(result.knowledge, path)
    return result


def distill_config(seed: int, device: str, epochs: int | None):
    """The student settings of a command: defaults, the device, and a fixed schedule when `epochs` is given."""
    from dataclasses import replace

    from partdistill_cli.student import DistillConfig

    config = DistillConfig(seed=seed, device=device)
    if epochs is not None:
        config = replace(
            config, min_forward_epochs=epochs, max_forward_epochs=epochs, backward_epochs=max(1, epochs // 2)
        )
    return config


def _label(shape, knowledge, method, student_opt, category, teacher_name, finetune, cache_dir, seed, device, epochs):
    from partdistill_cli.console import console
    from partdistill_cli.knowledge import face_labels_from_points

    if method == "vote":
        from partdistill_cli.vote import vote

        labels = vote(knowledge, shape.points, fill=True)
        if labels.coverage < 1.0:  # no view saw anything: nothing to fill from
            labels.point_labels[labels.point_labels < 0] = 0
        if shape.is_mesh:
            labels.face_labels = face_labels_from_points(shape, labels.probs)
        return labels
    from partdistill_cli.store import find_student, load_student
    from partdistill_cli.student import distill

    dev = "cuda" if device.value == "cuda" else "cpu"
    if device.value == "auto":
        import torch

        dev = "cuda" if torch.cuda.is_available() else "cpu"
    config = distill_config(seed, dev, epochs)
    cached = None
    if student_opt == "auto" and category:
        cached = find_student(category, knowledge.parts, teacher_name, config, root=cache_dir)
    elif student_opt not in ("auto", "none"):
        cached = load_student(Path(student_opt))
        if list(cached.parts) != list(knowledge.parts):
            from partdistill_cli.errors import UserError

            raise UserError(f"the student knows parts {cached.parts}, but this run asks for {knowledge.parts}")
    if cached is not None:
        console.print("using a cached category student" + (f", fine-tuned for {finetune} epochs" if finetune else ""))
        if finetune:
            from dataclasses import replace

            tune = replace(config, min_forward_epochs=finetune, max_forward_epochs=finetune, backward_epochs=0)
            cached = distill([(shape, knowledge)], tune, mode="forward", init=cached)
        return cached.predict(shape)
    console.print(f"distilling a student on this shape ({method} distillation)")
    return distill([(shape, knowledge)], config, mode=method).predict(shape)


def _summary(shape, labels) -> None:
    import numpy as np
    from rich.table import Table

    from partdistill_cli.console import console

    if shape.is_mesh:
        tri = shape.vertices[shape.faces]
        weight = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
        lab, what = labels.face_labels, "surface"
    else:
        weight, lab, what = np.ones(len(labels.point_labels)), labels.point_labels, "points"
    share = np.bincount(lab[lab >= 0], weights=weight[lab >= 0], minlength=len(labels.parts)) / max(weight.sum(), 1e-12)
    table = Table(title=f"{shape.name}: parts")
    table.add_column("part")
    table.add_column(f"share of {what}", justify="right")
    for name, value in zip(labels.parts, share, strict=True):
        table.add_row(name, f"{value:.1%}")
    console.print(table)
