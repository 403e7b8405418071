"""Option types shared by several commands (declared once so that their help text stays the same).

Teacher choices, weight options and threshold help are read from `teachers.specs`, the limits from `config`:
both are light, so `--help` stays fast.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from partdistill_cli.config import METHOD_ALIASES, METHODS, POINTS_RANGE, RESOLUTION_RANGE, VIEWS_RANGE
from partdistill_cli.device import DEVICES
from partdistill_cli.teachers.specs import REAL_TEACHERS, TEACHER_SPECS, threshold_help, weight_option_help


class RendererChoice(str, Enum):
    auto = "auto"
    raycast = "raycast"
    splat = "splat"
    nvdiffrast = "nvdiffrast"


class UpAxis(str, Enum):
    x = "x"
    y = "y"
    z = "z"


Views = Annotated[
    int,
    typer.Option("--views", min=VIEWS_RANGE[0], max=VIEWS_RANGE[1], help="Number of views rendered around the shape."),
]
Resolution = Annotated[
    int,
    typer.Option(
        "--resolution",
        min=RESOLUTION_RANGE[0],
        max=RESOLUTION_RANGE[1],
        help="Image size in pixels (square) of each view.",
    ),
]
Renderer = Annotated[
    RendererChoice,
    typer.Option(
        "--renderer",
        help="auto: nvdiffrast on CUDA when installed, else CPU ray casting (meshes) or splatting (point clouds).",
    ),
]
Up = Annotated[UpAxis, typer.Option("--up", help="The shape's up axis (y for ShapeNet/PartNet, z for many CAD files).")]


def points_option(why: str) -> Any:
    """The `--points` option of a command whose default is explained by `why` ("by default: ...")."""
    return Annotated[
        int,
        typer.Option(
            "--points",
            min=POINTS_RANGE[0],
            max=POINTS_RANGE[1],
            help=f"Surface samples drawn from a mesh (point clouds keep all their points); {why}",
        ),
    ]


Seed = Annotated[int, typer.Option("--seed", min=0, help="Random seed (sampling, teacher noise, student).")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs (inputs are never written).")]
Noise = Annotated[
    str,
    typer.Option(
        "--noise", help="Noise of the simulated teacher: a preset (clean, default, harsh) or a JSON file of settings."
    ),
]

# The teacher choices, built from the teacher specs: the vision-language teachers, and those plus the
# simulated teacher where ground truth is at hand (train-category on a labeled set, evaluate).
RealTeacher = Literal[REAL_TEACHERS]
AnyTeacher = Literal[(*REAL_TEACHERS, "simulated")]
EvalTeacher = Literal[("simulated", *REAL_TEACHERS)]


def _method_choice(value: str) -> str:
    if value in METHOD_ALIASES:
        from partdistill_cli.console import console

        console.print(
            f"[yellow]warning:[/] --method {value} is deprecated; use --method {METHOD_ALIASES[value]} (the same method)"
        )
        return METHOD_ALIASES[value]
    if value not in METHODS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(map(repr, METHODS))}.")
    return value


# segment's --method: a choice whose older names (`config.METHOD_ALIASES`) are accepted but not shown.
Method = Annotated[
    str,
    typer.Option(
        "--method",
        metavar=f"<{'|'.join(METHODS)}>",
        callback=_method_choice,
        help="full: student with forward + backward distillation; forward: forward only (both students' "
        "predictions are fused with the shape's re-scored view evidence); vote-fill: direct back-projection "
        "votes, unseen points from their nearest voted point (fast baseline; evaluate's vote-fill).",
    ),
]


def renamed(ctx: typer.Context, new: str, old: str) -> Any:
    """The value of the option of parameter `new`, or, where the user gave only its deprecated name (the hidden
    option of parameter `old`, None when absent), that one's, with a warning. Both given: a UserError."""
    from partdistill_cli.errors import UserError

    new_flag, old_flag = (f"--{name.replace('_', '-')}" for name in (new, old))
    if ctx.params[old] is None:
        return ctx.params[new]
    if ctx.get_parameter_source(new).name != "DEFAULT":
        raise UserError(f"{new_flag} and its old name {old_flag} were both given; give {new_flag} only")
    from partdistill_cli.console import console

    console.print(f"[yellow]warning:[/] {old_flag} is deprecated; use {new_flag}")
    return ctx.params[old]


Detector = Annotated[str | None, typer.Option("--detector", help=weight_option_help("detector"))]
Segmenter = Annotated[str | None, typer.Option("--segmenter", help=weight_option_help("segmenter"))]
ClipSeg = Annotated[str | None, typer.Option("--clipseg", help=weight_option_help("clipseg"))]
Threshold = Annotated[float | None, typer.Option("--threshold", min=0.0, max=1.0, help=threshold_help())]
Device = Annotated[
    Literal[DEVICES],
    typer.Option("--device", help="Where the teacher and the student run; auto: CUDA when available, else CPU."),
]
OtherChoice = Literal["auto", "on", "off"]
Other = Annotated[
    OtherChoice,
    typer.Option(
        "--other",
        help="Add a background part 'other' for surface no listed part claims; auto: on when only one part is "
        "asked for.",
    ),
]
Workers = Annotated[
    int | None,
    typer.Option(
        "--workers",
        min=1,
        help="Run on a local Ray cluster of N CPUs, started and stopped for this run (needs the ray extra: pip "
        "install 'partdistill[ray]'): teachers in actors that keep the models loaded (one per GPU), rendering, "
        "lifting and distillation as tasks. Same seeds, same labels as without it.",
    ),
]
RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="Join a running Ray cluster instead (auto, HOST:PORT or ray://HOST:PORT); every node needs "
        "partdistill installed and the --cache-dir path shared.",
    ),
]
CacheDir = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        help="Cache root for knowledge and students (default $PARTDISTILL_CACHE or ~/.cache/partdistill).",
    ),
]


def teacher_weights(teacher: str, **given: str | None) -> dict[str, str]:
    """The weight options given on the command line that `teacher` takes; the others are reported and ignored
    (one command line may name weights for several teachers)."""
    spec = TEACHER_SPECS[teacher]
    ignored = [k for k, v in given.items() if v is not None and k not in spec.weights]
    if ignored:
        from partdistill_cli.console import console

        flags = ", ".join(f"--{k}" for k in ignored)
        console.print(f"[yellow]warning:[/] {flags} does not apply to the {teacher} teacher; ignored")
    return {k: v for k, v in given.items() if v is not None and k in spec.weights}


def segment_config(
    *,
    teacher: str,
    detector: str | None,
    segmenter: str | None,
    clipseg: str | None,
    threshold: float | None,
    views: int,
    resolution: int,
    renderer: RendererChoice,
    up: UpAxis,
    **fields,
):
    """The `SegmentConfig` of a command's teacher, weight, rendering and other (`fields`) options."""
    from partdistill_cli.config import RenderSettings, SegmentConfig

    return SegmentConfig(
        teacher=teacher,
        weights=teacher_weights(teacher, detector=detector, segmenter=segmenter, clipseg=clipseg),
        threshold=threshold,
        render=RenderSettings(views, resolution, renderer.value, up.value),
        **fields,
    )
