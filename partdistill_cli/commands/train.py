"""`partdistill train-category`: distill one student over many shapes of a category and cache it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from partdistill_cli.commands import options as opt
from partdistill_cli.teachers.specs import DEFAULT_TEACHER, REAL_TEACHERS, teacher_help


def train_category(
    ctx: typer.Context,
    folder: Annotated[
        Path,
        typer.Argument(
            help="Folder of shapes of one category (meshes or point clouds). With --teacher simulated it must "
            "be a labeled data set (labeled-mesh, ShapeNetPart or PartNet-Mobility)."
        ),
    ],
    category: Annotated[str, typer.Option("--category", help="The category, e.g. chair (part of the student's key).")],
    parts: Annotated[
        str | None,
        typer.Option(
            "--parts",
            help="Part names separated by commas (a name may hold spaces; default: the category's known parts).",
        ),
    ] = None,
    teacher: Annotated[
        opt.AnyTeacher,
        typer.Option(
            "--teacher",
            help=teacher_help((*REAL_TEACHERS, "simulated"))
            + " The simulated teacher corrupts the folder's ground truth and is for evaluation only.",
        ),
    ] = DEFAULT_TEACHER,
    noise: opt.Noise = "default",
    method: Annotated[
        Literal["full", "forward"],
        typer.Option("--method", help="full: forward then backward distillation; forward: forward only."),
    ] = "full",
    mode: Annotated[Literal["full", "forward"] | None, typer.Option("--mode", hidden=True)] = None,
    other: opt.Other = "auto",
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
    points: opt.points_option(
        "by default: 2048 per shape (ShapeNetPart's cloud size): a category student trains on many shapes at "
        "once, so each shape's share stays small to keep epochs short."
    ) = 2048,
    detector: opt.Detector = None,
    segmenter: opt.Segmenter = None,
    clipseg: opt.ClipSeg = None,
    threshold: opt.Threshold = None,
    device: opt.Device = "auto",
    cache_dir: opt.CacheDir = None,
    seed: opt.Seed = 0,
    overwrite: opt.Overwrite = False,
    workers: opt.Workers = None,
    ray_address: opt.RayAddress = None,
) -> None:
    """Train a category student over FOLDER's shapes (their 2D knowledge only, no labels) and cache it.

    `partdistill segment --category C --parts ...` (with the same --other) then reuses it for any new shape
    of the category.
    """
    import time

    from partdistill_cli import category as cat
    from partdistill_cli.batch import check_cluster_options, make_runner
    from partdistill_cli.console import console, counted
    from partdistill_cli.errors import UserError
    from partdistill_cli.io_utils import check_not_overwriting, check_writable_dir
    from partdistill_cli.pipeline import Pipeline, normalise_category
    from partdistill_cli.progress import Reporter
    from partdistill_cli.store import KnowledgeStore, copy_student

    method = opt.renamed(ctx, "method", "mode")
    simulated = teacher == "simulated"
    config = opt.segment_config(
        teacher=teacher, detector=detector, segmenter=segmenter, clipseg=clipseg, threshold=threshold, views=views,
        resolution=resolution, renderer=renderer, up=up, points=points, method=method, epochs=epochs, other=other,
        seed=seed, device=device, cache_dir=cache_dir,
    )  # fmt: skip
    category = normalise_category(category)
    if category is None:
        raise UserError("--category must name the category, e.g. chair")
    check_cluster_options(workers, ray_address)
    reporter = Reporter()
    store = KnowledgeStore(cache_dir, knowledge)
    pipeline = Pipeline(config, verbose=False, store=store, progress=reporter)
    part_list = pipeline.parts(parts, category)
    if out is not None:
        check_writable_dir(out.parent)
        check_not_overwriting([out.with_suffix(".safetensors"), out.with_suffix(".json")], [], overwrite)
    sources = cat.folder_sources(folder, part_list, category, points, seed, truth=simulated)
    if extra_shapes:
        sources += cat.extra_sources(extra_shapes, part_list, category, points, seed, extra_count, truth=simulated)
    noise_cfg = None
    if simulated:
        from partdistill_cli.teachers.simulated import load_noise

        try:
            noise_cfg = load_noise(noise)
        except ValueError as exc:
            raise UserError(str(exc)) from exc
        console.print(
            "[yellow]teacher: simulated — an evaluation teacher that corrupts the folder's ground truth; "
            "use a real VLM teacher for a student you ship[/]"
        )
    started = time.perf_counter()
    runner = make_runner(
        config, workers=workers, address=ray_address, store=store, progress=reporter, pipeline=pipeline
    )
    with runner, reporter:
        items = cat.teach_sources(
            runner, sources, category, part_list, noise_cfg, reporter.level("teaching", len(sources))
        )
        teacher_name = f"simulated:{noise}" if simulated else runner.teacher_name
    if labeled is not None:
        items += cat.few_shot(labeled, part_list, points, seed)
    n_units = sum(k.n_units for _, k in items)
    pieces = counted(n_units, "piece")
    console.print(f"{counted(len(items), 'shape')}, {pieces} of knowledge ({time.perf_counter() - started:.0f} s)")
    _, entry = cat.distill_category(pipeline, items, category, part_list, teacher_name, method)
    console.print(f"student cached in [bold]{entry}[/]")
    if out is not None:
        weights, card = copy_student(entry, out)
        console.print(f"student written to [bold]{weights}[/] (+ card {card.name})")
