"""Renderers: a registry of functions (Shape, cameras) -> Views; "auto" picks by shape kind and device."""

from __future__ import annotations

from collections.abc import Callable

from partdistill_cli.cameras import Camera
from partdistill_cli.render.base import Views
from partdistill_cli.shapes import Shape


def _raycast(shape: Shape, cameras: list[Camera], tolerance: float | None = None) -> Views:
    from partdistill_cli.render.raycast import render_mesh

    return render_mesh(shape, cameras, tolerance)


def _splat(shape: Shape, cameras: list[Camera], tolerance: float | None = None) -> Views:
    from partdistill_cli.render.splat import render_points

    return render_points(shape, cameras, tolerance)


RENDERERS: dict[str, Callable[..., Views]] = {"raycast": _raycast, "splat": _splat}


def register_renderer(name: str, fn: Callable[..., Views]) -> None:
    """Add a renderer `fn(shape, cameras, tolerance=None) -> Views` under `name`."""
    RENDERERS[name] = fn


def resolve_renderer(name: str, shape: Shape) -> str:
    """The concrete renderer name for `name` ("auto" -> raycast for meshes, splat for point clouds)."""
    if name == "auto":
        return "raycast" if shape.is_mesh else "splat"
    if name not in RENDERERS:
        raise ValueError(f"unknown renderer {name!r}; choose from auto, {', '.join(sorted(RENDERERS))}")
    if name in ("raycast",) and not shape.is_mesh:
        raise ValueError(f"the {name} renderer needs a mesh; {shape.name} is a point cloud (use splat)")
    return name


def render(shape: Shape, cameras: list[Camera], renderer: str = "auto", tolerance: float | None = None) -> Views:
    """Render `shape` from `cameras` with the named renderer (see `RENDERERS`)."""
    return RENDERERS[resolve_renderer(renderer, shape)](shape, cameras, tolerance)


__all__ = ["RENDERERS", "Views", "register_renderer", "render", "resolve_renderer"]
