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


def _nvdiffrast(shape: Shape, cameras: list[Camera], tolerance: float | None = None) -> Views:
    from partdistill_cli.render.nvdiffrast import render_mesh

    return render_mesh(shape, cameras, tolerance)


RENDERERS: dict[str, Callable[..., Views]] = {"raycast": _raycast, "splat": _splat, "nvdiffrast": _nvdiffrast}
MESH_ONLY = ("raycast", "nvdiffrast")


def register_renderer(name: str, fn: Callable[..., Views]) -> None:
    """Add a renderer `fn(shape, cameras, tolerance=None) -> Views` under `name`."""
    RENDERERS[name] = fn


def _gpu_mesh_renderer_usable(device: str | None) -> bool:
    """nvdiffrast importable, CUDA present, and `device` (None = any) not pinned to the CPU."""
    if device is not None and not str(device).startswith(("cuda", "auto")):
        return False
    from partdistill_cli.render.nvdiffrast import available

    return available()


def resolve_renderer(name: str, shape: Shape, device: str | None = None) -> str:
    """The concrete renderer name for `name`.

    "auto" -> nvdiffrast for meshes when it and CUDA are available (and `device` is not a CPU), else raycast
    for meshes; splat for point clouds. Asking for nvdiffrast where it cannot run raises a UserError.
    """
    if name == "auto":
        if not shape.is_mesh:
            return "splat"
        return "nvdiffrast" if _gpu_mesh_renderer_usable(device) else "raycast"
    if name not in RENDERERS:
        raise ValueError(f"unknown renderer {name!r}; choose from auto, {', '.join(sorted(RENDERERS))}")
    if name in MESH_ONLY and not shape.is_mesh:
        raise ValueError(f"the {name} renderer needs a mesh; {shape.name} is a point cloud (use splat)")
    if name == "nvdiffrast":
        from partdistill_cli.render.nvdiffrast import require_cuda

        require_cuda()
    return name


def render(
    shape: Shape,
    cameras: list[Camera],
    renderer: str = "auto",
    tolerance: float | None = None,
    device: str | None = None,
) -> Views:
    """Render `shape` from `cameras` with the named renderer (see `RENDERERS`; `device` steers "auto")."""
    return RENDERERS[resolve_renderer(renderer, shape, device)](shape, cameras, tolerance)


__all__ = ["RENDERERS", "Views", "register_renderer", "render", "resolve_renderer"]
