"""`partdistill render`: the view images a teacher will see, plus a contact sheet."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from partdistill_cli.commands import options as opt


def render(
    shape: Annotated[
        Path,
        typer.Argument(
            help="Mesh (OBJ, PLY, GLB/GLTF, OFF, STL), point cloud (PLY, XYZ/TXT, NPY/NPZ, PCD), or a PartNet-Mobility "
            "object folder (its part meshes merged)."
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Output folder (default: NAME.views/ in the input's folder, or in the current folder for a sample "
            "shipped inside the package).",
        ),
    ] = None,
    views: opt.Views = 10,
    resolution: opt.Resolution = 512,
    renderer: opt.Renderer = opt.RendererChoice.auto,
    up: opt.Up = opt.UpAxis.y,
    points: opt.points_option(
        "by default: 10000, segment's default, so that the share of points seen it reports is what segment's "
        "teacher sees."
    ) = 10000,
    seed: opt.Seed = 0,
    overwrite: opt.Overwrite = False,
) -> None:
    """Render SHAPE from several views as the vision-language model will see it.

    Writes NAME.view00.png ... (one per view) and NAME.views.png (all views on one sheet).
    """
    import numpy as np
    from PIL import Image

    from partdistill_cli.console import console, counted
    from partdistill_cli.datasets import load_source
    from partdistill_cli.io_utils import atomic_path, beside_input, check_not_overwriting, check_writable_dir
    from partdistill_cli.pipeline import RenderSettings
    from partdistill_cli.render import render as render_views
    from partdistill_cli.render import resolve_renderer
    from partdistill_cli.render.base import contact_sheet

    s = load_source(shape, n_points=points, seed=seed)
    out_dir = out if out is not None else beside_input(shape) / f"{s.name}.views"
    check_writable_dir(out_dir)
    targets = [out_dir / f"{s.name}.view{i:02d}.png" for i in range(views)] + [out_dir / f"{s.name}.views.png"]
    check_not_overwriting(targets, [shape], overwrite)
    settings = RenderSettings(views, resolution, renderer.value, up.value)
    with console.status(f"rendering {counted(views, 'view')} of {shape.name} at {resolution}²"):
        v = render_views(s, settings.cameras(), settings.renderer)
    images = [*v.rgb, contact_sheet(v.rgb)]
    for target, img in zip(targets, images, strict=True):
        with atomic_path(target) as tmp:
            Image.fromarray(np.ascontiguousarray(img)).save(tmp, format="PNG")
    seen = float(v.visible().any(axis=0).mean())
    console.print(
        f"wrote {counted(len(targets), 'image')} to [bold]{out_dir}[/] ({resolve_renderer(settings.renderer, s)} renderer, "
        f"{seen:.0%} of {counted(s.n_points, 'sample point')} seen by at least one view)"
    )
