"""`partdistill train-category`: distill one student over many shapes of a category and cache it."""

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
    simulated = "simulated"


class ModeChoice(str, Enum):
    full = "full"
    forward = "forward"


def train_category(
    folder: Annotated[
        Path,
        typer.Argument(
            help="Folder of shapes of one category (meshes or point clouds). With --teacher simulated it must "
            "be a labeled data set (labeled-mesh, ShapeNetPart or PartNet-Mobility)."
        ),
    ],
    category: Annotated[str, typer.Option("--category", help="The category, e.g. chair (part of the student's key).")],
    parts: Annotated[
        str | None, typer.Option("--parts", help="Comma-separated part names (default: the category's known parts).")
    ] = None,
    teacher: Annotated[
        TeacherChoice,
        typer.Option(
            "--teacher",
            help="The 2D teacher. simulated corrupts the folder's ground truth and is for evaluation only.",
        ),
    ] = TeacherChoice.grounded_sam,
    noise: opt.Noise = "default",
    mode: Annotated[
        ModeChoice, typer.Option("--mode", help="full: forward then backward distillation; forward: forward only.")
    ] = ModeChoice.full,
    knowledge: Annotated[
        Path | None,
        typer.Option(
            "--knowledge",
            help="Folder where each shape's teacher knowledge is kept (read when present, written otherwise); "
            "default: the cache.",
        ),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option("--epochs", min=1, help="Forward epochs (fixed, no plateau test); backward runs half as many."),
    ] = None,
    extra_shapes: Annotated[
        str | None,
        typer.Option(
            "--extra-shapes",
            help="More shapes as knowledge sources: a folder of shapes, or 'procedural' for generated shapes of the "
            "category (see --extra-count).",
        ),
    ] = None,
    extra_count: Annotated[int, typer.Option("--extra-count", min=1, help="How many procedural extra shapes.")] = 10,
    labeled: Annotated[
        Path | None,
        typer.Option(
            "--labeled",
            help="Few-shot: a labeled data set whose ground-truth parts join the training as units of score 1.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Also write the student here (PATH.safetensors + PATH.json card)."),
    ] = None,
    views: opt.Views = 10,
    resolution: opt.Resolution = 512,
    renderer: opt.Renderer = opt.RendererChoice.auto,
    up: opt.Up = opt.UpAxis.y,
    points: opt.Points = 2048,
    detector: Annotated[
        str | None, typer.Option("--detector", help="Detector weights: hub id or local folder.")
    ] = None,
    segmenter: Annotated[
        str | None, typer.Option("--segmenter", help="SAM checkpoint: vit_b/l/h or a .pth file.")
    ] = None,
    clipseg: Annotated[str | None, typer.Option("--clipseg", help="CLIPSeg weights: hub id or local folder.")] = None,
    threshold: Annotated[
        float | None,
        typer.Option("--threshold", min=0.0, max=1.0, help="Teacher confidence threshold (see segment --help)."),
    ] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    cache_dir: Annotated[
        Path | None,
        typer.Option("--cache-dir", help="Cache root (default $PARTDISTILL_CACHE or ~/.cache/partdistill)."),
    ] = None,
    seed: opt.Seed = 0,
    overwrite: opt.Overwrite = False,
) -> None:
    """Train a category student over FOLDER's shapes (their 2D knowledge only, no labels) and cache it.

    `partdistill segment --category C --parts ...` then reuses it for any new shape of the category.
    """
    import time

    from partdistill_cli.commands.segment import _parts, distill_config, teacher_options
    from partdistill_cli.console import console, progress
    from partdistill_cli.errors import UserError
    from partdistill_cli.io_utils import check_not_overwriting, check_writable_dir
    from partdistill_cli.pipeline import RenderSettings
    from partdistill_cli.store import check_cache_root

    category = category.strip().lower()
    part_list = _parts(parts, category)
    check_cache_root(cache_dir)
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder of shapes")
    if out is not None:
        check_writable_dir(out.parent)
        check_not_overwriting([out.with_suffix(".safetensors"), out.with_suffix(".json")], [], overwrite)
    settings = RenderSettings(views, resolution, renderer.value, up.value)
    dev = None if device == "auto" else device

    sources = _shapes(folder, teacher.value, category, part_list, points, seed)
    if extra_shapes:
        sources += _extra(extra_shapes, teacher.value, category, part_list, points, seed, extra_count)
    if teacher == TeacherChoice.simulated:
        from partdistill_cli.teachers.simulated import load_noise

        try:
            noise_cfg = load_noise(noise)
        except ValueError as exc:
            raise UserError(str(exc)) from exc
        console.print(
            "[yellow]teacher: simulated — an evaluation teacher that corrupts the folder's ground truth; "
            "use a real VLM teacher for a student you ship[/]"
        )
        vlm = None
    else:
        from partdistill_cli.teachers import make_teacher

        kwargs = teacher_options(teacher.value, threshold, detector=detector, segmenter=segmenter, clipseg=clipseg)
        vlm = make_teacher(teacher.value, device=dev, **kwargs)

    items = []
    started = time.perf_counter()
    with progress() as bar:
        task = bar.add_task("teaching", total=len(sources), status="")
        for shape, gt in sources:
            t = vlm if vlm is not None else _simulated(gt, noise_cfg, shape)
            items.append((shape, _knowledge(shape, t, part_list, settings, category, knowledge, cache_dir)))
            bar.update(task, advance=1, status=shape.name)
    if labeled is not None:
        items += _few_shot(labeled, category, part_list, points, seed)
    n_units = sum(k.n_units for _, k in items)
    console.print(f"{len(items)} shapes, {n_units} pieces of knowledge ({time.perf_counter() - started:.0f} s)")

    import torch

    from partdistill_cli.store import StudentCard, save_student
    from partdistill_cli.student import distill

    config = distill_config(seed, dev or ("cuda" if torch.cuda.is_available() else "cpu"), epochs)
    teacher_name = vlm.name if vlm is not None else f"simulated:{noise}"
    from partdistill_cli.store import cache_root, student_key

    checkpoints = cache_root(cache_dir) / "checkpoints" / student_key(category, part_list, teacher_name, config)
    student = distill(items, config, mode=mode.value, checkpoint_dir=checkpoints)
    card = StudentCard(
        category=category,
        parts=part_list,
        teacher=teacher_name,
        render=settings.to_dict(),
        trained_on=[s.name for s, _ in items],
    )
    entry = save_student(student, card, root=cache_dir)
    console.print(f"student cached in [bold]{entry}[/]")
    if out is not None:
        import shutil

        from partdistill_cli.io_utils import atomic_path

        for src, dst in (
            (entry / "student.safetensors", out.with_suffix(".safetensors")),
            (entry / "card.json", out.with_suffix(".json")),
        ):
            with atomic_path(dst) as tmp:
                shutil.copyfile(src, tmp)
        console.print(
            f"student written to [bold]{out.with_suffix('.safetensors')}[/] (+ card {out.with_suffix('.json').name})"
        )


def _shapes(folder, teacher, category, parts, points, seed):
    """(Shape, ground truth or None) pairs; ground truth only where the simulated teacher needs it."""
    from partdistill_cli.errors import UserError
    from partdistill_cli.shapes import SUPPORTED_SUFFIXES, load_shape

    if teacher == "simulated":
        from partdistill_cli.datasets import load_dataset

        data = load_dataset(folder, "auto", None, None, points, seed)
        data = [d for d in data if d.category.lower() == category] or data
        if not data:
            raise UserError(f"{folder}: no labeled shapes found (the simulated teacher needs ground truth)")
        if len(data[0].parts) != len(parts):
            raise UserError(f"{folder}: its parts {data[0].parts} do not match --parts {parts}")
        return [(d.shape, d.primitive_labels) for d in data]
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
    files = [p for p in files if not p.name.endswith((".labels.npy", ".face_labels.npy", ".point_labels.npy"))]
    if not files:
        raise UserError(f"{folder}: no shape files ({', '.join(sorted(SUPPORTED_SUFFIXES))})")
    return [(load_shape(p, points, seed), None) for p in files]


def _extra(spec, teacher, category, parts, points, seed, count):
    from partdistill_cli.errors import UserError

    if spec == "procedural":
        from partdistill_cli import procedural

        if category not in procedural.CATEGORIES:
            raise UserError(f"no procedural generator for {category!r}; known: {', '.join(procedural.CATEGORIES)}")
        gen_parts = procedural.CATEGORIES[category]
        data = procedural.procedural_dataset([category], count, seed + 10_000, points)
        if teacher == "simulated":
            # The generator's part indices are its own list; map them onto the asked part list by name.
            lut = {i: (parts.index(p) if p in parts else -1) for i, p in enumerate(gen_parts)}
            return [(d.shape, _remap(d.primitive_labels, lut)) for d in data]
        return [(d.shape, None) for d in data]
    path = Path(spec)
    if not path.is_dir():
        raise UserError(f"--extra-shapes {spec}: neither 'procedural' nor a folder")
    return _shapes(path, teacher, category, parts, points, seed)


def _remap(labels, lut):
    import numpy as np

    table = np.array([lut[i] for i in range(len(lut))] + [-1])
    return table[np.where(labels >= 0, labels, len(lut))]


def _simulated(gt, noise_cfg, shape):
    from partdistill_cli.teachers.simulated import SimulatedTeacher

    # A seed from the shape's content: the same shape draws the same errors in every run (and in the cache).
    return SimulatedTeacher(gt, noise_cfg, shape_seed=int(shape.fingerprint()[:8], 16))


def _knowledge(shape, teacher, parts, settings, category, folder, cache_dir):
    from partdistill_cli.pipeline import teach
    from partdistill_cli.store import knowledge_path, read_knowledge, write_knowledge

    render_key = {**settings.to_dict(), "category": category}
    path = knowledge_path(shape.fingerprint(), teacher.name, parts, render_key, cache_dir)
    if folder is not None:
        path = Path(folder) / f"{shape.name}.{path.parent.name[:12]}.{path.stem[:12]}.npz"
    k = read_knowledge(path, shape.n_points, parts)
    if k is None:
        k = teach(shape, teacher, parts, settings, category).knowledge
        write_knowledge(k, path)
    return k


def _few_shot(folder, category, parts, points, seed):
    """Labeled shapes: each ground-truth part becomes one unit of score 1."""
    import numpy as np

    from partdistill_cli.datasets import load_dataset
    from partdistill_cli.errors import UserError
    from partdistill_cli.knowledge import Knowledge

    data = load_dataset(folder, "auto", None, None, points, seed)
    if not data:
        raise UserError(f"--labeled {folder}: no labeled shapes found")
    items = []
    for d in data:
        lut = {i: (parts.index(p) if p in parts else -1) for i, p in enumerate(d.parts)}
        gt = _remap(d.point_labels, lut)
        present = [c for c in range(len(parts)) if (gt == c).any()]
        members = [np.flatnonzero(gt == c) for c in present]
        k = Knowledge(
            np.array(present, dtype=np.int64),
            np.ones(len(present), dtype=np.float32),
            np.full(len(present), -1, dtype=np.int64),
            np.concatenate([[0], np.cumsum([len(m) for m in members])]).astype(np.int64),
            np.concatenate(members).astype(np.int64) if members else np.zeros(0, np.int64),
            d.shape.n_points,
            list(parts),
        )
        items.append((d.shape, k))
    return items
