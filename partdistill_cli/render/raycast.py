"""CPU mesh renderer: open3d's RaycastingScene (Embree) casts one ray per pixel for all views at once."""

from __future__ import annotations

import numpy as np

from partdistill_cli.cameras import Camera
from partdistill_cli.deps import import_open3d
from partdistill_cli.render.base import Views, pixel_of
from partdistill_cli.shapes import Shape

MISS = np.uint32(0xFFFFFFFF)


def build_scene(vertices: np.ndarray, faces: np.ndarray):
    """An open3d RaycastingScene holding one (V, 3) / (F, 3) triangle mesh."""
    o3d = import_open3d()

    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(
        o3d.core.Tensor(np.ascontiguousarray(vertices, dtype=np.float32)),
        o3d.core.Tensor(np.ascontiguousarray(faces, dtype=np.uint32)),
    )
    return scene


def camera_rays(cameras: list[Camera]):
    """(V, H, W, 6) open3d float32 tensor of rays (origin, direction); t_hit along them is camera z-depth.

    Every shape of a run is seen from the same view set, so the last view set's rays are kept and reused.
    """
    key = tuple((c.intrinsics.tobytes(), c.world_to_camera.tobytes(), c.width, c.height) for c in cameras)
    if _RAYS_CACHE.get("key") != key:
        _RAYS_CACHE["key"], _RAYS_CACHE["rays"] = key, _make_rays(cameras)
    return _RAYS_CACHE["rays"]


_RAYS_CACHE: dict = {}


def _make_rays(cameras: list[Camera]):
    o3d = import_open3d()

    rays = [
        o3d.t.geometry.RaycastingScene.create_rays_pinhole(
            intrinsic_matrix=o3d.core.Tensor(c.intrinsics),
            extrinsic_matrix=o3d.core.Tensor(c.world_to_camera),
            width_px=c.width,
            height_px=c.height,
        )
        for c in cameras
    ]
    return o3d.core.concatenate([r.reshape((1, *r.shape)) for r in rays], axis=0)


def render_mesh(shape: Shape, cameras: list[Camera], tolerance: float | None = None) -> Views:
    """Ray-cast a mesh `Shape` from `cameras` and build its pixel->point map (see `Views`).

    `tolerance` is accepted for the renderer interface; exact per-point ray casting does not need one.
    """
    if not shape.is_mesh:
        raise ValueError("the ray-casting renderer needs a mesh; use the splatting renderer for point clouds")
    scene = build_scene(shape.vertices, shape.faces)
    hits = scene.cast_rays(camera_rays(cameras), nthreads=0)
    shape_vhw = (len(cameras), cameras[0].height, cameras[0].width)
    prim = hits["primitive_ids"].numpy().reshape(shape_vhw)
    depth = hits["t_hit"].numpy().reshape(shape_vhw)
    hit = prim != MISS
    # The miss id 0xFFFFFFFF read as int32 is -1, our "no surface": a free reinterpretation, no copy.
    ids = prim.view(np.int32)
    normals = hits["primitive_normals"].numpy().reshape(*shape_vhw, 3)
    # Camera-z of each pixel's normal, as three element-wise products rather than a batched matmul: numpy's
    # matmul goes through OpenBLAS, whose idle threads then spin and slow the next shape's ray cast by ~30%.
    view_z = np.stack([c.world_to_camera[2, :3] for c in cameras]).astype(np.float32)[:, None, None, :]
    facing = normals[..., 0] * view_z[..., 0] + normals[..., 1] * view_z[..., 1] + normals[..., 2] * view_z[..., 2]
    # open3d already reports a miss as t_hit = inf.
    pmap = point_visibility(scene, cameras, shape.points, hit)
    return Views(cameras, facing, depth, ids, "face", pmap)


def point_visibility(scene, cameras: list[Camera], points: np.ndarray, hit: np.ndarray) -> np.ndarray:
    """(V, N) int32 pixel->point map of mesh sample points by casting one ray from each camera to each point.

    Exact where a depth test against the image is not: a point is visible when nothing lies between the
    camera and it (t_hit along the camera->point segment reaches the point), whatever the surface's slope or
    the image resolution. It must also land on a pixel that shows the surface.
    """
    o3d = import_open3d()

    pts = np.asarray(points, dtype=np.float64)
    n_views, h, w = hit.shape
    origins = np.stack([np.broadcast_to(c.position, pts.shape) for c in cameras])
    rays = np.concatenate([origins, pts[None] - origins], axis=-1).astype(np.float32)
    t_hit = scene.cast_rays(o3d.core.Tensor(rays), nthreads=0)["t_hit"].numpy().reshape(n_views, len(pts))
    out = np.full((n_views, len(pts)), -1, dtype=np.int32)
    for v, cam in enumerate(cameras):
        inside, flat, _ = pixel_of(pts, cam, h, w)
        # Slack for float32 rounding: the segment has length 1 in ray units (2e-5 is ~5e-5 shape units here).
        seen = inside & (t_hit[v] >= 1.0 - 2e-5) & hit[v].reshape(-1)[flat]
        out[v] = np.where(seen, flat, -1)
    return out
