"""`partdistill segment`: one shape in, named parts out (the options of `api.Segmenter`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from partdistill_cli.commands import options as opt
from partdistill_cli.teachers.specs import DEFAULT_TEACHER, REAL_TEACHERS, teacher_help


def segment(
    ctx: typer.Context,
    shapes: Annotated[
        list[Path],
        typer.Argument(
            help="Mesh (OBJ, PLY, GLB/GLTF, OFF, STL), point cloud (PLY, XYZ/TXT, NPY/NPZ, PCD), or a PartNet-Mobility "
            "object folder (its part meshes merged). For many shapes: several of them, a folder (searched "
            "recursively), a quoted glob ('data/**/*.obj') or @list.txt (one path per line), segmented into --out, "
            "which mirrors their folders.",
            metavar="SHAPE",
            show_default=False,
        ),
    ],
    parts: Annotated[
        str | None,
        typer.Option(
            "--parts",
            help="Part names separated by commas, e.g. arm,back,seat,leg (a name may hold spaces: 'door handle,lid'; "
            "default: the category's).",
        ),
    ] = None,
    category: Annotated[
        str | None,
        typer.Option("--category", help="Object category, e.g. chair: used in prompts, student lookup, default parts."),
    ] = None,
    teacher: Annotated[opt.RealTeacher, typer.Option("--teacher", help=teacher_help(REAL_TEACHERS))] = DEFAULT_TEACHER,
    method: opt.Method = "full",
    student: Annotated[
        str,
        typer.Option(
            "--student",
            help="auto: use a cached category student that matches parts and teacher, else distill one on this "
            "shape; none: always distill on this shape; or a path to a student (.safetensors with its card).",
        ),
    ] = "auto",
    finetune_epochs: Annotated[
        int,
        typer.Option(
            "--finetune-epochs", min=0, help="With a cached student: fine-tune epochs on this shape's knowledge."
        ),
    ] = 0,
    finetune_steps: Annotated[int | None, typer.Option("--finetune-steps", min=0, hidden=True)] = None,
    other: opt.Other = "auto",
    pieces: Annotated[
        bool,
        typer.Option(
            "--pieces/--no-pieces",
            help="On a mesh, give each connected piece (at most half the shape) the part most of its points take "
            "(CAD meshes are built of pieces that each belong to one part); --no-pieces for meshes whose pieces "
            "straddle parts. Student methods only.",
        ),
    ] = True,
    views: opt.Views = 10,
    resolution: opt.Resolution = 512,
    renderer: opt.Renderer = opt.RendererChoice.auto,
    up: opt.Up = opt.UpAxis.y,
    points: opt.points_option(
        "by default: 10000, enough that thin parts (legs, handles) get points in every view, few enough that a "
        "student distills on this one shape in minutes on a CPU."
    ) = 10000,
    device: opt.Device = "auto",
    detector: opt.Detector = None,
    segmenter: opt.Segmenter = None,
    clipseg: opt.ClipSeg = None,
    threshold: opt.Threshold = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            "--epochs",
            min=1,
            help="Distillation epochs (fixed; backward runs half as many); default: until the loss flattens.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Output folder (default: the input's folder, or the current folder for a sample shipped inside "
            "the package; never over the input). Needed for many shapes.",
        ),
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
    cache_dir: opt.CacheDir = None,
    seed: opt.Seed = 0,
    overwrite: opt.Overwrite = False,
    workers: opt.Workers = None,
    ray_address: opt.RayAddress = None,
) -> None:
    """Segment SHAPE into named parts.

    Renders the shape, asks a vision-language model for each part in every view, lifts the answers to 3D and
    distills them into a 3D student that labels every point and face. Writes NAME.parts.ply (colored),
    NAME.labels.json and NAME.labels.npy (per face for meshes, per point for clouds).

    Many shapes (a folder, a glob, @list.txt) load the models once; shapes segmented before are skipped,
    a shape that fails is recorded in OUT/failures.json and the others go on.
    """
    from partdistill_cli import batch
    from partdistill_cli.api import Segmenter
    from partdistill_cli.console import console
    from partdistill_cli.io_utils import beside_input, check_not_overwriting, check_writable_dir
    from partdistill_cli.outputs import output_paths
    from partdistill_cli.pipeline import normalise_category

    config = opt.segment_config(
        teacher=teacher, detector=detector, segmenter=segmenter, clipseg=clipseg, threshold=threshold, views=views,
        resolution=resolution, renderer=renderer, up=up, points=points, method=method, student=student,
        finetune_steps=opt.renamed(ctx, "finetune_epochs", "finetune_steps"), epochs=epochs, other=other,
        pieces=pieces, seed=seed, device=device, cache_dir=cache_dir,
    )  # fmt: skip
    if batch.is_batch(shapes):
        outputs = batch.BatchOutputs(out, overwrite, preview, explain, html)
        batch.segment_many(shapes, config, outputs, parts, category, workers=workers, address=ray_address)
        return
    if workers is not None or ray_address is not None:
        raise batch.InputError("--workers and --ray-address are for many shapes: give a folder, a glob or @list.txt")
    shape = shapes[0]
    category = normalise_category(category)
    seg = Segmenter(config)
    part_list = seg.parts(parts, category)
    s = seg.load(shape)
    out_dir = out if out is not None else beside_input(shape)
    check_writable_dir(out_dir)
    targets = output_paths(out_dir, s.name, preview=preview, explain=explain, html=html)
    check_not_overwriting(list(targets.values()), [shape], overwrite)
    taught = seg.teach(s, part_list, category, need_views=explain)
    labels = seg.label(s, taught.knowledge, category, teacher_name=taught.teacher)
    result = seg.result(s, labels, taught, category, shape)
    written = result.save(out_dir, overwrite=overwrite, preview=preview, explain=explain, html=html)
    _print_shares(result)
    for path in written:
        console.print(f"wrote [bold]{path}[/]")


def _print_shares(result) -> None:
    from rich.table import Table

    from partdistill_cli.console import console

    table = Table(title=f"{result.name}: parts")
    table.add_column("part")
    table.add_column(f"share of {'surface' if result.kind == 'mesh' else 'points'}", justify="right")
    for name, value in zip(result.parts, result.part_shares(), strict=True):
        table.add_row(name, f"{value:.1%}")
    console.print(table)
