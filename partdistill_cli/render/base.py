"""The `Views` type shared by every renderer, and the pixel->point map built from a depth image."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

from partdistill_cli.cameras import Camera

BACKGROUND = 255


@dataclass
class Views:
    """Renderings of one shape from several cameras.

    Attributes:
        cameras: V cameras, all of the same image size H x W.
        facing: (V, H, W) float32 camera-space z of the surface normal seen at each pixel (either sign; any
            value where no surface): the shading term of `rgb`.
        depth: (V, H, W) float32 camera-z depth, +inf where no surface.
        ids: (V, H, W) int32 primitive seen at each pixel (a face index for meshes, a point index for point
            clouds, see `id_kind`), -1 where no surface.
        id_kind: "face" or "point".
        pixel_of_point: (V, N) int32 flat pixel index (y * W + x) of each of the shape's N sample points in
            each view, -1 where the point is not visible in that view (outside the image or occluded).
    """

    cameras: list[Camera]
    facing: np.ndarray
    depth: np.ndarray
    ids: np.ndarray
    id_kind: Literal["face", "point"]
    pixel_of_point: np.ndarray

    @cached_property
    def rgb(self) -> np.ndarray:
        """(V, H, W, 3) uint8 shaded grey images on a white background (what the VLM sees).

        Shaded on first use: evaluation with the simulated teacher and the pixel->point map never look at it.
        """
        return shade(self.facing, self.ids >= 0)

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
    """Visibility tolerance in normalised units (the shape has radius 1); None gives the default 0.02."""
    return 0.02 if tolerance is None else float(tolerance)


def pixel_of(points: np.ndarray, camera: Camera, height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where (N, 3) points land in a camera's image: (inside (N,) bool, flat pixel y * W + x (N,) int64, 0
    where outside, camera depth z (N,) float64)."""
    uv, z = camera.project(points)
    x = np.floor(uv[:, 0]).astype(np.int64)
    y = np.floor(uv[:, 1]).astype(np.int64)
    inside = (z > 0) & (x >= 0) & (x < width) & (y >= 0) & (y < height)
    return inside, np.where(inside, y * width + x, 0), z


def shade(cos: np.ndarray, hit: np.ndarray) -> np.ndarray:
    """Grey Lambert shading with a headlight.

    `cos` (...) is the camera-space z of the surface normal (either sign), `hit` (...) bool; returns (..., 3)
    uint8, white where nothing was hit.
    """
    grey = (40.0 + 190.0 * np.abs(cos)).astype(np.uint8)
    grey = np.where(hit, grey, np.uint8(BACKGROUND))
    return np.repeat(grey[..., None], 3, axis=-1)


def contact_sheet(images: np.ndarray, columns: int | None = None, pad: int = 4) -> np.ndarray:
    """(V, H, W, 3) uint8 images -> one (rows*(H+pad)+pad, cols*(W+pad)+pad, 3) uint8 grid on white."""
    n, h, w, _ = images.shape
    cols = columns or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    sheet = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), BACKGROUND, dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        sheet[y : y + h, x : x + w] = images[i]
    return sheet
