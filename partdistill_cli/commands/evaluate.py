"""`partdistill evaluate`: measure part segmentation quality on labeled shapes, with the simulated teacher or a
real one (the paper's protocol)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from partdistill_cli.commands import options as opt
from partdistill_cli.teachers.specs import REAL_TEACHERS, teacher_help


class DataFormat(str, Enum):
    auto = "auto"
    shapenetpart = "shapenetpart"
    labeled_mesh = "labeled-mesh"
    partnet_mobility = "partnet-mobility"
    partnete = "partnete"


class ProtocolChoice(str, Enum):
    per_shape = "per-shape"
    category = "category"


def evaluate(
    ctx: typer.Context,
    data: Annotated[
        str,
        typer.Argument(
            help="A labeled data set: a folder or file (ShapeNetPart txt, labeled-mesh folder, PartNet-Mobility "
            "object folder(s), PartNetE <Category>/<id>/ folders), or 'procedural' / 'procedural:chair,mug' for "
            "generated shapes."
        ),
    ],
    fmt: Annotated[DataFormat, typer.Option("--format", help="Data set layout; auto detects it.")] = DataFormat.auto,
    category: Annotated[str | None, typer.Option("--category", help="Only shapes of this category.")] = None,
    split: Annotated[
        Path | None,
        typer.Option(
            "--split",
            help="Only the shapes this split file lists: a JSON list (ShapeNetPart's train_test_split/"
            "shuffled_test_file_list.json) or one entry per line; an entry's last path part is the shape's name.",
        ),
    ] = None,
    parts: Annotated[
        str | None,
        typer.Option("--parts", help="Comma-separated part names replacing the data set's (same count)."),
    ] = None,
    teacher: Annotated[
        opt.EvalTeacher,
        typer.Option(
            "--teacher",
            help=teacher_help(("simulated", *REAL_TEACHERS))
            + " A real teacher is asked with prompts from the data set's part names and category; its answers "
            "are cached per shape like segment's.",
        ),
    ] = "simulated",
    noise: opt.Noise = "default",
    method: Annotated[
        str,
        typer.Option(
            "--method",
            help="Comma list of vote (back-projection votes), vote-fill (votes, unseen points from the nearest "
            "voted point), forward (student, forward distillation), full (forward + backward distillation), or all.",
        ),
    ] = "vote,vote-fill",
    protocol: Annotated[
        ProtocolChoice,
        typer.Option(
            "--protocol",
            help="per-shape: a student per shape; category: one student per category trained on all its shapes' "
            "knowledge (no labels), then evaluated on each.",
        ),
    ] = ProtocolChoice.per_shape,
    other: Annotated[
        opt.OtherChoice,
        typer.Option(
            "--other",
            help="Add a background part for points no listed part claims; auto: when the data set's part list is "
            "partial (points labeled 'no part', as in PartNetE).",
        ),
    ] = "auto",
    points: opt.points_option(
        "by default: 2048, the size of ShapeNetPart's benchmark clouds and of the paper's evaluation samples; it "
        "keeps many shapes times several methods fast."
    ) = 2048,
    per_category: Annotated[
        int, typer.Option("--per-category", min=1, help="Shapes per category for 'procedural' data.")
    ] = 5,
    views: opt.Views = 10,
    resolution: opt.Resolution = 512,
    renderer: opt.Renderer = opt.RendererChoice.auto,
    up: opt.Up = opt.UpAxis.y,
    detector: opt.Detector = None,
    segmenter: opt.Segmenter = None,
    clipseg: opt.ClipSeg = None,
    threshold: opt.Threshold = None,
    device: opt.Device = "auto",
    cache_dir: opt.CacheDir = None,
    seed: opt.Seed = 0,
    report: Annotated[Path | None, typer.Option("--report", help="Write the JSON report to this file.")] = None,
    out: Annotated[Path | None, typer.Option("--out", hidden=True)] = None,
    save_knowledge: Annotated[
        Path | None,
        typer.Option(
            "--save-knowledge",
            help="Folder to save, per shape, cameras, pixel->point maps, detections and knowledge (to feed other "
            "tools the same 2D knowledge).",
        ),
    ] = None,
    overwrite: opt.Overwrite = False,
    workers: opt.Workers = None,
    ray_address: opt.RayAddress = None,
) -> None:
    """Evaluate methods on labeled shapes: mIoU and coverage per category, as a table and a JSON report.

    The shapes are taught by the simulated teacher (ground truth corrupted with --noise) or by a real
    vision-language teacher (--teacher), prompted with the data set's part names and category.
    """
    import json

    from partdistill_cli.batch import check_cluster_options
    from partdistill_cli.console import console, counted
    from partdistill_cli.datasets import read_split
    from partdistill_cli.errors import UserError
    from partdistill_cli.evaluate import EvalConfig, expand_methods, run_evaluation
    from partdistill_cli.io_utils import check_not_overwriting, check_writable_dir, write_text
    from partdistill_cli.pipeline import RenderSettings
    from partdistill_cli.progress import Reporter
    from partdistill_cli.teachers.simulated import load_noise

    out = opt.renamed(ctx, "report", "out")
    check_cluster_options(workers, ray_address)
    try:
        methods = expand_methods(method)
        noise_cfg = load_noise(noise)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    if out is not None:
        check_writable_dir(out.parent if str(out.parent) else Path("."))
        check_not_overwriting([out], [], overwrite)
    if save_knowledge is not None:
        check_writable_dir(save_knowledge)
        held = save_knowledge.iterdir() if save_knowledge.is_dir() else ()
        if any(p.name.endswith(".npz") or p.is_dir() for p in held) and not overwrite:
            raise UserError(f"{save_knowledge}: already holds saved knowledge (pass --overwrite to replace it)")
    part_list = [p.strip() for p in parts.split(",") if p.strip()] if parts else None
    keep = read_split(split) if split is not None else None
    items = _load(data, fmt.value, category, part_list, points, per_category, seed, keep)
    config = EvalConfig(
        methods,
        noise_cfg,
        noise,
        RenderSettings(views, resolution, renderer.value, up.value),
        protocol.value,
        seed,
        other,
        teacher=teacher,
        weights=opt.teacher_weights(teacher, detector=detector, segmenter=segmenter, clipseg=clipseg),
        threshold=threshold,
        device=device,
        cache_dir=cache_dir,
    )
    what = f"simulated (evaluation only: it reads ground truth), noise '{noise}'" if teacher == "simulated" else teacher
    console.print(
        f"[dim]teacher: {what}, {counted(len(items), 'shape')}, methods {', '.join(methods)}, protocol "
        f"{protocol.value}[/]"
    )
    # Each student's epochs get a bar; its closing line would repeat, per shape, what the method's line says.
    reporter = Reporter(announce_training=False)
    with reporter:
        report = run_evaluation(items, config, save_knowledge, reporter, workers=workers, address=ray_address)
    report["config"].update({"data": data, "format": fmt.value, "points": points})
    _print_table(report)
    if out is not None:
        write_text(out, json.dumps(report, indent=1))
        console.print(f"report written to [bold]{out}[/]")


def _load(data, fmt, category, parts, points, per_category, seed, keep):
    from partdistill_cli.datasets import load_dataset
    from partdistill_cli.errors import UserError

    if data == "procedural" or data.startswith("procedural:"):
        from partdistill_cli import procedural

        cats = data.split(":", 1)[1].split(",") if ":" in data else None
        if category:
            cats = [category]
        unknown = [c for c in cats or [] if c not in procedural.CATEGORIES]
        if unknown:
            raise UserError(
                f"unknown procedural categor(ies) {', '.join(unknown)}; known: {', '.join(procedural.CATEGORIES)}"
            )
        return procedural.procedural_dataset(cats, per_category, seed, points)
    items = load_dataset(data, fmt, category, parts, points, seed, keep)
    if not items:
        raise UserError(f"{data}: no shapes found" + (f" of category {category}" if category else ""))
    return items


def _print_table(report: dict) -> None:
    from rich.table import Table

    from partdistill_cli.console import console

    methods = list(dict.fromkeys(r["method"] for r in report["results"]))
    cats = list(dict.fromkeys(r["category"] for r in report["results"]))
    table = Table(title="mIoU ×100 (coverage %)")
    table.add_column("category")
    table.add_column("shapes", justify="right")
    for m in methods:
        table.add_column(m, justify="right")
    cell = {(r["method"], r["category"]): r for r in report["results"]}
    for c in cats:
        n = len(cell[(methods[0], c)]["shapes"])
        table.add_row(
            c,
            str(n),
            *[f"{cell[(m, c)]['miou'] * 100:.1f} ({cell[(m, c)]['coverage'] * 100:.0f})" for m in methods],
        )
    summary = report["summary"]
    table.add_section()
    table.add_row("mean of categories", "", *[f"{summary[m]['mean_over_categories'] * 100:.1f}" for m in methods])
    table.add_row("mean of shapes", "", *[f"{summary[m]['mean_over_shapes'] * 100:.1f}" for m in methods])
    console.print(table)
