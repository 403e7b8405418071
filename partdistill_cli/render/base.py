"""The `Views` type shared by every renderer, and the pixel->point map built from a depth image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from partdistill_cli.cameras import Camera

BACKGROUND = 255


@dataclass
class Views:
    """Renderings of one shape from several cameras.

    Attributes:
        cameras: V cameras, all of the same image size H x W.
        rgb: (V, H, W, 3) uint8 shaded grey images on a white background (what the VLM sees).
        depth: (V, H, W) float32 camera-z depth, +inf where no surface.
        ids: (V, H, W) int32 primitive seen at each pixel (a face index for meshes, a point index for point
            clouds, see `id_kind`), -1 where no surface.
        id_kind: "face" or "point".
        pixel_of_point: (V, N) int32 flat pixel index (y * W + x) of each of the shape's N sample points in
            each view, -1 where the point is not visible in that view (outside the image or occluded).
    """

    cameras: list[Camera]
    rgb: np.ndarray
    depth: np.ndarray
    ids: np.ndarray
    id_kind: Literal["face", "point"]
    pixel_of_point: np.ndarray

    @property
    def n_views(self) -> int:
        return len(self.cameras)

    @property
    def size(self) -> tuple[int, int]:
        """(H, W)."""
        return int(self.depth.shape[1]), int(self.depth.shape[2])

    def visible(self) -> np.ndarray:
        """(V, N) bool: point visible in view."""
        return self.pixel_of_point >= 0

    def part_images(self, primitive_labels: np.ndarray) -> np.ndarray:
        """(V, H, W) int part index per pixel from per-primitive labels (-1 where empty or unlabeled)."""
        lut = np.append(np.asarray(primitive_labels, dtype=np.int64), -1)
        return lut[self.ids].astype(np.int32)


def depth_tolerance(tolerance: float | None) -> float:
    """Visibility depth tolerance in normalised units (the shape has radius 1)."""
    return 0.02 if tolerance is None else float(tolerance)


def pixel_map(
    cameras: list[Camera],
    depth: np.ndarray,
    points: np.ndarray,
    tolerance: float | None = None,
    ids: np.ndarray | None = None,
    point_faces: np.ndarray | None = None,
    point_normals: np.ndarray | None = None,
) -> np.ndarray:
    """(V, N) int32 pixel->point map by a depth test of (N, 3) `points` against (V, H, W) `depth`.

    A point is visible in a view when it projects inside the image and its depth is at most the rendered
    depth at its pixel plus `tolerance` (normalised units). For mesh samples (`ids`, `point_faces`,
    `point_normals` given) the depth test alone would let points on a back-facing face just behind an edge
    through, so such a point must also face the camera, unless its own face is the one seen at its pixel
    (which keeps both sides of open, single-sheet surfaces visible).
    """
    tol = depth_tolerance(tolerance)
    n_views, h, w = depth.shape
    out = np.full((n_views, len(points)), -1, dtype=np.int32)
    pts = np.asarray(points, dtype=np.float64)
    for v, cam in enumerate(cameras):
        uv, z = cam.project(pts)
        x = np.floor(uv[:, 0]).astype(np.int64)
        y = np.floor(uv[:, 1]).astype(np.int64)
        inside = (z > 0) & (x >= 0) & (x < w) & (y >= 0) & (y < h)
        flat = np.where(inside, y * w + x, 0)
        seen = inside & (z <= depth[v].reshape(-1)[flat] + tol)
        if ids is not None and point_faces is not None and point_normals is not None:
            own = ids[v].reshape(-1)[flat] == point_faces
            facing = np.einsum("nc,nc->n", point_normals, cam.position - pts) > 0
            seen &= own | facing
        out[v] = np.where(seen, flat, -1)
    return out


def shade(cos: np.ndarray, hit: np.ndarray) -> np.ndarray:
    """Grey Lambert shading with a headlight.

    `cos` (...) is the camera-space z of the surface normal (either sign), `hit` (...) bool; returns (..., 3)
    uint8, white where nothing was hit.
    """
    grey = (40.0 + 190.0 * np.abs(cos)).astype(np.uint8)
    grey = np.where(hit, grey, np.uint8(BACKGROUND))
    return np.repeat(grey[..., None], 3, axis=-1)
