"""CPU point-cloud renderer: z-buffered splatting in torch, each point a small disk of pixels."""

from __future__ import annotations

import numpy as np

from partdistill_cli.cameras import Camera
from partdistill_cli.render.base import Views, depth_tolerance, pixel_of
from partdistill_cli.shapes import Shape

MAX_RADIUS_PX = 12


def auto_radius(points: np.ndarray, camera: Camera) -> int:
    """Disk radius (pixels) that closes the gaps between neighbouring points at the camera's distance."""
    from scipy.spatial import cKDTree

    sample = points if len(points) <= 20000 else points[:: len(points) // 20000 + 1]
    dist, _ = cKDTree(sample).query(sample, k=2)
    spacing = float(np.median(dist[:, 1]))
    # Subsampling for the estimate spreads the points; scale back to the full density.
    spacing *= np.sqrt(len(sample) / len(points))
    px_per_unit = camera.intrinsics[0, 0] / np.linalg.norm(camera.position)
    # Random samples leave gaps of about twice the median neighbour distance; a disk that size closes them.
    return int(np.clip(np.ceil(2.0 * spacing * px_per_unit), 1, MAX_RADIUS_PX))


def _disk(radius: int) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    dy, dx = np.meshgrid(r, r, indexing="ij")
    keep = dx**2 + dy**2 <= radius**2 + radius  # a slightly fuller disk than the exact circle
    return np.stack([dy[keep], dx[keep]], axis=1)


def render_points(
    shape: Shape, cameras: list[Camera], tolerance: float | None = None, radius_px: int | None = None
) -> Views:
    """Splat a point-cloud `Shape` from `cameras` (z-buffer per pixel, nearest point wins)."""
    import torch

    pts = np.asarray(shape.points, dtype=np.float64)
    n = len(pts)
    h, w = cameras[0].height, cameras[0].width
    radius = radius_px if radius_px is not None else auto_radius(pts, cameras[0])
    offsets = _disk(radius)
    ids = np.full((len(cameras), h, w), -1, dtype=np.int32)
    depth = np.full((len(cameras), h, w), np.inf, dtype=np.float32)
    cos = np.zeros((len(cameras), h, w), dtype=np.float32)
    normals = shape.normals
    point_ids = torch.arange(n, dtype=torch.int64)
    empty = torch.iinfo(torch.int64).max
    for v, cam in enumerate(cameras):
        uv, z = cam.project(pts)
        ok = torch.from_numpy((z > 1e-6) & np.isfinite(uv).all(axis=1))
        px = np.floor(np.nan_to_num(uv, nan=-1e9)).clip(-1e9, 1e9).astype(np.int64)
        # Contiguous columns: element-wise torch ops on a strided column view are several times slower.
        px_x, px_y = torch.from_numpy(np.ascontiguousarray(px[:, 0])), torch.from_numpy(np.ascontiguousarray(px[:, 1]))
        # One int64 key per point: depth in the high 32 bits, point id in the low 32, so that scatter_reduce
        # (amin) is the z-buffer and also tells which point won.
        zq = torch.from_numpy(np.clip(z * 1e6, 0, 2**31 - 1).astype(np.int64))
        key = (zq << 32) | point_ids
        # One extra slot (index h*w) collects every pixel that falls outside the image.
        buf = torch.full((h * w + 1,), empty, dtype=torch.int64)
        for dy, dx in offsets:
            x = px_x + int(dx)
            y = px_y + int(dy)
            inside = (x >= 0) & (x < w) & (y >= 0) & (y < h) & ok
            buf.scatter_reduce_(0, torch.where(inside, y * w + x, h * w), key, reduce="amin")
        buf = buf[:-1]
        hit = buf != empty
        winner = torch.where(hit, buf & 0xFFFFFFFF, torch.full_like(buf, -1)).numpy()
        ids[v] = winner.reshape(h, w)
        hit_np = hit.numpy().reshape(h, w)
        depth[v][hit_np] = z[ids[v][hit_np]]
        if normals is not None:
            cos[v][hit_np] = (normals[ids[v][hit_np]] @ cam.world_to_camera[2, :3]).astype(np.float32)
        else:
            # No normals: shade by depth so that nearer surfaces are lighter and the outline stays readable.
            zz = depth[v][hit_np]
            cos[v][hit_np] = 1.0 - (zz - zz.min()) / max(float(zz.max() - zz.min()), 1e-6) * 0.7
    return Views(cameras, cos, depth, ids, "point", splat_visibility(cameras, ids, pts, radius, tolerance))


def splat_visibility(
    cameras: list[Camera], ids: np.ndarray, points: np.ndarray, radius_px: int, tolerance: float | None = None
) -> np.ndarray:
    """(V, N) int32 pixel->point map of a splatted cloud.

    A point is visible at its pixel when it won that pixel, or when the winner lies next to it in 3D (within
    two disk radii at the point's depth, plus `tolerance`): then both are samples of the same visible
    surface. A winner farther away is a different surface in front of the point, which is then occluded.
    This replaces the plain depth test, whose tolerance must grow with the disks' size and so lets points
    just behind thin parts through.
    """
    tol = depth_tolerance(tolerance)
    n_views, h, w = ids.shape
    out = np.full((n_views, len(points)), -1, dtype=np.int32)
    index = np.arange(len(points))
    for v, cam in enumerate(cameras):
        inside, flat, z = pixel_of(points, cam, h, w)
        winner = ids[v].reshape(-1)[flat].astype(np.int64)
        reach = 2.0 * (radius_px + 0.5) * z / cam.intrinsics[0, 0] + tol
        near = np.linalg.norm(points[np.maximum(winner, 0)] - points, axis=1) <= reach
        seen = inside & (winner >= 0) & ((winner == index) | near)
        out[v] = np.where(seen, flat, -1)
    return out
