"""Option types shared by several commands (declared once so that their help text stays the same)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer


class RendererChoice(str, Enum):
    auto = "auto"
    raycast = "raycast"
    splat = "splat"
    nvdiffrast = "nvdiffrast"


class UpAxis(str, Enum):
    x = "x"
    y = "y"
    z = "z"


Views = Annotated[int, typer.Option("--views", min=1, max=64, help="Number of views rendered around the shape.")]
Resolution = Annotated[
    int, typer.Option("--resolution", min=64, max=2048, help="Image size in pixels (square) of each view.")
]
Renderer = Annotated[
    RendererChoice,
    typer.Option(
        "--renderer",
        help="auto: nvdiffrast on CUDA when installed, else CPU ray casting (meshes) or splatting (point clouds).",
    ),
]
Up = Annotated[UpAxis, typer.Option("--up", help="The shape's up axis (y for ShapeNet/PartNet, z for many CAD files).")]
Points = Annotated[
    int,
    typer.Option(
        "--points",
        min=16,
        max=1_000_000,
        help="Surface samples drawn from a mesh (point clouds keep all their points).",
    ),
]
Seed = Annotated[int, typer.Option("--seed", help="Random seed (sampling, teacher noise, student).")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs (inputs are never written).")]
Noise = Annotated[
    str,
    typer.Option(
        "--noise", help="Noise of the simulated teacher: a preset (clean, default, harsh) or a JSON file of settings."
    ),
]
